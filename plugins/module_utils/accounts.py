# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of fediops.mastodon.accounts: argument checks, the probe and the comparison of wanted and held accounts.

The action (plugins/action/accounts.py) runs probe_command() on the host, reads its answer with parse_probe() and
asks differences() what differs. Only when something does, or when the answer cannot be trusted, does it run the
module (plugins/modules/accounts.py), which reads the same facts with pwd/grp/passwd -S, compares them with the same
differences() and acts. So this side must never call an account converged when it is not: anything unexpected is a
difference or a ProbeError, and both mean "run the module".

What is read: getent group and getent passwd entries (no password field: both show "x"), ``passwd -S`` for the
lock status (a letter, never the hash) and whether a home directory exists. Password hashes are never read.

No ansible imports: tested without a host (tests/unit/plugins/module_utils/test_accounts.py).
"""

from __future__ import annotations

import copy
import re
import shlex

BEGIN = 'FEDIOPS-ACCOUNTS-PROBE-BEGIN'
END = 'FEDIOPS-ACCOUNTS-PROBE-END'

ARGUMENT_SPEC = dict(
    groups=dict(type='list', elements='dict', default=[], options=dict(
        name=dict(type='str', required=True),
        system=dict(type='bool', default=False),
        gid=dict(type='int'),
    )),
    users=dict(type='list', elements='dict', default=[], options=dict(
        name=dict(type='str', required=True),
        system=dict(type='bool', default=False),
        uid=dict(type='int'),
        group=dict(type='str'),
        groups=dict(type='list', elements='str', default=[]),
        home=dict(type='path'),
        create_home=dict(type='bool', default=True),
        shell=dict(type='str'),
        comment=dict(type='str'),
        password_locked=dict(type='bool'),
    )),
)

# What differences() may name, in the order the module acts on them.
GROUP_CHANGES = ('created', 'gid')
USER_CHANGES = ('created', 'uid', 'group', 'groups', 'comment', 'home', 'shell', 'password_locked', 'home_directory')

# Account names useradd/groupadd take without --badname, a little wider (upper case, dots); a trailing $ is for
# machine accounts. All digits is refused: such a name would read as an id.
_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_.-]*\$?$')
_GROUP_REF = re.compile(r'^([A-Za-z_][A-Za-z0-9_.-]*\$?|[0-9]+)$')
_LOCK_STATES = ('L', 'NP', 'P')


class ProbeError(Exception):
    """The probe's answer cannot be trusted: run the module."""


def action_argument_spec():
    """The spec for the controller side: home stays a string there (type path would expand ~ on the controller, and
    the module, not the action, expands it on the host)."""
    spec = copy.deepcopy(ARGUMENT_SPEC)
    spec['users']['options']['home']['type'] = 'str'
    return spec


def _field_problem(what, value):
    if value is not None and (':' in value or '\n' in value or '\r' in value):
        return '%s %r must not contain ":" or a line break' % (what, value)
    return None


def check_arguments(groups, users):
    """Problems with validated arguments (lists of dicts as ARGUMENT_SPEC makes them), as messages; [] when fine.

    Normalises users[].groups in place: whitespace stripped, each group once.
    """
    problems = []
    seen = set()
    for group in groups:
        name = group['name']
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > 32:
            problems.append('groups: %r is not a usable group name' % (name,))
        elif name in seen:
            problems.append('groups: %s is listed twice' % name)
        seen.add(name)
        if group.get('gid') is not None and group['gid'] < 0:
            problems.append('groups: %s: gid must not be negative' % name)
    seen = set()
    for user in users:
        name = user['name']
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > 32:
            problems.append('users: %r is not a usable user name' % (name,))
            continue
        if name in seen:
            problems.append('users: %s is listed twice' % name)
        seen.add(name)
        if user.get('uid') is not None and user['uid'] < 0:
            problems.append('users: %s: uid must not be negative' % name)
        if user.get('group') is not None and not _GROUP_REF.match(user['group']):
            problems.append('users: %s: group %r is neither a group name nor a gid' % (name, user['group']))
        wanted = []
        for entry in user.get('groups') or []:
            entry = (entry or '').strip()
            if not _GROUP_REF.match(entry):
                problems.append('users: %s: groups: %r is neither a group name nor a gid' % (name, entry))
            elif entry not in wanted:
                wanted.append(entry)
        user['groups'] = wanted
        home = user.get('home')
        if home is not None and not home.strip():
            problems.append('users: %s: home must not be empty' % name)
        for field in ('home', 'shell', 'comment'):
            problem = _field_problem('users: %s: %s' % (name, field), user.get(field))
            if problem:
                problems.append(problem)
    return problems


