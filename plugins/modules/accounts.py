#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: accounts
short_description: Local system groups and users of a role in one task, asking the host first
version_added: 0.2.0
description:
  - Makes sure local groups and users exist with the wanted attributes, as C(ansible.builtin.group) and
    C(ansible.builtin.user) with C(state=present) do, for several accounts in one task.
  - Its action plugin first reads the host with one short shell command (C(getent group), C(getent passwd),
    C(passwd -S) for the lock status and a test of the home directory) and compares on the controller. When every
    account is as wanted the task returns unchanged without running this module at all; otherwise, or when that
    answer is not clear, the module runs, reads again and acts with C(groupadd), C(useradd) and C(usermod).
  - Groups are handled first, in the order given, then users, so a user's group can be created by the same task.
  - Only creates and adjusts. Accounts are never removed, renumbered or taken out of a group; remove them with
    C(ansible.builtin.user) and C(ansible.builtin.group) with C(state=absent).
  - Password hashes are never read, set or returned; O(users[].password_locked) only locks or unlocks the password.
author:
  - fediops maintainers (@fediops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details: The action plugin reads the host and runs this module only when something differs.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: The probe only reads; the module then reports what it would run in RV(commands) and changes nothing.
  diff_mode:
    support: full
    details: Before and after of every group and user that changes (ids, home, shell, comment, groups, lock status).
  platform:
    platforms: debian
options:
  groups:
    description: Groups that must exist, created in the order given before any user.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The group name.
        type: str
        required: true
      system:
        description:
          - Create it as a system group (C(groupadd --system), a gid from the system range).
          - Only used when the group is created; an existing group is left as it is.
        type: bool
        default: false
      gid:
        description:
          - The gid to create the group with.
          - When the group exists with another gid the task fails; it never renumbers a group, as files owned by the
            old gid would be left to nobody.
        type: int
  users:
    description: Users that must exist, created or adjusted in the order given, after the groups.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The user name.
        type: str
        required: true
      system:
        description:
          - Create it as a system user (C(useradd --system), a uid from the system range and no password ageing).
          - Only used when the user is created.
        type: bool
        default: false
      uid:
        description:
          - The uid to create the user with.
          - When the user exists with another uid the task fails; it never renumbers a user.
        type: int
      group:
        description:
          - The primary group, a name or a gid. It must exist or be listed under O(groups).
          - An existing user with another primary group is moved to this one (C(usermod --gid)).
          - When omitted at creation and a group of the user's name exists, the user gets the default group
            (C(useradd --no-user-group)), as C(ansible.builtin.user) does; otherwise useradd makes a group of the
            user's name as the host's C(/etc/login.defs) says. An existing user keeps its primary group.
        type: str
      groups:
        description:
          - Supplementary groups (names or gids) the user must be in. They must exist or be listed under O(groups).
          - Added to the ones the user has (as C(ansible.builtin.user) with C(append=true)); the user is never taken
            out of a group. A group that is the user's primary group counts as held.
          - A comma-separated string is accepted as well as a list.
        type: list
        elements: str
        default: []
      home:
        description:
          - The home directory. An existing user with another one gets this one (C(usermod --home)); nothing is
            moved.
          - When omitted, useradd picks one for a new user and an existing user keeps its own.
        type: path
      create_home:
        description:
          - Create the home directory (from C(/etc/skel)) when the user is created, and, as C(ansible.builtin.user)
            does, whenever it is missing later (mode from C(HOME_MODE) or C(UMASK) of C(/etc/login.defs), owned by
            the user).
          - When false a new user is made with C(useradd --no-create-home) and a missing home is left missing.
        type: bool
        default: true
      shell:
        description: The login shell; an existing user with another one gets this one.
        type: str
      comment:
        description: The comment (GECOS) field; an existing user with another one gets this one.
        type: str
      password_locked:
        description:
          - When true, the password must be locked, that is C(passwd -S) says C(L) (the password field starts with
            C(!) or C(*)). An unlocked one is locked with C(usermod --lock), which keeps any hash behind the C(!).
          - When false, a locked password is unlocked with C(usermod --unlock); the task fails when that leaves it
            locked or empty (there is no hash to unlock).
          - When omitted the password is left as it is. A new user's password is locked by useradd.
        type: bool
notes:
  - The probe and the module read accounts through NSS (C(getent), C(pwd), C(grp)) and change them with the
    shadow tools, so accounts served by LDAP or similar can be seen but not changed.
  - Membership is read from the group database's member lists, as C(ansible.builtin.user) reads it.
seealso:
  - module: ansible.builtin.user
  - module: ansible.builtin.group
"""

EXAMPLES = r"""
- name: The mastodon group and system user
  fediops.mastodon.accounts:
    groups:
      - {name: mastodon, system: true}
    users:
      - name: mastodon
        group: mastodon
        system: true
        home: /opt/mastodon
        create_home: false
        shell: /usr/sbin/nologin
        password_locked: true

- name: A service user that may read the journal
  fediops.mastodon.accounts:
    users:
      - {name: systemd-journal-upload, system: true, groups: [systemd-journal], home: /nonexistent, create_home: false,
         shell: /usr/sbin/nologin}
"""

RETURN = r"""
commands:
  description: The account commands run (in check mode, those that would run), as program and arguments.
  returned: always
  type: list
  elements: str
  sample: ["groupadd --system mastodon", "useradd --system --gid mastodon --home-dir /opt/mastodon --shell
    /usr/sbin/nologin --no-create-home mastodon"]
groups:
  description: For every group given, its gid and what changed (C(created)); empty changes when none.
  returned: always
  type: dict
  sample: {mastodon: {gid: 996, changes: [created]}}
users:
  description:
    - For every user given, its passwd fields (never the password) and what changed, out of C(created), C(group),
      C(groups), C(comment), C(home), C(shell), C(password_locked) and C(home_directory) (a missing home made).
    - C(password_locked) is there only when the task asked about it.
    - In check mode, the fields are those found before.
  returned: always
  type: dict
  sample: {mastodon: {uid: 996, gid: 996, home: /opt/mastodon, shell: /usr/sbin/nologin, comment: "",
                      password_locked: true, changes: [created]}}
"""

import copy
import grp
import os
import pwd
import shlex
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.fediops.mastodon.plugins.module_utils.accounts import (
    ARGUMENT_SPEC, check_arguments, group_differences, group_keys, groupadd_command, home_mode, missing_groups,
    parse_lock_status, reports, user_differences, useradd_command, usermod_command,
)

LOGIN_DEFS = '/etc/login.defs'
SKELETON = '/etc/skel'


def read_group(key):
    try:
        entry = grp.getgrgid(int(key)) if key.isdigit() else grp.getgrnam(key)
    except KeyError:
        return None
    return dict(name=entry.gr_name, gid=entry.gr_gid, members=list(entry.gr_mem))


def read_user(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return dict(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, comment=entry.pw_gecos, home=entry.pw_dir,
                shell=entry.pw_shell)


def describe_user(name, held, lock, groups_held, wanted_groups):
    """The user as the diff shows it; None when absent."""
    if held is None:
        return None
    shown = dict((key, held[key]) for key in ('uid', 'gid', 'home', 'shell', 'comment'))
    shown['groups'] = [key for key in wanted_groups if groups_held.get(key) is not None
                       and name in groups_held[key]['members']]
    if lock is not None:
        shown['password_locked'] = lock == 'L'
    return shown


class Accounts:

    def __init__(self, module):
        self.module = module
        self.check_mode = module.check_mode
        self.commands = []
        self.changed = False

    def fail(self, msg):
        self.module.fail_json(msg=msg, commands=self.commands, changed=self.changed and not self.check_mode)

    def run(self, program, argv):
        """Run one account command (only record it in check mode)."""
        self.commands.append(' '.join(shlex.quote(arg) for arg in [program] + argv))
        self.changed = True
        if self.check_mode:
            return
        path = self.module.get_bin_path(program, required=True)
        rc, out, err = self.module.run_command([path] + argv, environ_update=dict(LC_ALL='C'))
        if rc != 0:
            self.fail('%s failed (exit %d): %s' % (self.commands[-1], rc, (err or out).strip()))

    def lock_status(self, name):
        path = self.module.get_bin_path('passwd', required=True)
        rc, out, err = self.module.run_command([path, '-S', name], environ_update=dict(LC_ALL='C'))
        status = parse_lock_status(name, out) if rc == 0 else None
        if status is None:
            self.fail('cannot read the password status of %s with passwd -S (exit %d): %s'
                      % (name, rc, (err or out).strip()))
        return status

    def home_path(self, user, held):
        return user.get('home') or (held or {}).get('home')

    def read_state(self, users, keys):
        state = dict(groups=dict((key, read_group(key)) for key in keys), users={}, locks={}, homes={})
        for user in users:
            name = user['name']
            held = state['users'][name] = read_user(name)
            if held is not None and user.get('password_locked') is not None:
                state['locks'][name] = self.lock_status(name)
            if user.get('create_home'):
                home = self.home_path(user, held)
                state['homes'][name] = bool(home) and os.path.exists(home)
        return state

    def make_home(self, path, uid, gid):
        """A missing home of an existing user, as useradd --create-home would have made it."""
        try:
            if os.path.isdir(SKELETON):
                shutil.copytree(SKELETON, path, symlinks=True)
            else:
                os.makedirs(path)
            login_defs = ''
            if os.path.exists(LOGIN_DEFS):
                with open(LOGIN_DEFS, encoding='utf-8', errors='replace') as stream:
                    login_defs = stream.read()
            os.chmod(path, home_mode(login_defs))
            os.lchown(path, uid, gid)
            for top, directories, files in os.walk(path):
                for entry in directories + files:
                    os.lchown(os.path.join(top, entry), uid, gid)
        except (IOError, OSError) as exc:
            self.fail('cannot make the home directory %s: %s' % (path, to_native(exc)))

    def set_lock(self, name, wanted):
        self.run('usermod', ['--lock' if wanted else '--unlock', name])
        if not self.check_mode and (self.lock_status(name) == 'L') != wanted:
            self.fail('usermod --unlock left the password of %s locked: its password field holds no hash behind the '
                      'lock (such as "!" or "*" alone); set a password first' % name)

    def ensure_groups(self, groups, state, diff):
        changes = {}
        for group in groups:
            name = group['name']
            held = state['groups'].get(name)
            changes[name] = group_differences(group, held)
            if 'gid' in changes[name]:
                self.fail('group %s exists with gid %d, not %d; it is never renumbered (files owned by gid %d would '
                          'be left to nobody): change it by hand or drop gid'
                          % (name, held['gid'], group['gid'], held['gid']))
            if 'created' in changes[name]:
                self.run('groupadd', groupadd_command(group))
                if self.check_mode:
                    state['groups'][name] = dict(name=name, gid=group.get('gid'), members=[])
                else:
                    state['groups'][name] = read_group(name)
                    if state['groups'][name] is None:
                        self.fail('groupadd did not make group %s' % name)
                diff['before']['groups'][name] = None
                diff['after']['groups'][name] = dict(gid=state['groups'][name]['gid'])
        # A gid given for a primary or supplementary group may name a group just made.
        if not self.check_mode and any(changes.values()):
            for key in state['groups']:
                if key.isdigit():
                    state['groups'][key] = read_group(key)
        return changes

    def ensure_user(self, user, state, diff):
        name = user['name']
        held = state['users'].get(name)
        for key in ([user['group']] if user.get('group') else []) + user['groups']:
            if state['groups'].get(key) is None:
                self.fail('user %s: group %s does not exist (list it under groups to create it)' % (name, key))
        lock = state['locks'].get(name)
        changes = user_differences(user, held, state['groups'], lock, state['homes'].get(name, False))
        if not changes:
            return changes
        if 'uid' in changes:
            self.fail('user %s exists with uid %d, not %d; it is never renumbered (files owned by uid %d would be '
                      'left to nobody): change it by hand or drop uid' % (name, held['uid'], user['uid'], held['uid']))
        before = describe_user(name, held, lock, state['groups'], user['groups'])
        if 'created' in changes:
            self.create_user(user, state, changes)
        else:
            argv = usermod_command(user, changes, missing_groups(user, held, state['groups']))
            if argv:
                self.run('usermod', argv)
            if 'password_locked' in changes:
                self.set_lock(name, user['password_locked'])
            if 'home_directory' in changes:
                home = self.home_path(user, held)
                self.changed = True
                if not self.check_mode:
                    after = read_user(name)
                    self.make_home(home, after['uid'], after['gid'])
        diff['before']['users'][name] = before
        diff['after']['users'][name] = self.predicted(user, held, state) if self.check_mode else describe_user(
            name, read_user(name), self.lock_status(name) if user.get('password_locked') is not None else None,
            dict((key, read_group(key)) for key in user['groups']), user['groups'])
        return changes

    def create_user(self, user, state, changes):
        name = user['name']
        same_name = None
        if not user.get('group'):
            same_name = state['groups'][name] if name in state['groups'] else read_group(name)
        home = user.get('home')
        if user.get('create_home') and home and not self.check_mode:
            # useradd makes the home but not its parents.
            parent = os.path.dirname(home.rstrip('/'))
            if parent and not os.path.isdir(parent):
                try:
                    os.makedirs(parent, 0o755)
                except OSError as exc:
                    self.fail('cannot make %s, the parent of the home of %s: %s' % (parent, name, to_native(exc)))
        self.run('useradd', useradd_command(user, user['groups'], same_name is not None))
        if not self.check_mode and read_user(name) is None:
            self.fail('useradd did not make user %s' % name)
        wanted = user.get('password_locked')
        if wanted is not None:
            # useradd locks a new password ("!"); check mode counts on that.
            status = 'L' if self.check_mode else self.lock_status(name)
            if (status == 'L') != wanted:
                self.set_lock(name, wanted)
                changes.append('password_locked')

    def predicted(self, user, held, state):
        """The user as check mode expects it after the task."""
        shown = dict(uid=None, gid=None, home=None, shell=None, comment=None) if held is None else dict(
            (key, held[key]) for key in ('uid', 'gid', 'home', 'shell', 'comment'))
        for key in ('uid', 'home', 'shell', 'comment'):
            if user.get(key) is not None:
                shown[key] = user[key]
        if user.get('group'):
            shown['gid'] = state['groups'][user['group']]['gid']
        shown['groups'] = list(user['groups'])
        if user.get('password_locked') is not None:
            shown['password_locked'] = user['password_locked']
        return shown

    def apply(self, groups, users, keys):
        state = self.read_state(users, keys)
        diff = dict(before=dict(groups={}, users={}), after=dict(groups={}, users={}))
        group_changes = self.ensure_groups(groups, state, diff)
        user_changes = {}
        for user in users:
            user_changes[user['name']] = self.ensure_user(user, state, diff)
        if not self.check_mode and self.changed:
            state = self.read_state(users, keys)
        groups_report, users_report = reports(groups, users, state, group_changes, user_changes)
        result = dict(changed=self.changed, commands=self.commands, groups=groups_report, users=users_report)
        if self.module._diff and self.changed:
            result['diff'] = diff
        return result


def main():
    module = AnsibleModule(argument_spec=copy.deepcopy(ARGUMENT_SPEC), supports_check_mode=True)
    groups = module.params['groups']
    users = module.params['users']
    problems = check_arguments(groups, users)
    if problems:
        module.fail_json(msg='; '.join(problems))
    module.exit_json(**Accounts(module).apply(groups, users, group_keys(groups, users)))


if __name__ == '__main__':
    main()
