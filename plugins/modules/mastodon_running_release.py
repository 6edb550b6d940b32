#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mastodon_running_release
short_description: Report which release each running Mastodon process runs, as the process shows it
version_added: 0.1.0
description:
  - For each Mastodon unit on the host (Puma C(mastodon-web.service), C(mastodon-streaming@<port>.service),
    C(mastodon-sidekiq@<pool>.service)) reads its C(MainPID) from systemd and the kernel's view of that
    process's working directory (C(/proc/<pid>/cwd)). The units run in C(WorkingDirectory=<base>/current);
    the kernel resolved that link when the process started, so the working directory is
    C(<base>/releases/<version>) of the release the process actually runs, whatever C(current) says now.
  - For Puma it also asks O(web_url) C(/api/v1/instance) and reports the C(version) it answers (Mastodon's
    own version; the lab fixture answers its release name, for example C(v2.0.0)). It must equal O(expected_version)
    or the release name O(expected_release), compared without a leading C(v) and without C(+metadata).
  - Sidekiq's heartbeat carries no Mastodon version, so Sidekiq is judged by the working directory only;
    combine with M(fediops.mastodon.sidekiq_queues) to know the processes also beat.
  - With O(expected_release) each process gets C(on_target), and C(off_target) lists the units that are not
    on it. A requested kind with no running unit is reported as one record with no pid (off target).
  - Never fails because a process runs another release; the caller decides. Changes nothing; check mode is the same.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  base_path:
    description:
      - Mastodon's base directory holding C(releases/) and C(current).
    type: path
    default: /home/mastodon
  kinds:
    description:
      - Which processes to read. V(web) is C(mastodon-web.service); V(streaming) and V(sidekiq) are every active
        C(mastodon-streaming@*.service) and C(mastodon-sidekiq@*.service) instance.
    type: list
    elements: str
    choices: [ web, streaming, sidekiq ]
    default: [ web, streaming, sidekiq ]
  web_url:
    description:
      - Base URL of this host's Puma, for example C(http://10.89.40.21:3000). Puma is asked C(/api/v1/instance) and
        the version it reports must match too.
      - Defaults to the C(BIND) and C(PORT) the running unit was given (C(systemctl show -p Environment)), C(127.0.0.1)
        for a wildcard C(BIND).
    type: str
  web_host_header:
    description:
      - C(Host) header for that request (Mastodon answers its C(LOCAL_DOMAIN)/C(WEB_DOMAIN) only). C(X-Forwarded-Proto)
        is sent as C(https) so that Mastodon does not redirect.
    type: str
  timeout:
    description:
      - Seconds to wait for Puma's answer.
    type: float
    default: 10
  expected_release:
    description:
      - Release directory name the processes must run (for example C(v4.5.3)).
    type: str
  expected_version:
    description:
      - Mastodon version Puma must report. Defaults to the version C(lib/mastodon/version.rb) of
        C(<base>/releases/<expected_release>) declares, else O(expected_release) without a leading C(v).
    type: str
author:
  - fediops contributors (@fediops)
'''

EXAMPLES = r'''
- name: What do this host's processes run?
  fediops.mastodon.mastodon_running_release:
    kinds: [web, sidekiq]
    web_url: "http://{{ fediops_private_address }}:3000"
    web_host_header: social.example
    expected_release: v4.5.3
    expected_version: 4.5.3
  register: running

- name: Refuse unless every process runs it
  ansible.builtin.assert:
    that: running.on_target
    fail_msg: "{{ running.off_target }}"
'''

RETURN = r'''
processes:
  description: One record per process (C(unit), C(kind), C(pid), C(active), C(cwd), C(release), C(version),
    C(version_error), C(on_target)).
  returned: always
  type: list
  elements: dict
  sample:
    - unit: mastodon-sidekiq@default.service
      kind: sidekiq
      pid: 812
      active: active
      cwd: /home/mastodon/releases/v4.5.3
      release: v4.5.3
      version: null
      on_target: true
releases:
  description: Releases the processes run, from their working directories.
  returned: always
  type: list
  elements: str
versions:
  description: Versions Puma reported (normalized).
  returned: always
  type: list
  elements: str
on_target:
  description: Every requested kind has a running process and every process is on O(expected_release); null without it.
  returned: always
  type: bool
off_target:
  description: Units not on O(expected_release).
  returned: always
  type: list
  elements: str
