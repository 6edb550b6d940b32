# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediops.mastodon.read_command: run a read-only command over the connection, with no module run.

ansible.builtin.command ships and starts a Python module (AnsiballZ) to run one program; for a command that only
reads (nft list, readlink, dpkg-query, systemctl is-active) that is nearly all the task's cost. Here the command goes
straight to the host's /bin/sh through the connection, as the shell lines Ansible itself runs do. The quoting and the
clean-up of the output are in plugins/module_utils/read_command.py.
"""

from __future__ import annotations

import secrets

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fediops.mastodon.plugins.module_utils.read_command import (
    ReadCommandError, build_script, failure_message, shell_argv, split_output, wrap,
)

ARGUMENT_SPEC = dict(
    argv=dict(type='list', elements='str'),
    cmd=dict(type='str'),
    chdir=dict(type='path'),
    env=dict(type='dict', default={}),
    ok_rcs=dict(type='list', elements='int', default=[0]),
)

# Any stdin at all makes the ssh connection use pipes instead of a terminal (as it does for pipelined modules), so the
# command does not see a terminal, as under ansible.builtin.command. The command itself reads /dev/null, so what is
# sent is never read.
_NO_TTY_STDIN = b'\n'


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True
    # It only reads, so check mode changes nothing about it: the answer is as useful there.
    _supports_check_mode = True

    def _args(self):
        if isinstance(self._task.args.get('argv'), str):
            # A string would become a one-element list (or be split at commas), never what was meant.
            raise AnsibleActionFail('argv must be a list of arguments; give a shell string as cmd instead')
        unsupported = sorted(set(self._task.args) - set(ARGUMENT_SPEC))
        if unsupported:
            # Say it here: the generic message names this file's Python path. creates/removes/stdin belong to
            # commands that act, which ansible.builtin.command is for.
            raise AnsibleActionFail('unsupported option%s %s: read_command takes %s; use ansible.builtin.command for'
                                    ' creates, removes or stdin'
                                    % ('s' if len(unsupported) > 1 else '', ', '.join(unsupported),
                                       ', '.join(sorted(ARGUMENT_SPEC))))
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC, mutually_exclusive=[('argv', 'cmd')],
                                           required_one_of=[('argv', 'cmd')])[1]
        if args['argv'] is not None and not args['argv']:
            raise AnsibleActionFail('argv: give at least the program to run')
        if args['cmd'] is not None and not args['cmd'].strip():
            raise AnsibleActionFail('cmd: give the command to run')
        if not args['ok_rcs']:
            raise AnsibleActionFail('ok_rcs: give at least one exit status that counts as success')
        return args

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        args = self._args()
        given = args['argv'] if args['argv'] is not None else args['cmd']
        argv = args['argv'] if args['argv'] is not None else shell_argv(args['cmd'])

        # The task's environment keyword reaches modules through the module's command line; give it to this command
        # the same way, with the env option on top.
        env = {}
        self._compute_environment_string(env)
        env.update(args['env'])
        # Random, so no output of the command can pass for the line after which its stderr comes.
        tag = 'fediops-read-command-stderr-%s' % secrets.token_hex(12)
        try:
            script = build_script(argv, tag, chdir=args['chdir'], env=env)
        except ReadCommandError as exc:
            raise AnsibleActionFail(str(exc)) from exc

        in_data = _NO_TTY_STDIN if self._connection.is_pipelining_enabled() else None
        res = self._low_level_execute_command(wrap(script), sudoable=True, in_data=in_data)

        rc = res.get('rc')
        stdout, stderr = split_output(res.get('stdout', ''), res.get('stderr', ''), tag)
        result.update(changed=False, cmd=given, rc=rc, stdout=stdout, stderr=stderr,
                      stdout_lines=stdout.splitlines(), stderr_lines=stderr.splitlines())
        msg = failure_message(rc, args['ok_rcs'], args['chdir'])
        # Say failed=False outright: otherwise the task executor fails any result whose rc is not 0.
        result['failed'] = bool(msg)
        if msg:
            result['msg'] = msg
        return result
