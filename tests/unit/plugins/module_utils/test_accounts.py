# -*- coding: utf-8 -*-
"""fediops.mastodon.accounts, pure side: argument checks, the probe (run in a real /bin/sh against a stand-in
getent/passwd), its parsing, and what differs."""

from __future__ import annotations

import subprocess

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.fediops.mastodon.plugins.module_utils import accounts
from ansible_collections.fediops.mastodon.plugins.module_utils.accounts import ProbeError

from ..fake_accounts import FakeAccounts


def normalised(groups=(), users=(), spec=None):
    """Arguments as the module or action sees them after its argument spec."""
    result = ArgumentSpecValidator(spec or accounts.ARGUMENT_SPEC).validate(
        dict(groups=list(groups), users=list(users)))
    assert not result.error_messages, result.error_messages
    params = result.validated_parameters
    assert accounts.check_arguments(params['groups'], params['users']) == []
    return params['groups'], params['users']


def probe(host, groups, users, crlf=True):
    command = accounts.probe_command(groups, users)
    done = subprocess.run(['/bin/sh', '-c', command], capture_output=True, text=True, env=host.env(), check=False)
    stdout = done.stdout.replace('\n', '\r\n') if crlf else done.stdout
    return accounts.parse_probe(done.returncode, stdout, groups, users)


def decide(host, groups, users):
    return accounts.differences(groups, users, probe(host, groups, users))


@pytest.fixture
def host(tmp_path):
    return FakeAccounts(tmp_path)


MASTODON_USER = dict(name='mastodon', group='mastodon', system=True, home='/opt/mastodon', create_home=False,
                     shell='/usr/sbin/nologin', password_locked=True)


def converged_mastodon(host):
    return host.add_group('mastodon', 996).add_user('mastodon', 996, 996, home='/opt/mastodon')


# Arguments

def test_defaults_and_normalisation():
    groups, users = normalised([dict(name='mastodon')],
                               [dict(name='mastodon', groups=' ssl-cert, ssl-cert ,adm')])
    assert groups == [dict(name='mastodon', system=False, gid=None)]
    assert users[0]['groups'] == ['ssl-cert', 'adm']
    assert users[0]['create_home'] is True and users[0]['system'] is False
    assert users[0]['password_locked'] is None and users[0]['home'] is None


@pytest.mark.parametrize('groups, users, message', [
    ([dict(name='bad name')], [], "'bad name' is not a usable group name"),
    ([dict(name='-x')], [], 'not a usable group name'),
    ([dict(name='990')], [], 'not a usable group name'),
    ([dict(name='a' * 33)], [], 'not a usable group name'),
    ([dict(name='g'), dict(name='g')], [], 'g is listed twice'),
    ([dict(name='g', gid=-1)], [], 'gid must not be negative'),
    ([], [dict(name='u:x')], 'not a usable user name'),
    ([], [dict(name='u'), dict(name='u')], 'u is listed twice'),
    ([], [dict(name='u', uid=-5)], 'uid must not be negative'),
    ([], [dict(name='u', group='a b')], 'neither a group name nor a gid'),
    ([], [dict(name='u', groups=['ok', 'not:ok'])], 'groups: \'not:ok\''),
    ([], [dict(name='u', groups=['ok', ''])], "groups: ''"),
    ([], [dict(name='u', comment='a:b')], 'comment'),
    ([], [dict(name='u', home='/x\n/y')], 'home'),
    ([], [dict(name='u', shell='/bin/sh:')], 'shell'),
    ([], [dict(name='u', home='  ')], 'home must not be empty'),
])
def test_bad_arguments_are_named(groups, users, message):
    params = ArgumentSpecValidator(accounts.ARGUMENT_SPEC).validate(dict(groups=groups, users=users))
    assert not params.error_messages
    problems = accounts.check_arguments(params.validated_parameters['groups'], params.validated_parameters['users'])
    assert any(message in problem for problem in problems), problems


