# -*- coding: utf-8 -*-
"""The files action: its probe run by a real /bin/sh on a temporary directory (as the connection would run it), the
module run only when a path differs or the probe cannot be trusted, and the same result keys either way."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import pwd
import shlex
import subprocess
from unittest.mock import MagicMock

import pytest

from ansible.playbook.play_context import PlayContext

from ansible_collections.fediops.mastodon.plugins.action.files import ActionModule
from ansible_collections.fediops.mastodon.plugins.module_utils import file_probe
from ansible_collections.fediops.mastodon.plugins.modules import files

from ..modules.utils import run_module


def local_shell(command, sudoable=True):
    """What the connection does with the probe: run it with /bin/sh here, with a tty's line ends."""
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return dict(rc=done.returncode, stdout=done.stdout.replace('\n', '\r\n'), stderr=done.stderr)


def make_action(args, shell=local_shell, check_mode=False):
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.action = 'fediops.mastodon.files'
    action = ActionModule(task, MagicMock(), PlayContext(), loader=None, templar=None, shared_loader_obj=None)
    action._low_level_execute_command = MagicMock(side_effect=shell)

    def execute_module(module_name, module_args, task_vars):
        assert module_name == 'fediops.mastodon.files'
        result = run_module(files, module_args, check_mode=check_mode)
        result['invocation'] = dict(module_args=module_args)
        return result

    action._execute_module = MagicMock(side_effect=execute_module)
    return action


def tree_args(tmp_path, content='a = 1\n', target='/usr/share/zoneinfo/UTC', mode='0640'):
    return dict(directories=[dict(path=str(tmp_path / 'conf.d'), mode='0750')],
                files=[dict(dest=str(tmp_path / 'conf.d' / 'a.conf'), content=content, mode=mode, sensitive=True)],
                links=[dict(path=str(tmp_path / 'localtime'), src=target)])


def test_the_module_runs_once_then_the_probe_alone_answers(tmp_path):
    first = make_action(tree_args(tmp_path)).run(task_vars={})
    assert first['changed'] is True
    assert first['changed_files'] == [str(tmp_path / 'conf.d'), str(tmp_path / 'conf.d' / 'a.conf'),
                                      str(tmp_path / 'localtime')]
    assert 'invocation' not in first

    action = make_action(tree_args(tmp_path))
    second = action.run(task_vars={})
    action._execute_module.assert_not_called()
    assert second == dict(changed=False, changed_files=[],
                          paths={str(tmp_path / 'conf.d'): [], str(tmp_path / 'conf.d' / 'a.conf'): [],
                                 str(tmp_path / 'localtime'): []})
    (command,), kwargs = action._low_level_execute_command.call_args
    assert kwargs == dict(sudoable=True)
    outer = shlex.split(command)
    assert outer[:2] == ['/bin/sh', '-c'] and len(outer) == 3


@pytest.mark.parametrize('change, differs', [
    (dict(content='a = 2\n'), 'content'),
    (dict(mode='0600'), 'mode'),
    (dict(target='/usr/share/zoneinfo/Europe/Berlin'), 'src'),
])
def test_any_difference_runs_the_module_which_acts(tmp_path, change, differs):
    make_action(tree_args(tmp_path)).run(task_vars={})
    action = make_action(tree_args(tmp_path, **change))
    result = action.run(task_vars={})
    action._execute_module.assert_called_once()
    assert result['changed'] is True and len(result['changed_files']) == 1
    assert result['paths'][result['changed_files'][0]] == [differs]
    # The module's arguments (contents) are never echoed back.
    assert 'invocation' not in result and 'a = ' not in repr(result)
    assert make_action(tree_args(tmp_path, **change)).run(task_vars={})['changed'] is False


def test_mode_and_owner_spellings_all_count_as_converged(tmp_path):
    make_action(tree_args(tmp_path)).run(task_vars={})
    args = tree_args(tmp_path, mode='640')
    args['files'][0].update(owner=str(os.getuid()), group=str(os.getgid()))
    args['directories'][0].update(mode='750', owner=pwd.getpwuid(os.getuid()).pw_name)
    action = make_action(args)
    assert action.run(task_vars={})['changed'] is False
    action._execute_module.assert_not_called()


