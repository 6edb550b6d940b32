# -*- coding: utf-8 -*-
"""fediops.mastodon.units (action): one probe; the module runs only when something differs or the probe fails."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.fediops.mastodon.plugins.action.units import ActionModule

from ..fake_systemd import FakeSystemd

MODULE_RESULT = dict(changed=True, units=[{'name': 'from-the-module'}], commands=['systemctl start x'])


def make_action(args, check_mode=False):
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.action = 'fediops.mastodon.units'
    connection = mock.MagicMock()
    connection._shell.tmpdir = None
    return ActionModule(task, connection, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), None)


@pytest.fixture
def host():
    return FakeSystemd()


def run(host, args, check_mode=False, probe=None):
    """Run the action; returns (result, probe calls, module calls)."""
    action = make_action(args, check_mode)

    def low_level(cmd, sudoable=True, **kwargs):  # pylint: disable=unused-argument
        assert sudoable is True
        if probe is not None:
            return probe
        rc, out, err = host.run_shell(cmd)
        return dict(rc=rc, stdout=out, stderr=err, stdout_lines=out.splitlines())

    with mock.patch.object(action, '_low_level_execute_command', side_effect=low_level) as probed, \
            mock.patch.object(action, '_execute_module', return_value=dict(MODULE_RESULT)) as executed:
        result = action.run(task_vars=dict(inventory_hostname='h1'))
    return result, probed, executed


def test_converged_runs_no_module(host):
    host.add('postgresql@15-main', active='active', file_state='enabled').add('nginx', active='active',
                                                                              file_state='static')
    result, probed, executed = run(host, dict(daemon_reload=True, units=[
        dict(name='postgresql@15-main', enabled=True, state='started'), dict(name='nginx', state='started')]))
    assert executed.call_count == 0 and probed.call_count == 1
    assert result['changed'] is False and result['commands'] == []
    assert [(entry['name'], entry['actions']) for entry in result['units']] == [
        ('postgresql@15-main', []), ('nginx', [])]
    assert result['units'][0]['before'] == result['units'][0]['after']
    assert result['units'][0]['before']['Id'] == 'postgresql@15-main.service'
    # the probe: LC_ALL=C systemctl show through /bin/sh -c, names quoted, each once
    cmd = probed.call_args[0][0]
    assert cmd.startswith("/bin/sh -c 'LC_ALL=C systemctl show --no-pager -p ")
    assert host.calls == [['systemctl', 'show', '--no-pager', '-p',
                           'Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload,DropInPaths', '--',
                           'postgresql@15-main', 'nginx']]
    # and, in the same command, the drop-ins on disk where the roles write them, the template's for an instance
    assert host.globs == ['/etc/systemd/system/postgresql@15-main.service.d/*.conf',
                          '/etc/systemd/system/postgresql@.service.d/*.conf',
                          '/run/systemd/system/postgresql@15-main.service.d/*.conf',
                          '/run/systemd/system/postgresql@.service.d/*.conf',
                          '/etc/systemd/system/nginx.service.d/*.conf', '/run/systemd/system/nginx.service.d/*.conf']


def test_a_difference_runs_the_module_with_the_checked_arguments(host):
    host.add('nginx', active='inactive', file_state='enabled')
    result, _probed, executed = run(host, dict(units=[dict(name='nginx', enabled='yes', state='started')]))
    assert result['changed'] is True and result['units'] == MODULE_RESULT['units']
    executed.assert_called_once()
    kwargs = executed.call_args.kwargs
    assert kwargs['module_name'] == 'fediops.mastodon.units'
    # an option left unset is left out (the module's spec refuses None among state's choices)
    assert kwargs['module_args'] == dict(daemon_reload=False, units=[
        dict(name='nginx', enabled=True, state='started')])
    assert kwargs['task_vars'] == dict(inventory_hostname='h1')


@pytest.mark.parametrize('setup, wanted', [
    (dict(active='active', file_state='disabled'), dict(enabled=True)),
    (dict(active='active', file_state='enabled'), dict(state='stopped')),
    (dict(active='active', file_state='enabled'), dict(masked=True)),
    (dict(file_state='masked', load='masked'), dict(masked=False)),
    (dict(active='active', file_state='enabled', need_reload='yes'), dict(state='started')),
])
def test_each_kind_of_difference_runs_the_module(host, setup, wanted):
    host.add('x', **setup)
    args = dict(daemon_reload=True, units=[dict(name='x', **wanted)])
    _result, _probed, executed = run(host, args)
    assert executed.call_count == 1


def test_a_handlers_restart_of_a_unit_not_yet_running_costs_only_the_probe(host):
    host.add('systemd-journal-upload', active='inactive', file_state='disabled')
    result, probed, executed = run(host, dict(daemon_reload=True, units=[
        dict(name='systemd-journal-upload', restart_if_running=True)]))
    assert executed.call_count == 0 and probed.call_count == 1 and result['changed'] is False
    host.add('prometheus-node-exporter', active='active', file_state='enabled')
    result, probed, executed = run(host, dict(units=[dict(name='prometheus-node-exporter', restart_if_running=True)]))
    assert executed.call_count == 1
    assert executed.call_args[1]['module_args']['units'] == [dict(name='prometheus-node-exporter',
                                                                  restart_if_running=True)]


def test_a_stale_unit_without_daemon_reload_is_left_alone(host):
    host.add('x', active='active', file_state='enabled', need_reload='yes')
    _result, _probed, executed = run(host, dict(units=[dict(name='x', state='started', enabled=True)]))
    assert executed.call_count == 0


OVERRIDE = '/etc/systemd/system/mastodon-web.service.d/override.conf'


def test_a_new_drop_in_systemd_did_not_notice_runs_the_module(host):
    """systemd < 257 says NeedDaemonReload=no for a drop-in in a new <unit>.d directory (systemd/systemd#31752)."""
    host.add('mastodon-web', active='active', file_state='enabled').write_dropin(OVERRIDE)
    assert host.show(['mastodon-web']).count('NeedDaemonReload=no') == 1
    args = dict(daemon_reload=True, units=[dict(name='mastodon-web', enabled=True, state='started')])
    _result, _probed, executed = run(host, args)
    assert executed.call_count == 1
    assert executed.call_args.kwargs['module_args']['daemon_reload'] is True
    # without daemon_reload a stale unit is left alone, as when systemd itself reports it
    _result, _probed, executed = run(host, dict(args, daemon_reload=False))
    assert executed.call_count == 0
    # once reloaded, the drop-in is among DropInPaths: converged
    host.verb('daemon-reload')
    result, _probed, executed = run(host, args)
    assert executed.call_count == 0 and result['units'][0]['before']['DropInPaths'] == OVERRIDE


def test_a_new_template_drop_in_runs_the_module_for_the_instance(host):
    host.add('postgresql@15-main', active='active', file_state='enabled')
    host.write_dropin('/run/systemd/system/postgresql@.service.d/limits.conf')
    _result, _probed, executed = run(host, dict(daemon_reload=True, units=[dict(name='postgresql@15-main',
                                                                                state='started')]))
    assert executed.call_count == 1


def test_drop_ins_already_loaded_run_no_module(host):
    packaged = '/usr/lib/systemd/system/mastodon-web.service.d/packaged.conf'
    host.add('mastodon-web', active='active', file_state='enabled', dropins=[OVERRIDE, packaged])
    host.write_dropin('/etc/systemd/system/other.service.d/override.conf')
    host.write_dropin('/etc/systemd/system/mastodon-web.service.d/README')
    _result, _probed, executed = run(host, dict(daemon_reload=True, units=[dict(name='mastodon-web',
                                                                                state='started')]))
    assert executed.call_count == 0


def test_crlf_probe_output_with_drop_ins_is_read(host):
    host.crlf = True
    host.add('mastodon-web', active='active', file_state='enabled', dropins=[OVERRIDE])
    args = dict(daemon_reload=True, units=[dict(name='mastodon-web', state='started')])
    _result, _probed, executed = run(host, args)
    assert executed.call_count == 0
    host.write_dropin('/etc/systemd/system/mastodon-web.service.d/later.conf')
    _result, _probed, executed = run(host, args)
    assert executed.call_count == 1


def test_a_missing_unit_runs_the_module_which_reloads_or_says_so(host):
    _result, _probed, executed = run(host, dict(units=[dict(name='later', state='stopped')]))
    assert executed.call_count == 1
    _result, _probed, executed = run(host, dict(units=[dict(name='later', masked=False)]))
    assert executed.call_count == 0, 'masked=false holds for a unit that does not exist'


@pytest.mark.parametrize('probe', [
    dict(rc=1, stdout='', stderr='Failed to connect to bus: No such file or directory'),
    dict(rc=0, stdout='sudo: unable to resolve host h1\r\nId=x.service\r\nLoadState=loaded\r\nActiveState=active\r\n',
         stderr=''),
    dict(rc=0, stdout='', stderr=''),
    dict(rc=127, stdout='', stderr='/bin/sh: 1: systemctl: not found'),
    # systemctl's part is fine, but the drop-in listing is missing (the shell was cut short): no decision
    dict(rc=0, stdout='Id=x.service\nLoadState=loaded\nActiveState=active\n', stderr=''),
])
def test_a_probe_that_cannot_be_trusted_falls_back_to_the_module(host, probe):
    _result, probed, executed = run(host, dict(units=[dict(name='x', state='started')]), probe=probe)
    assert probed.call_count == 1 and executed.call_count == 1


def test_check_mode_probes_and_stops_there_when_converged(host):
    host.add('x', active='active', file_state='enabled')
    result, probed, executed = run(host, dict(units=[dict(name='x', enabled=True, state='started')]),
                                   check_mode=True)
    assert probed.call_count == 1 and executed.call_count == 0 and result['changed'] is False
    host.units['x.service']['ActiveState'] = 'failed'
    _result, _probed, executed = run(host, dict(units=[dict(name='x', enabled=True, state='started')]),
                                     check_mode=True)
    assert executed.call_count == 1


def test_crlf_probe_output_is_read(host):
    host.crlf = True
    host.add('x', active='active', file_state='enabled')
    _result, _probed, executed = run(host, dict(units=[dict(name='x', enabled=True, state='started')]))
    assert executed.call_count == 0


def test_no_units_no_probe(host):
    result, probed, executed = run(host, dict(daemon_reload=True, units=[]))
    assert result['changed'] is False and result['units'] == [] and result['commands'] == []
    assert probed.call_count == 0 and executed.call_count == 0


@pytest.mark.parametrize('args, message', [
    (dict(), 'units is required'),
    (dict(units=[dict(name='x', state='running')]), r'units\[0\]\.state must be one of started, stopped'),
    (dict(units=[dict(name='x', enabled='perhaps')]), r'units\[0\]\.enabled must be a boolean'),
    (dict(units=[dict(name='x', restarted=True)]), r'units\[0\]: unsupported option\(s\) restarted'),
    (dict(units=[dict(state='started')]), r'units\[0\]\.name is required'),
    (dict(units=[], daemon_reload='twice'), 'daemon_reload must be a boolean'),
])
def test_bad_arguments_fail_naming_the_option(host, args, message):
    with pytest.raises(AnsibleActionFail, match=message):
        run(host, args)
    assert host.calls == []