def test_action_spec_keeps_home_as_given():
    assert accounts.ARGUMENT_SPEC['users']['options']['home']['type'] == 'path'
    assert accounts.action_argument_spec()['users']['options']['home']['type'] == 'str'
    groups, users = normalised(users=[dict(name='u', home='~u/x')], spec=accounts.action_argument_spec())
    assert users[0]['home'] == '~u/x'
    assert accounts.probeable(users) is False
    assert accounts.probeable([dict(name='u', home='/srv/$X')]) is False
    assert accounts.probeable([dict(name='u', home='/srv/x'), dict(name='v', home=None)]) is True


def test_group_keys_in_first_order_each_once():
    groups, users = normalised([dict(name='mastodon'), dict(name='ssl-cert')],
                               [dict(name='a', group='mastodon', groups=['adm', 'ssl-cert']),
                                dict(name='b', group='990', groups=['adm'])])
    assert accounts.group_keys(groups, users) == ['mastodon', 'ssl-cert', 'adm', '990']


# The probe against the stand-in host

def test_converged_host_has_no_differences(host):
    converged_mastodon(host).add_group('ssl-cert', 110, ['mastodon'])
    groups, users = normalised([dict(name='mastodon', system=True)],
                               [dict(MASTODON_USER, groups=['ssl-cert'], comment='')])
    state = probe(host, groups, users)
    assert state['groups']['ssl-cert'] == dict(name='ssl-cert', gid=110, members=['mastodon'])
    assert state['users']['mastodon'] == dict(name='mastodon', uid=996, gid=996, comment='', home='/opt/mastodon',
                                              shell='/usr/sbin/nologin')
    assert state['locks'] == {'mastodon': 'L'}
    assert state['homes'] == {}
    group_changes, user_changes = accounts.differences(groups, users, state)
    assert group_changes == {'mastodon': []} and user_changes == {'mastodon': []}
    assert accounts.converged(group_changes, user_changes)


def test_probe_asks_only_what_is_needed(host):
    groups, users = normalised(users=[dict(name='u', create_home=False)])
    command = accounts.probe_command(groups, users)
    assert 'q u0 passwd u' in command
    assert 's p0' not in command and 'h h0' not in command
    assert command.startswith('exec 2>/dev/null; LC_ALL=C; export LC_ALL; ')


def test_quoting_of_odd_values(host, tmp_path):
    home = tmp_path / "it's home"
    home.mkdir()
    host.add_user('u', 1000, 1000, home=str(home), comment="it's me, Mario", shell='/bin/sh')
    host.add_group('u', 1000)
    groups, users = normalised(users=[dict(name='u', home=str(home), comment="it's me, Mario", shell='/bin/sh')])
    assert decide(host, groups, users) == ({}, {'u': []})


def test_missing_accounts_are_created(host):
    groups, users = normalised([dict(name='mastodon', system=True)], [MASTODON_USER])
    state = probe(host, groups, users)
    assert state['groups']['mastodon'] is None and state['users']['mastodon'] is None
    assert state['locks']['mastodon'] is None  # passwd -S fails for a missing user: unknown, and created anyway
    assert accounts.differences(groups, users, state) == ({'mastodon': ['created']}, {'mastodon': ['created']})


@pytest.mark.parametrize('change, differs', [
    (dict(comment='Mastodon'), 'comment'),
    (dict(home='/srv/mastodon'), 'home'),
    (dict(shell='/bin/bash'), 'shell'),
    (dict(password_locked=False), 'password_locked'),
    (dict(uid=1234), 'uid'),
    (dict(groups=['ssl-cert']), 'groups'),
])
def test_each_difference_is_named(host, change, differs):
    converged_mastodon(host).add_group('ssl-cert', 110)
    groups, users = normalised([dict(name='mastodon', system=True)], [dict(MASTODON_USER, **change)])
    assert decide(host, groups, users) == ({'mastodon': []}, {'mastodon': [differs]})


def test_other_primary_group(host):
    converged_mastodon(host).add_group('www-data', 33)
    groups, users = normalised(users=[dict(MASTODON_USER, group='www-data')])
    assert decide(host, groups, users)[1] == {'mastodon': ['group']}
    groups, users = normalised(users=[dict(MASTODON_USER, group='33')])
    assert decide(host, groups, users)[1] == {'mastodon': ['group']}
    groups, users = normalised(users=[dict(MASTODON_USER, group='996')])
    assert decide(host, groups, users)[1] == {'mastodon': []}


