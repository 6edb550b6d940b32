# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.fediops.mastodon.plugins.module_utils import gate, versions

NOW = 1767225600.0
SECRETS = dict((k, 'x') for k in versions.BASE_SECRETS + versions.AR_ENCRYPTION_SECRETS)


def healthy():
    return {
        'applied': ['20240101000000'], 'pending_pre': ['20250101000000'], 'pending_post': ['20250201000000'],
        'replicas': [{'name': 'db2', 'state': 'streaming', 'lag_bytes': 100, 'lag_seconds': 0.2}],
        'replica': {'in_recovery': True, 'replay_paused': False, 'lag_bytes': 100},
        'long_transactions': [{'pid': 10, 'age': 2.0, 'state': 'active', 'query': 'SELECT 1'}],
        'lock_waits': [],
        'backup_time': NOW - 3600,
        'disk': {'path': '/var/lib/postgresql', 'free_bytes': 50, 'total_bytes': 100},
        'queues': {'default': {'latency': 1.0}, 'ingress': {'latency': 4.0}},
        'postgres_version': 150018, 'redis_version': '7.0.15',
        'environment': dict(SECRETS),
        'write_path': {'target': '10.89.40.20:6432', 'server': '10.89.40.10:5432', 'in_recovery': False,
                       'error': None, 'xact_id': '812'},
    }


def test_all_pass():
    verdict = gate.evaluate(healthy(), target='4.5.2', now=NOW)
    assert verdict['passed'], verdict['failed']
    assert verdict['passed_checks'] == sorted(gate.CHECKS)
    assert gate.summary_message(verdict).startswith('all 12 gate checks passed')


def test_every_failure_listed_with_threshold():
    obs = healthy()
    obs['replica']['replay_paused'] = True
    obs['long_transactions'].append({'pid': 4242, 'age': 912.0, 'state': 'idle in transaction', 'query': 'UPDATE x'})
    obs['backup_time'] = NOW - 3 * 86400
    obs['lock_waits'] = [{'pid': 7, 'wait_seconds': 3.0}]
    obs['disk']['free_bytes'] = 5
    obs['queues']['ingress']['latency'] = 120.0
    obs['postgres_version'] = 130010
    obs['environment'].pop('ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY')
    obs['replicas'][0]['lag_bytes'] = 10 ** 9
    verdict = gate.evaluate(obs, target='4.5.2', now=NOW)
    assert not verdict['passed']
    failed = dict((f['check'], f) for f in verdict['failed'])
    assert sorted(failed) == sorted(['replica_replay', 'long_transactions', 'backup_age', 'lock_waits', 'disk_free',
                                     'sidekiq_latency', 'postgres_version', 'secrets', 'replication'])
    assert failed['long_transactions']['threshold'] == 300 and failed['long_transactions']['value'] == 912.0
    assert 'pid 4242' in failed['long_transactions']['reason']

    assert failed['replica_replay']['reason'] == 'WAL replay is paused on the replica'
    assert failed['backup_age']['threshold'] == 26 * 3600.0
    assert failed['secrets']['value'] == ['ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY']
    assert failed['postgres_version']['threshold'] == '>= 14'
    msg = gate.summary_message(verdict)
    assert msg.startswith('migration gate refused: ') and 'threshold 300' in msg


def test_unmeasured_checks_fail_and_skips_are_listed():
    obs = healthy()
    del obs['backup_time']
    obs['backup_error'] = 'no backup source: set last_backup_time or pgbackrest_stanza'
    del obs['queues']
    verdict = gate.evaluate(obs, target='4.5.2', skip=['redis_version'], now=NOW)
    failed = dict((f['check'], f['reason']) for f in verdict['failed'])
    assert failed['backup_age'] == 'not measured: no backup source: set last_backup_time or pgbackrest_stanza'
    assert failed['sidekiq_latency'] == 'not measured: no data'
    assert verdict['skipped'] == ['redis_version']
    assert 'redis_version' not in [c['check'] for c in verdict['checks']]


