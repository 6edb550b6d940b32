# -*- coding: utf-8 -*-
"""The nftables_service action: its probe run by a real /bin/sh on a temporary tree, the module (with nft and
systemctl stood in for) run only when the include, the rule file or a drop-in differs, or the probe is unsure."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shlex
import subprocess
from unittest.mock import MagicMock

import pytest

from ansible.playbook.play_context import PlayContext

from ansible_collections.fediops.mastodon.plugins.action.nftables_service import ActionModule

from ..modules.test_nftables_service import FakeHost, task


@pytest.fixture
def host_tree(tmp_path):
    """A base ruleset that includes the rule directory, as the common role writes it."""
    (tmp_path / 'nftables.d').mkdir()
    (tmp_path / 'nftables.conf').write_text('table inet fediops {\n  include "%s/*.nft"\n}\n'
                                            % (tmp_path / 'nftables.d'))
    return tmp_path


def local_shell(command, sudoable=True):
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return dict(rc=done.returncode, stdout=done.stdout.replace('\n', '\r\n'), stderr=done.stderr)


def make_action(args, shell=local_shell, check_mode=False):
    action_task = MagicMock()
    action_task.args = args
    action_task.async_val = 0
    action_task.check_mode = check_mode
    action_task.action = 'fediops.mastodon.nftables_service'
    action = ActionModule(action_task, MagicMock(), PlayContext(), loader=None, templar=None, shared_loader_obj=None)
    action._low_level_execute_command = MagicMock(side_effect=shell)
    action.host = FakeHost()

    def execute_module(module_name, module_args, task_vars):
        assert module_name == 'fediops.mastodon.nftables_service'
        return action.host.run(module_args, check_mode=check_mode, expect_fail=None)

    action._execute_module = MagicMock(side_effect=execute_module)
    return action


def test_the_module_runs_once_then_the_probe_answers_with_the_same_result(host_tree):
    first = make_action(task(host_tree)).run(task_vars={})
    assert first['changed'] is True and len(first['commands']) == 3

    action = make_action(task(host_tree))
    second = action.run(task_vars={})
    action._execute_module.assert_not_called()
    assert second == dict(changed=False, path=first['path'], rules=first['rules'], commands=[],
                          dropins=first['dropins'])
    (command,), kwargs = action._low_level_execute_command.call_args
    assert kwargs == dict(sudoable=True) and shlex.split(command)[:2] == ['/bin/sh', '-c']

    # Ports as the templating may hand them (strings) and a bare unit name read the same.
    again = make_action(task(host_tree, ports=['5432']))
    assert again.run(task_vars={})['changed'] is False
    again._execute_module.assert_not_called()


@pytest.mark.parametrize('change, commands', [
    (dict(sources=['10.0.0.2']), 2),
    (dict(units=['postgresql@15-main', 'pgbouncer']), 1),
    (dict(state='absent'), 3),
])
def test_a_difference_runs_the_module(host_tree, change, commands):
    make_action(task(host_tree)).run(task_vars={})
    action = make_action(task(host_tree, **change))
    result = action.run(task_vars={})
    action._execute_module.assert_called_once()
    assert result['changed'] is True and len(result['commands']) == commands
    assert make_action(task(host_tree, **change)).run(task_vars={})['changed'] is False


def test_a_base_ruleset_without_the_include_runs_the_module_which_refuses(host_tree):
    make_action(task(host_tree)).run(task_vars={})
    (host_tree / 'nftables.conf').write_text('flush ruleset\n')
    action = make_action(task(host_tree))
    result = action.run(task_vars={})
    action._execute_module.assert_called_once()
    assert result['failed'] is True and 'does not include' in result['msg']


def test_check_mode_on_a_converged_host_runs_nothing(host_tree):
    make_action(task(host_tree)).run(task_vars={})
    action = make_action(task(host_tree), check_mode=True)
    assert action.run(task_vars={})['changed'] is False
    action._execute_module.assert_not_called()


@pytest.mark.parametrize('args', [
    dict(name='Bad'), dict(ports=[0]), dict(sources=['db1']), dict(units=['x.timer']), dict(ports=None),
    dict(unknown_option=1), dict(include_dir='~/nftables.d'), dict(protocol='sctp'),
])
def test_options_the_module_must_judge_skip_the_probe(host_tree, args):
    action = make_action(task(host_tree, **args))
    result = action.run(task_vars={})
    action._low_level_execute_command.assert_not_called()
    action._execute_module.assert_called_once()
    assert result.get('failed') or result.get('changed')


@pytest.mark.parametrize('answer', [
    dict(rc=1, stdout='', stderr='sudo: a password is required'),
    dict(rc=0, stdout='motd\r\n', stderr=''),
    dict(rc=0, stdout=None, stderr=''),
])
def test_an_answer_that_cannot_be_trusted_runs_the_module(host_tree, answer):
    make_action(task(host_tree)).run(task_vars={})
    action = make_action(task(host_tree), shell=lambda command, sudoable=True: answer)
    result = action.run(task_vars={})
    action._execute_module.assert_called_once()
    assert result['changed'] is False