def test_missing_primary_group_differs(host):
    host.add_user('mastodon', 996, 996, home='/opt/mastodon')
    groups, users = normalised(users=[MASTODON_USER])
    assert decide(host, groups, users)[1] == {'mastodon': ['group']}


def test_group_gid_differs(host):
    converged_mastodon(host)
    groups, users = normalised([dict(name='mastodon', gid=990)], [])
    assert decide(host, groups, users) == ({'mastodon': ['gid']}, {})
    groups, users = normalised([dict(name='mastodon', gid=996, system=True)], [])
    assert decide(host, groups, users) == ({'mastodon': []}, {})


def test_unlocked_password_differs_and_locked_star_is_locked(host):
    converged_mastodon(host)
    groups, users = normalised(users=[MASTODON_USER])
    for field, differs in (('$6$salt$hash', ['password_locked']), ('', ['password_locked']), ('*', []),
                           ('!$6$salt$hash', []), ('!', [])):
        host.users['mastodon']['password'] = field
        host.save()
        assert decide(host, groups, users)[1] == {'mastodon': differs}, field


def test_supplementary_groups_are_appended_never_removed(host):
    converged_mastodon(host).add_group('ssl-cert', 110, ['mastodon']).add_group('adm', 4, ['mastodon'])
    groups, users = normalised(users=[dict(MASTODON_USER, groups=['ssl-cert'])])
    assert decide(host, groups, users)[1] == {'mastodon': []}  # also in adm: fine
    groups, users = normalised(users=[dict(MASTODON_USER, groups=['ssl-cert', '4'])])
    assert decide(host, groups, users)[1] == {'mastodon': []}


def test_primary_group_counts_as_held(host):
    converged_mastodon(host)
    groups, users = normalised(users=[dict(MASTODON_USER, groups=['mastodon'])])
    assert decide(host, groups, users)[1] == {'mastodon': []}


def test_missing_supplementary_group_differs(host):
    converged_mastodon(host)
    groups, users = normalised(users=[dict(MASTODON_USER, groups=['ssl-cert'])])
    assert decide(host, groups, users)[1] == {'mastodon': ['groups']}


def test_home_directory_made_when_missing_only_with_create_home(host, tmp_path):
    home = tmp_path / 'home'
    host.add_group('svc', 995).add_user('svc', 995, 995, home=str(home))
    groups, users = normalised(users=[dict(name='svc', home=str(home), create_home=True)])
    assert decide(host, groups, users)[1] == {'svc': ['home_directory']}
    home.mkdir()
    assert decide(host, groups, users)[1] == {'svc': []}
    groups, users = normalised(users=[dict(name='svc', create_home=False, home='/nonexistent')])
    assert decide(host, groups, users)[1] == {'svc': ['home']}


def test_home_of_the_passwd_entry_is_tested_when_none_is_given(host, tmp_path):
    home = tmp_path / 'alice'
    host.add_group('alice', 1000).add_user('alice', 1000, 1000, home=str(home), shell='/bin/bash')
    groups, users = normalised(users=[dict(name='alice', shell='/bin/bash')])
    assert decide(host, groups, users)[1] == {'alice': ['home_directory']}
    home.mkdir()
    assert decide(host, groups, users)[1] == {'alice': []}


def test_plain_newlines_parse_too(host):
    converged_mastodon(host)
    groups, users = normalised([dict(name='mastodon')], [MASTODON_USER])
    state = probe(host, groups, users, crlf=False)
    assert accounts.converged(*accounts.differences(groups, users, state))


def test_unknown_lock_status_differs():
    user = dict(name='u', groups=[], password_locked=True)
    held = dict(name='u', uid=1, gid=1, comment='', home='/', shell='/bin/sh')
    assert accounts.user_differences(user, held, {}, lock=None) == ['password_locked']


def test_planned_group_has_no_members():
    user = dict(name='u', groups=['new'], group='new')
    held = dict(name='u', uid=1, gid=5, comment='', home='/', shell='/bin/sh')
    planned = dict(new=dict(name='new', gid=None, members=[]))
    assert accounts.user_differences(user, held, planned) == ['group', 'groups']


