# -*- coding: utf-8 -*-
"""fediops.mastodon.accounts (module): groupadd/useradd/usermod run through a stand-in account database."""

from __future__ import annotations

import os
import stat
from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.fediops.mastodon.plugins.modules import accounts

from ..fake_accounts import FakeAccounts
from .utils import run_module


@pytest.fixture
def host(tmp_path):
    fake = FakeAccounts(tmp_path / 'db')
    with mock.patch.object(accounts, 'read_group', side_effect=fake.group_entry), \
            mock.patch.object(accounts, 'read_user', side_effect=fake.user_entry), \
            mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=lambda self, *a, **k: fake.run_command(
                *a, **k), autospec=True), \
            mock.patch.object(basic.AnsibleModule, 'get_bin_path', side_effect=lambda self, name, *a, **k:
                              '/usr/sbin/' + name, autospec=True):
        yield fake


def programs(host):
    """The commands the module ran, without the passwd -S reads."""
    return [call for call in host.calls if call[0] != 'passwd']


MASTODON = dict(groups=[dict(name='mastodon', system=True)],
                users=[dict(name='mastodon', group='mastodon', system=True, home='/opt/mastodon', create_home=False,
                            shell='/usr/sbin/nologin', password_locked=True)])


def test_creates_group_then_user_and_reports(host):
    result = run_module(accounts, MASTODON)
    assert result['changed'] is True
    assert result['commands'] == [
        'groupadd --system mastodon',
        'useradd --system --gid mastodon --home-dir /opt/mastodon --shell /usr/sbin/nologin --no-create-home mastodon']
    assert host.groups['mastodon']['gid'] == 100
    assert host.users['mastodon'] == dict(uid=100, gid=100, home='/opt/mastodon', shell='/usr/sbin/nologin',
                                          comment='', password='!')
    assert result['groups'] == {'mastodon': dict(gid=100, changes=['created'])}
    assert result['users'] == {'mastodon': dict(uid=100, gid=100, home='/opt/mastodon', shell='/usr/sbin/nologin',
                                                comment='', password_locked=True, changes=['created'])}
    assert result['diff']['before'] == dict(groups={'mastodon': None}, users={'mastodon': None})
    assert result['diff']['after']['users']['mastodon']['password_locked'] is True

    again = run_module(accounts, MASTODON)
    assert again['changed'] is False and again['commands'] == []
    assert 'diff' not in again
    assert again['users']['mastodon']['changes'] == [] and again['groups']['mastodon']['changes'] == []


def test_check_mode_reports_commands_and_changes_nothing(host):
    result = run_module(accounts, MASTODON, check_mode=True)
    assert result['changed'] is True
    assert result['commands'][0] == 'groupadd --system mastodon'
    assert result['commands'][1].startswith('useradd --system --gid mastodon ')
    assert host.groups == {} and host.users == {}
    assert programs(host) == []
    assert result['diff']['after']['users']['mastodon']['gid'] is None  # the group's gid is not known yet


def test_check_mode_on_an_existing_user(host):
    host.add_group('mastodon', 996).add_user('mastodon', 996, 996, home='/opt/mastodon', shell='/bin/sh')
    result = run_module(accounts, MASTODON, check_mode=True)
    assert result['commands'] == ['usermod --shell /usr/sbin/nologin mastodon']
    assert host.users['mastodon']['shell'] == '/bin/sh'
    assert result['users']['mastodon']['changes'] == ['shell']
    assert result['diff']['before']['users']['mastodon']['shell'] == '/bin/sh'
    assert result['diff']['after']['users']['mastodon']['shell'] == '/usr/sbin/nologin'