def test_migration_phase_rules():
    obs = healthy()
    verdict = gate.evaluate(obs, target='4.5.2', phase='post', now=NOW)
    assert [f['check'] for f in verdict['failed']] == ['migrations']
    assert 'still pending before the post-deployment phase' in verdict['failed'][0]['reason']
    obs['applied'] = ['20220101000000']              # 4.1-era schema: no zero-downtime to 4.5
    verdict = gate.evaluate(obs, target='4.5.2', phase='pre', now=NOW)
    assert verdict['failed'][0]['threshold'] == 'schema >= 20230907150100'
    obs['pending_pre'] = []
    assert gate.evaluate(obs, target='4.5.2', phase='pre', now=NOW)['passed']


def test_thresholds_override_and_replica_counts():
    obs = healthy()
    obs['replicas'] = []
    verdict = gate.evaluate(obs, {'min_replicas': 0, 'max_transaction_age': 1.0, 'max_replica_lag_bytes': None},
                            target='4.5.2', now=NOW)
    assert [f['check'] for f in verdict['failed']] == ['long_transactions']
    verdict = gate.evaluate(obs, target='4.5.2', now=NOW)
    assert verdict['failed'][0]['reason'] == '0 replica(s) streaming from the primary'


def test_write_path_verdicts():
    obs = healthy()
    assert gate.check_write_path(obs)[0]['passed']
    obs['write_path'] = dict(obs['write_path'], server='10.89.40.11:5432', in_recovery=True,
                             error='cannot execute CREATE TABLE in a read-only transaction', xact_id=None)
    verdict = gate.evaluate(obs, target='4.5.2', now=NOW)
    assert [f['check'] for f in verdict['failed']] == ['write_path']
    assert verdict['failed'][0]['reason'] == ('a write through PgBouncer 10.89.40.20:6432 reached a standby (read-only) '
                                              '(server 10.89.40.11:5432): cannot execute CREATE TABLE in a read-only transaction')
    # a primary that refuses the write (read-only role or database)
    obs['write_path'] = dict(obs['write_path'], in_recovery=False)
    assert gate.check_write_path(obs)[0]['reason'].startswith('a write through PgBouncer 10.89.40.20:6432 was refused')
    # connected but nothing reported: not measured, never a pass
    obs['write_path'] = {'target': 'x:1', 'server': None, 'in_recovery': None, 'error': None}
    assert not gate.check_write_path(obs)[0]['passed']
    del obs['write_path']
    obs['write_path_error'] = 'write_host is not set'
    assert gate.check_write_path(obs)[0]['reason'] == 'not measured: write_host is not set'
    assert 'write_path' in gate.evaluate(obs, target='4.5.2', now=NOW, skip=['write_path'])['skipped']


def test_blocking_sessions_are_named_by_who_never_by_their_sql():
    obs = healthy()
    obs['long_transactions'].append({'pid': 4242, 'usename': 'mastodon', 'application_name': 'sidekiq', 'age': 912.0,
                                     'state': 'idle in transaction', 'query': "ALTER ROLE x PASSWORD 'hunter2-secret'"})
    obs['lock_waits'] = [{'pid': 7, 'usename': 'mastodon', 'application_name': 'puma', 'state': 'active', 'wait_seconds': 3.0,
                          'query': "UPDATE users SET encrypted_password = 'hunter2-secret'"}]
    verdict = gate.evaluate(obs, target='4.5.2', now=NOW)
    failed = dict((f['check'], f) for f in verdict['failed'])
    assert 'pid 4242 (user mastodon, application sidekiq, idle in transaction) for 912 s' in failed['long_transactions']['reason']
    assert '7 (user mastodon, application puma, active, waiting 3 s)' in failed['lock_waits']['reason']
    assert 'hunter2' not in str(verdict) + gate.summary_message(verdict)