def test_membership_follows_the_wanted_primary_group():
    # In users (gid 100) only as its primary group: moving it to mastodon needs users added.
    user = dict(name='u', group='mastodon', groups=['users'])
    held = dict(name='u', uid=1, gid=100, comment='', home='/', shell='/bin/sh')
    known = dict(mastodon=dict(name='mastodon', gid=996, members=[]), users=dict(name='users', gid=100, members=[]))
    assert accounts.missing_groups(user, held, known) == ['users']
    assert accounts.user_differences(user, held, known) == ['group', 'groups']


# Answers that cannot be trusted

GROUPS = [dict(name='mastodon', system=False, gid=None)]
USERS = [dict(name='mastodon', system=False, uid=None, group='mastodon', groups=[], home=None, create_home=False,
              shell=None, comment=None, password_locked=True)]
GOOD = ('FEDIOPS-ACCOUNTS-PROBE-BEGIN\n@@g0\nmastodon:x:996:\n=0\n@@u0\n'
        'mastodon:x:996:996::/opt/mastodon:/usr/sbin/nologin\n=0\n@@p0\nmastodon L 2025-05-20 0 99999 7 -1\n=0\n'
        'FEDIOPS-ACCOUNTS-PROBE-END\n')


def test_good_answer_parses_with_noise_around():
    state = accounts.parse_probe(0, 'Last login: yesterday\r\n' + GOOD.replace('\n', '\r\n') + 'bye\r\n',
                                 GROUPS, USERS)
    assert accounts.converged(*accounts.differences(GROUPS, USERS, state))


@pytest.mark.parametrize('rc, stdout, message', [
    (1, GOOD, 'exited with 1'),
    (0, GOOD.replace('FEDIOPS-ACCOUNTS-PROBE-END\n', ''), 'no complete answer'),
    (0, '', 'no complete answer'),
    (0, GOOD.replace('@@u0\n', ''), 'unexpected line'),
    (0, GOOD.replace('=0\n@@p0', '@@p0'), 'the answer for u0 is cut short'),
    (0, GOOD.replace('\n=0\nFEDIOPS', '\nFEDIOPS'), 'cut short'),
    (0, GOOD.replace('@@p0', '@@u0'), 'answered twice'),
    (0, GOOD.replace('@@p0', '@@p9'), 'no answer for user mastodon'),
    (0, GOOD.replace('@@g0', '@@g7'), 'no answer for group mastodon'),
    (0, GOOD.replace('mastodon:x:996:\n', 'mastodon:x:996:\nmastodon:x:997:\n'), 'getent group mastodon'),
    (0, GOOD.replace('mastodon:x:996:\n', 'mastodon:x:99a:\n'), 'gid'),
    (0, GOOD.replace('mastodon:x:996:\n', 'mastodon:x:996\n'), 'unexpected group entry'),
    (0, GOOD.replace('mastodon:x:996:\n', 'www-data:x:33:\n'), 'answered for'),
    (0, GOOD.replace('mastodon:x:996:996:', 'mastodon:x:99x:996:'), 'uid'),
    (0, GOOD.replace('mastodon:x:996:996:', 'root:x:0:0:'), 'unexpected passwd entry'),
    (0, GOOD.replace('@@u0\nmastodon:x:996:996::/opt/mastodon:/usr/sbin/nologin\n=0', '@@u0\n=1'), 'exit 1'),
    (0, GOOD.replace('=0\nFEDIOPS', '=0\n@@x1\n=0\nFEDIOPS'), 'unexpected answers x1'),
])
def test_untrusted_answers_raise(rc, stdout, message):
    with pytest.raises(ProbeError, match=message):
        accounts.parse_probe(rc, stdout, GROUPS, USERS)


def test_unreadable_lock_status_is_unknown_so_it_differs():
    state = accounts.parse_probe(0, GOOD.replace('mastodon L 2025', 'mastodon X 2025'), GROUPS, USERS)
    assert state['locks'] == {'mastodon': None}
    assert accounts.differences(GROUPS, USERS, state)[1] == {'mastodon': ['password_locked']}
    state = accounts.parse_probe(0, GOOD.replace('mastodon L 2025-05-20 0 99999 7 -1\n=0', '=1'), GROUPS, USERS)
    assert state['locks'] == {'mastodon': None}


