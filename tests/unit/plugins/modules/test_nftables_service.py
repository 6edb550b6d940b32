# -*- coding: utf-8 -*-
"""fediops.mastodon.nftables_service on a temporary tree, nft and systemctl stood in for: what it writes, the
commands it runs (none when nothing changes), refusals, rollback when nft rejects the ruleset, and removal."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.fediops.mastodon.plugins.module_utils.nftables_rules import DROPIN_CONTENT
from ansible_collections.fediops.mastodon.plugins.modules import nftables_service

from .utils import run_module


class FakeHost:
    """nft and systemctl: records the commands, and nft -c answers check_rc."""

    def __init__(self, check_rc=0):
        self.commands = []
        self.check_rc = check_rc

    def run_command(self, args, **kwargs):
        self.commands.append(' '.join(args))
        if args[1:2] == ['-c']:
            return self.check_rc, '', 'Error: syntax error' if self.check_rc else ''
        return 0, '', ''

    def run(self, args, **kwargs):
        host = self
        with mock.patch.object(basic.AnsibleModule, 'get_bin_path', lambda self, name, **kw: name), \
                mock.patch.object(basic.AnsibleModule, 'run_command',
                                  lambda module, cmd, **kw: host.run_command(cmd, **kw)):
            return run_module(nftables_service, args, **kwargs)


@pytest.fixture
def host_tree(tmp_path):
    (tmp_path / 'nftables.d').mkdir()
    (tmp_path / 'nftables.conf').write_text('table inet fediops {\n  include "%s/*.nft"\n}\n'
                                            % (tmp_path / 'nftables.d'))
    return tmp_path


def task(tree, **changes):
    args = dict(name='postgresql', ports=[5432], sources=['10.0.0.1', 'fd00::1'], units=['postgresql@15-main'],
                config_file=str(tree / 'nftables.conf'), include_dir=str(tree / 'nftables.d'),
                systemd_dir=str(tree / 'system'))
    args.update(changes)
    return args


def test_writes_applies_and_then_changes_nothing(host_tree):
    host = FakeHost()
    first = host.run(task(host_tree))
    conf = str(host_tree / 'nftables.conf')
    assert first['changed'] is True
    assert first['commands'] == ['nft -c -f %s' % conf, 'nft -f %s' % conf, 'systemctl daemon-reload']
    assert first['path'] == str(host_tree / 'nftables.d' / 'postgresql.nft')
    assert (host_tree / 'nftables.d' / 'postgresql.nft').read_text() == first['rules']
    assert 'ip saddr { 10.0.0.1/32 } tcp dport { 5432 } accept comment "postgresql"' in first['rules']
    dropin = host_tree / 'system' / 'postgresql@15-main.service.d' / 'fediops-firewall.conf'
    assert first['dropins'] == [str(dropin)] and dropin.read_text() == DROPIN_CONTENT
    assert first['diff']['after'] == first['rules']

    second = FakeHost().run(task(host_tree))
    assert second == dict(changed=False, path=first['path'], rules=first['rules'], commands=[], dropins=[str(dropin)])


def test_check_mode_writes_and_runs_nothing(host_tree):
    host = FakeHost()
    result = host.run(task(host_tree), check_mode=True)
    assert result['changed'] is True and result['commands'] == [] and host.commands == []
    assert list((host_tree / 'nftables.d').iterdir()) == [] and not (host_tree / 'system').exists()


def test_a_rejected_ruleset_restores_the_previous_rule_file(host_tree):
    FakeHost().run(task(host_tree))
    before = (host_tree / 'nftables.d' / 'postgresql.nft').read_text()
    refused = FakeHost(check_rc=1).run(task(host_tree, ports=[5433]), expect_fail=True)
    assert 'nft rejected the ruleset' in refused['msg'] and 'syntax error' in refused['msg']
    assert (host_tree / 'nftables.d' / 'postgresql.nft').read_text() == before


def test_refusals(host_tree):
    (host_tree / 'nftables.conf').write_text('table inet fediops {}\n')
    assert 'does not include' in FakeHost().run(task(host_tree), expect_fail=True)['msg']
    assert 'lower-case letters' in FakeHost().run(task(host_tree, name='Bad'), expect_fail=True)['msg']
    assert 'not systemd service' in FakeHost().run(task(host_tree, units=['x.timer']), expect_fail=True)['msg']
    assert 'between 1 and 65535' in FakeHost().run(task(host_tree, ports=[0]), expect_fail=True)['msg']
    assert 'between 1 and 65535' in FakeHost().run(task(host_tree, ports=None), expect_fail=True)['msg']
    assert 'not an IP address' in FakeHost().run(task(host_tree, sources=['db1']), expect_fail=True)['msg']


def test_absent_removes_the_rule_file_and_the_dropins(host_tree):
    FakeHost().run(task(host_tree))
    host = FakeHost()
    result = host.run(task(host_tree, state='absent', ports=None))
    assert result['changed'] is True and result['rules'] == ''
    assert not (host_tree / 'nftables.d' / 'postgresql.nft').exists()
    assert not (host_tree / 'system' / 'postgresql@15-main.service.d' / 'fediops-firewall.conf').exists()
    assert host.commands[-1] == 'systemctl daemon-reload'
    assert FakeHost().run(task(host_tree, state='absent', ports=None))['changed'] is False
