# -*- coding: utf-8 -*-
"""A small stand-in for a host's account database, for the tests of fediops.mastodon.accounts (module and action).

It answers ``getent group|passwd KEY`` and ``passwd -S NAME`` as little programs on a PATH of its own (so the
action's probe runs in a real /bin/sh), and applies ``groupadd``, ``useradd`` and ``usermod`` as the module runs
them through run_command, refusing what the shadow tools refuse (an existing name, an unknown group, unlocking a
password field that is only "!"). The module's pwd/grp reads are answered from the same database.

Lock states are kept as the first characters of the password field only ("!", "*", "" or "$6$"): the point is
that nobody reads a hash.
"""

from __future__ import annotations

import json
import os
import stat
import sys

GETENT = r'''
import json, sys
db = json.load(open(%(db)r))
if len(sys.argv) != 3 or sys.argv[1] not in ('group', 'passwd'):
    sys.exit(1)
kind, key = sys.argv[1], sys.argv[2]
for name, entry in sorted(db['groups' if kind == 'group' else 'users'].items()):
    if kind == 'group' and (key == name or key == str(entry['gid'])):
        print('%%s:x:%%d:%%s' %% (name, entry['gid'], ','.join(entry['members'])))
        sys.exit(0)
    if kind == 'passwd' and (key == name or key == str(entry['uid'])):
        print('%%s:x:%%d:%%d:%%s:%%s:%%s' %% (name, entry['uid'], entry['gid'], entry['comment'], entry['home'],
                                     entry['shell']))
        sys.exit(0)
sys.exit(2)
'''

PASSWD = r'''
import json, sys
db = json.load(open(%(db)r))
if len(sys.argv) != 3 or sys.argv[1] != '-S':
    sys.exit(2)
user = db['users'].get(sys.argv[2])
if user is None:
    sys.stderr.write("passwd: user '%%s' does not exist\n" %% sys.argv[2])
    sys.exit(1)
field = user['password']
status = 'L' if field[:1] in ('!', '*') else ('NP' if not field else 'P')
print('%%s %%s 2025-05-20 0 99999 7 -1' %% (sys.argv[2], status))
'''


