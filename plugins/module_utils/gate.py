# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdict of the migration gate: pure evaluation of collected observations against thresholds.

Collectors (in the module) fill an ``obs`` dict; ``evaluate`` turns it into one record per
check: {'check', 'passed', 'reason', 'threshold', 'value'}. A check whose observation is
missing fails ("not measured") rather than passing silently; only ``skip`` disables a check.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.fediops.mastodon.plugins.module_utils import migrations, sidekiq, versions

CHECKS = ['migrations', 'replication', 'replica_replay', 'long_transactions', 'lock_waits', 'backup_age',
          'disk_free', 'sidekiq_latency', 'postgres_version', 'redis_version', 'secrets', 'write_path']

DEFAULT_THRESHOLDS = {
    'min_replicas': 1,
    'max_replica_lag_bytes': 16 * 1024 * 1024,
    'max_replica_lag_seconds': 30.0,
    'max_transaction_age': 300.0,
    'max_lock_waits': 0,
    'max_backup_age': 26 * 3600.0,
    'min_disk_free_percent': 20.0,
    'max_queue_latency': 60.0,
    'queue_max_latency': {},
}


def _rec(check, passed, reason, threshold=None, value=None):
    return {'check': check, 'passed': bool(passed), 'reason': reason, 'threshold': threshold, 'value': value}


def _missing(check, obs, key):
    err = obs.get(key + '_error')
    return _rec(check, False, 'not measured: %s' % (err or 'no data'))


def check_migrations(obs, t, phase, target):
    out = []
    if obs.get('migrations_error'):
        return [_rec('migrations', False, obs['migrations_error'])]
    pending_pre, pending_post = obs.get('pending_pre', []), obs.get('pending_post', [])
    applied = obs.get('applied', [])
    if phase == 'post' and pending_pre:
        out.append(_rec('migrations', False, 'pre-deployment migrations still pending before the post-deployment phase: %s'
                        % ', '.join(pending_pre), threshold='no pending pre-deployment migrations', value=len(pending_pre)))
    if phase == 'pre' and pending_pre and target:
        problem = migrations.zero_downtime_problem(versions.parse_version(target), applied)
        if problem:
            floor = migrations.zero_downtime_min_schema(versions.parse_version(target))
            out.append(_rec('migrations', False, problem, threshold='schema >= %s' % floor[0],
                            value=migrations.schema_version(applied)))
    if not out:
        out.append(_rec('migrations', True, '%d pre- and %d post-deployment migrations pending'
                        % (len(pending_pre), len(pending_post)), value={'pre': len(pending_pre), 'post': len(pending_post)}))
    return out


def check_replication(obs, t):
    replicas = obs.get('replicas')
    if replicas is None:
        return [_missing('replication', obs, 'replicas')]
    out = []
    streaming = [r for r in replicas if r.get('state') == 'streaming']
    if len(streaming) < t['min_replicas']:
        out.append(_rec('replication', False, '%d replica(s) streaming from the primary' % len(streaming),
                        threshold='>= %d streaming' % t['min_replicas'], value=len(streaming)))
    for r in replicas:
        name = r.get('name') or r.get('client_addr') or '?'
        if r.get('lag_bytes') is not None and r['lag_bytes'] > t['max_replica_lag_bytes']:
            out.append(_rec('replication', False, 'replica %s is %d bytes behind' % (name, r['lag_bytes']),
                            threshold=t['max_replica_lag_bytes'], value=r['lag_bytes']))
        if r.get('lag_seconds') is not None and r['lag_seconds'] > t['max_replica_lag_seconds']:
            out.append(_rec('replication', False, 'replica %s replays %.1f s behind' % (name, r['lag_seconds']),
                            threshold=t['max_replica_lag_seconds'], value=r['lag_seconds']))
    if not out:
        out.append(_rec('replication', True, '%d replica(s) streaming within lag limits' % len(streaming), value=len(streaming)))
    return out


