# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which release each running Mastodon process runs, from what the process reports (pure logic).

The module (fediops.mastodon.mastodon_running_release) collects, per systemd unit, its MainPID, the
kernel's view of that process's working directory (/proc/<pid>/cwd, which systemd set from
WorkingDirectory=<base>/current when it started the process, symlinks resolved at that moment) and,
for Puma, the version GET /api/v1/instance answers. This file turns that into plain records:
{'unit', 'kind', 'pid', 'active', 'cwd', 'release', 'version', 'on_target'}.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import shlex

KIND_PATTERNS = [
    ('web', re.compile(r'^mastodon-web(@[^.]*)?\.service$')),
    ('streaming', re.compile(r'^mastodon-streaming@[^.]+\.service$')),
    ('sidekiq', re.compile(r'^mastodon-sidekiq(@[^.]*)?\.service$')),
]


def unit_kind(unit):
    for kind, pattern in KIND_PATTERNS:
        if pattern.match(unit):
            return kind
    return 'other'


def parse_systemctl_show(text):
    """Blocks of KEY=VALUE lines (``systemctl show -p Id,MainPID,ActiveState ...``) -> list of dicts."""
    units, current = [], {}
    for line in text.splitlines() + ['']:
        line = line.strip()
        if not line:
            if current:
                units.append(current)
            current = {}
            continue
        if '=' in line:
            key, value = line.split('=', 1)
            current[key] = value
    return units


def parse_list_units(text):
    """Unit names from ``systemctl list-units --plain --no-legend`` (first column)."""
    return [line.split()[0] for line in text.splitlines() if line.strip() and line.split()[0].endswith('.service')]


def web_url_from_environment(value, default_port=3000):
    """Puma's URL from the unit's Environment= (``systemctl show -p Environment``): BIND and PORT, as Puma reads them."""
    env = {}
    for item in shlex.split(value or ''):
        if '=' in item:
            key, val = item.split('=', 1)
            env[key] = val
    bind = env.get('BIND') or '127.0.0.1'
    if bind in ('0.0.0.0', '::', '[::]'):
        bind = '127.0.0.1'
    if ':' in bind and not bind.startswith('['):
        bind = '[%s]' % bind
    return 'http://%s:%s' % (bind, env.get('PORT') or default_port)


def release_from_cwd(cwd, base_path):
    """'v2.0.0' when cwd is <base>/releases/v2.0.0 (or below it); None otherwise."""
    if not cwd:
        return None
    releases = os.path.join(os.path.normpath(base_path), 'releases') + os.sep
    cwd = os.path.normpath(cwd)
    if not cwd.startswith(releases):
        return None
    return cwd[len(releases):].split(os.sep)[0] or None


def normalize_version(value):
    """Compare Mastodon versions as Mastodon reports them: '4.5.2' == 'v4.5.2' == '4.5.2+hachyderm'."""
    if value is None:
        return None
    text = str(value).strip()
    if text[:1] in ('v', 'V'):
        text = text[1:]
    return text.split('+', 1)[0]


def judge(processes, expected_release=None, expected_version=None):
    """Mark each process on_target; return (processes, summary).

    A process is on target when it runs (MainPID > 0) and every source that answered agrees: the
    release its working directory resolves to equals expected_release, and the version it reports over
    HTTP (Puma) equals expected_version or the release name (normalized). Without an expectation on_target is None.
    """
    if expected_version is None and expected_release is not None:
        expected_version = normalize_version(expected_release)
    out = []
    for proc in processes:
        proc = dict(proc)
        if expected_release is None:
            proc['on_target'] = None
        else:
            ok = bool(proc.get('pid')) and proc.get('release') == expected_release
            if proc.get('version_error'):
                ok = False
            elif proc.get('version') is not None:
                # Mastodon answers its own version (4.5.3 for releases/v4.5.3); a release directory named otherwise
                # (or the lab fixture, which answers its release name) is matched by the release name.
                ok = ok and normalize_version(proc['version']) in (normalize_version(expected_version),
                                                                   normalize_version(expected_release))
            proc['on_target'] = ok
        out.append(proc)
    summary = {
        'releases': sorted(set(p['release'] for p in out if p.get('release'))),
        'versions': sorted(set(normalize_version(p['version']) for p in out if p.get('version'))),
        'off_target': [p['unit'] for p in out if p['on_target'] is False],
    }
    summary['on_target'] = None if expected_release is None else bool(out) and not summary['off_target']
    return out, summary


def describe(proc):
    """One line for messages: 'mastodon-sidekiq@default.service (pid 812) runs v1.0.0'."""
    what = proc.get('release') or ('cwd %s' % proc['cwd'] if proc.get('cwd') else 'nothing (not running)')
    line = '%s (pid %s) runs %s' % (proc['unit'], proc.get('pid') or '-', what)
    if proc.get('version') is not None:
        line += ', answers version %s' % proc['version']
    if proc.get('version_error'):
        line += ', version unknown (%s)' % proc['version_error']
    return line


def ask_web_version(base_url, host_header=None, timeout=5):
    """The version Puma answers at GET <base_url>/api/v1/instance: (version or None, error or None, what was asked).

    The one place both fleet_state and mastodon_running_release ask Puma. X-Forwarded-Proto: https because
    Mastodon redirects plain HTTP; Host, when given, because Puma answers only its LOCAL_DOMAIN/WEB_DOMAIN."""
    url = base_url.rstrip('/') + '/api/v1/instance'
    headers = {'Accept': 'application/json', 'X-Forwarded-Proto': 'https'}
    if host_header:
        headers['Host'] = host_header
    # Imported here, not at the top: the fleet filter plugin imports this file on the controller, and every Ansible
    # worker that resolves any fediops filter imports every filter file of the collection; the HTTP client's
    # imports cost each of them about 40 ms (issue 15).
    from ansible.module_utils.urls import open_url

    try:
        answer = open_url(url, headers=headers, timeout=timeout, follow_redirects='none', validate_certs=False)
        return str(json.loads(answer.read())['version']), None, 'GET ' + url
    except Exception as e:  # pylint: disable=broad-except
        return None, '%s: %s' % (url, e), 'GET ' + url
