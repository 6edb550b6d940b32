#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mastodon_release
short_description: Install, activate, roll back and prune Mastodon release directories
version_added: 0.1.0
description:
  - Manages C(<base_path>/releases/<version>/) directories unpacked from tar.gz artifacts, a
    C(current) symlink the services run from, and a C(previous) symlink recording what
    C(current) pointed at before the last switch.
  - Artifacts are verified against a sha256 checksum before anything is unpacked, and are
    unpacked into a temporary directory that is renamed into place, so a half-written release
    never appears. Absolute paths, parent references, links leaving the release and special
    files in the archive are refused.
  - Symlinks are switched atomically (a temporary link renamed over the old one).
  - Run it as the user that should own the releases (for example C(become_user=mastodon)).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  base_path:
    description:
      - Directory holding C(releases/), C(current) and C(previous).
    type: path
    required: true
  version:
    description:
      - Release name, used as the directory name. Required for O(state=present), O(state=active) and O(state=absent).
    type: str
  state:
    description:
      - V(present) installs the release from O(src) if it is not installed.
      - V(active) does the same and then points C(current) at it (C(previous) at the old current).
      - V(rollback) points C(current) back at C(previous) (and C(previous) at what was current).
      - V(absent) removes the release; the current release cannot be removed.
      - V(pruned) removes the oldest releases (by install time) so that O(keep) remain, never
        removing the current or previous release.
    type: str
    choices: [ present, active, rollback, absent, pruned ]
    default: active
  src:
    description:
      - Path of the tar.gz artifact on the managed host. Needed when the release is not installed yet.
    type: path
  checksum:
    description:
      - Expected sha256 of O(src), hex, optionally prefixed with C(sha256:). Required with O(src).
    type: str
  strip_components:
    description:
      - Leading path components to strip from archive members (1 for an archive whose content
        sits under a top-level directory).
    type: int
    default: 0
  keep:
    description:
      - Number of releases to keep with O(state=pruned).
    type: int
    default: 5
  current_link:
    description:
      - Path of the symlink the services use. Defaults to C(<base_path>/current).
    type: path
author:
  - fediops contributors (@fediops)
'''

EXAMPLES = r'''
- name: Unpack 4.5.2 without switching to it
  fediops.mastodon.mastodon_release:
    base_path: /home/mastodon
    version: 4.5.2
    state: present
    src: /home/mastodon/artifacts/mastodon-4.5.2.tar.gz
    checksum: "sha256:{{ mastodon_artifact_sha256 }}"
    strip_components: 1
  become: true
  become_user: mastodon

- name: Switch this host to 4.5.2
  fediops.mastodon.mastodon_release:
    base_path: /home/mastodon
    version: 4.5.2
    state: active
  become: true
  become_user: mastodon

- name: Go back to the release that ran before
  fediops.mastodon.mastodon_release:
    base_path: /home/mastodon
    state: rollback

- name: Keep three releases
  fediops.mastodon.mastodon_release:
    base_path: /home/mastodon
    state: pruned
    keep: 3
'''

RETURN = r'''
current:
  description: Release C(current) points at afterwards (predicted in check mode).
  returned: always
  type: str
  sample: 4.5.2
previous:
  description: Release C(previous) points at afterwards.
  returned: always
  type: str
  sample: 4.4.8
releases:
  description: Installed releases afterwards, oldest install first.
  returned: always
  type: list
  elements: str
release_path:
  description: Directory of O(version), when a version was given.
  returned: when O(version) is set
  type: str
removed:
  description: Releases removed.
  returned: always
  type: list
  elements: str
actions:
  description: Filesystem operations performed (or planned, in check mode).
  returned: always
  type: list
  elements: str
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils import releases


def predict(before, state, version, removed, installed):
    after = dict(before, releases=list(before['releases']))
    if installed and version not in after['releases']:
        after['releases'].append(version)
    if state == 'active' and before['current'] != version:
        after['previous'] = before['current'] or before['previous']
        after['current'] = version
    elif state == 'rollback' and before['previous'] and before['previous'] != before['current']:
        after['current'], after['previous'] = before['previous'], before['current']
    for gone in removed:
        after['releases'].remove(gone)
        if after['previous'] == gone:
            after['previous'] = None
    return after


def main():
    module = AnsibleModule(
        argument_spec=dict(
            base_path=dict(type='path', required=True),
            version=dict(type='str'),
            state=dict(type='str', default='active', choices=['present', 'active', 'rollback', 'absent', 'pruned']),
            src=dict(type='path'),
            checksum=dict(type='str'),
            strip_components=dict(type='int', default=0),
            keep=dict(type='int', default=5),
            current_link=dict(type='path'),
        ),
        required_if=[('state', 'present', ['version']), ('state', 'active', ['version']),
                     ('state', 'absent', ['version'])],
        required_together=[('src', 'checksum')],
        supports_check_mode=True,
    )
    p = module.params
    state, version = p['state'], p['version']
    if p['strip_components'] < 0:
        module.fail_json(msg='strip_components must not be negative')
    layout = releases.Layout(p['base_path'], p['current_link'])
    actions, removed = [], []
    installed = changed = False
    try:
        if version:
            releases.check_version_name(version)
        before = layout.state()
        if state in ('present', 'active'):
            if not os.path.isdir(layout.path(version)) and not p['src']:
                module.fail_json(msg='release %s is not installed under %s and no src artifact was given'
                                     % (version, layout.releases))
            if p['src']:
                installed, acts = releases.install(layout, version, p['src'], p['checksum'],
                                                   p['strip_components'], module.check_mode)
                actions.extend(acts)
                changed = changed or installed
            if state == 'active':
                switched, acts = releases.activate(layout, version, module.check_mode)
                actions.extend(acts)
                changed = changed or switched
        elif state == 'rollback':
            switched, acts = releases.rollback(layout, module.check_mode)
            actions.extend(acts)
            changed = switched
        elif state == 'absent':
            changed, acts = releases.remove(layout, version, module.check_mode)
            actions.extend(acts)
            removed = [version] if changed else []
        else:
            changed, acts, removed = releases.prune(layout, p['keep'], module.check_mode)
            actions.extend(acts)
        after = predict(before, state, version, removed, installed) if module.check_mode else layout.state()
    except releases.ReleaseError as e:
        module.fail_json(msg=str(e), actions=actions)
    except (IOError, OSError) as e:
        module.fail_json(msg='filesystem error under %s: %s' % (p['base_path'], e), actions=actions)

    result = dict(changed=changed, current=after['current'], previous=after['previous'],
                  releases=after['releases'], removed=removed, actions=actions,
                  diff=dict(before=before, after=after))
    if version:
        result['release_path'] = layout.path(version)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