def check_replica_replay(obs, t):
    st = obs.get('replica')
    if st is None:
        return [_missing('replica_replay', obs, 'replica')]
    out = []
    if not st.get('in_recovery'):
        out.append(_rec('replica_replay', False, 'the replica is not in recovery (promoted, or the wrong host)',
                        threshold='pg_is_in_recovery() = true', value=False))
    if st.get('replay_paused'):
        out.append(_rec('replica_replay', False, 'WAL replay is paused on the replica', threshold='pg_is_wal_replay_paused() = false', value=True))
    if st.get('lag_bytes') is not None and st['lag_bytes'] > t['max_replica_lag_bytes']:
        out.append(_rec('replica_replay', False, 'the replica has replayed %d bytes less than the primary has written' % st['lag_bytes'],
                        threshold=t['max_replica_lag_bytes'], value=st['lag_bytes']))
    if not out:
        out.append(_rec('replica_replay', True, 'replica replaying, %s bytes behind' % st.get('lag_bytes'), value=st.get('lag_bytes')))
    return out


def check_long_transactions(obs, t):
    txs = obs.get('long_transactions')
    if txs is None:
        return [_missing('long_transactions', obs, 'long_transactions')]
    old = [x for x in txs if x['age'] > t['max_transaction_age']]
    if old:
        worst = max(old, key=lambda x: x['age'])
        # Who, never what: the session's SQL text is not reported (it may carry secrets or user data).
        return [_rec('long_transactions', False, '%d transaction(s) open longer than %ss; oldest pid %s (user %s, application %s, %s) '
                     'for %.0f s' % (len(old), t['max_transaction_age'], worst['pid'], worst.get('usename'),
                                     worst.get('application_name') or '-', worst.get('state'), worst['age']),
                     threshold=t['max_transaction_age'], value=round(worst['age'], 1))]
    return [_rec('long_transactions', True, 'no transaction open longer than %ss' % t['max_transaction_age'],
                 threshold=t['max_transaction_age'], value=round(max([x['age'] for x in txs] or [0.0]), 1))]


def check_lock_waits(obs, t):
    waits = obs.get('lock_waits')
    if waits is None:
        return [_missing('lock_waits', obs, 'lock_waits')]
    if len(waits) > t['max_lock_waits']:
        pids = ', '.join('%s (user %s, application %s, %s, waiting %.0f s)'
                         % (w['pid'], w.get('usename'), w.get('application_name') or '-', w.get('state'), w.get('wait_seconds') or 0)
                         for w in waits[:10])
        return [_rec('lock_waits', False, '%d session(s) waiting on locks (pids %s)' % (len(waits), pids),
                     threshold=t['max_lock_waits'], value=len(waits))]
    return [_rec('lock_waits', True, '%d session(s) waiting on locks' % len(waits), threshold=t['max_lock_waits'], value=len(waits))]


def check_backup_age(obs, t, now):
    stamp = obs.get('backup_time')
    if stamp is None:
        return [_missing('backup_age', obs, 'backup')]
    age = now - stamp
    if age > t['max_backup_age']:
        return [_rec('backup_age', False, 'last successful backup finished %.1f h ago' % (age / 3600.0),
                     threshold=t['max_backup_age'], value=round(age, 1))]
    return [_rec('backup_age', True, 'last successful backup finished %.1f h ago' % (age / 3600.0),
                 threshold=t['max_backup_age'], value=round(age, 1))]


def check_disk_free(obs, t):
    disk = obs.get('disk')
    if disk is None:
        return [_missing('disk_free', obs, 'disk')]
    pct = 100.0 * disk['free_bytes'] / disk['total_bytes'] if disk['total_bytes'] else 0.0
    ok = pct >= t['min_disk_free_percent']
    return [_rec('disk_free', ok, '%.1f%% free (%d bytes) on %s' % (pct, disk['free_bytes'], disk['path']),
                 threshold=t['min_disk_free_percent'], value=round(pct, 1))]


def check_sidekiq(obs, t):
    queues = obs.get('queues')
    if queues is None:
        return [_missing('sidekiq_latency', obs, 'queues')]
    bad = sidekiq.latency_violations(queues, t['max_queue_latency'], t.get('queue_max_latency'))
    if bad:
        return [_rec('sidekiq_latency', False, v['reason'], threshold=v['threshold'], value=v['value']) for v in bad]
    worst = max([q['latency'] for q in queues.values()] or [0.0])
    return [_rec('sidekiq_latency', True, 'highest queue latency %.1f s' % worst, threshold=t['max_queue_latency'], value=worst)]


def check_version(obs, name, target):
    value = obs.get(name + '_version')
    check = name + '_version'
    if value is None:
        return [_missing(check, obs, name)]
    problems = [p for p in versions.dependency_problems(target, **{'postgres' if name == 'postgres' else 'redis': value})
                if p['check'] == check]
    if problems:
        return [_rec(check, False, p['reason'], threshold=p['threshold'], value=p['value']) for p in problems]
    minimums, _series = versions.release_minimums(target)
    return [_rec(check, True, '%s %s meets Mastodon %s' % (name, versions.format_version(value), target),
                 threshold='>= %s' % minimums[name], value=versions.format_version(value))]


