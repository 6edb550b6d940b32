# -*- coding: utf-8 -*-
"""The read_command action with a fake connection: the line it runs, how it reads the answer, what it refuses."""

from __future__ import annotations

import os
import shlex
import subprocess
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext

from ansible_collections.fediops.mastodon.plugins.action.read_command import ActionModule


def make_action(args, answer=(0, '', ''), check_mode=False, pipelining=True, environment=None):
    """The action with task ``args``; ``answer`` is what the host says: (rc, stdout, stderr)."""
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.environment = environment
    task.action = 'fediops.mastodon.read_command'
    connection = MagicMock()
    connection.is_pipelining_enabled.return_value = pipelining
    connection._shell.env_prefix.return_value = ''
    templar = MagicMock()
    templar.template.side_effect = lambda value: value
    action = ActionModule(task, connection, PlayContext(), loader=None, templar=templar, shared_loader_obj=None)
    rc, stdout, stderr = answer
    action._low_level_execute_command = MagicMock(return_value=dict(rc=rc, stdout=stdout, stderr=stderr))
    action._execute_module = MagicMock(side_effect=AssertionError('no module may run'))
    return action


def sent(action):
    """The script inside the /bin/sh -c line the action handed to the connection, and the call's keywords."""
    action._low_level_execute_command.assert_called_once()
    (line,), kwargs = action._low_level_execute_command.call_args
    outer = shlex.split(line)
    assert outer[:2] == ['/bin/sh', '-c'] and len(outer) == 3
    return outer[2], kwargs


def run_for_real(action, stdin_seen=None):
    """Make the fake connection run the line with the local /bin/sh (the quoting is what is under test)."""
    def execute(line, sudoable=True, in_data=None):  # pylint: disable=unused-argument
        done = subprocess.run(['/bin/sh', '-c', line], input=in_data or b'', capture_output=True, check=False,
                              env={'PATH': os.environ.get('PATH', '/usr/bin:/bin')})
        return dict(rc=done.returncode, stdout=done.stdout.decode(), stderr=done.stderr.decode())
    action._low_level_execute_command = MagicMock(side_effect=execute)
    return action.run(task_vars={})


def test_argv_read_with_become_and_no_module():
    action = make_action({'argv': ['nft', 'list', 'table', 'inet', 'fediops']},
                         (0, 'table inet fediops {\n\tchain input {\n\t}\n}\n', ''))
    result = action.run(task_vars={})
    script, kwargs = sent(action)
    assert kwargs['sudoable'] is True
    assert script == 'LC_ALL=C; export LC_ALL; exec nft list table inet fediops </dev/null'
    assert result == {'changed': False, 'cmd': ['nft', 'list', 'table', 'inet', 'fediops'], 'rc': 0,
                      'stdout': 'table inet fediops {\n\tchain input {\n\t}\n}', 'stderr': '',
                      'stdout_lines': ['table inet fediops {', '\tchain input {', '\t}', '}'], 'stderr_lines': []}
    action._execute_module.assert_not_called()


def test_pipelining_sends_stdin_so_no_terminal_is_used():
    action = make_action({'argv': ['true']})
    action.run(task_vars={})
    assert sent(action)[1]['in_data']


def test_without_pipelining_no_stdin_and_terminal_output_is_cleaned():
    action = make_action({'argv': ['dpkg-query', '--show', 'nginx', 'nope']},
                         (1, 'nginx installed\r\ndpkg-query: no packages found matching nope\r\n', ''),
                         pipelining=False)
    result = action.run(task_vars={})
    assert sent(action)[1]['in_data'] is None
    assert result['stdout'] == 'nginx installed\ndpkg-query: no packages found matching nope'
    assert result['stdout_lines'] == ['nginx installed', 'dpkg-query: no packages found matching nope']


