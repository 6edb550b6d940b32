# -*- coding: utf-8 -*-
"""The packages action with a fake connection: which probe it runs, and when (and how) it calls apt."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shlex
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext

from ansible_collections.fediops.mastodon.plugins.action.packages import ActionModule

APT_RESULT = {'changed': True, 'cache_updated': False, 'stdout': 'Setting up nginx ...'}
UNKNOWN = 'dpkg-query: no packages found matching %s\n'


def make_action(args, probe=None, check_mode=False):
    """The action with task ``args``; ``probe`` is what the host answers: (rc, stdout, stderr)."""
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.action = 'fediops.mastodon.packages'
    action = ActionModule(task, MagicMock(), PlayContext(), loader=None, templar=None, shared_loader_obj=None)
    rc, stdout, stderr = probe if probe is not None else (0, '', '')
    action._low_level_execute_command = MagicMock(return_value=dict(rc=rc, stdout=stdout, stderr=stderr))
    action._execute_module = MagicMock(return_value=dict(APT_RESULT))
    return action


def probed_names(action):
    """The names the probe asked dpkg-query about (the command is /bin/sh -c '<probe>')."""
    (command,), kwargs = action._low_level_execute_command.call_args
    assert kwargs.get('sudoable') is True
    outer = shlex.split(command)
    assert outer[:2] == ['/bin/sh', '-c'] and len(outer) == 3
    inner = shlex.split(outer[2])
    assert inner[:5] == ['LC_ALL=C', 'dpkg-query', '-W', '-f=${Package}\\t${db:Status-Abbrev}\\n', '--']
    return inner[5:]


def apt_args(action):
    action._execute_module.assert_called_once()
    kwargs = action._execute_module.call_args.kwargs
    assert kwargs['module_name'] == 'ansible.builtin.apt'
    return kwargs['module_args']


def test_all_installed_runs_no_module():
    action = make_action({'name': ['postgresql-15', 'postgresql-contrib'], 'update_cache': True},
                         (0, 'postgresql-15\tii \r\npostgresql-contrib\thi \r\n', ''))
    result = action.run(task_vars={})
    assert result['changed'] is False
    assert not result.get('failed')
    assert result['packages'] == {'installed': ['postgresql-15', 'postgresql-contrib'], 'missing': []}
    assert probed_names(action) == ['postgresql-15', 'postgresql-contrib']
    action._execute_module.assert_not_called()


def test_single_string_name():
    action = make_action({'name': 'nginx'}, (0, 'nginx\tii \n', ''))
    result = action.run(task_vars={})
    assert result['changed'] is False
    assert probed_names(action) == ['nginx']
    action._execute_module.assert_not_called()


def test_check_mode_probes_and_skips_apt_when_all_installed():
    action = make_action({'name': ['nginx']}, (0, 'nginx\tii \n', ''), check_mode=True)
    assert action.run(task_vars={})['changed'] is False
    action._execute_module.assert_not_called()


def test_missing_runs_apt_with_all_names_and_only_given_options():
    action = make_action({'name': ['postgresql-15', 'postgresql-contrib'], 'update_cache': True,
                          'cache_valid_time': 3600},
                         (1, 'postgresql-15\tii \n', UNKNOWN % 'postgresql-contrib'))
    task_vars = {'inventory_hostname': 'db1'}
    result = action.run(task_vars=task_vars)
    assert apt_args(action) == {'name': ['postgresql-15', 'postgresql-contrib'], 'state': 'present',
                                'update_cache': True, 'cache_valid_time': 3600}
    assert action._execute_module.call_args.kwargs['task_vars'] is task_vars
    assert result['changed'] is True
    assert result['stdout'] == APT_RESULT['stdout']
    assert result['packages'] == {'installed': ['postgresql-15'], 'missing': ['postgresql-contrib']}


def test_every_option_is_passed_coerced():
    action = make_action({'name': 'nginx', 'update_cache': 'yes', 'cache_valid_time': '600',
                          'install_recommends': 'no', 'default_release': 'bookworm-backports'},
                         (0, 'nginx\trc \n', ''))
    action.run(task_vars={})
    assert apt_args(action) == {'name': ['nginx'], 'state': 'present', 'update_cache': True, 'cache_valid_time': 600,
                                'install_recommends': False, 'default_release': 'bookworm-backports'}


def test_unset_and_null_options_are_not_passed():
    action = make_action({'name': ['nginx'], 'install_recommends': None}, (0, 'nginx\tiU \n', ''))
    action.run(task_vars={})
    assert apt_args(action) == {'name': ['nginx'], 'state': 'present'}


def test_false_options_are_passed():
    action = make_action({'name': ['nginx'], 'update_cache': False, 'install_recommends': False},
                         (0, 'nginx\trc \n', ''))
    action.run(task_vars={})
    assert apt_args(action) == {'name': ['nginx'], 'state': 'present', 'update_cache': False,
                                'install_recommends': False}


def test_update_cache_when_missing_runs_no_module_when_all_installed():
    action = make_action({'name': ['prometheus-node-exporter', 'systemd-journal-remote'],
                          'update_cache_when_missing': True},
                         (0, 'prometheus-node-exporter\tii \nsystemd-journal-remote\tii \n', ''))
    result = action.run(task_vars={})
    assert result['changed'] is False
    action._execute_module.assert_not_called()


def test_update_cache_when_missing_refreshes_the_lists_when_one_is_missing():
    action = make_action({'name': ['prometheus-node-exporter', 'systemd-journal-remote'],
                          'update_cache_when_missing': 'yes', 'install_recommends': False},
                         (1, 'prometheus-node-exporter\tii \n', UNKNOWN % 'systemd-journal-remote'))
    result = action.run(task_vars={})
    assert apt_args(action) == {'name': ['prometheus-node-exporter', 'systemd-journal-remote'], 'state': 'present',
                                'install_recommends': False, 'update_cache': True}
    assert result['packages'] == {'installed': ['prometheus-node-exporter'], 'missing': ['systemd-journal-remote']}


def test_update_cache_when_missing_refreshes_when_the_probe_cannot_tell():
    action = make_action({'name': ['nginx'], 'update_cache_when_missing': True}, (127, '', 'sh: dpkg-query: not found'))
    action.run(task_vars={})
    assert apt_args(action) == {'name': ['nginx'], 'state': 'present', 'update_cache': True}


def test_update_cache_when_missing_false_changes_nothing():
    action = make_action({'name': ['nginx'], 'update_cache_when_missing': False}, (0, 'nginx\trc \n', ''))
    action.run(task_vars={})
    assert apt_args(action) == {'name': ['nginx'], 'state': 'present'}


@pytest.mark.parametrize('name', ['nginx=1.22.1-9', 'postgresql-*', 'nginx/bookworm-backports', '/tmp/x.deb'])
def test_undecidable_name_runs_apt_without_probe(name):
    action = make_action({'name': ['curl', name]})
    result = action.run(task_vars={})
    action._low_level_execute_command.assert_not_called()
    assert apt_args(action) == {'name': ['curl', name], 'state': 'present'}
    assert result['changed'] is True
    assert 'packages' not in result


@pytest.mark.parametrize('probe', [
    (2, '', 'dpkg-query: error: cannot access archive'),
    (127, '', 'sh: 1: dpkg-query: not found'),
    (1, '', 'sudo: a password is required'),
    (0, 'nginx installed\n', ''),
    (0, 'Welcome to the host!\nnginx\tii \n', ''),
])
def test_probe_failure_falls_back_to_apt(probe):
    action = make_action({'name': ['nginx'], 'default_release': 'bookworm-backports'}, probe)
    result = action.run(task_vars={})
    assert apt_args(action) == {'name': ['nginx'], 'state': 'present', 'default_release': 'bookworm-backports'}
    assert result['changed'] is True
    assert 'packages' not in result


def test_apt_failure_is_the_result():
    action = make_action({'name': ['nosuchpkg']}, (1, '', UNKNOWN % 'nosuchpkg'))
    action._execute_module.return_value = {'failed': True, 'msg': "No package matching 'nosuchpkg' is available"}
    result = action.run(task_vars={})
    assert result['failed'] is True
    assert 'nosuchpkg' in result['msg']


def test_duplicates_probed_once_but_given_to_apt_as_written():
    action = make_action({'name': ['nginx', 'curl', 'nginx']}, (0, 'curl\tii \n', ''))
    result = action.run(task_vars={})
    assert probed_names(action) == ['nginx', 'curl']
    assert apt_args(action)['name'] == ['nginx', 'curl', 'nginx']
    assert result['packages'] == {'installed': ['curl'], 'missing': ['nginx']}


@pytest.mark.parametrize('args, message', [
    ({}, 'name'),
    ({'name': []}, 'name'),
    ({'name': ['nginx', '']}, 'name'),
    ({'name': ['nginx'], 'update_cache': 'perhaps'}, 'update_cache'),
    ({'name': ['nginx'], 'cache_valid_time': 'an hour'}, 'cache_valid_time'),
    ({'name': ['nginx'], 'install_recommends': 'sometimes'}, 'install_recommends'),
    ({'name': ['nginx'], 'state': 'absent'}, 'state'),
    ({'name': ['nginx'], 'purge': True}, 'purge'),
    ({'name': ['nginx'], 'update_cache_when_missing': 'often'}, 'update_cache_when_missing'),
    ({'name': ['nginx'], 'update_cache_when_missing': True, 'update_cache': True}, 'do not set update_cache'),
    ({'name': ['nginx'], 'update_cache_when_missing': True, 'cache_valid_time': 86400}, 'do not set cache_valid_time'),
])
def test_bad_arguments_fail_naming_the_option(args, message):
    action = make_action(args)
    with pytest.raises(AnsibleActionFail) as exc:
        action.run(task_vars={})
    assert message in str(exc.value)
    action._low_level_execute_command.assert_not_called()
    action._execute_module.assert_not_called()