def check_secrets(obs, target):
    env = obs.get('environment')
    if env is None:
        return [_missing('secrets', obs, 'environment')]
    pending = list(obs.get('pending_pre', [])) + list(obs.get('pending_post', []))
    missing = versions.missing_secrets(target, env, pending)
    needed = versions.required_secrets(target, pending)
    if missing:
        return [_rec('secrets', False, 'missing or empty for Mastodon %s: %s' % (target, ', '.join(missing)),
                     threshold=needed, value=missing)]
    return [_rec('secrets', True, 'all %d required secrets present' % len(needed), threshold=needed, value=[])]


def check_write_path(obs):
    """A write through PgBouncer, as the application makes it, must reach a primary.

    ``obs['write_path']``: {'target': 'host:port' (PgBouncer), 'error': str or None (the write failed),
    'in_recovery': bool or None, 'server': 'addr:port' of the Postgres that answered or None,
    'xact_id': the transaction id the write was given (rolled back) or None}.
    """
    wp = obs.get('write_path')
    if wp is None:
        return [_missing('write_path', obs, 'write_path')]
    target = wp.get('target') or '?'
    server = wp.get('server')
    where = ' (server %s)' % server if server else ''
    if wp.get('in_recovery'):
        reason = 'a write through PgBouncer %s reached a standby (read-only)%s' % (target, where)
        if wp.get('error'):
            reason += ': %s' % wp['error']
        return [_rec('write_path', False, reason, threshold='pg_is_in_recovery() = false and the write succeeds',
                     value={'in_recovery': True, 'server': server})]
    if wp.get('error'):
        return [_rec('write_path', False, 'a write through PgBouncer %s was refused%s: %s' % (target, where, wp['error']),
                     threshold='pg_is_in_recovery() = false and the write succeeds',
                     value={'in_recovery': wp.get('in_recovery'), 'server': server})]
    if wp.get('in_recovery') is None:
        return [_rec('write_path', False, 'not measured: a write through PgBouncer %s did not report pg_is_in_recovery()' % target)]
    return [_rec('write_path', True, 'a write through PgBouncer %s reached the primary%s (rolled back)' % (target, where),
                 threshold='pg_is_in_recovery() = false and the write succeeds',
                 value={'in_recovery': False, 'server': server})]


def evaluate(obs, thresholds=None, phase='pre', target=None, skip=None, now=0.0):
    """Return the verdict dict: passed, failed (records), passed_checks, skipped, checks (all records)."""
    t = dict(DEFAULT_THRESHOLDS)
    t.update(dict((k, v) for k, v in (thresholds or {}).items() if v is not None))
    skip = set(skip or [])
    records = []
    runners = [
        ('migrations', lambda: check_migrations(obs, t, phase, target)),
        ('replication', lambda: check_replication(obs, t)),
        ('replica_replay', lambda: check_replica_replay(obs, t)),
        ('long_transactions', lambda: check_long_transactions(obs, t)),
        ('lock_waits', lambda: check_lock_waits(obs, t)),
        ('backup_age', lambda: check_backup_age(obs, t, now)),
        ('disk_free', lambda: check_disk_free(obs, t)),
        ('sidekiq_latency', lambda: check_sidekiq(obs, t)),
        ('postgres_version', lambda: check_version(obs, 'postgres', target)),
        ('redis_version', lambda: check_version(obs, 'redis', target)),
        ('secrets', lambda: check_secrets(obs, target)),
        ('write_path', lambda: check_write_path(obs)),
    ]
    for name, run in runners:
        if name in skip:
            continue
        records.extend(run())
    failed = [r for r in records if not r['passed']]
    return {
        'passed': not failed,
        'failed': failed,
        'passed_checks': sorted(set(r['check'] for r in records if r['passed']) - set(r['check'] for r in failed)),
        'skipped': sorted(skip),
        'checks': records,
    }


def summary_message(verdict):
    if verdict['passed']:
        return 'all %d gate checks passed' % len(verdict['checks'])
    return 'migration gate refused: ' + '; '.join(
        '%s: %s (threshold %s)' % (r['check'], r['reason'], r['threshold']) for r in verdict['failed'])
