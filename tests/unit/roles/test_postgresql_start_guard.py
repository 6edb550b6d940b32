"""The postgresql role's start guard (roles/postgresql/files/fediops-pg-start-guard): its decision."""
import importlib.machinery
import importlib.util
import os

import pytest

PATH = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles', 'postgresql', 'files', 'fediops-pg-start-guard')


@pytest.fixture(scope='module')
def guard():
    loader = importlib.machinery.SourceFileLoader('fediops_pg_start_guard', PATH)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


DB2 = {'name': 'db2', 'address': '10.0.0.12', 'port': 5432}
DB3 = {'name': 'db3', 'address': '10.0.0.13', 'port': 5432}


def test_a_newer_primary_of_the_same_cluster_refuses_the_start_and_names_it(guard):
    refuse, messages = guard.decide('7001', 1, [(DB2, ('7001', 2, False))])
    assert refuse
    assert 'peer db2 (10.0.0.12:5432)' in messages[-1] and 'timeline 2' in messages[-1]
    assert 'postgresql_replica_rebuild=true' in messages[-1]


def test_a_primary_of_the_same_cluster_on_the_same_timeline_refuses_too(guard):
    assert guard.decide('7001', 3, [(DB2, ('7001', 3, False))])[0]


@pytest.mark.parametrize('answer', [
    OSError('connection to server at "10.0.0.12", port 5432 failed: timeout expired'),  # unreachable: ordinary reboot
    ('9999', 5, False),  # another cluster: a replica's Debian-created cluster before pg_basebackup
    ('7001', 5, True),  # a standby of this cluster
    ('7001', 1, False),  # an older primary: that peer is the stale one
])
def test_what_never_blocks(guard, answer):
    refuse, messages = guard.decide('7001', 2, [(DB2, answer)])
    assert not refuse, messages
    assert len(messages) == 1 and 'db2' in messages[0]


def test_one_blocking_peer_among_others_refuses(guard):
    refuse, dummy = guard.decide('7001', 1, [(DB3, OSError('No route to host')), (DB2, ('7001', 2, False))])
    assert refuse


def test_a_standby_data_directory_starts_without_asking(guard, tmp_path, capsys):
    (tmp_path / 'standby.signal').write_text('')
    config = tmp_path / 'guard.json'
    config.write_text('{"data_dir": "%s", "bin_dir": "/nonexistent", "user": "r", "passfile": "/nonexistent", '
                      '"peers": [{"name": "db2", "address": "192.0.2.1", "port": 5432}]}' % tmp_path)
    assert guard.main(['guard', str(config)]) == 0
    assert 'standby.signal' in capsys.readouterr().out