def test_existing_user_gets_one_usermod(host):
    host.add_group('mastodon', 996).add_group('www-data', 33).add_group('ssl-cert', 110, ['other'])
    host.add_user('mastodon', 996, 33, home='/home/mastodon', shell='/bin/sh', comment='old', password='$6$x')
    args = dict(users=[dict(MASTODON['users'][0], groups=['ssl-cert'], comment='Mastodon')])
    result = run_module(accounts, args)
    assert result['commands'] == [
        'usermod --gid mastodon --append --groups ssl-cert --comment Mastodon --home /opt/mastodon '
        '--shell /usr/sbin/nologin mastodon',
        'usermod --lock mastodon']
    assert result['users']['mastodon']['changes'] == ['group', 'groups', 'comment', 'home', 'shell',
                                                      'password_locked']
    assert host.users['mastodon']['password'] == '!$6$x'
    assert host.groups['ssl-cert']['members'] == ['other', 'mastodon']
    assert result['diff']['before']['users']['mastodon'] == dict(
        uid=996, gid=33, home='/home/mastodon', shell='/bin/sh', comment='old', groups=[], password_locked=False)
    assert result['diff']['after']['users']['mastodon'] == dict(
        uid=996, gid=996, home='/opt/mastodon', shell='/usr/sbin/nologin', comment='Mastodon', groups=['ssl-cert'],
        password_locked=True)
    assert run_module(accounts, args)['changed'] is False


def test_only_missing_supplementary_groups_are_added(host):
    host.add_group('systemd-journal', 101, ['systemd-journal-upload']).add_group('adm', 4)
    host.add_group('systemd-journal-upload', 990).add_user('systemd-journal-upload', 990, 990)
    args = dict(users=[dict(name='systemd-journal-upload', system=True, groups=['systemd-journal', 'adm'],
                            home='/nonexistent', create_home=False, shell='/usr/sbin/nologin')])
    result = run_module(accounts, args)
    assert result['commands'] == ['usermod --append --groups adm systemd-journal-upload']


def test_password_unlock_and_its_refusal(host):
    host.add_group('u', 1000).add_user('u', 1000, 1000, password='!$6$x')
    result = run_module(accounts, dict(users=[dict(name='u', create_home=False, password_locked=False)]))
    assert result['commands'] == ['usermod --unlock u'] and host.users['u']['password'] == '$6$x'
    host.users['u']['password'] = '!'
    host.save()
    failed = run_module(accounts, dict(users=[dict(name='u', create_home=False, password_locked=False)]),
                        expect_fail=True)
    assert 'usermod --unlock u failed' in failed['msg'] and 'passwordless' in failed['msg']
    assert failed['commands'] == ['usermod --unlock u']
    host.users['u']['password'] = '*'
    host.save()
    failed = run_module(accounts, dict(users=[dict(name='u', create_home=False, password_locked=False)]),
                        expect_fail=True)
    assert 'left the password of u locked' in failed['msg']


def test_new_user_without_group_and_a_group_of_its_name(host):
    host.add_group('fediops-standin', 995)
    args = dict(users=[dict(name='fediops-standin', system=True, shell='/usr/sbin/nologin', create_home=False,
                            home='/nonexistent')])
    result = run_module(accounts, args)
    assert result['commands'] == ['useradd --system --no-user-group --home-dir /nonexistent --shell /usr/sbin/nologin '
                                  '--no-create-home fediops-standin']
    assert host.users['fediops-standin']['gid'] == 100


def test_new_user_without_group_gets_its_own(host):
    args = dict(users=[dict(name='fediops-standin', system=True, create_home=False, home='/nonexistent')])
    result = run_module(accounts, args)
    assert result['commands'] == ['useradd --system --home-dir /nonexistent --no-create-home fediops-standin']
    assert host.groups['fediops-standin']['gid'] == host.users['fediops-standin']['gid']


def test_new_user_with_home_and_missing_parents(host, tmp_path):
    home = tmp_path / 'var' / 'lib' / 'autoscaler'
    args = dict(users=[dict(name='autoscaler', system=True, shell='/bin/sh', home=str(home), create_home=True)])
    result = run_module(accounts, args)
    assert result['commands'] == ['useradd --system --home-dir %s --shell /bin/sh --create-home autoscaler' % home]
    assert home.is_dir()


