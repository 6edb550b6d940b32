# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import versions
from ansible_collections.fediops.mastodon.plugins.modules import mastodon_migration_gate as gate_module
from .test_mastodon_migrate import make_release, conn_args
from .utils import run_module

SECRETS = dict((k, 'x') for k in versions.BASE_SECRETS + versions.AR_ENCRYPTION_SECRETS)


@pytest.fixture
def args(tmp_path, pg_server, pgbouncer_server, redis_server, redis_client):
    release = make_release(str(tmp_path / 'r'), pre=['20250101000001'], post=['20250201000001'], version='4.5.2')
    return dict(conn_args(pg_server), release_path=release, min_replicas=0, last_backup_time=str(time.time() - 600),
                environment=SECRETS, redis_unix_socket=redis_server['redis_unix_socket'], min_disk_free_percent=1,
                write_host='127.0.0.1', write_port=pgbouncer_server['login_port'], write_user='mastodon',
                write_password=pg_server['login_password'], write_db=pg_server['db'])


def test_gate_passes(args, schema, redis_client):
    res = run_module(gate_module, args)
    verdict = res['verdict']
    assert verdict['passed'] and verdict['failed'] == []
    assert verdict['skipped'] == ['replica_replay']
    assert res['pending_pre'] == ['20250101000001'] and res['pending_post'] == ['20250201000001']
    assert res['target_version'] == '4.5.2' and res['schema_version'] == '20240101000000'
    assert gate_module.REPLICATION_SQL in res['queries'] and 'redis: SMEMBERS queues' in res['queries']
    assert res['changed'] is False
    # the write went through PgBouncer to the primary and was rolled back
    wp = res['write_path']
    assert wp['in_recovery'] is False and wp['error'] is None and wp['xact_id']
    assert wp['server'] == '127.0.0.1:%d' % args['login_port']
    assert any(q.endswith('CREATE TEMP TABLE fediops_write_probe (id integer) ON COMMIT DROP') for q in res['queries'])
    assert res['queries'][-1].endswith(': ROLLBACK')
    schema.execute("SELECT count(*) FROM pg_class WHERE relname = 'fediops_write_probe'")
    assert schema.fetchone() == (0,)


def test_gate_unmeasured_and_skips(args, schema, tmp_path):
    a = dict(args, min_replicas=1, disk_path=str(tmp_path / 'absent'))
    del a['last_backup_time']
    res = run_module(gate_module, a, expect_fail=True)
    failed = dict((f['check'], f['reason']) for f in res['verdict']['failed'])
    assert failed['replica_replay'].startswith('not measured: replica_host is not set')
    assert failed['replication'] == '0 replica(s) streaming from the primary'
    assert failed['backup_age'] == 'not measured: no backup source: set last_backup_time or pgbackrest_stanza'
    assert 'run the gate on the database host or set disk_path' in failed['disk_free']
    res = run_module(gate_module, dict(a, skip_checks=['replication', 'replica_replay', 'backup_age', 'disk_free']))
    assert res['verdict']['passed']


def test_gate_refuses_pgbouncer(args, schema, pgbouncer_server):
    res = run_module(gate_module, dict(args, login_port=6432), expect_fail=True)
    assert "PgBouncer's port" in res['msg']
    res = run_module(gate_module, dict(args, login_port=pgbouncer_server['login_port']), expect_fail=True)
    assert 'sits in between' in res['msg']
    res = run_module(gate_module, dict(args, login_port=pgbouncer_server['login_port'], db='pgbouncer'), expect_fail=True)
    assert 'is PgBouncer (its admin console answered SHOW VERSION)' in res['msg']