def test_check_mode_on_a_converged_host_runs_nothing_and_on_a_changed_one_writes_nothing(tmp_path):
    make_action(tree_args(tmp_path)).run(task_vars={})
    action = make_action(tree_args(tmp_path), check_mode=True)
    assert action.run(task_vars={})['changed'] is False
    action._execute_module.assert_not_called()
    action = make_action(tree_args(tmp_path, content='a = 3\n'), check_mode=True)
    assert action.run(task_vars={})['changed'] is True
    assert (tmp_path / 'conf.d' / 'a.conf').read_text() == 'a = 1\n'


@pytest.mark.parametrize('answer', [
    dict(rc=1, stdout='', stderr='sudo: a password is required'),
    dict(rc=0, stdout='Welcome!\r\n', stderr=''),
    dict(rc=0, stdout='%s\r\n0|missing|\r\n%s\r\n' % (file_probe.BEGIN, file_probe.END), stderr=''),
    dict(rc=0, stdout=None, stderr=''),
])
def test_an_answer_that_cannot_be_trusted_runs_the_module(tmp_path, answer):
    make_action(tree_args(tmp_path)).run(task_vars={})
    action = make_action(tree_args(tmp_path), shell=lambda command, sudoable=True: answer)
    result = action.run(task_vars={})
    action._execute_module.assert_called_once()
    assert result['changed'] is False and result['changed_files'] == []


def test_a_path_the_probe_cannot_judge_skips_the_probe(tmp_path):
    action = make_action(dict(directories=[dict(path='~/conf.d')]))
    action._execute_module.side_effect = None
    action._execute_module.return_value = dict(changed=False, changed_files=[], paths={})
    action.run(task_vars={})
    action._low_level_execute_command.assert_not_called()
    action._execute_module.assert_called_once()


def test_nothing_to_do_returns_at_once():
    action = make_action(dict(files=[], directories=[], links=[]))
    assert action.run(task_vars={}) == dict(changed=False, changed_files=[], paths={})
    action._low_level_execute_command.assert_not_called()
    action._execute_module.assert_not_called()
    assert make_action({}).run(task_vars={})['changed'] is False


def test_template_vars_render_one_template_per_file_and_win_over_the_task_variables(tmp_path):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    template = tmp_path / 'pool.conf.j2'
    template.write_text('[Service]\nEnvironment=QUEUE={{ item }} HOST={{ host }}\n')
    args = dict(files=[dict(dest=str(tmp_path / ('%s.conf' % name)), template='pool.conf.j2', mode='0644',
                            template_vars=dict(item=name)) for name in ('push', 'pull')])
    action = make_action(args)
    loader = DataLoader()
    action._loader = loader
    action._templar = Templar(loader=loader)
    action._find_needle = MagicMock(return_value=str(template))
    result = action.run(task_vars=dict(item='ignored', host='sidekiq1'))
    assert result['changed'] is True
    assert (tmp_path / 'push.conf').read_text() == '[Service]\nEnvironment=QUEUE=push HOST=sidekiq1\n'
    assert (tmp_path / 'pull.conf').read_text() == '[Service]\nEnvironment=QUEUE=pull HOST=sidekiq1\n'
    # template_vars never reach the module.
    module_args = action._execute_module.call_args.kwargs['module_args']
    assert all('template_vars' not in entry for entry in module_args['files'])


@pytest.mark.parametrize('entry, message', [
    (dict(content='x\n', template_vars=dict(item=1)), 'template_vars is only for a template'),
    (dict(template='a.j2', template_vars=['item']), 'template_vars must be a dictionary'),
])
def test_template_vars_without_a_template_or_not_a_dictionary_is_refused(tmp_path, entry, message):
    from ansible.errors import AnsibleActionFail
    entry['dest'] = str(tmp_path / 'a.conf')
    with pytest.raises(AnsibleActionFail, match=message):
        make_action(dict(files=[entry])).run(task_vars={})