def test_rc_outside_ok_rcs_fails_naming_it():
    action = make_action({'argv': ['nft', 'list', 'table', 'inet', 'fediops']},
                         (1, '', 'Error: No such file or directory\n'))
    result = action.run(task_vars={})
    assert result['failed'] is True
    assert result['changed'] is False
    assert 'rc 1' in result['msg']
    assert result['rc'] == 1 and result['stderr_lines'] == ['Error: No such file or directory']


def test_ok_rcs_accepts_listed_codes():
    action = make_action({'argv': ['systemctl', 'is-active', 'x'], 'ok_rcs': ['0', 3]}, (3, 'inactive\n', ''))
    result = action.run(task_vars={})
    assert not result.get('failed')
    assert result['rc'] == 3 and result['stdout'] == 'inactive'


def test_check_mode_runs_the_command():
    action = make_action({'argv': ['readlink', '-f', '/opt/mastodon/current']}, (0, '/opt/mastodon/releases/v4\n', ''),
                         check_mode=True)
    result = action.run(task_vars={})
    assert result['stdout'] == '/opt/mastodon/releases/v4'
    assert not result.get('skipped')
    action._low_level_execute_command.assert_called_once()


def test_cmd_runs_by_sh_and_is_returned_as_given():
    action = make_action({'cmd': 'pg_lsclusters --no-header 2>/dev/null | wc -l'}, (0, '1\n', ''))
    result = action.run(task_vars={})
    script = sent(action)[0]
    assert shlex.split(script.split('; exec ', 1)[1]) == [
        '/bin/sh', '-c', 'pg_lsclusters --no-header 2>/dev/null | wc -l', '</dev/null']
    assert result['cmd'] == 'pg_lsclusters --no-header 2>/dev/null | wc -l'


def test_quoting_env_and_chdir_for_real(tmp_path):
    action = make_action({'argv': ['/bin/sh', '-c', 'printf "%s|%s|%s|" "$LC_ALL" "$GREETING" "$1"; pwd', 'sh',
                                   "it's $(id)"],
                          'chdir': str(tmp_path), 'env': {'GREETING': 'a b'}})
    result = run_for_real(action)
    assert result['rc'] == 0 and not result.get('failed')
    assert result['stdout'] == "C|a b|it's $(id)|%s" % tmp_path


def test_task_environment_applies_under_env():
    action = make_action({'cmd': 'echo "$FROM_TASK $BOTH"', 'env': {'BOTH': 'option'}},
                         environment=[{'FROM_TASK': 'task', 'BOTH': 'task'}])
    assert run_for_real(action)['stdout'] == 'task option'


def test_missing_chdir_fails_and_says_so(tmp_path):
    action = make_action({'argv': ['true'], 'chdir': str(tmp_path / 'missing'), 'ok_rcs': [0, 1]})
    result = run_for_real(action)
    assert result['failed'] is True and result['rc'] == 125
    assert 'could not be entered' in result['msg']


def test_stderr_stays_apart_when_the_connection_keeps_it_apart():
    result = run_for_real(make_action({'cmd': 'echo out; echo err >&2; exit 4', 'ok_rcs': [4]}))
    assert (result['stdout'], result['stderr'], result['rc']) == ('out', 'err', 4)
    assert not result.get('failed')


@pytest.mark.parametrize('args, message', [
    ({}, 'argv'),
    ({'argv': ['a'], 'cmd': 'a'}, 'argv'),
    ({'argv': 'nft list ruleset'}, 'list'),
    ({'argv': []}, 'argv'),
    ({'cmd': '  '}, 'cmd'),
    ({'argv': ['true'], 'ok_rcs': []}, 'ok_rcs'),
    ({'argv': ['true'], 'creates': '/x'}, 'creates'),
    ({'argv': ['true'], 'stdin': 'data'}, 'stdin'),
    ({'argv': ['true'], 'env': {'NOT-A-NAME': '1'}}, 'NOT-A-NAME'),
])
def test_refused(args, message):
    action = make_action(args)
    with pytest.raises(AnsibleActionFail, match=message):
        action.run(task_vars={})
    action._low_level_execute_command.assert_not_called()
