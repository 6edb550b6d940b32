# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe of fediops.mastodon.files: one shell command that reads what the host holds, and the pure comparison.

The action plugin (plugins/action/files.py) runs probe_command() on the host, reads its answer with parse_probe()
and asks pending() which paths differ. Only when one does, or when the answer cannot be trusted, does it run the
module, which reads again and acts. So this side must never call a path converged when it is not: anything
unexpected is a difference or a ProbeError, and both mean "run the module".

No ansible imports: tested without a host (tests/unit/plugins/module_utils/test_file_probe.py).
"""

from __future__ import annotations

import hashlib
import re
import shlex

BEGIN = 'FEDIOPS-FILES-PROBE-BEGIN'
END = 'FEDIOPS-FILES-PROBE-END'

# stat's %F names; "regular empty file" is what GNU stat says of a file of zero bytes.
KINDS = {
    'directory': 'directory',
    'regular file': 'file',
    'regular empty file': 'file',
    'symbolic link': 'link',
}

# One line per path: "<index>|<stat fields>|<extra>", or "<index>|missing|" when stat fails (absent, or not
# reachable: both mean the module must look). extra is the content's sha256 for a regular file and the target
# for a link. stderr is silenced at once: with a tty it would be mixed into stdout.
_FUNCTIONS = (
    "exec 2>/dev/null; "
    "s() { LC_ALL=C stat -c '%F|%a|%U|%G|%u|%g' -- \"$1\" || echo missing; }; "
    "d() { printf '%s|%s|\\n' \"$1\" \"$(s \"$2\")\"; }; "
    "f() { h=; if [ -f \"$2\" ] && [ ! -L \"$2\" ]; then h=$(sha256sum < \"$2\"); fi; "
    "printf '%s|%s|%s\\n' \"$1\" \"$(s \"$2\")\" \"${h%% *}\"; }; "
    "l() { printf '%s|%s|%s\\n' \"$1\" \"$(s \"$2\")\" \"$(readlink -- \"$2\")\"; }; "
)
_SHA256 = re.compile(r'^[0-9a-f]{64}$')
_OCTAL = re.compile(r'^[0-7]{1,4}$')


class ProbeError(Exception):
    """The probe's answer cannot be trusted: run the module."""


def digest(content):
    """sha256 (hex) of a file's wanted content, as the module writes it (text as UTF-8)."""
    if not isinstance(content, bytes):
        content = str(content).encode('utf-8', 'surrogateescape')
    return hashlib.sha256(content).hexdigest()


def probeable(path):
    """Whether the probe reads the path the module would: the module expands ~ and $VAR (type path), the probe not."""
    return isinstance(path, str) and path.startswith('/') and '$' not in path and '\n' not in path


def probe_command(items):
    """The shell script (for /bin/sh) that reads every item; items: [(kind, path)], kind directory, file or link."""
    calls = []
    for index, (kind, path) in enumerate(items):
        calls.append('%s %d %s' % (dict(directory='d', file='f', link='l')[kind], index, shlex.quote(path)))
    return _FUNCTIONS + 'echo %s; %s; echo %s' % (BEGIN, '; '.join(calls), END)


def _field_int(text, base, what, line):
    try:
        return int(text, base)
    except ValueError:
        raise ProbeError('%s %r is not a number in %r' % (what, text, line))


def parse_line(line):
    """One probe line -> (index, held); held is None for a missing path, else dict(kind, mode, owner, group, uid,
    gid, extra)."""
    index, sep, rest = line.partition('|')
    if not sep or not index.isdigit():
        raise ProbeError('unexpected line %r' % line)
    if rest.startswith('missing|'):
        return int(index), None
    fields = rest.split('|', 6)
    if len(fields) != 7:
        raise ProbeError('unexpected line %r' % line)
    kind, mode, owner, group, uid, gid, extra = fields
    if not _OCTAL.match(mode):
        raise ProbeError('mode %r is not octal in %r' % (mode, line))
    return int(index), dict(kind=KINDS.get(kind, 'other'), mode=int(mode, 8), owner=owner, group=group,
                            uid=_field_int(uid, 10, 'uid', line), gid=_field_int(gid, 10, 'gid', line), extra=extra)


