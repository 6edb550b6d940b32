# -*- coding: utf-8 -*-
"""fediops.mastodon.units (module) against a fake systemctl: acting in order, re-reading, check mode, diff, failures."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.fediops.mastodon.plugins.modules import units

from ..fake_systemd import FakeSystemd
from .utils import run_module

SYSTEMCTL = '/usr/bin/systemctl'


@pytest.fixture
def systemd():
    fake = FakeSystemd()

    def run_command(self, args, **kwargs):  # pylint: disable=unused-argument
        return fake.run_command(args, **kwargs)

    def get_bin_path(self, arg, required=False, opt_dirs=None):  # pylint: disable=unused-argument
        assert arg == 'systemctl'
        return SYSTEMCTL

    # The module lists drop-ins with glob.glob: over the fake's disk, never the test machine's /etc.
    with mock.patch.object(basic.AnsibleModule, 'run_command', run_command), \
            mock.patch.object(basic.AnsibleModule, 'get_bin_path', get_bin_path), \
            mock.patch.object(units, 'glob', SimpleNamespace(glob=fake.glob)):
        yield fake


def verbs(fake):
    """The systemctl calls other than show, as reported command lines would write them."""
    return [' '.join(['systemctl'] + call[1:]) for call in fake.calls if call[1] != 'show']


def shows(fake):
    return [call[6:] for call in fake.calls if call[1] == 'show']


def test_converged_does_nothing(systemd):
    systemd.add('nginx', active='active', file_state='enabled')
    result = run_module(units, dict(units=[dict(name='nginx', enabled=True, state='started')]))
    assert result['changed'] is False and result['commands'] == [] and verbs(systemd) == []
    [entry] = result['units']
    assert entry['name'] == 'nginx' and entry['actions'] == []
    assert entry['before'] == entry['after'] and entry['before']['Id'] == 'nginx.service'
    assert 'diff' not in result
    assert shows(systemd) == [['nginx']], 'one read, no re-read when nothing ran'


def test_enables_and_starts_then_reads_the_true_state(systemd):
    systemd.add('postgresql@15-main', active='failed', file_state='disabled')
    result = run_module(units, dict(units=[dict(name='postgresql@15-main', enabled=True, state='started')]))
    assert result['changed'] is True
    assert result['commands'] == ['systemctl enable postgresql@15-main', 'systemctl start postgresql@15-main']
    assert verbs(systemd) == result['commands']
    [entry] = result['units']
    assert entry['actions'] == ['enable', 'start']
    assert entry['before']['ActiveState'] == 'failed' and entry['before']['UnitFileState'] == 'disabled'
    # read again after acting: SubState is there, which a prediction would not have
    assert entry['after'] == dict(Id='postgresql@15-main.service', LoadState='loaded', ActiveState='active',
                                  SubState='running', UnitFileState='enabled', NeedDaemonReload='no',
                                  DropInPaths='')
    assert len(shows(systemd)) == 2
    [diff] = result['diff']
    assert diff['before_header'] == 'postgresql@15-main'
    assert diff['before'] == 'LoadState=loaded\nActiveState=failed\nUnitFileState=disabled\n'
    assert diff['after'] == 'LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n'


def test_restart_if_running_restarts_a_running_unit_after_the_reload_it_needs(systemd):
    systemd.add('prometheus-node-exporter', active='active', file_state='enabled', need_reload='yes')
    result = run_module(units, dict(daemon_reload=True, units=[
        dict(name='prometheus-node-exporter', restart_if_running=True)]))
    assert result['changed'] is True
    assert verbs(systemd) == ['systemctl daemon-reload', 'systemctl restart prometheus-node-exporter']
    assert result['units'][0]['actions'] == ['restart']


def test_restart_if_running_leaves_a_unit_that_is_not_running(systemd):
    systemd.add('systemd-journal-upload', active='inactive', file_state='disabled')
    result = run_module(units, dict(units=[dict(name='systemd-journal-upload', restart_if_running=True)]))
    assert result['changed'] is False and verbs(systemd) == []


def test_units_in_order_each_complete_before_the_next(systemd):
    systemd.add('a', file_state='disabled').add('b', active='active', file_state='enabled')
    result = run_module(units, dict(units=[dict(name='a', enabled=True, state='started'),
                                           dict(name='b', enabled=False, state='stopped')]))
    assert verbs(systemd) == ['systemctl enable a', 'systemctl start a', 'systemctl disable b', 'systemctl stop b']
    assert [entry['actions'] for entry in result['units']] == [['enable', 'start'], ['disable', 'stop']]


def test_daemon_reload_only_when_a_unit_needs_it(systemd):
    systemd.add('seaweedfs', active='active', file_state='enabled')
    quiet = run_module(units, dict(daemon_reload=True, units=[dict(name='seaweedfs', enabled=True, state='started')]))
    assert quiet['changed'] is False and verbs(systemd) == []

    systemd.units['seaweedfs.service']['NeedDaemonReload'] = 'yes'
    reloaded = run_module(units, dict(daemon_reload=True,
                                      units=[dict(name='seaweedfs', enabled=True, state='started')]))
    assert reloaded['commands'] == ['systemctl daemon-reload']
    assert reloaded['changed'] is False, 'a reload alone is no change, as with systemd_service'
    assert reloaded['units'][0]['before']['NeedDaemonReload'] == 'yes'
    assert systemd.units['seaweedfs.service']['NeedDaemonReload'] == 'no'


OVERRIDE = '/etc/systemd/system/mastodon-web.service.d/override.conf'


def test_a_new_drop_in_systemd_did_not_notice_is_loaded_by_a_reload(systemd):
    """systemd < 257 says NeedDaemonReload=no for a drop-in in a new <unit>.d directory (systemd/systemd#31752)."""
    systemd.add('mastodon-web', active='active', file_state='enabled').write_dropin(OVERRIDE)
    args = dict(daemon_reload=True, units=[dict(name='mastodon-web', enabled=True, state='started')])
    result = run_module(units, args)
    assert result['commands'] == ['systemctl daemon-reload'] and result['changed'] is False
    [entry] = result['units']
    assert entry['before']['NeedDaemonReload'] == 'yes' and entry['before']['DropInPaths'] == ''
    assert systemd.units['mastodon-web.service']['DropInPaths'] == [OVERRIDE]
    assert systemd.globs == ['/etc/systemd/system/mastodon-web.service.d/*.conf',
                             '/run/systemd/system/mastodon-web.service.d/*.conf'] * 2, 'read, reload, read again'
    # loaded now: the next run has nothing to do
    again = run_module(units, args)
    assert again['commands'] == [] and again['units'][0]['before']['DropInPaths'] == OVERRIDE
    assert again['units'][0]['before']['NeedDaemonReload'] == 'no'


def test_a_new_drop_in_without_daemon_reload_is_left_alone(systemd):
    systemd.add('mastodon-web', active='active', file_state='enabled').write_dropin(OVERRIDE)
    result = run_module(units, dict(units=[dict(name='mastodon-web', state='started')]))
    assert result['commands'] == [] and verbs(systemd) == []
    assert result['units'][0]['before']['NeedDaemonReload'] == 'yes', 'reported as systemd would have'


def test_a_new_template_drop_in_reloads_before_starting_the_instance(systemd):
    template = '/run/systemd/system/postgresql@.service.d/limits.conf'
    systemd.add('postgresql@15-main', file_state='enabled').write_dropin(template)
    result = run_module(units, dict(daemon_reload=True, units=[dict(name='postgresql@15-main', state='started')]))
    assert result['commands'] == ['systemctl daemon-reload', 'systemctl start postgresql@15-main']
    assert result['units'][0]['after']['DropInPaths'] == template
    assert result['units'][0]['after']['NeedDaemonReload'] == 'no'


def test_drop_ins_already_loaded_need_no_reload(systemd):
    packaged = '/usr/lib/systemd/system/mastodon-web.service.d/packaged.conf'
    systemd.add('mastodon-web', active='active', file_state='enabled', dropins=[OVERRIDE, packaged])
    result = run_module(units, dict(daemon_reload=True, units=[dict(name='mastodon-web', state='started')]))
    assert result['commands'] == [] and verbs(systemd) == []
    assert result['units'][0]['before']['DropInPaths'] == ' '.join(sorted([OVERRIDE, packaged]))


def test_check_mode_reports_the_reload_a_new_drop_in_needs(systemd):
    systemd.add('mastodon-web', active='active', file_state='enabled').write_dropin(OVERRIDE)
    result = run_module(units, dict(daemon_reload=True, units=[dict(name='mastodon-web', state='started')]),
                        check_mode=True)
    assert result['commands'] == ['systemctl daemon-reload'] and result['changed'] is False
    assert verbs(systemd) == [] and systemd.units['mastodon-web.service']['DropInPaths'] == []


def test_a_unit_written_since_is_found_after_the_reload(systemd):
    systemd.add('fediops-backup.timer', load='not-found', file_state='', need_reload='no',
                after_reload=dict(LoadState='loaded', UnitFileState='disabled'))
    result = run_module(units, dict(daemon_reload=True,
                                    units=[dict(name='fediops-backup.timer', enabled=True, state='started')]))
    assert result['commands'] == ['systemctl daemon-reload', 'systemctl enable fediops-backup.timer',
                                  'systemctl start fediops-backup.timer']
    assert result['changed'] is True
    [entry] = result['units']
    assert entry['before']['LoadState'] == 'not-found' and entry['after']['LoadState'] == 'loaded'


def test_the_decision_after_a_reload_uses_the_state_read_again(systemd):
    """A unit whose new file makes it static: after the reload, enabled=true already holds."""
    systemd.add('x', active='active', file_state='disabled', need_reload='yes',
                after_reload=dict(UnitFileState='static'))
    result = run_module(units, dict(daemon_reload=True, units=[dict(name='x', enabled=True, state='started')]))
    assert result['commands'] == ['systemctl daemon-reload'] and result['changed'] is False


def test_a_missing_unit_fails_naming_it(systemd):
    systemd.add('nginx', file_state='disabled')
    result = run_module(units, dict(units=[dict(name='nginx', enabled=True),
                                           dict(name='no-such-thing', state='started')]), expect_fail=True)
    assert 'no-such-thing' in result['msg'] and 'Could not find the requested unit' in result['msg']
    assert verbs(systemd) == [], 'refused before acting on any unit'


def test_a_missing_unit_is_still_missing_after_the_reload(systemd):
    result = run_module(units, dict(daemon_reload=True, units=[dict(name='ghost', enabled=False)]), expect_fail=True)
    assert 'ghost' in result['msg'] and result['commands'] == ['systemctl daemon-reload']


def test_a_missing_unit_can_be_masked(systemd):
    result = run_module(units, dict(units=[dict(name='redis-server.service', masked=True, enabled=False,
                                                state='stopped')]))
    assert result['commands'] == ['systemctl mask redis-server.service'] and result['changed'] is True
    assert result['units'][0]['after']['LoadState'] == 'masked'


def test_mask_then_stop_skipping_disable(systemd):
    systemd.add('redis-server', active='active', file_state='enabled')
    args = dict(units=[dict(name='redis-server.service', masked=True, enabled=False, state='stopped')])
    result = run_module(units, args)
    assert result['commands'] == ['systemctl mask redis-server.service', 'systemctl stop redis-server.service']
    assert result['units'][0]['after']['UnitFileState'] == 'masked'
    again = run_module(units, args)
    assert again['changed'] is False and again['commands'] == []


def test_unmask_reads_again_before_deciding_enable(systemd):
    """An unmasked unit whose wants link survived is enabled: enabled=false must then disable it."""
    systemd.add('x', file_state='masked', load='masked', unmasked_file_state='enabled')
    result = run_module(units, dict(units=[dict(name='x', masked=False, enabled=False)]))
    assert result['commands'] == ['systemctl unmask x', 'systemctl disable x']
    assert result['units'][0]['actions'] == ['unmask', 'disable']
    assert systemd.units['x.service']['UnitFileState'] == 'disabled'


def test_unmask_then_enable_and_start(systemd):
    systemd.add('x', file_state='masked', load='masked')
    result = run_module(units, dict(units=[dict(name='x', masked=False, enabled=True, state='started')]))
    assert result['commands'] == ['systemctl unmask x', 'systemctl enable x', 'systemctl start x']


def test_check_mode_reports_without_acting(systemd):
    systemd.add('a', file_state='disabled', need_reload='yes').add('b', active='active', file_state='enabled')
    args = dict(daemon_reload=True, units=[dict(name='a', enabled=True, state='started'),
                                           dict(name='b', state='stopped')])
    result = run_module(units, args, check_mode=True)
    assert result['changed'] is True
    assert result['commands'] == ['systemctl daemon-reload', 'systemctl enable a', 'systemctl start a',
                                  'systemctl stop b']
    assert verbs(systemd) == [] and len(shows(systemd)) == 1
    a_entry = result['units'][0]
    assert a_entry['after']['ActiveState'] == 'active' and a_entry['after']['UnitFileState'] == 'enabled'
    assert 'SubState' not in a_entry['after'], 'a prediction does not guess the sub-state'
    assert [diff['before_header'] for diff in result['diff']] == ['a', 'b']


def test_check_mode_reports_a_missing_unit_as_a_change(systemd):
    result = run_module(units, dict(daemon_reload=True, units=[dict(name='later', enabled=False, state='stopped')]),
                        check_mode=True)
    assert result['changed'] is True and verbs(systemd) == []
    assert result['commands'] == ['systemctl daemon-reload']
    started = run_module(units, dict(units=[dict(name='later', enabled=True, state='started')]), check_mode=True)
    assert started['changed'] is True and started['commands'] == ['systemctl enable later', 'systemctl start later']


def test_check_mode_of_an_unmask_predicts_a_disabled_unit(systemd):
    systemd.add('x', file_state='masked', load='masked')
    result = run_module(units, dict(units=[dict(name='x', masked=False, enabled=True, state='started')]),
                        check_mode=True)
    assert result['commands'] == ['systemctl unmask x', 'systemctl enable x', 'systemctl start x']
    assert verbs(systemd) == []


def test_a_failing_verb_fails_with_systemctls_words_and_what_ran(systemd):
    systemd.add('a', file_state='disabled').add('b', file_state='disabled')
    systemd.fail_verbs['start'] = 'Job for b.service failed because the control process exited with error code.\n'
    result = run_module(units, dict(units=[dict(name='a', enabled=True), dict(name='b', state='started')]),
                        expect_fail=True)
    assert result['msg'].startswith('Unable to start b: Job for b.service failed')
    assert result['changed'] is True and result['commands'] == ['systemctl enable a', 'systemctl start b']


def test_starting_a_masked_unit_fails_as_systemctl_does(systemd):
    systemd.add('x', file_state='masked', load='masked')
    result = run_module(units, dict(units=[dict(name='x', state='started')]), expect_fail=True)
    assert 'Unable to start x' in result['msg'] and 'masked' in result['msg']


def test_unreadable_show_output_fails(systemd):
    systemd.add('x')
    with mock.patch.object(systemd, 'show', return_value='garbage\n'):
        result = run_module(units, dict(units=[dict(name='x', state='started')]), expect_fail=True)
    assert 'could not read the state of x' in result['msg']


def test_failing_show_fails(systemd):
    def broken(argv, environ_update=None):  # pylint: disable=unused-argument
        return 1, '', 'Failed to connect to bus: No such file or directory\n'
    with mock.patch.object(systemd, 'run_argv', broken):
        result = run_module(units, dict(units=[dict(name='x', state='started')]), expect_fail=True)
    assert result['msg'] == 'systemctl show failed (rc=1): Failed to connect to bus: No such file or directory'


def test_an_alias_and_a_repeated_unit(systemd):
    systemd.add('ssh', active='active', file_state='enabled').alias('sshd', 'ssh')
    systemd.add('a')
    result = run_module(units, dict(units=[dict(name='sshd', state='started'), dict(name='a', state='started'),
                                           dict(name='a', enabled=True)]))
    assert result['commands'] == ['systemctl start a', 'systemctl enable a']
    assert result['units'][0]['before']['Id'] == 'ssh.service'
    assert shows(systemd)[0] == ['sshd', 'a'], 'each name asked once'


def test_no_units_is_ok_without_systemctl(systemd):
    result = run_module(units, dict(daemon_reload=True, units=[]))
    assert result == dict(changed=False, units=[], commands=[]) and systemd.calls == []


def test_bad_arguments_are_refused_naming_the_option(systemd):
    state = run_module(units, dict(units=[dict(name='x', state='running')]), expect_fail=True)
    assert 'state' in state['msg'] and 'running' in state['msg']
    glob = run_module(units, dict(units=[dict(name='mastodon-*')]), expect_fail=True)
    assert 'units[0].name' in glob['msg'] and 'glob' in glob['msg']
    assert systemd.calls == []


def test_crlf_output_is_read(systemd):
    systemd.crlf = True
    systemd.add('nginx', active='active', file_state='enabled')
    result = run_module(units, dict(units=[dict(name='nginx', enabled=True, state='started')]))
    assert result['changed'] is False and result['units'][0]['before']['UnitFileState'] == 'enabled'