class FakeAccounts:

    def __init__(self, directory):
        self.directory = str(directory)
        self.db = os.path.join(self.directory, 'accounts.json')
        self.bin = os.path.join(self.directory, 'bin')
        os.makedirs(self.bin, exist_ok=True)
        self.groups = {}
        self.users = {}
        self.calls = []
        self.fail_commands = {}
        for program, source in (('getent', GETENT), ('passwd', PASSWD)):
            path = os.path.join(self.bin, program)
            with open(path, 'w', encoding='utf-8') as stream:
                stream.write('#!%s\n%s' % (sys.executable, source % dict(db=self.db)))
            os.chmod(path, stat.S_IRWXU)
        self.save()

    def save(self):
        with open(self.db, 'w', encoding='utf-8') as stream:
            json.dump(dict(groups=self.groups, users=self.users), stream)

    def add_group(self, name, gid, members=()):
        self.groups[name] = dict(gid=gid, members=list(members))
        self.save()
        return self

    def add_user(self, name, uid, gid, home='/nonexistent', shell='/usr/sbin/nologin', comment='', password='!'):
        self.users[name] = dict(uid=uid, gid=gid, home=home, shell=shell, comment=comment, password=password)
        self.save()
        return self

    # The module's reads (pwd, grp).

    def group_entry(self, key):
        for name, entry in self.groups.items():
            if key == name or (key.isdigit() and int(key) == entry['gid']):
                return dict(name=name, gid=entry['gid'], members=list(entry['members']))
        return None

    def user_entry(self, name):
        entry = self.users.get(name)
        if entry is None:
            return None
        return dict(name=name, uid=entry['uid'], gid=entry['gid'], comment=entry['comment'], home=entry['home'],
                    shell=entry['shell'])

    # The probe, as the connection runs it.

    def env(self):
        return dict(os.environ, PATH='%s:%s' % (self.bin, os.environ.get('PATH', '/usr/bin:/bin')))

    # The shadow tools, as the module runs them through run_command.

    def _gid_of(self, key):
        entry = self.group_entry(key)
        return None if entry is None else entry['gid']

    def _next_id(self, used, system):
        number = 100 if system else 1000
        while number in used:
            number += 1
        return number

    def run_command(self, argv, environ_update=None, **kwargs):  # pylint: disable=unused-argument
        program = os.path.basename(argv[0])
        args = list(argv[1:])
        self.calls.append([program] + args)
        if program in self.fail_commands:
            return self.fail_commands[program]
        if program == 'passwd':
            user = self.users.get(args[1])
            if user is None:
                return 1, '', "passwd: user '%s' does not exist\n" % args[1]
            field = user['password']
            status = 'L' if field[:1] in ('!', '*') else ('NP' if not field else 'P')
            return 0, '%s %s 2025-05-20 0 99999 7 -1\n' % (args[1], status), ''
        name = args.pop()
        options = {}
        flags = set()
        while args:
            option = args.pop(0)
            if option in ('--system', '--create-home', '--no-create-home', '--no-user-group', '--append', '--lock',
                          '--unlock'):
                flags.add(option)
            else:
                options[option] = args.pop(0)
        return getattr(self, '_' + program)(name, options, flags)

    def _groupadd(self, name, options, flags):
        if name in self.groups:
            return 9, '', "groupadd: group '%s' already exists\n" % name
        gid = int(options['--gid']) if '--gid' in options else self._next_id(
            [entry['gid'] for entry in self.groups.values()], '--system' in flags)
        self.add_group(name, gid)
        return 0, '', ''

    def _add_to(self, name, groups):
        for key in groups.split(','):
            entry = self.group_entry(key)
            if entry is None:
                return 6, '', "useradd: group '%s' does not exist\n" % key
            if name not in self.groups[entry['name']]['members']:
                self.groups[entry['name']]['members'].append(name)
        self.save()
        return 0, '', ''

    def _useradd(self, name, options, flags):
        if name in self.users:
            return 9, '', "useradd: user '%s' already exists\n" % name
        if '--gid' in options:
            gid = self._gid_of(options['--gid'])
            if gid is None:
                return 6, '', "useradd: group '%s' does not exist\n" % options['--gid']
        elif '--no-user-group' in flags:
            gid = 100
        else:
            if name in self.groups:
                return 9, '', "useradd: group %s exists - if you want to add this user to that group, use -g.\n" % name
            self._groupadd(name, {}, flags)
            gid = self.groups[name]['gid']
        uid = int(options['--uid']) if '--uid' in options else self._next_id(
            [entry['uid'] for entry in self.users.values()], '--system' in flags)
        home = options.get('--home-dir', '/home/%s' % name)
        self.add_user(name, uid, gid, home=home, shell=options.get('--shell', '/bin/sh'),
                      comment=options.get('--comment', ''))
        if '--create-home' in flags and not os.path.exists(home):
            os.mkdir(home)
        if '--groups' in options:
            return self._add_to(name, options['--groups'])
        return 0, '', ''

    def _usermod(self, name, options, flags):
        user = self.users.get(name)
        if user is None:
            return 6, '', "usermod: user '%s' does not exist\n" % name
        if '--lock' in flags and not user['password'].startswith('!'):
            user['password'] = '!' + user['password']
        if '--unlock' in flags and user['password'].startswith('!'):
            if user['password'] == '!':
                return 3, '', ("usermod: unlocking the user's password would result in a passwordless account.\n"
                               "You should set a password with usermod -p to unlock this user's password.\n")
            user['password'] = user['password'][1:]
        if '--gid' in options:
            gid = self._gid_of(options['--gid'])
            if gid is None:
                return 6, '', "usermod: group '%s' does not exist\n" % options['--gid']
            user['gid'] = gid
        for option, field in (('--comment', 'comment'), ('--home', 'home'), ('--shell', 'shell')):
            if option in options:
                user[field] = options[option]
        if '--groups' in options:
            if '--append' not in flags:
                raise AssertionError('usermod --groups without --append would take the user out of other groups')
            return self._add_to(name, options['--groups'])
        self.save()
        return 0, '', ''
