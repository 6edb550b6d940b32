# -*- coding: utf-8 -*-
"""fediops.mastodon.units pure logic: the probe command, reading ``systemctl show``, deciding the systemctl verbs."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import units

PROPS = 'Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload,DropInPaths'


def state(active='inactive', file_state='disabled', load='loaded', need_reload='no', sub='dead', unit_id='x.service'):
    return dict(Id=unit_id, LoadState=load, ActiveState=active, SubState=sub, UnitFileState=file_state,
                NeedDaemonReload=need_reload)


def want(name='x', enabled=None, state=None, masked=None, restart_if_running=None):  # pylint: disable=redefined-outer-name
    return dict(name=name, enabled=enabled, state=state, masked=masked, restart_if_running=restart_if_running)


# --- the probe command -------------------------------------------------------------------------------------------

def test_probe_command_quotes_names_and_keeps_the_locale_out():
    command = units.probe_command(['postgresql@15-main', 'a b', "it's", '-.mount'])
    assert command.startswith('LC_ALL=C systemctl show --no-pager -p %s -- ' % PROPS)
    show, marker, listing = command.partition('; rc=$?; echo %s; ' % units.DROPIN_MARKER)
    assert marker and listing.endswith('; exit $rc')
    assert shlex.split(show) == ['LC_ALL=C', 'systemctl', 'show', '--no-pager', '-p', PROPS, '--',
                                 'postgresql@15-main', 'a b', "it's", '-.mount']
    # every drop-in directory of every name is listed, quoted, with the glob itself left to the shell
    loop = shlex.split(listing.partition('; do ')[0])
    assert loop[:3] == ['for', 'f', 'in']
    assert loop[3:] == ['%s/*.conf' % directory for name in ['postgresql@15-main', 'a b', "it's", '-.mount']
                        for directory in units.dropin_directories(name)]
    assert "'/etc/systemd/system/a b.service.d'/*.conf" in listing


FAKE_SYSTEMCTL = """#!/bin/sh
# Prints what it was asked and its locale, exits with FAKE_RC.
echo "LC_ALL=$LC_ALL"
for arg in "$@"; do echo "arg=$arg"; done
exit "${FAKE_RC:-0}"
"""


def run_probe(tmp_path, names, rc=0):
    """The probe command run by a real /bin/sh, with a fake systemctl first in PATH."""
    bindir = tmp_path / 'bin'
    bindir.mkdir(exist_ok=True)
    (bindir / 'systemctl').write_text(FAKE_SYSTEMCTL)
    (bindir / 'systemctl').chmod(0o755)
    env = dict(PATH='%s:/usr/bin:/bin' % bindir, FAKE_RC=str(rc), LC_ALL='de_DE.UTF-8')
    return subprocess.run(['/bin/sh', '-c', units.probe_command(names)], env=env, capture_output=True, text=True,
                          check=False)


@pytest.fixture
def dropin_root(tmp_path, monkeypatch):
    """DROPIN_DIRECTORIES moved under tmp_path (etc and run), so that the probe lists files the test wrote."""
    roots = (str(tmp_path / 'etc'), str(tmp_path / 'run'))
    monkeypatch.setattr(units, 'DROPIN_DIRECTORIES', roots)
    return roots


def test_the_probe_in_a_real_shell_lists_the_drop_ins_on_disk(tmp_path, dropin_root):
    etc, run = dropin_root
    written = ['%s/postgresql@15-main.service.d/override.conf' % etc, '%s/postgresql@.service.d/limits.conf' % etc,
               '%s/a b.service.d/x.conf' % run, "%s/it's.timer.d/y.conf" % etc]
    ignored = ['%s/postgresql@15-main.service.d/notes.txt' % etc, '%s/postgresql@15-main.service.d/.hidden.conf' % etc,
               '%s/other.service.d/z.conf' % etc, '%s/postgresql@16-main.service.d/z.conf' % etc]
    for path in written + ignored:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write('[Service]\n')
    probe = run_probe(tmp_path, ['postgresql@15-main', 'a b', "it's.timer", 'nothing-here'], rc=0)
    assert probe.returncode == 0, probe.stderr
    shown, on_disk = units.split_probe(probe.stdout)
    assert on_disk == set(written)
    assert shown.splitlines() == ['LC_ALL=C', 'arg=show', 'arg=--no-pager', 'arg=-p', 'arg=%s' % PROPS, 'arg=--',
                                  'arg=postgresql@15-main', 'arg=a b', "arg=it's.timer", 'arg=nothing-here']


@pytest.mark.parametrize('rc', [0, 1, 3])
def test_the_probe_in_a_real_shell_exits_with_systemctls_code(tmp_path, dropin_root, rc):
    """With no drop-in at all the loop's failing test must not become the exit code, nor hide systemctl's."""
    del dropin_root
    probe = run_probe(tmp_path, ['nginx'], rc=rc)
    assert probe.returncode == rc, probe.stderr
    assert units.split_probe(probe.stdout)[1] == set()


def test_probe_argv_uses_the_given_systemctl():
    assert units.probe_argv(['nginx'], '/usr/bin/systemctl') == [
        '/usr/bin/systemctl', 'show', '--no-pager', '-p', PROPS, '--', 'nginx']


def test_unique_names_keeps_the_first_order():
    assert units.unique_names([want('b'), want('a'), want('b'), want('c.timer')]) == ['b', 'a', 'c.timer']


# --- drop-ins systemd has not loaded (systemd/systemd#31752) -------------------------------------------------------

@pytest.mark.parametrize('name, directories', [
    ('nginx', ['/etc/systemd/system/nginx.service.d', '/run/systemd/system/nginx.service.d']),
    ('nginx.service', ['/etc/systemd/system/nginx.service.d', '/run/systemd/system/nginx.service.d']),
    ('postgresql@15-main', ['/etc/systemd/system/postgresql@15-main.service.d',
                            '/etc/systemd/system/postgresql@.service.d',
                            '/run/systemd/system/postgresql@15-main.service.d',
                            '/run/systemd/system/postgresql@.service.d']),
    ('fediops-backup.timer', ['/etc/systemd/system/fediops-backup.timer.d',
                              '/run/systemd/system/fediops-backup.timer.d']),
    ('pgbackrest@main.timer', ['/etc/systemd/system/pgbackrest@main.timer.d', '/etc/systemd/system/pgbackrest@.timer.d',
                               '/run/systemd/system/pgbackrest@main.timer.d', '/run/systemd/system/pgbackrest@.timer.d']),
    # the template itself has no template; a dot in the instance is not a type suffix
    ('postgresql@.service', ['/etc/systemd/system/postgresql@.service.d', '/run/systemd/system/postgresql@.service.d']),
    ('redis-server@6379.example', ['/etc/systemd/system/redis-server@6379.example.service.d',
                                   '/etc/systemd/system/redis-server@.service.d',
                                   '/run/systemd/system/redis-server@6379.example.service.d',
                                   '/run/systemd/system/redis-server@.service.d']),
    ('-.mount', ['/etc/systemd/system/-.mount.d', '/run/systemd/system/-.mount.d']),
])
def test_dropin_directories(name, directories):
    assert units.dropin_directories(name) == directories


SHOWN = 'Id=x.service\nLoadState=loaded\nActiveState=active\n'


def test_split_probe():
    output = SHOWN + units.DROPIN_MARKER + '\n/etc/systemd/system/x.service.d/a.conf\n' \
        '/run/systemd/system/x.service.d/b.conf\n'
    shown, on_disk = units.split_probe(output)
    assert shown == SHOWN.rstrip('\n')
    assert on_disk == {'/etc/systemd/system/x.service.d/a.conf', '/run/systemd/system/x.service.d/b.conf'}
    assert units.parse_show(shown, ['x'])['x']['ActiveState'] == 'active'


def test_split_probe_with_no_drop_ins_and_crlf_from_a_tty():
    assert units.split_probe(SHOWN + units.DROPIN_MARKER + '\n') == (SHOWN.rstrip('\n'), set())
    crlf = (SHOWN + units.DROPIN_MARKER + '\n/etc/systemd/system/x.service.d/a.conf\n\n').replace('\n', '\r\n')
    shown, on_disk = units.split_probe(crlf)
    assert on_disk == {'/etc/systemd/system/x.service.d/a.conf'}
    assert '\r' not in shown and units.parse_show(shown, ['x']) == units.parse_show(SHOWN, ['x'])


@pytest.mark.parametrize('output', [
    SHOWN,
    '',
    SHOWN + units.DROPIN_MARKER + '\n' + units.DROPIN_MARKER + '\n',
    SHOWN + 'x' + units.DROPIN_MARKER + '\n',
])
def test_split_probe_refuses_output_without_exactly_one_marker(output):
    with pytest.raises(ValueError, match='marker'):
        units.split_probe(output)


def loaded_with(*dropins, **kwargs):
    return dict(state(active='active', file_state='enabled', **kwargs), DropInPaths=' '.join(dropins))


NEW = '/etc/systemd/system/mastodon-web.service.d/override.conf'


def test_mark_unloaded_dropins_a_new_drop_in_needs_a_reload():
    states = {'mastodon-web': loaded_with()}
    assert units.mark_unloaded_dropins(states, ['mastodon-web'], {NEW}) is states
    assert states['mastodon-web']['NeedDaemonReload'] == 'yes'
    assert units.plan([want('mastodon-web', state='started')], states, True)['daemon_reload'] is True


def test_mark_unloaded_dropins_a_loaded_drop_in_does_not():
    packaged = '/usr/lib/systemd/system/mastodon-web.service.d/packaged.conf'
    states = {'mastodon-web': loaded_with(packaged, NEW)}
    units.mark_unloaded_dropins(states, ['mastodon-web'], {NEW})
    assert states['mastodon-web']['NeedDaemonReload'] == 'no'
    # nothing on disk where the roles write: what systemd loaded elsewhere does not matter
    units.mark_unloaded_dropins(states, ['mastodon-web'], set())
    assert states['mastodon-web']['NeedDaemonReload'] == 'no'


def test_mark_unloaded_dropins_a_template_drop_in_counts_for_the_instance():
    template = '/run/systemd/system/postgresql@.service.d/limits.conf'
    states = {'postgresql@15-main': loaded_with(), 'postgresql@16-main': loaded_with(template)}
    units.mark_unloaded_dropins(states, ['postgresql@15-main', 'postgresql@16-main'], {template})
    assert states['postgresql@15-main']['NeedDaemonReload'] == 'yes'
    assert states['postgresql@16-main']['NeedDaemonReload'] == 'no'


def test_mark_unloaded_dropins_only_a_units_own_drop_ins_count():
    states = {'a': loaded_with(), 'ab': loaded_with()}
    units.mark_unloaded_dropins(states, ['a', 'ab'], {'/etc/systemd/system/ab.service.d/x.conf',
                                                      '/etc/systemd/system/a.service.d.conf'})
    assert states['a']['NeedDaemonReload'] == 'no' and states['ab']['NeedDaemonReload'] == 'yes'


def test_mark_unloaded_dropins_leaves_units_that_are_not_loaded():
    not_found = state(load='not-found', file_state='')
    masked = state(load='masked', file_state='masked')
    states = {'later': dict(not_found, DropInPaths=''), 'redis-server': dict(masked, DropInPaths='')}
    on_disk = {'/etc/systemd/system/later.service.d/x.conf', '/etc/systemd/system/redis-server.service.d/x.conf'}
    units.mark_unloaded_dropins(states, ['later', 'redis-server'], on_disk)
    assert states == {'later': dict(not_found, DropInPaths=''), 'redis-server': dict(masked, DropInPaths='')}


def test_mark_unloaded_dropins_keeps_what_systemd_reported():
    """A drop-in that systemd noticed itself (an existing directory) stays a reload: never cleared here."""
    states = {'x': loaded_with(NEW, need_reload='yes')}
    units.mark_unloaded_dropins(states, ['x'], set())
    assert states['x']['NeedDaemonReload'] == 'yes'


def test_mark_unloaded_dropins_from_parsed_output_without_drop_in_paths():
    """An older systemctl that printed no DropInPaths: every drop-in on disk counts as not loaded (a reload)."""
    states = units.parse_show('Id=x.service\nLoadState=loaded\nActiveState=active\n', ['x'])
    units.mark_unloaded_dropins(states, ['x'], {'/etc/systemd/system/x.service.d/a.conf'})
    assert states['x']['NeedDaemonReload'] == 'yes'


# --- parsing -----------------------------------------------------------------------------------------------------

SHOW_TWO = ('Id=postgresql@15-main.service\nNeedDaemonReload=no\nLoadState=loaded\nActiveState=active\n'
            'SubState=running\nDropInPaths=/etc/systemd/system/postgresql@.service.d/limits.conf '
            '/etc/systemd/system/postgresql@15-main.service.d/override.conf\nUnitFileState=enabled\n\n'
            'Id=ssh.service\nNeedDaemonReload=yes\nLoadState=loaded\nActiveState=inactive\nSubState=dead\n'
            'UnitFileState=disabled\n')


def test_parse_blocks_in_the_order_asked_matched_by_position():
    """sshd is an alias: systemctl shows it under the real Id, so blocks are matched by position, not Id."""
    parsed = units.parse_show(SHOW_TWO, ['postgresql@15-main', 'sshd'])
    assert list(parsed) == ['postgresql@15-main', 'sshd']
    assert parsed['postgresql@15-main'] == dict(Id='postgresql@15-main.service', NeedDaemonReload='no',
                                                LoadState='loaded', ActiveState='active', SubState='running',
                                                UnitFileState='enabled', DropInPaths=(
                                                    '/etc/systemd/system/postgresql@.service.d/limits.conf '
                                                    '/etc/systemd/system/postgresql@15-main.service.d/override.conf'))
    assert parsed['sshd']['Id'] == 'ssh.service' and parsed['sshd']['NeedDaemonReload'] == 'yes'


def test_parse_crlf_from_a_tty_and_stray_blank_lines():
    text = '\r\n' + SHOW_TWO.replace('\n', '\r\n').replace('\r\n\r\n', '\r\n\r\n\r\n') + '\r\n\r\n'
    assert units.parse_show(text, ['a', 'b']) == units.parse_show(SHOW_TWO, ['a', 'b'])
    assert all('\r' not in value for block in units.parse_show(text, ['a', 'b']).values() for value in block.values())


def test_parse_empty_values_and_missing_optional_properties():
    """A not-found unit has an empty UnitFileState; an older systemctl may leave one out."""
    text = 'Id=nope.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n'
    parsed = units.parse_show(text, ['nope'])['nope']
    assert parsed['UnitFileState'] == '' and parsed['NeedDaemonReload'] == 'no'
    parsed = units.parse_show('LoadState=loaded\nActiveState=active\n', ['x'])['x']
    assert parsed == dict(Id='', LoadState='loaded', ActiveState='active', SubState='', UnitFileState='',
                          NeedDaemonReload='no', DropInPaths='')


def test_parse_a_value_holding_an_equals_sign_keeps_it():
    parsed = units.parse_show('Id=a=b.service\nLoadState=loaded\nActiveState=active\n', ['a=b'])
    assert parsed['a=b']['Id'] == 'a=b.service'


@pytest.mark.parametrize('text, names, reason', [
    (SHOW_TWO, ['only-one'], 'block'),
    (SHOW_TWO, ['a', 'b', 'c'], 'block'),
    ('', ['a'], 'block'),
    ('sudo: unable to resolve host h1\n' + SHOW_TWO, ['a', 'b'], 'unexpected line'),
    ('Failed to get properties: Access denied\n', ['a'], 'unexpected line'),
    ('Id=a.service\nLoadState=loaded\nActiveState=active\nLoadState=loaded\n', ['a'], 'twice'),
    ('Id=a.service\nLoadState=loaded\nMainPID=12\nActiveState=active\n', ['a'], 'unexpected line'),
    ('Id=a.service\nActiveState=active\n', ['a'], 'LoadState'),
    ('Id=a.service\nLoadState=loaded\nActiveState=\n', ['a'], 'ActiveState'),
])
def test_parse_refuses_output_it_cannot_trust(text, names, reason):
    with pytest.raises(ValueError, match=reason):
        units.parse_show(text, names)


# --- predicates --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('active, running', [
    ('active', True), ('activating', True), ('reloading', True), ('refreshing', True),
    ('inactive', False), ('failed', False), ('deactivating', False), ('maintenance', False),
])
def test_running_states(active, running):
    assert units.is_running(state(active=active)) is running


@pytest.mark.parametrize('file_state, enabled', [
    ('enabled', True), ('static', True), ('generated', True), ('transient', True),
    # is-enabled exits 0 for these, but systemd_service enables them for good (Debian's postgresql@15-main is
    # enabled-runtime through a generator until enabled)
    ('enabled-runtime', False), ('alias', False), ('indirect', False),
    ('disabled', False), ('linked', False), ('linked-runtime', False), ('masked', False), ('masked-runtime', False),
    ('bad', False), ('', False),
])
def test_enabled_states_are_those_systemd_service_counts(file_state, enabled):
    assert units.is_enabled(state(file_state=file_state)) is enabled


def test_masked_by_file_state_or_load_state():
    assert units.is_masked(state(file_state='masked', load='masked'))
    assert units.is_masked(state(file_state='masked-runtime'))
    assert units.is_masked(state(file_state='', load='masked'))
    assert not units.is_masked(state(file_state='disabled'))


def test_needs_reload_when_stale_or_not_found():
    assert units.needs_reload(state(need_reload='yes'))
    assert units.needs_reload(state(load='not-found', file_state=''))
    assert not units.needs_reload(state())
    assert not units.needs_reload(state(load='masked', file_state='masked'))


# --- decisions per unit ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('current, wanted, actions', [
    # nothing asked: nothing to do, whatever the state
    (state(active='failed', file_state='masked'), want(), []),
    # started / stopped
    (state(active='active'), want(state='started'), []),
    (state(active='activating'), want(state='started'), []),
    (state(active='reloading'), want(state='started'), []),
    (state(active='inactive'), want(state='started'), ['start']),
    (state(active='failed'), want(state='started'), ['start']),
    (state(active='deactivating'), want(state='started'), ['start']),
    (state(active='active'), want(state='stopped'), ['stop']),
    (state(active='activating'), want(state='stopped'), ['stop']),
    (state(active='inactive'), want(state='stopped'), []),
    (state(active='failed'), want(state='stopped'), []),
    (state(active='deactivating'), want(state='stopped'), []),
    # enabled true / false
    (state(file_state='enabled'), want(enabled=True), []),
    (state(file_state='enabled-runtime'), want(enabled=True), ['enable']),
    (state(file_state='static'), want(enabled=True), []),
    (state(file_state='indirect'), want(enabled=True), ['enable']),
    (state(file_state='alias'), want(enabled=True), ['enable']),
    (state(file_state='generated'), want(enabled=True), []),
    (state(file_state='transient'), want(enabled=True), []),
    (state(file_state='disabled'), want(enabled=True), ['enable']),
    (state(file_state='linked'), want(enabled=True), ['enable']),
    (state(file_state='disabled'), want(enabled=False), []),
    (state(file_state='linked-runtime'), want(enabled=False), []),
    (state(file_state='enabled'), want(enabled=False), ['disable']),
    (state(file_state='static'), want(enabled=False), ['disable']),
    (state(file_state='indirect'), want(enabled=False), []),
    (state(file_state='enabled-runtime'), want(enabled=False), []),
    # enable before start, as systemd_service
    (state(file_state='disabled', active='inactive'), want(enabled=True, state='started'), ['enable', 'start']),
    (state(file_state='enabled', active='active'), want(enabled=False, state='stopped'), ['disable', 'stop']),
    (state(file_state='enabled', active='active'), want(enabled=True, state='started'), []),
    # masking comes first; a unit that is or will be masked skips enable/disable
    (state(file_state='enabled', active='active'), want(masked=True, enabled=False, state='stopped'),
     ['mask', 'stop']),
    (state(file_state='masked', load='masked'), want(masked=True, enabled=False, state='stopped'), []),
    (state(file_state='masked-runtime', load='masked'), want(masked=True), []),
    (state(file_state='masked', load='masked'), want(enabled=True), []),
    (state(file_state='masked', load='masked'), want(enabled=False), []),
    (state(file_state='masked', load='masked'), want(masked=False), ['unmask']),
    (state(file_state='masked', load='masked'), want(masked=False, enabled=True, state='started'),
     ['unmask', 'enable', 'start']),
    (state(file_state='masked', load='masked'), want(masked=False, enabled=False), ['unmask']),
    (state(file_state='enabled'), want(masked=False, enabled=True), []),
    (state(file_state='disabled'), want(masked=True, enabled=True), ['mask']),
    # a template instance is a unit like any other
    (state(file_state='enabled', active='inactive', unit_id='postgresql@15-main.service'),
     want('postgresql@15-main', enabled=True, state='started'), ['start']),
    (state(file_state='enabled-runtime', active='active', unit_id='postgresql@15-main.service'),
     want('postgresql@15-main', enabled=True, state='started'), ['enable']),
    # a not-found unit: masking works, the rest is refused (see is_missing)
    (state(load='not-found', file_state=''), want(masked=True), ['mask']),
    (state(load='not-found', file_state=''), want(masked=False), []),
    (state(load='not-found', file_state=''), want(enabled=True, state='started'), ['enable', 'start']),
    # restart_if_running: try-restart's rule, a unit that is not running is left for whatever starts it later
    (state(active='active'), want(restart_if_running=True), ['restart']),
    (state(active='activating'), want(restart_if_running=True), ['restart']),
    (state(active='inactive'), want(restart_if_running=True), []),
    (state(active='failed'), want(restart_if_running=True), []),
    (state(active='active'), want(restart_if_running=False), []),
    (state(active='inactive', file_state='disabled'), want(enabled=True, state='started', restart_if_running=True),
     ['enable', 'start']),
    (state(active='active', file_state='disabled'), want(enabled=True, state='started', restart_if_running=True),
     ['enable', 'restart']),
    (state(active='active', file_state='enabled'), want(masked=True, restart_if_running=True), ['mask']),
])
def test_unit_actions(current, wanted, actions):
    assert units.unit_actions(wanted, current) == actions


@pytest.mark.parametrize('wanted, missing', [
    (want(enabled=True), True),
    (want(enabled=False), True),
    (want(state='started'), True),
    (want(state='stopped'), True),
    (want(masked=True), False),
    (want(masked=False), False),
    (want(), False),
    (want(masked=True, state='stopped', enabled=False), False),
    (want(masked=True, state='started'), True),
    (want(masked=False, enabled=True), True),
])
def test_a_not_found_unit_is_missing_when_asked_what_only_an_existing_unit_can_do(wanted, missing):
    assert units.is_missing(wanted, state(load='not-found', file_state='')) is missing
    assert units.is_missing(wanted, state()) is False


# --- the whole plan ----------------------------------------------------------------------------------------------

def test_plan_converged():
    states = {'a': state(active='active', file_state='enabled'), 'b': state(file_state='static', active='active')}
    decided = units.plan([want('a', enabled=True, state='started'), want('b', state='started')], states, True)
    assert decided == dict(daemon_reload=False, converged=True, units=[
        dict(name='a', actions=[], missing=False), dict(name='b', actions=[], missing=False)])


def test_plan_daemon_reload_only_when_asked_and_a_unit_needs_it():
    stale = {'a': state(active='active', file_state='enabled', need_reload='yes')}
    wanted = [want('a', enabled=True, state='started')]
    assert units.plan(wanted, stale, True)['daemon_reload'] is True
    assert units.plan(wanted, stale, True)['converged'] is False
    # not asked: a stale unit is left as systemd_service leaves it
    assert units.plan(wanted, stale, False) == dict(
        daemon_reload=False, converged=True, units=[dict(name='a', actions=[], missing=False)])
    fresh = {'a': state(active='active', file_state='enabled')}
    assert units.plan(wanted, fresh, True)['daemon_reload'] is False


def test_plan_not_found_needs_the_module():
    states = {'new': state(load='not-found', file_state='')}
    decided = units.plan([want('new', enabled=True, state='started')], states, True)
    assert decided['daemon_reload'] is True and decided['converged'] is False
    assert decided['units'] == [dict(name='new', actions=['enable', 'start'], missing=True)]
    stopped = units.plan([want('new', state='stopped')], states, False)
    assert stopped['units'] == [dict(name='new', actions=[], missing=True)] and stopped['converged'] is False
    # masked=false on a unit that does not exist holds
    assert units.plan([want('new', masked=False)], states, False)['converged'] is True


def test_plan_keeps_the_order_and_repeats():
    states = {'b': state(), 'a': state(active='active')}
    decided = units.plan([want('b', state='started'), want('a', state='stopped'), want('b', enabled=True)], states,
                         False)
    assert [(entry['name'], entry['actions']) for entry in decided['units']] == [
        ('b', ['start']), ('a', ['stop']), ('b', ['enable'])]


def test_plan_of_nothing_is_converged():
    assert units.plan([], {}, True) == dict(daemon_reload=False, units=[], converged=True)


# --- predictions, commands, diff text ----------------------------------------------------------------------------

def test_predict():
    before = state(active='active', file_state='enabled', sub='running')
    assert units.predict(before, 'stop') == dict(Id='x.service', LoadState='loaded', ActiveState='inactive',
                                                 UnitFileState='enabled', NeedDaemonReload='no')
    assert units.predict(before, 'mask')['UnitFileState'] == 'masked'
    assert units.predict(before, 'mask')['LoadState'] == 'masked'
    assert units.predict(state(file_state='masked', load='masked'), 'unmask')['LoadState'] == 'loaded'
    assert units.predict(state(file_state='masked', load='masked'), 'unmask')['UnitFileState'] == 'disabled'
    assert units.predict(state(), 'enable')['UnitFileState'] == 'enabled'
    assert units.predict(state(file_state='enabled'), 'disable')['UnitFileState'] == 'disabled'
    assert units.predict(state(), 'start')['ActiveState'] == 'active'
    assert units.predict(state(active='active'), 'restart')['ActiveState'] == 'active'
    assert before['SubState'] == 'running', 'predict must not change its argument'


def test_action_argv_and_command_line():
    assert units.action_argv('daemon-reload', systemctl='/bin/systemctl') == ['/bin/systemctl', 'daemon-reload']
    assert units.action_argv('start', 'postgresql@15-main', '/bin/systemctl') == [
        '/bin/systemctl', 'start', 'postgresql@15-main']
    assert units.action_argv('mask', '-.mount') == ['systemctl', 'mask', '--', '-.mount']
    assert units.command_line(['/usr/bin/systemctl', 'start', 'postgresql@15-main']) == \
        'systemctl start postgresql@15-main'
    assert units.command_line(['/usr/bin/systemctl', 'daemon-reload']) == 'systemctl daemon-reload'
    assert units.command_line(['/usr/bin/systemctl', 'start', "a'b"]) == "systemctl start 'a'\"'\"'b'"


def test_state_text():
    assert units.state_text(state(active='active', file_state='enabled')) == \
        'LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n'


# --- arguments ---------------------------------------------------------------------------------------------------

def test_check_args_normalises():
    checked = units.check_args(dict(daemon_reload='yes', units=[
        dict(name='postgresql@15-main', enabled='true', state='started'), dict(name='redis-server', masked=True)]))
    assert checked == dict(daemon_reload=True, units=[
        dict(name='postgresql@15-main', enabled=True, state='started', masked=None, restart_if_running=None),
        dict(name='redis-server', enabled=None, state=None, masked=True, restart_if_running=None)])
    assert units.check_args(dict(units=[dict(name='a', restart_if_running='yes')]))['units'][0][
        'restart_if_running'] is True
    assert units.check_args(dict(units=[])) == dict(daemon_reload=False, units=[])


@pytest.mark.parametrize('args, message', [
    (dict(), 'units is required'),
    (dict(units='nginx'), 'units must be a list'),
    (dict(units=['nginx']), r'units\[0\] must be a dict'),
    (dict(units=[dict(enabled=True)]), r'units\[0\]\.name is required'),
    (dict(units=[dict(name='')]), r'units\[0\]\.name must be a non-empty string'),
    (dict(units=[dict(name=3)]), r'units\[0\]\.name must be a non-empty string'),
    (dict(units=[dict(name='a'), dict(name='mastodon-*')]), r'units\[1\]\.name.*glob'),
    (dict(units=[dict(name='a', state='running')]), r'units\[0\]\.state must be one of started, stopped'),
    (dict(units=[dict(name='a', state='restarted')]), r'units\[0\]\.state'),
    (dict(units=[dict(name='a', enabled='maybe')]), r'units\[0\]\.enabled must be a boolean'),
    (dict(units=[dict(name='a', masked='sometimes')]), r'units\[0\]\.masked must be a boolean'),
    (dict(units=[dict(name='a', restart_if_running='often')]), r'units\[0\]\.restart_if_running must be a boolean'),
    (dict(units=[dict(name='a', state='stopped', restart_if_running=True)]), r'units\[0\]: restart_if_running and state'),
    (dict(units=[dict(name='a', daemon_reload=True)]), r'units\[0\]: unsupported option\(s\) daemon_reload'),
    (dict(units=[], daemon_reload='often'), 'daemon_reload must be a boolean'),
    (dict(units=[], name='nginx'), r'unsupported option\(s\): name'),
])
def test_check_args_names_the_bad_option(args, message):
    with pytest.raises(ValueError, match=message):
        units.check_args(args)


def test_argument_spec_matches_check_args():
    spec = units.units_argument_spec()
    assert set(spec) == {'daemon_reload', 'units'}
    assert set(spec['units']['options']) == set(units.UNIT_KEYS)
    assert spec['units']['options']['state']['choices'] == list(units.STATE_CHOICES)