def probeable(users):
    """Whether the probe reads the homes the module would: the module expands ~ and $VAR (type path), the probe not."""
    return all(user.get('home') is None or (user['home'].startswith('/') and '$' not in user['home'])
               for user in users)


def group_keys(groups, users):
    """Every group the accounts name (created, primary, supplementary), first order, each once."""
    keys = []
    for key in [group['name'] for group in groups] + [
            key for user in users for key in ([user['group']] if user.get('group') else []) + list(user['groups'])]:
        if key not in keys:
            keys.append(key)
    return keys


# One record per question: "@@<tag>", what the command printed, "=<its exit status>". getent exits 2 for a key it
# does not know; passwd -S prints "<name> <L|NP|P> ..." (L: the password field starts with ! or *, so locked).
# stderr is silenced at once: with a tty it would be mixed into stdout.
_FUNCTIONS = (
    "exec 2>/dev/null; LC_ALL=C; export LC_ALL; "
    "q() { echo \"@@$1\"; getent \"$2\" \"$3\"; echo \"=$?\"; }; "
    "s() { echo \"@@$1\"; passwd -S \"$2\"; echo \"=$?\"; }; "
    "h() { echo \"@@$1\"; d=$3; [ -n \"$d\" ] || d=$(getent passwd \"$2\" | cut -d: -f6); "
    "if [ -n \"$d\" ] && [ -e \"$d\" ]; then echo yes; else echo no; fi; echo =0; }; "
)


def probe_command(groups, users):
    """The shell script (for /bin/sh) that reads every group and user named; arguments must have passed
    check_arguments() and probeable()."""
    calls = []
    for index, key in enumerate(group_keys(groups, users)):
        calls.append('q g%d group %s' % (index, shlex.quote(key)))
    for index, user in enumerate(users):
        calls.append('q u%d passwd %s' % (index, shlex.quote(user['name'])))
        if user.get('password_locked') is not None:
            calls.append('s p%d %s' % (index, shlex.quote(user['name'])))
        if user.get('create_home'):
            calls.append('h h%d %s %s' % (index, shlex.quote(user['name']), shlex.quote(user.get('home') or '')))
    return _FUNCTIONS + 'echo %s; %s; echo %s' % (BEGIN, '; '.join(calls), END)


def split_records(stdout):
    """{tag: (rc, [lines])} from the probe's output between the markers; ProbeError when incomplete or garbled."""
    lines = [line.rstrip('\r') for line in (stdout or '').splitlines()]
    try:
        start = lines.index(BEGIN)
        stop = lines.index(END, start + 1)
    except ValueError:
        raise ProbeError('no complete answer in %r' % ((stdout or '')[-300:],)) from None
    records = {}
    tag = None
    body = []
    for line in lines[start + 1:stop]:
        if tag is None:
            if not line.startswith('@@') or len(line) < 3:
                raise ProbeError('unexpected line %r' % line)
            tag = line[2:]
            body = []
        elif line.startswith('=') and line[1:].isdigit():
            if tag in records:
                raise ProbeError('%s answered twice' % tag)
            records[tag] = (int(line[1:]), body)
            tag = None
        elif line.startswith('@@'):
            raise ProbeError('the answer for %s is cut short by %r' % (tag, line))
        else:
            body.append(line)
    if tag is not None:
        raise ProbeError('the answer for %s is cut short' % tag)
    return records


def _number(text, what, line):
    if not text.isdigit():
        raise ProbeError('%s %r is not a number in %r' % (what, text, line))
    return int(text)


def parse_group(key, rc, body):
    """A getent group answer -> dict(name, gid, members) or None (no such group); ProbeError when unclear."""
    if rc == 2 and not body:
        return None
    if rc != 0 or len(body) != 1:
        raise ProbeError('getent group %s: exit %d, %d lines' % (key, rc, len(body)))
    fields = body[0].split(':')
    if len(fields) != 4:
        raise ProbeError('unexpected group entry %r' % body[0])
    name, gid, members = fields[0], _number(fields[2], 'gid', body[0]), fields[3]
    if (gid != int(key)) if key.isdigit() else (name != key):
        raise ProbeError('getent group %s answered for %r' % (key, body[0]))
    return dict(name=name, gid=gid, members=[member for member in members.split(',') if member])