def test_gate_refuses_paused_replica(args, schema, pg_replica):
    import psycopg2
    a = dict(args, min_replicas=1, replica_host='127.0.0.1', replica_port=pg_replica['login_port'])
    deadline = time.time() + 10
    while True:                                # wait for the replica to report streaming
        res = run_module(gate_module, a, expect_fail=None)
        if res['verdict']['passed'] or time.time() > deadline:
            break
        time.sleep(0.2)
    assert res['verdict']['passed'], res['verdict']['failed']
    replica = psycopg2.connect(host='127.0.0.1', port=pg_replica['login_port'], user='mastodon',
                               password=pg_replica['login_password'], dbname=pg_replica['db'])
    replica.autocommit = True
    replica.cursor().execute('SELECT pg_wal_replay_pause()')
    try:
        res = run_module(gate_module, a, expect_fail=True)
    finally:
        replica.cursor().execute('SELECT pg_wal_replay_resume()')
        replica.close()
    failed = [(f['check'], f['reason']) for f in res['verdict']['failed']]
    assert ('replica_replay', 'WAL replay is paused on the replica') in failed
    # pointing the replica check at the primary is caught too
    res = run_module(gate_module, dict(a, replica_port=args['login_port']), expect_fail=True)
    assert 'the replica is not in recovery' in res['msg']


def test_gate_argument_errors(args, tmp_path):
    res = run_module(gate_module, dict(args, skip_checks=['backups']), expect_fail=True)
    assert 'value of skip_checks must be one or more of' in res['msg']
    res = run_module(gate_module, dict(args, pgbackrest_stanza='main'), expect_fail=True)
    assert 'mutually exclusive: last_backup_time|pgbackrest_stanza' in res['msg']
    res = run_module(gate_module, dict(args, release_path=str(tmp_path)), expect_fail=True)
    assert 'target_version not given' in res['msg']
    res = run_module(gate_module, dict(args, last_backup_time='yesterday'), expect_fail=True)
    assert 'neither epoch seconds nor ISO 8601' in res['msg']
    without_release = dict((k, v) for k, v in args.items() if k != 'release_path')
    res = run_module(gate_module, without_release, expect_fail=True)
    assert 'release_path is required unless migrations is in skip_checks' in res['msg']


def test_gate_database_side_without_release(args, schema):
    a = dict((k, v) for k, v in args.items() if k not in ('release_path', 'last_backup_time'))
    a.update(skip_checks=['migrations', 'replication', 'replica_replay', 'sidekiq_latency', 'redis_version', 'secrets'],
             last_backup_time=str(time.time() - 60), target_version='4.5.2')
    res = run_module(gate_module, a)
    assert set(res['verdict']['passed_checks']) >= {'backup_age', 'disk_free', 'long_transactions'}, res['verdict']


def test_pgbackrest_info_parsing():
    info = [{'name': 'main', 'backup': [{'timestamp': {'start': 1, 'stop': 100}, 'error': False},
                                        {'timestamp': {'start': 200, 'stop': 300}, 'error': True}]},
            {'name': 'other', 'backup': []}]
    assert gate_module.pgbackrest_last_backup(info) == 100.0
    assert gate_module.pgbackrest_last_backup([{'backup': []}]) is None
    assert gate_module.parse_backup_time('2026-01-01T00:00:00Z') == 1767225600.0
    assert gate_module.parse_backup_time('1767225600') == 1767225600.0


# After the tests that count replicas: pg_replica, once started, streams for the rest of the session.
def test_gate_refuses_a_write_path_to_a_standby(args, schema, pg_replica, pgbouncer_standby):
    """PgBouncer's database line points at the streaming replica: the application's writes would fail."""
    a = dict(args, write_port=pgbouncer_standby['login_port'])
    res = run_module(gate_module, a, expect_fail=True)
    failed = list(res['verdict']['failed'])
    assert [f['check'] for f in failed] == ['write_path'], failed
    reason = failed[0]['reason']
    assert reason.startswith('a write through PgBouncer 127.0.0.1:%d reached a standby (read-only) (server 127.0.0.1:%d)'
                             % (pgbouncer_standby['login_port'], pg_replica['login_port'])), reason
    assert 'read-only transaction' in reason or 'during recovery' in reason, reason
    assert res['write_path']['in_recovery'] is True
    assert 'write_path: a write through PgBouncer' in res['msg']
    # skipping it is explicit, and listed
    res = run_module(gate_module, dict(a, skip_checks=['write_path']))
    assert 'write_path' in res['verdict']['skipped'] and 'write_path' not in res

    # the same in check mode: it changes nothing either way
    res = run_module(gate_module, a, check_mode=True, expect_fail=True)
    assert res['verdict']['failed'][0]['check'] == 'write_path'