def test_missing_home_of_an_existing_user_is_made(host, tmp_path):
    home = tmp_path / 'home'
    host.add_group('svc', os.getgid()).add_user('svc', os.getuid(), os.getgid(), home=str(home))
    skeleton = tmp_path / 'skel'
    skeleton.mkdir()
    (skeleton / '.profile').write_text('# hello\n')
    login_defs = tmp_path / 'login.defs'
    login_defs.write_text('UMASK 027\n')
    args = dict(users=[dict(name='svc', home=str(home))])
    with mock.patch.object(accounts, 'SKELETON', str(skeleton)), \
            mock.patch.object(accounts, 'LOGIN_DEFS', str(login_defs)):
        check = run_module(accounts, args, check_mode=True)
        assert check['changed'] is True and check['users']['svc']['changes'] == ['home_directory']
        assert not home.exists()
        result = run_module(accounts, args)
    assert result['changed'] is True and result['commands'] == []
    assert result['users']['svc']['changes'] == ['home_directory']
    assert stat.S_IMODE(home.stat().st_mode) == 0o750
    assert (home / '.profile').read_text() == '# hello\n'
    assert run_module(accounts, args)['changed'] is False
    assert run_module(accounts, dict(users=[dict(name='svc', home=str(tmp_path / 'elsewhere'),
                                                 create_home=False)]), check_mode=True)['commands'] == [
        'usermod --home %s svc' % (tmp_path / 'elsewhere')]


def test_group_with_another_gid_fails_and_is_never_renumbered(host):
    host.add_group('mastodon', 996)
    failed = run_module(accounts, dict(groups=[dict(name='mastodon', gid=990)]), expect_fail=True)
    assert 'group mastodon exists with gid 996, not 990' in failed['msg'] and 'never renumbered' in failed['msg']
    assert programs(host) == []
    assert run_module(accounts, dict(groups=[dict(name='new', gid=990, system=True)]))['commands'] == [
        'groupadd --system --gid 990 new']


def test_user_with_another_uid_fails(host):
    host.add_group('u', 1000).add_user('u', 1000, 1000)
    failed = run_module(accounts, dict(users=[dict(name='u', uid=1001, create_home=False)]), expect_fail=True)
    assert 'user u exists with uid 1000, not 1001' in failed['msg']
    assert programs(host) == []


def test_unknown_group_fails_clearly(host):
    failed = run_module(accounts, dict(users=[dict(name='u', group='nosuch')]), expect_fail=True)
    assert failed['msg'] == 'user u: group nosuch does not exist (list it under groups to create it)'
    failed = run_module(accounts, dict(users=[dict(name='u', groups=['nosuch'])]), check_mode=True,
                        expect_fail=True)
    assert 'group nosuch does not exist' in failed['msg']


def test_group_by_gid_made_in_the_same_task(host):
    args = dict(groups=[dict(name='svc', gid=990)], users=[dict(name='svc', group='990', create_home=False)])
    result = run_module(accounts, args)
    assert result['commands'][1] == 'useradd --gid 990 --no-create-home svc'
    assert host.users['svc']['gid'] == 990


def test_failing_command_reports_what_ran(host):
    host.fail_commands['useradd'] = (1, '', 'useradd: cannot lock /etc/passwd; try again later.\n')
    failed = run_module(accounts, MASTODON, expect_fail=True)
    assert failed['msg'].startswith('useradd --system --gid mastodon')
    assert 'cannot lock /etc/passwd' in failed['msg']
    assert failed['commands'][0] == 'groupadd --system mastodon'
    assert failed['changed'] is True


def test_bad_arguments_fail_before_anything_runs(host):
    failed = run_module(accounts, dict(users=[dict(name='u'), dict(name='u', comment='a:b')]), expect_fail=True)
    assert 'u is listed twice' in failed['msg'] and 'comment' in failed['msg']
    assert host.calls == []


def test_nothing_asked_nothing_done(host):
    result = run_module(accounts, {})
    assert result == dict(changed=False, commands=[], groups={}, users={})
