# -*- coding: utf-8 -*-
"""The read_command action with a fake connection: the line it runs, how it reads the answer, what it refuses."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext

from ansible_collections.fediops.mastodon.plugins.action.read_command import ActionModule


def tag_of(line):
    """The marker the script prints before the command's stderr."""
    return re.search(r'fediops-read-command-stderr-[0-9a-f]+', line).group(0)


def host_answer(rc, stdout, stderr, tty=False, connection_stderr=''):
    """A fake _low_level_execute_command answering as the script would: stdout, the marker line, then stderr."""
    def execute(line, sudoable=True, in_data=None):  # pylint: disable=unused-argument
        out = '%s\n%s\n%s\n' % (stdout, tag_of(line), stderr)
        if tty:
            out = out.replace('\n', '\r\n')
        return dict(rc=rc, stdout=out, stderr=connection_stderr)
    return execute


def make_action(args, answer=None, check_mode=False, pipelining=True, environment=None):
    """The action with task ``args``; ``answer`` is the fake connection's _low_level_execute_command."""
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
    action._low_level_execute_command = MagicMock(side_effect=answer or host_answer(0, '', ''))
    action._execute_module = MagicMock(side_effect=AssertionError('no module may run'))
    return action


def sent(action):
    """The script inside the /bin/sh -c line the action handed to the connection, and the call's keywords."""
    action._low_level_execute_command.assert_called_once()
    (line,), kwargs = action._low_level_execute_command.call_args
    outer = shlex.split(line)
    assert outer[:2] == ['/bin/sh', '-c'] and len(outer) == 3
    return outer[2], kwargs


def command_words(script):
    """The words of the exec that runs the command, inside the script."""
    return shlex.split(re.search(r'exec ([^;)]*) </dev/null\)', script).group(1))


def for_real(line, sudoable=True, in_data=None):  # pylint: disable=unused-argument
    """A connection that runs the line with the local /bin/sh, on pipes."""
    done = subprocess.run(['/bin/sh', '-c', line], input=in_data or b'', capture_output=True, check=False,
                          env={'PATH': os.environ.get('PATH', '/usr/bin:/bin')})
    return dict(rc=done.returncode, stdout=done.stdout.decode(), stderr=done.stderr.decode())


def test_argv_read_with_become_and_no_module():
    action = make_action({'argv': ['nft', 'list', 'table', 'inet', 'fediops']},
                         host_answer(0, 'table inet fediops {\n\tchain input {\n\t}\n}\n', ''))
    result = action.run(task_vars={})
    script, kwargs = sent(action)
    assert kwargs['sudoable'] is True
    assert script.startswith('LC_ALL=C; export LC_ALL; ')
    assert command_words(script) == ['nft', 'list', 'table', 'inet', 'fediops']
    assert result == {'changed': False, 'failed': False, 'cmd': ['nft', 'list', 'table', 'inet', 'fediops'], 'rc': 0,
                      'stdout': 'table inet fediops {\n\tchain input {\n\t}\n}', 'stderr': '',
                      'stdout_lines': ['table inet fediops {', '\tchain input {', '\t}', '}'], 'stderr_lines': []}
    action._execute_module.assert_not_called()


def test_marker_differs_per_run():
    first, second = make_action({'argv': ['true']}), make_action({'argv': ['true']})
    first.run(task_vars={})
    second.run(task_vars={})
    assert tag_of(sent(first)[0]) != tag_of(sent(second)[0])


def test_pipelining_sends_stdin_so_no_terminal_is_used():
    action = make_action({'argv': ['true']})
    action.run(task_vars={})
    assert sent(action)[1]['in_data']


def test_without_pipelining_no_stdin_and_terminal_output_is_read_apart():
    action = make_action({'argv': ['dpkg-query', '--show', 'nginx', 'nope']},
                         host_answer(1, 'nginx installed', 'dpkg-query: no packages found matching nope', tty=True),
                         pipelining=False)
    result = action.run(task_vars={})
    assert sent(action)[1]['in_data'] is None
    assert result['stdout_lines'] == ['nginx installed']
    assert result['stderr_lines'] == ['dpkg-query: no packages found matching nope']


def test_connection_stderr_is_kept():
    action = make_action({'argv': ['true']}, host_answer(0, 'x', '', connection_stderr='Shared connection closed.\r\n'))
    assert action.run(task_vars={})['stderr'] == 'Shared connection closed.'


def test_rc_outside_ok_rcs_fails_naming_it():
    action = make_action({'argv': ['nft', 'list', 'table', 'inet', 'fediops']},
                         host_answer(1, '', 'Error: No such file or directory\n'))
    result = action.run(task_vars={})
    assert result['failed'] is True
    assert result['changed'] is False
    assert 'rc 1' in result['msg']
    assert result['rc'] == 1 and result['stderr_lines'] == ['Error: No such file or directory']


def test_ok_rcs_accepts_listed_codes():
    action = make_action({'argv': ['systemctl', 'is-active', 'x'], 'ok_rcs': ['0', 3]},
                         host_answer(3, 'inactive\n', ''))
    result = action.run(task_vars={})
    # False outright, or the task executor would fail the task for an rc other than 0.
    assert result['failed'] is False
    assert result['rc'] == 3 and result['stdout'] == 'inactive'


def test_check_mode_runs_the_command():
    action = make_action({'argv': ['readlink', '-f', '/opt/mastodon/current']},
                         host_answer(0, '/opt/mastodon/releases/v4\n', ''), check_mode=True)
    result = action.run(task_vars={})
    assert result['stdout'] == '/opt/mastodon/releases/v4'
    assert not result.get('skipped')
    action._low_level_execute_command.assert_called_once()


def test_cmd_runs_by_sh_and_is_returned_as_given():
    action = make_action({'cmd': 'pg_lsclusters --no-header 2>/dev/null | wc -l'}, host_answer(0, '1\n', ''))
    result = action.run(task_vars={})
    assert command_words(sent(action)[0]) == ['/bin/sh', '-c', 'pg_lsclusters --no-header 2>/dev/null | wc -l']
    assert result['cmd'] == 'pg_lsclusters --no-header 2>/dev/null | wc -l'


def test_quoting_env_and_chdir_for_real(tmp_path):
    action = make_action({'argv': ['/bin/sh', '-c', 'printf "%s|%s|%s|" "$LC_ALL" "$GREETING" "$1"; pwd; echo warn >&2',
                                   'sh', "it's $(id)"],
                          'chdir': str(tmp_path), 'env': {'GREETING': 'a b'}}, for_real)
    result = action.run(task_vars={})
    assert result['rc'] == 0 and not result.get('failed')
    assert result['stdout'] == "C|a b|it's $(id)|%s" % tmp_path
    assert result['stderr'] == 'warn'


def test_task_environment_applies_under_env():
    action = make_action({'cmd': 'echo "$FROM_TASK $BOTH"', 'env': {'BOTH': 'option'}}, for_real,
                         environment=[{'FROM_TASK': 'task', 'BOTH': 'task'}])
    assert action.run(task_vars={})['stdout'] == 'task option'


def test_missing_chdir_fails_and_says_so(tmp_path):
    action = make_action({'argv': ['true'], 'chdir': str(tmp_path / 'missing'), 'ok_rcs': [0, 1]}, for_real)
    result = action.run(task_vars={})
    assert result['failed'] is True and result['rc'] == 125
    assert 'could not be entered' in result['msg']
    assert 'missing' in result['stderr']


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
