# -*- coding: utf-8 -*-
"""fediops.mastodon.accounts (action): its probe run by a real /bin/sh against a stand-in getent/passwd, the module
run only when an account differs or the probe cannot be trusted, and the same result keys either way."""

from __future__ import annotations

import shlex
import subprocess
from unittest import mock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.module_utils import basic
from ansible.playbook.play_context import PlayContext

from ansible_collections.fediops.mastodon.plugins.action.accounts import ActionModule
from ansible_collections.fediops.mastodon.plugins.modules import accounts

from ..fake_accounts import FakeAccounts
from ..modules.utils import run_module


@pytest.fixture
def host(tmp_path):
    return FakeAccounts(tmp_path / 'db')


def make_action(host, args, check_mode=False, probe=None):
    """The action with task ``args``; the probe runs in /bin/sh against ``host`` (with a tty's line ends) unless
    ``probe`` gives the answer; the module runs against ``host`` too."""
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.action = 'fediops.mastodon.accounts'
    action = ActionModule(task, mock.MagicMock(), PlayContext(), loader=None, templar=None, shared_loader_obj=None)

    def low_level(command, sudoable=False):
        assert sudoable is True
        if probe is not None:
            return dict(probe)
        done = subprocess.run(command, shell=True, capture_output=True, text=True, env=host.env(), check=False)
        return dict(rc=done.returncode, stdout=done.stdout.replace('\n', '\r\n'), stderr=done.stderr)

    def execute_module(module_name, module_args, task_vars):
        assert module_name == 'fediops.mastodon.accounts'
        with mock.patch.object(accounts, 'read_group', side_effect=host.group_entry), \
                mock.patch.object(accounts, 'read_user', side_effect=host.user_entry), \
                mock.patch.object(basic.AnsibleModule, 'run_command', autospec=True,
                                  side_effect=lambda self, *a, **k: host.run_command(*a, **k)), \
                mock.patch.object(basic.AnsibleModule, 'get_bin_path', autospec=True,
                                  side_effect=lambda self, name, *a, **k: '/usr/sbin/' + name):
            return run_module(accounts, module_args, check_mode=check_mode, expect_fail=None)

    action._low_level_execute_command = mock.MagicMock(side_effect=low_level)
    action._execute_module = mock.MagicMock(side_effect=execute_module)
    return action


MASTODON = dict(groups=[dict(name='mastodon', system=True)],
                users=[dict(name='mastodon', group='mastodon', system=True, home='/opt/mastodon', create_home=False,
                            shell='/usr/sbin/nologin', password_locked=True)])


def converged(host):
    return host.add_group('mastodon', 996).add_user('mastodon', 996, 996, home='/opt/mastodon')


def test_the_module_runs_once_then_the_probe_alone_answers(host):
    first = make_action(host, MASTODON)
    result = first.run(task_vars={})
    assert first._execute_module.call_count == 1
    assert result['changed'] is True and len(result['commands']) == 2

    action = make_action(host, MASTODON)
    second = action.run(task_vars={})
    action._execute_module.assert_not_called()
    assert second == dict(changed=False, commands=[], groups={'mastodon': dict(gid=100, changes=[])},
                          users={'mastodon': dict(uid=100, gid=100, home='/opt/mastodon', shell='/usr/sbin/nologin',
                                                  comment='', password_locked=True, changes=[])})
    (command,), kwargs = action._low_level_execute_command.call_args
    assert kwargs == dict(sudoable=True)
    outer = shlex.split(command)
    assert outer[:2] == ['/bin/sh', '-c'] and len(outer) == 3


def test_converged_result_has_the_module_keys(host):
    converged(host)
    from_probe = make_action(host, MASTODON).run(task_vars={})
    from_module = make_action(host, MASTODON, probe=dict(rc=1, stdout='', stderr='')).run(task_vars={})
    assert from_probe['changed'] is False and from_module['changed'] is False
    assert from_probe['groups'] == from_module['groups'] and from_probe['users'] == from_module['users']
    assert from_probe['commands'] == from_module['commands'] == []


def test_converged_in_check_mode_runs_no_module(host):
    converged(host)
    action = make_action(host, MASTODON, check_mode=True)
    assert action.run(task_vars={})['changed'] is False
    action._execute_module.assert_not_called()