def parse_user(name, rc, body):
    """A getent passwd answer -> dict(name, uid, gid, comment, home, shell) or None (no such user)."""
    if rc == 2 and not body:
        return None
    if rc != 0 or len(body) != 1:
        raise ProbeError('getent passwd %s: exit %d, %d lines' % (name, rc, len(body)))
    fields = body[0].split(':')
    if len(fields) != 7 or fields[0] != name:
        raise ProbeError('unexpected passwd entry %r' % body[0])
    return dict(name=name, uid=_number(fields[2], 'uid', body[0]), gid=_number(fields[3], 'gid', body[0]),
                comment=fields[4], home=fields[5], shell=fields[6])


def parse_lock_status(name, text):
    """``passwd -S`` output -> 'L', 'NP' or 'P'; None when it is not the expected one line about name."""
    lines = [line for line in (text or '').splitlines() if line.strip()]
    if len(lines) != 1:
        return None
    fields = lines[0].split()
    if len(fields) < 2 or fields[0] != name or fields[1] not in _LOCK_STATES:
        return None
    return fields[1]


def parse_probe(rc, stdout, groups, users):
    """The probe's answer as a state (see differences()); ProbeError when it cannot be trusted.

    A missing passwd -S answer is kept as None (unknown), which differences() counts as a difference.
    """
    if rc != 0:
        raise ProbeError('the probe exited with %r' % (rc,))
    records = split_records(stdout)
    state = dict(groups={}, users={}, locks={}, homes={})
    expected = set()
    for index, key in enumerate(group_keys(groups, users)):
        tag = 'g%d' % index
        expected.add(tag)
        if tag not in records:
            raise ProbeError('no answer for group %s' % key)
        state['groups'][key] = parse_group(key, *records[tag])
    for index, user in enumerate(users):
        name = user['name']
        tags = ['u%d' % index]
        if user.get('password_locked') is not None:
            tags.append('p%d' % index)
        if user.get('create_home'):
            tags.append('h%d' % index)
        for tag in tags:
            expected.add(tag)
            if tag not in records:
                raise ProbeError('no answer for user %s (%s)' % (name, tag))
        state['users'][name] = parse_user(name, *records[tags[0]])
        if user.get('password_locked') is not None:
            lock_rc, lock_body = records['p%d' % index]
            state['locks'][name] = parse_lock_status(name, '\n'.join(lock_body)) if lock_rc == 0 else None
        if user.get('create_home'):
            home_rc, home_body = records['h%d' % index]
            if home_rc != 0 or home_body not in (['yes'], ['no']):
                raise ProbeError('unexpected home answer %r for %s' % (home_body, name))
            state['homes'][name] = home_body == ['yes']
    extra = set(records) - expected
    if extra:
        raise ProbeError('unexpected answers %s' % ', '.join(sorted(extra)))
    return state


def group_differences(group, held):
    """What differs for one wanted group: ['created'] when missing, ['gid'] when it has another gid (the module
    refuses that), else []."""
    if held is None:
        return ['created']
    if group.get('gid') is not None and held['gid'] != group['gid']:
        return ['gid']
    return []


def is_member(name, primary_gid, held_group):
    """Whether the user is in the group: listed as a member, or the group is the user's primary group."""
    if held_group is None:
        return False
    # A gid of None is a group check mode only plans to create: nobody is in it yet.
    return name in held_group['members'] or (held_group['gid'] is not None and held_group['gid'] == primary_gid)


def wanted_primary_gid(user, held, groups_held):
    """The primary gid the user has once the task is done (None when not known yet)."""
    if user.get('group'):
        target = groups_held.get(user['group'])
        return None if target is None else target['gid']
    return None if held is None else held['gid']


def missing_groups(user, held, groups_held):
    """The wanted supplementary groups the user is not in yet, in the order given."""
    primary = wanted_primary_gid(user, held, groups_held)
    return [key for key in user['groups'] if not is_member(user['name'], primary, groups_held.get(key))]


def user_differences(user, held, groups_held, lock=None, home_exists=True):
    """What differs for one wanted user, in USER_CHANGES order. held: the passwd entry (None: missing); groups_held:
    {group key: entry or None}; lock: passwd -S status (None: unknown); home_exists: whether the home directory
    (the wanted one, else the held one) exists."""
    if held is None:
        return ['created']
    found = []
    if user.get('uid') is not None and held['uid'] != user['uid']:
        found.append('uid')
    if user.get('group'):
        target = groups_held.get(user['group'])
        if target is None or target['gid'] != held['gid']:
            found.append('group')
    if missing_groups(user, held, groups_held):
        found.append('groups')
    for field in ('comment', 'home', 'shell'):
        if user.get(field) is not None and held[field] != user[field]:
            found.append(field)
    wanted_lock = user.get('password_locked')
    if wanted_lock is not None and (lock is None or (lock == 'L') != wanted_lock):
        found.append('password_locked')
    if user.get('create_home') and not home_exists:
        found.append('home_directory')
    return found


