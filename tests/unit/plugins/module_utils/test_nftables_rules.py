# -*- coding: utf-8 -*-
"""nftables_service's pure parts (plugins/module_utils/nftables_rules.py): the rules it renders, what it wants, and
its probe, run for real by /bin/sh on a temporary tree, with the answers it must not trust."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import nftables_rules as N

HEADER = '# Managed by fediops.mastodon.nftables_service; included in the input chain of table inet fediops.\n'


def params(tmp_path, **changes):
    found = dict(name='postgresql', ports=[5432], protocol='tcp', sources=['10.0.0.1'], state='present',
                 config_file=str(tmp_path / 'nftables.conf'), include_dir=str(tmp_path / 'nftables.d'),
                 units=['postgresql@15-main'], systemd_dir=str(tmp_path / 'system'))
    found.update(changes)
    return found


def converge(wanted):
    """Write what the module would, as the module would."""
    os.makedirs(os.path.dirname(wanted['path']), exist_ok=True)
    with open(wanted['config_file'], 'w') as handle:
        handle.write('table inet fediops {\n  chain input {\n    include "%s/*.nft"\n  }\n}\n' % wanted['include'])
    with open(wanted['path'], 'w') as handle:
        handle.write(wanted['rules'])
    for dropin in wanted['dropins']:
        os.makedirs(os.path.dirname(dropin), exist_ok=True)
        with open(dropin, 'w') as handle:
            handle.write(N.DROPIN_CONTENT)


def probe(wanted):
    done = subprocess.run(['/bin/sh', '-c', N.probe_command(wanted)], capture_output=True, text=True, check=False)
    return N.parse_probe(done.returncode, done.stdout, wanted)


def test_the_rules_are_rendered_as_before():
    assert N.render_rules('postgresql', [5432, 6432, 5432], 'tcp',
                          ['10.0.0.2', '10.0.0.1/32', 'fd00::1', '10.0.1.0/24', '10.0.0.2']) == (
        HEADER + '# service: postgresql\n'
        'ip saddr { 10.0.0.1/32, 10.0.0.2/32, 10.0.1.0/24 } tcp dport { 5432, 6432 } accept comment "postgresql"\n'
        'ip6 saddr { fd00::1/128 } tcp dport { 5432, 6432 } accept comment "postgresql"\n')
    assert N.render_rules('ssh', [22], 'udp', []) == (
        HEADER + '# service: ssh\n# no peers declared: nothing may connect to udp/22\n')
    with pytest.raises(ValueError, match="sources: 'db1' is not an IP address"):
        N.parse_sources(['db1'])


def test_the_plan_names_the_files_the_module_manages(tmp_path):
    wanted = N.plan(params(tmp_path, units=['redis-server@cache', 'prometheus.socket'],
                           include_dir=str(tmp_path / 'nftables.d') + '/'))
    assert wanted['path'] == str(tmp_path / 'nftables.d' / 'postgresql.nft')
    assert wanted['rules'].startswith(HEADER) and '10.0.0.1/32' in wanted['rules']
    assert wanted['dropins'] == [str(tmp_path / 'system' / 'redis-server@cache.service.d' / N.DROPIN_NAME),
                                 str(tmp_path / 'system' / 'prometheus.socket.d' / N.DROPIN_NAME)]
    assert wanted['dropin'] == N.DROPIN_CONTENT and wanted['include'] == str(tmp_path / 'nftables.d')
    absent = N.plan(params(tmp_path, state='absent', ports=None))
    assert absent['rules'] is None and absent['dropin'] is None
    assert N.unchanged_result(absent) == dict(changed=False, path=absent['path'], rules='', commands=[],
                                              dropins=absent['dropins'])


@pytest.mark.parametrize('changes', [
    dict(name='Bad Name'), dict(units=['not a unit']), dict(units=['redis.timer']), dict(ports=[]),
    dict(ports=[0]), dict(ports=[70000]), dict(sources=['db1']),
])
def test_what_the_module_refuses_is_left_to_it(tmp_path, changes):
    with pytest.raises(ValueError):
        N.plan(params(tmp_path, **changes))


def test_a_converged_host_has_no_differences_and_each_change_is_found(tmp_path):
    wanted = N.plan(params(tmp_path))
    converge(wanted)
    assert N.differences(wanted, probe(wanted)) == []

    with open(wanted['path'], 'a') as handle:
        handle.write('# edited by hand\n')
    assert N.differences(wanted, probe(wanted)) == ['%s is different' % wanted['path']]
    os.unlink(wanted['path'])
    assert N.differences(wanted, probe(wanted)) == ['%s is missing' % wanted['path']]

    converge(wanted)
    os.unlink(wanted['dropins'][0])
    assert N.differences(wanted, probe(wanted)) == ['%s is missing' % wanted['dropins'][0]]

    converge(wanted)
    with open(wanted['config_file'], 'w') as handle:
        handle.write('table inet fediops {}\n')
    assert N.differences(wanted, probe(wanted)) == [
        '%s does not include %s' % (wanted['config_file'], wanted['include'])]
    os.unlink(wanted['config_file'])
    assert N.differences(wanted, probe(wanted))[0].endswith('does not include %s' % wanted['include'])


def test_absent_means_no_rule_file_and_no_dropins(tmp_path):
    present = N.plan(params(tmp_path))
    converge(present)
    absent = N.plan(params(tmp_path, state='absent'))
    assert N.differences(absent, probe(absent)) == [
        '%s is present, not absent' % absent['path'], '%s is present, not absent' % absent['dropins'][0]]
    os.unlink(present['path'])
    os.unlink(present['dropins'][0])
    assert N.differences(absent, probe(absent)) == []
    # A directory where the rule file belongs cannot be read: not absent either.
    os.mkdir(present['path'])
    assert N.differences(absent, probe(absent)) == ['%s is unreadable, not absent' % absent['path']]


def test_paths_with_spaces_and_quotes_are_read(tmp_path):
    wanted = N.plan(params(tmp_path, include_dir=str(tmp_path / "it's nft.d"), units=['getty@tty1', 'a:b.socket']))
    converge(wanted)
    assert N.differences(wanted, probe(wanted)) == []


def answer(*lines):
    return '\r\n'.join(('Last login: yesterday', N.BEGIN) + lines + (N.END,)) + '\r\n'


def test_tty_line_ends_and_noise_around_the_markers_are_fine(tmp_path):
    wanted = N.plan(params(tmp_path))
    held = N.parse_probe(0, answer('included', N.digest(wanted['rules']), N.digest(N.DROPIN_CONTENT)), wanted)
    assert held == dict(included=True, files={wanted['path']: N.digest(wanted['rules']),
                                              wanted['dropins'][0]: N.digest(N.DROPIN_CONTENT)})
    assert N.differences(wanted, held) == []


@pytest.mark.parametrize('rc, stdout, why', [
    (1, answer('included', 'missing', 'missing'), 'exited'),
    (0, 'sudo: a password is required\r\n', 'no complete answer'),
    (0, answer('included', 'missing'), '1 lines for 2 paths'),
    (0, answer('grep: not found', 'missing', 'missing'), 'unexpected line'),
    (0, answer('included', 'sha256sum: not found', 'missing'), 'unexpected line'),
    (0, None, 'no complete answer'),
])
def test_an_answer_that_cannot_be_trusted_is_a_probe_error(tmp_path, rc, stdout, why):
    with pytest.raises(N.ProbeError, match=why):
        N.parse_probe(rc, stdout, N.plan(params(tmp_path)))


@pytest.mark.parametrize('changes', [
    dict(include_dir='nftables.d'), dict(config_file='$HOME/nftables.conf'), dict(systemd_dir='relative'),
    dict(include_dir='/'),
])
def test_paths_the_probe_would_not_read_as_the_module_does(tmp_path, changes):
    with pytest.raises(N.ProbeError):
        N.probe_command(N.plan(params(tmp_path, **changes)))