def parse_probe(rc, stdout, count):
    """The probe's answer: a list of held states (None: missing), one per item, in order; ProbeError when unsure."""
    if rc != 0:
        raise ProbeError('the probe exited with %r' % (rc,))
    lines = [line.rstrip('\r') for line in (stdout or '').splitlines()]
    try:
        start = lines.index(BEGIN)
        stop = lines.index(END, start + 1)
    except ValueError:
        raise ProbeError('no complete answer in %r' % ((stdout or '')[-300:],))
    body = lines[start + 1:stop]
    if len(body) != count:
        raise ProbeError('%d lines for %d paths' % (len(body), count))
    held = []
    for expected, line in enumerate(body):
        index, state = parse_line(line)
        if index != expected:
            raise ProbeError('line %r out of order' % line)
        held.append(state)
    return held


def mode_of(mode):
    """'0644' or '644' -> 0o644; None stays None; ProbeError for anything else (the module refuses it)."""
    if mode is None:
        return None
    text = str(mode)
    if not _OCTAL.match(text):  # the module's rule (file_set.parse_mode): one to four octal digits
        raise ProbeError('mode %r is not an octal mode' % (mode,))
    return int(text, 8)


def _same_identity(wanted, name, number):
    """An owner or group given as a name or as a numeric id matches either the name or the id held."""
    wanted = str(wanted)
    if wanted.isdigit():
        return int(wanted) == number
    return wanted == name


def differences(item, held):
    """What differs between one wanted item and what the probe found, with the module's names for it.

    item: dict(kind=directory|file|link, mode, owner, group, sha256 (file), src (link)).
    [] means converged; 'type' means something of another kind is there (the module replaces a file by a link, or
    refuses, and says why).
    """
    if held is None:
        return ['created']
    kind = item['kind']
    if held['kind'] != kind:
        return ['type']
    if kind == 'link':
        return [] if held['extra'] == item['src'] else ['src']
    found = []
    if kind == 'file' and held['extra'] != item['sha256']:
        found.append('content')
    wanted_mode = mode_of(item.get('mode'))
    if wanted_mode is not None and wanted_mode != held['mode']:
        found.append('mode')
    if item.get('owner') is not None and not _same_identity(item['owner'], held['owner'], held['uid']):
        found.append('owner')
    if item.get('group') is not None and not _same_identity(item['group'], held['group'], held['gid']):
        found.append('group')
    return found


def pending(items, held):
    """{path: differences} for every item whose state differs (empty: all converged)."""
    found = {}
    for item, state in zip(items, held):
        changes = differences(item, state)
        if changes:
            found[item['path']] = changes
    return found


def wanted_items(directories, files, links):
    """Items to probe from the module's arguments (files carry content, rendered by the action); ProbeError when
    one cannot be judged by the probe (the module then validates and reports)."""
    items = []
    for entries, kind, key in ((directories, 'directory', 'path'), (files, 'file', 'dest'), (links, 'link', 'path')):
        for entry in entries or []:
            if not isinstance(entry, dict) or not probeable(entry.get(key)):
                raise ProbeError('%s entry %r is not an absolute path the probe can read' % (kind, entry))
            item = dict(kind=kind, path=entry[key])
            if kind == 'link':
                if not isinstance(entry.get('src'), str) or not entry['src'] or '\n' in entry['src']:
                    raise ProbeError('link %s has no usable src' % entry[key])
                item['src'] = entry['src']
            else:
                for field in ('mode', 'owner', 'group'):
                    item[field] = entry.get(field)
                mode_of(item['mode'])
                if kind == 'file':
                    if entry.get('content') is None:
                        raise ProbeError('file %s has no content' % entry[key])
                    item['sha256'] = digest(entry['content'])
            items.append(item)
    return items