def differences(groups, users, state):
    """({group: changes}, {user: changes}) for every wanted group and user, in the order given; all lists empty
    means converged. state: dict(groups={key: entry|None}, users={name: entry|None}, locks={name: status|None},
    homes={name: bool}) as parse_probe() returns it."""
    group_changes = {}
    for group in groups:
        group_changes[group['name']] = group_differences(group, state['groups'].get(group['name']))
    user_changes = {}
    for user in users:
        name = user['name']
        user_changes[name] = user_differences(user, state['users'].get(name), state['groups'],
                                              state['locks'].get(name), state['homes'].get(name, False))
    return group_changes, user_changes


def converged(group_changes, user_changes):
    return not any(group_changes.values()) and not any(user_changes.values())


def group_report(held, changes):
    """What the task returns for a group (the same whether the module ran or not)."""
    return dict(gid=None if held is None else held['gid'], changes=list(changes))


def user_report(user, held, lock, changes):
    """What the task returns for a user: its passwd fields (no password), and the lock status when asked about."""
    report = dict(uid=None, gid=None, home=None, shell=None, comment=None, changes=list(changes))
    if held is not None:
        report.update((key, held[key]) for key in ('uid', 'gid', 'home', 'shell', 'comment'))
    if user.get('password_locked') is not None:
        report['password_locked'] = None if lock is None else lock == 'L'
    return report


def reports(groups, users, state, group_changes, user_changes):
    """The groups and users return values from a state."""
    return (dict((group['name'], group_report(state['groups'].get(group['name']), group_changes[group['name']]))
                 for group in groups),
            dict((user['name'], user_report(user, state['users'].get(user['name']), state['locks'].get(user['name']),
                                            user_changes[user['name']]))
                 for user in users))


def groupadd_command(group):
    """argv (without the program) creating a group."""
    argv = []
    if group.get('system'):
        argv.append('--system')
    if group.get('gid') is not None:
        argv += ['--gid', str(group['gid'])]
    return argv + [group['name']]


def useradd_command(user, supplementary, same_name_group_exists):
    """argv (without the program) creating a user, as ansible.builtin.user would: without a group given and with a
    group of the user's name already there, --no-user-group (useradd would otherwise refuse to make that group)."""
    argv = []
    if user.get('system'):
        argv.append('--system')
    if user.get('uid') is not None:
        argv += ['--uid', str(user['uid'])]
    if user.get('group'):
        argv += ['--gid', user['group']]
    elif same_name_group_exists:
        argv.append('--no-user-group')
    if supplementary:
        argv += ['--groups', ','.join(supplementary)]
    if user.get('comment') is not None:
        argv += ['--comment', user['comment']]
    if user.get('home') is not None:
        argv += ['--home-dir', user['home']]
    if user.get('shell') is not None:
        argv += ['--shell', user['shell']]
    argv.append('--create-home' if user.get('create_home') else '--no-create-home')
    return argv + [user['name']]


def usermod_command(user, changes, missing):
    """argv (without the program) bringing an existing user's passwd fields and supplementary groups to the wanted
    ones; None when none of those differ (the uid never changes: the module refuses that first)."""
    argv = []
    if 'group' in changes:
        argv += ['--gid', user['group']]
    if 'groups' in changes and missing:
        argv += ['--append', '--groups', ','.join(missing)]
    if 'comment' in changes:
        argv += ['--comment', user['comment']]
    if 'home' in changes:
        argv += ['--home', user['home']]
    if 'shell' in changes:
        argv += ['--shell', user['shell']]
    return argv + [user['name']] if argv else None


def home_mode(login_defs_text):
    """The mode of a home directory made for an existing user, as useradd would make it: HOME_MODE from
    /etc/login.defs, else 0777 less UMASK, else 0755."""
    mode = 0o755
    for line in (login_defs_text or '').splitlines():
        fields = line.split()
        if len(fields) != 2 or not re.match(r'^[0-7]{1,4}$', fields[1]):
            continue
        if fields[0] == 'HOME_MODE':
            return int(fields[1], 8)
        if fields[0] == 'UMASK':
            mode = 0o777 & ~int(fields[1], 8)
    return mode