@pytest.mark.parametrize('change, command', [
    (dict(shell='/bin/bash'), 'usermod --shell /bin/bash mastodon'),
    (dict(comment='Mastodon'), 'usermod --comment Mastodon mastodon'),
    (dict(home='/srv/mastodon'), 'usermod --home /srv/mastodon mastodon'),
    (dict(groups=['ssl-cert']), 'usermod --append --groups ssl-cert mastodon'),
    (dict(group='ssl-cert'), 'usermod --gid ssl-cert mastodon'),
])
def test_each_difference_runs_the_module(host, change, command):
    converged(host).add_group('ssl-cert', 110)
    args = dict(MASTODON, users=[dict(MASTODON['users'][0], **change)])
    action = make_action(host, args)
    result = action.run(task_vars={})
    assert action._execute_module.call_count == 1
    assert action._execute_module.call_args.kwargs['module_args'] == args
    assert result['changed'] is True and result['commands'] == [command]
    again = make_action(host, args)
    assert again.run(task_vars={})['changed'] is False
    again._execute_module.assert_not_called()


def test_unlocked_password_runs_the_module(host):
    converged(host).users['mastodon']['password'] = ''
    host.save()
    action = make_action(host, MASTODON)
    assert action.run(task_vars={})['commands'] == ['usermod --lock mastodon']
    assert host.users['mastodon']['password'] == '!'


def test_missing_group_runs_the_module(host):
    host.add_user('mastodon', 996, 5000, home='/opt/mastodon')
    action = make_action(host, MASTODON)
    result = action.run(task_vars={})
    assert result['commands'] == ['groupadd --system mastodon', 'usermod --gid mastodon mastodon']


def test_missing_home_runs_the_module(host, tmp_path):
    home = tmp_path / 'home'
    home.mkdir()
    converged(host).users['mastodon']['home'] = str(home / 'mastodon')
    host.save()
    args = dict(users=[dict(name='mastodon', home=str(home / 'mastodon'), create_home=True)])
    action = make_action(host, args, check_mode=True)
    result = action.run(task_vars={})
    assert action._execute_module.call_count == 1
    assert result['changed'] is True and result['users']['mastodon']['changes'] == ['home_directory']


def test_differing_gid_fails_in_the_module(host):
    converged(host)
    action = make_action(host, dict(groups=[dict(name='mastodon', gid=990)]))
    result = action.run(task_vars={})
    assert result['failed'] is True and 'never renumbered' in result['msg']


@pytest.mark.parametrize('probe', [
    dict(rc=127, stdout='', stderr='sh: 1: getent: not found'),
    dict(rc=1, stdout='', stderr='sudo: a password is required'),
    dict(rc=0, stdout='Welcome!\r\n', stderr=''),
    dict(rc=0, stdout='FEDIOPS-ACCOUNTS-PROBE-BEGIN\r\n@@g0\r\nmastodon:x:996:\r\n=0\r\nFEDIOPS-ACCOUNTS-PROBE-END\r\n',
         stderr=''),
])
def test_probe_failure_falls_back_to_the_module(host, probe):
    converged(host)
    action = make_action(host, MASTODON, probe=probe)
    result = action.run(task_vars={})
    assert action._execute_module.call_count == 1
    assert result['changed'] is False and result['commands'] == []


def test_home_the_probe_cannot_read_goes_to_the_module(host):
    action = make_action(host, dict(users=[dict(name='u', home='~u/x', create_home=False)]), check_mode=True)
    action.run(task_vars={})
    action._low_level_execute_command.assert_not_called()
    assert action._execute_module.call_count == 1


def test_nothing_asked_probes_nothing(host):
    action = make_action(host, {})
    assert action.run(task_vars={}) == dict(changed=False, commands=[], groups={}, users={})
    action._low_level_execute_command.assert_not_called()
    action._execute_module.assert_not_called()


@pytest.mark.parametrize('args, message', [
    (dict(users=[dict(name='u', comment='a:b')]), 'comment'),
    (dict(users=[dict(name='u'), dict(name='u')]), 'listed twice'),
    (dict(users=[dict(name='u', remove=True)]), 'remove'),
    (dict(users=[dict(name='u')], state='absent'), 'state'),
    (dict(groups=[dict(gid=5)]), 'name'),
    (dict(users=[dict(name='u', create_home='perhaps')]), 'create_home'),
])
def test_bad_arguments_fail_before_the_probe(host, args, message):
    action = make_action(host, args)
    with pytest.raises(AnsibleActionFail) as exc:
        action.run(task_vars={})
    assert message in str(exc.value)
    action._low_level_execute_command.assert_not_called()
    action._execute_module.assert_not_called()
