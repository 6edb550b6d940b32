# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of fediops.mastodon.files: which entries differ from what the host holds, and their diffs.

Kept apart from the module so it is tested without a host (tests/unit/plugins/module_utils/test_file_set.py).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat

# One spec for the module and its action plugin (plugins/action/files.py renders template and src into content).
FILE_OPTIONS = dict(
    dest=dict(type='path', required=True),
    content=dict(type='str'),
    template=dict(type='str'),
    # Read by the action plugin alone (variables for this file's template); the module never sees it.
    template_vars=dict(type='dict'),
    src=dict(type='str'),
    mode=dict(type='str'),
    owner=dict(type='str'),
    group=dict(type='str'),
    validate=dict(type='str'),
    sensitive=dict(type='bool', default=False),
)
DIRECTORY_OPTIONS = dict(
    path=dict(type='path', required=True),
    mode=dict(type='str'),
    owner=dict(type='str'),
    group=dict(type='str'),
)
# src is kept as given (type str, not path): a relative target stays relative to the link's directory.
LINK_OPTIONS = dict(
    path=dict(type='path', required=True),
    src=dict(type='str', required=True),
    force=dict(type='bool', default=True),
)


def files_argument_spec():
    return dict(
        files=dict(type='list', elements='dict', default=[], options=FILE_OPTIONS),
        directories=dict(type='list', elements='dict', default=[], options=DIRECTORY_OPTIONS),
        links=dict(type='list', elements='dict', default=[], options=LINK_OPTIONS),
    )


def parse_mode(mode):
    """'0644' or '644' -> 0o644; None stays None. Symbolic modes are refused (one meaning, read at a glance)."""
    if mode is None:
        return None
    text = str(mode)
    if not text.isdigit() or any(ch not in '01234567' for ch in text) or len(text) > 4:
        raise ValueError('mode %r is not an octal mode such as "0644"' % (mode,))
    return int(text, 8)


def uid_of(owner):
    if owner is None:
        return None
    return int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid


def gid_of(group):
    if group is None:
        return None
    return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid


def current(path):
    """What the host holds at path: None when nothing, else kind, mode, uid, gid and (for a file) the bytes."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    kind = 'directory' if stat.S_ISDIR(info.st_mode) else 'file' if stat.S_ISREG(info.st_mode) else 'other'
    held = dict(kind=kind, mode=stat.S_IMODE(info.st_mode), uid=info.st_uid, gid=info.st_gid, content=None)
    if kind == 'file':
        with open(path, 'rb') as handle:
            held['content'] = handle.read()
    return held


def current_link(path):
    """What the host holds where a link belongs: None when nothing, else kind (link, directory, file, other) and,
    for a link, its target as stored."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return dict(kind='link', target=os.readlink(path))
    kind = 'directory' if stat.S_ISDIR(info.st_mode) else 'file' if stat.S_ISREG(info.st_mode) else 'other'
    return dict(kind=kind, target=None)


def link_differences(src, held):
    """created (nothing there), src (a link to another target) or type (something else is there); [] when the same."""
    if held is None:
        return ['created']
    if held['kind'] != 'link':
        return ['type']
    return [] if held['target'] == src else ['src']


def link_diff_entry(path, src, held):
    """The diff of one link: its target before and after."""
    if held is None:
        before = ''
    elif held['kind'] == 'link':
        before = 'symlink to %s\n' % held['target']
    else:
        before = '(%s, replaced by the link)\n' % ('regular file' if held['kind'] == 'file' else held['kind'])
    return dict(before_header=path if held is not None else '%s (absent)' % path, after_header=path,
                before=before, after='symlink to %s\n' % src)


def differences(want, held, kind):
    """Names of what differs between the wanted entry and what is held: created, content, mode, owner, group.

    want: dict(content=bytes or None, mode=int or None, uid=int or None, gid=int or None).
    A held entry of another kind (a directory where a file belongs) is refused by the caller.
    """
    if held is None:
        return ['created']
    found = []
    if kind == 'file' and held['content'] != want['content']:
        found.append('content')
    if want.get('mode') is not None and held['mode'] != want['mode']:
        found.append('mode')
    if want.get('uid') is not None and held['uid'] != want['uid']:
        found.append('owner')
    if want.get('gid') is not None and held['gid'] != want['gid']:
        found.append('group')
    return found


def _text(data):
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        return None


def _attributes(mode, uid, gid):
    lines = []
    if mode is not None:
        lines.append('mode: %04o' % mode)
    if uid is not None:
        lines.append('owner: %d' % uid)
    if gid is not None:
        lines.append('group: %d' % gid)
    return ''.join(line + '\n' for line in lines)


def diff_entry(path, kind, want, held, changes, sensitive=False):
    """One entry of the result's diff list (the default callback prints each), or None when nothing differs."""
    if not changes:
        return None
    before = after = ''
    if kind == 'file':
        if sensitive:
            before = '' if held is None else '(content not shown: sensitive)\n'
            after = '(content not shown: sensitive)\n'
        elif 'content' in changes or 'created' in changes:
            before = '' if held is None else (_text(held['content']) if _text(held['content']) is not None else '(binary)\n')
            after = _text(want['content']) if _text(want['content']) is not None else '(binary)\n'
    if held is None:
        before_attrs = ''
    else:
        before_attrs = _attributes(held['mode'] if want.get('mode') is not None else None,
                                   held['uid'] if want.get('uid') is not None else None,
                                   held['gid'] if want.get('gid') is not None else None)
    after_attrs = _attributes(want.get('mode'), want.get('uid'), want.get('gid'))
    if before_attrs != after_attrs:
        before += before_attrs
        after += after_attrs
    label = path + ('/' if kind == 'directory' else '')
    return dict(before_header=label if held is not None else '%s (absent)' % label, after_header=label,
                before=before, after=after)