def test_gate_refuses_a_write_path_where_writes_are_refused(args, schema, pg_conn, pg_server):
    """A primary, but the application's role may not write (default_transaction_read_only): refused, named."""
    cur = pg_conn.cursor()
    cur.execute("DROP ROLE IF EXISTS fediops_ro")
    cur.execute("CREATE ROLE fediops_ro LOGIN PASSWORD 'ro-secret'")
    cur.execute("ALTER ROLE fediops_ro SET default_transaction_read_only = on")
    try:
        res = run_module(gate_module, dict(args, write_port=pg_server['login_port'], write_user='fediops_ro',
                                           write_password='ro-secret'), expect_fail=True)
    finally:
        cur.execute("DROP ROLE fediops_ro")
    failed = res['verdict']['failed']
    assert [f['check'] for f in failed] == ['write_path']
    assert failed[0]['reason'].startswith('a write through PgBouncer 127.0.0.1:%d was refused' % pg_server['login_port'])
    assert 'read-only transaction' in failed[0]['reason']


def test_gate_write_path_from_the_env_file_and_unreachable(args, schema, tmp_path, pgbouncer_server, pg_server):
    env = tmp_path / 'env.production'
    env.write_text('DB_HOST=127.0.0.1\nDB_PORT=%d\nDB_USER=mastodon\nDB_PASS=%s\nDB_NAME=%s\n'
                   % (pgbouncer_server['login_port'], pg_server['login_password'], pg_server['db'])
                   + ''.join('%s=x\n' % k for k in SECRETS))
    a = dict((k, v) for k, v in args.items() if not k.startswith('write_'))
    res = run_module(gate_module, dict(a, env_file=str(env)))
    assert res['write_path']['target'] == '127.0.0.1:%d' % pgbouncer_server['login_port']
    res = run_module(gate_module, a, expect_fail=True)
    assert res['verdict']['failed'][0]['reason'] == (
        'not measured: write_host is not set (the PgBouncer address the application writes through)')
    res = run_module(gate_module, dict(a, write_host='127.0.0.1', write_port=1), expect_fail=True)
    assert res['verdict']['failed'][0]['reason'].startswith('not measured: cannot connect through PgBouncer 127.0.0.1:1 as mastodon')


def test_gate_refuses_long_transaction_old_backup_and_latency(args, schema, pg_server, redis_client):
    import psycopg2
    other = psycopg2.connect(**dict(host=pg_server['login_host'], port=pg_server['login_port'], user='mastodon',
                                    password=pg_server['login_password'], dbname=pg_server['db']))
    other.cursor().execute('SELECT 1')                 # leaves the transaction open
    time.sleep(0.3)
    redis_client.sadd('queues', 'ingress')
    redis_client.lpush('queue:ingress', json.dumps({'enqueued_at': int((time.time() - 500) * 1000)}))
    try:
        res = run_module(gate_module, dict(args, max_transaction_age=0.2, last_backup_time='2020-01-01T00:00:00Z',
                                           environment={'SECRET_KEY_BASE': 'x'}), expect_fail=True)
    finally:
        other.close()
    failed = dict((f['check'], f) for f in res['verdict']['failed'])
    assert sorted(failed) == ['backup_age', 'long_transactions', 'secrets', 'sidekiq_latency']
    assert failed['long_transactions']['threshold'] == 0.2
    assert failed['sidekiq_latency']['reason'].startswith('queue ingress: oldest job waited 50')
    assert 'VAPID_PRIVATE_KEY' in failed['secrets']['value']
    assert res['msg'].startswith('migration gate refused: ')
    # the gate changes nothing
    schema.execute('SELECT count(*) FROM schema_migrations')
    assert schema.fetchone() == (1,)