def test_home_answer_must_be_yes_or_no():
    users = [dict(USERS[0], create_home=True, password_locked=None)]
    good = GOOD.replace('@@p0\nmastodon L 2025-05-20 0 99999 7 -1\n=0', '@@h0\nyes\n=0')
    assert accounts.parse_probe(0, good, GROUPS, users)['homes'] == {'mastodon': True}
    with pytest.raises(ProbeError, match='home answer'):
        accounts.parse_probe(0, good.replace('yes', 'perhaps'), GROUPS, users)


@pytest.mark.parametrize('text, status', [
    ('mastodon L 2025-05-20 0 99999 7 -1', 'L'),
    ('mastodon NP 2025-05-20 0 99999 7 -1\r\n', 'NP'),
    ('mastodon P 2025-05-20 0 99999 7 -1', 'P'),
    ('root L 2025-05-20 0 99999 7 -1', None),
    ('mastodon', None),
    ('', None),
    ('mastodon L x\nmastodon L x', None),
])
def test_parse_lock_status(text, status):
    assert accounts.parse_lock_status('mastodon', text) == status


# Commands

def test_groupadd_command():
    assert accounts.groupadd_command(dict(name='g', system=False, gid=None)) == ['g']
    assert accounts.groupadd_command(dict(name='g', system=True, gid=990)) == ['--system', '--gid', '990', 'g']


def test_useradd_command():
    groups, users = normalised(users=[dict(MASTODON_USER, uid=991, comment='Mastodon', groups=['ssl-cert', 'adm'])])
    assert accounts.useradd_command(users[0], users[0]['groups'], False) == [
        '--system', '--uid', '991', '--gid', 'mastodon', '--groups', 'ssl-cert,adm', '--comment', 'Mastodon',
        '--home-dir', '/opt/mastodon', '--shell', '/usr/sbin/nologin', '--no-create-home', 'mastodon']
    groups, users = normalised(users=[dict(name='standin', create_home=True)])
    assert accounts.useradd_command(users[0], [], True) == ['--no-user-group', '--create-home', 'standin']
    assert accounts.useradd_command(users[0], [], False) == ['--create-home', 'standin']


def test_usermod_command():
    groups, users = normalised(users=[dict(MASTODON_USER, comment='M', groups=['adm'])])
    user = users[0]
    assert accounts.usermod_command(user, [], []) is None
    assert accounts.usermod_command(user, ['password_locked', 'home_directory'], []) is None
    assert accounts.usermod_command(user, ['group', 'groups', 'comment', 'home', 'shell'], ['adm']) == [
        '--gid', 'mastodon', '--append', '--groups', 'adm', '--comment', 'M', '--home', '/opt/mastodon',
        '--shell', '/usr/sbin/nologin', 'mastodon']


@pytest.mark.parametrize('text, mode', [
    ('', 0o755),
    ('UMASK 022\n', 0o755),
    ('UMASK\t\t077\n', 0o700),
    ('# HOME_MODE 0700\nUMASK 027\n', 0o750),
    ('UMASK 022\nHOME_MODE 0700\n', 0o700),
    ('HOME_MODE 0750\nUMASK 077\n', 0o750),
    ('HOME_MODE 9\n', 0o755),
])
def test_home_mode(text, mode):
    assert accounts.home_mode(text) == mode


def test_reports_never_carry_a_password(host):
    converged_mastodon(host)
    groups, users = normalised([dict(name='mastodon')], [MASTODON_USER, dict(name='other', create_home=False)])
    state = probe(host, groups, users)
    group_changes, user_changes = accounts.differences(groups, users, state)
    group_report, user_report = accounts.reports(groups, users, state, group_changes, user_changes)
    assert group_report == {'mastodon': dict(gid=996, changes=[])}
    assert user_report == {
        'mastodon': dict(uid=996, gid=996, home='/opt/mastodon', shell='/usr/sbin/nologin', comment='',
                         password_locked=True, changes=[]),
        'other': dict(uid=None, gid=None, home=None, shell=None, comment=None, changes=['created'])}
