# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest backup signals for node exporter's textfile collector, from ``pgbackrest info --output=json``.

Pure: ``textfile(stanza, output, returncode)`` turns what the command printed into the file's text
(roles/pgbackrest's fediops-pgbackrest-metrics writes it atomically). The metrics:

- ``fediops_pgbackrest_info_success{stanza}`` 1 when ``pgbackrest info`` answered for the stanza: it exited 0,
  printed JSON naming the stanza, and the stanza's status is ``ok`` (0) or ``no valid backups`` (2, the
  repository answered, it simply holds none yet); 0 otherwise (repository unreachable, stanza missing,
  missing stanza data, ...).
- ``fediops_pgbackrest_last_backup_completion_seconds{stanza,type}`` for type full, diff and incr: the Unix
  time the newest backup of that type stopped (``timestamp.stop``). ``pgbackrest info`` lists completed
  backups only (an interrupted one is never in backup.info). Absent for a type with no backup.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

TYPES = ('full', 'diff', 'incr')
ANSWERED_CODES = (0, 2)


def parse_info(output, stanza):
    """(success, {type: newest stop time}, reason) from the command's JSON output for one stanza."""
    try:
        info = json.loads(output)
    except (TypeError, ValueError) as e:
        return False, {}, 'output is not JSON: %s' % e
    if not isinstance(info, list):
        return False, {}, 'output is not a list of stanzas'
    entry = next((s for s in info if isinstance(s, dict) and s.get('name') == stanza), None)
    if entry is None:
        return False, {}, 'stanza %s is not in the output' % stanza
    status = entry.get('status') or {}
    code = status.get('code')
    last = {}
    for backup in entry.get('backup') or []:
        kind = backup.get('type')
        stop = (backup.get('timestamp') or {}).get('stop')
        if kind not in TYPES or not isinstance(stop, (int, float)) or isinstance(stop, bool):
            continue
        last[kind] = max(last.get(kind, stop), stop)
    if code not in ANSWERED_CODES:
        return False, last, 'stanza %s status %s: %s' % (stanza, code, status.get('message'))
    return True, last, None


def _escape(value):
    return str(value).replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"')


def textfile(stanza, output, returncode=0):
    """(text of fediops_pgbackrest.prom, reason it failed or None)."""
    if returncode != 0:
        success, last, reason = False, {}, 'pgbackrest info exited %s' % returncode
    else:
        success, last, reason = parse_info(output, stanza)
    label = 'stanza="%s"' % _escape(stanza)
    lines = [
        '# HELP fediops_pgbackrest_info_success 1 when pgbackrest info answered for the stanza.',
        '# TYPE fediops_pgbackrest_info_success gauge',
        'fediops_pgbackrest_info_success{%s} %d' % (label, 1 if success else 0),
        '# HELP fediops_pgbackrest_last_backup_completion_seconds Unix time the newest completed backup of the type stopped.',
        '# TYPE fediops_pgbackrest_last_backup_completion_seconds gauge',
    ]
    for kind in TYPES:
        if kind in last:
            lines.append('fediops_pgbackrest_last_backup_completion_seconds{%s,type="%s"} %d' % (label, kind, last[kind]))
    return '\n'.join(lines) + '\n', reason