expected_version:
  description: The Mastodon version Puma was expected to report (null when derived from O(expected_release)).
  returned: always
  type: str
lines:
  description: One human-readable line per process.
  returned: always
  type: list
  elements: str
commands:
  description: Commands run and URLs read.
  returned: always
  type: list
  elements: str
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils import migrations, running

UNITS = {
    'web': 'mastodon-web.service',
    'streaming': 'mastodon-streaming@*.service',
    'sidekiq': 'mastodon-sidekiq@*.service',
}


def list_units(module, commands, systemctl):
    """Units to read: web by name (a stopped Puma is reported), instances that are active now."""
    names = []
    for kind in module.params['kinds']:
        pattern = UNITS[kind]
        if '*' not in pattern:
            names.append((kind, pattern))
            continue
        cmd = [systemctl, 'list-units', '--type=service', '--state=active', '--plain', '--no-legend', pattern]
        commands.append(' '.join(cmd))
        rc, out, err = module.run_command(cmd)
        if rc != 0:
            module.fail_json(msg='%s failed (rc %d): %s' % (' '.join(cmd), rc, (err or out).strip()), commands=commands)
        found = running.parse_list_units(out)
        names.extend((kind, unit) for unit in found)
        if not found:
            names.append((kind, None))
    return names


def read_web_version(module, commands, systemctl, unit):
    p = module.params
    base = p['web_url']
    if not base:
        cmd = [systemctl, 'show', '--property=Environment', '--value', unit]
        commands.append(' '.join(cmd))
        rc, out, err = module.run_command(cmd)
        if rc != 0:
            return None, '%s failed: %s' % (' '.join(cmd), (err or out).strip())
        base = running.web_url_from_environment(out.strip())
    version, error, asked = running.ask_web_version(base, p['web_host_header'], timeout=p['timeout'])
    commands.append(asked)
    return version, error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            base_path=dict(type='path', default='/home/mastodon'),
            kinds=dict(type='list', elements='str', choices=sorted(UNITS), default=['web', 'streaming', 'sidekiq']),
            web_url=dict(type='str'),
            web_host_header=dict(type='str'),
            timeout=dict(type='float', default=10),
            expected_release=dict(type='str'),
            expected_version=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    commands = []
    systemctl = module.get_bin_path('systemctl', required=True)
    units = list_units(module, commands, systemctl)
    shown = {}
    named = [u for _k, u in units if u]
    if named:
        cmd = [systemctl, 'show', '--property=Id,MainPID,ActiveState'] + named
        commands.append(' '.join(cmd))
        rc, out, err = module.run_command(cmd)
        if rc != 0:
            module.fail_json(msg='%s failed (rc %d): %s' % (' '.join(cmd), rc, (err or out).strip()), commands=commands)
        # systemctl show prints the blocks in the order the units were given.
        shown = dict(zip(named, running.parse_systemctl_show(out)))
    processes = []
    for kind, unit in units:
        if unit is None:
            processes.append({'unit': UNITS[kind], 'kind': kind, 'pid': 0, 'active': 'none running', 'cwd': None,
                              'release': None, 'version': None, 'version_error': None})
            continue
        info = shown.get(unit, {})
        pid = int(info.get('MainPID') or 0)
        cwd = None
        if pid:
            commands.append('readlink /proc/%d/cwd' % pid)
            try:
                cwd = os.readlink('/proc/%d/cwd' % pid)
            except OSError:
                cwd = None
        proc = {'unit': unit, 'kind': running.unit_kind(unit), 'pid': pid, 'active': info.get('ActiveState'), 'cwd': cwd,
                'release': running.release_from_cwd(cwd, p['base_path']), 'version': None, 'version_error': None}
        if proc['kind'] == 'web' and pid:
            proc['version'], proc['version_error'] = read_web_version(module, commands, systemctl, unit)
        processes.append(proc)
    expected_version = p['expected_version']
    if expected_version is None and p['expected_release']:
        expected_version = migrations.read_release_version(os.path.join(p['base_path'], 'releases', p['expected_release']))
    processes, summary = running.judge(processes, p['expected_release'], expected_version)
    module.exit_json(changed=False, processes=processes, expected_version=expected_version, lines=[running.describe(x) for x in processes],
                     commands=commands, **summary)


if __name__ == '__main__':
    main()
