#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mastodon_migration_gate
short_description: Decide whether a Mastodon release may migrate the database now
version_added: 0.1.0
description:
  - Reads the pending pre- and post-deployment migrations of a release directory against
    C(schema_migrations) and checks that the database and its surroundings are fit for them.
  - "Checks: V(migrations) (pre-deployment migrations done before the post phase; schema new
    enough for zero-downtime mode), V(replication) (replicas streaming, lag in bytes and seconds
    seen from the primary), V(replica_replay) (replica in recovery, replay not paused, replayed
    LSN close to the primary's), V(long_transactions), V(lock_waits), V(backup_age) (last
    successful backup), V(disk_free) (on the database host), V(sidekiq_latency),
    V(postgres_version) and V(redis_version) (against the target release's minimums),
    V(secrets) (the variables the target release needs, by name only) and V(write_path) (a write
    through PgBouncer, as the application makes it, reaches the primary)."
  - Returns a verdict listing every failed check with its reason and threshold, and fails
    unless every check that is not skipped passes. A check that cannot be measured fails.
  - Connects to PostgreSQL directly. It refuses port 6432 and any server that turns out to be
    PgBouncer.
  - Only V(write_path) goes through PgBouncer (O(write_host)), as the application's database user. Inside a
    transaction that is always rolled back it reads C(pg_is_in_recovery()) and C(inet_server_addr()), creates
    a temporary table (C(ON COMMIT DROP)) and asks for a transaction id (C(pg_current_xact_id())), both of
    which a standby or a read-only server refuses. Nothing is kept.
  - Changes nothing; it behaves the same in check mode.
  - Run it on the database host (or set O(disk_path)) so that V(disk_free) measures the disk
    holding the data directory.
extends_documentation_fragment:
  - fediops.mastodon.postgres
  - fediops.mastodon.redis
  - fediops.mastodon.write_path
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  release_path:
    description:
      - Directory of the release to migrate to (containing C(db/migrate)).
      - Required unless V(migrations) is in O(skip_checks) and O(target_version) is given, which lets
        the checks that need the database host (V(disk_free), V(backup_age)) run there while the
        release is only on the application hosts.
    type: path
  target_version:
    description:
      - Mastodon version of that release. Read from C(lib/mastodon/version.rb) when omitted.
    type: str
  phase:
    description:
      - The migration phase about to run.
    type: str
    choices: [ pre, post ]
    default: pre
  skip_checks:
    description:
      - Checks not to run. They are listed as skipped in the verdict.
    type: list
    elements: str
    default: []
    choices:
      - migrations
      - replication
      - replica_replay
      - long_transactions
      - lock_waits
      - backup_age
      - disk_free
      - sidekiq_latency
      - postgres_version
      - redis_version
      - secrets
      - write_path
  replica_host:
    description:
      - Address of the streaming replica for V(replica_replay); same credentials and database as the primary.
    type: str
  replica_port:
    description:
      - Port of the replica.
    type: int
    default: 5432
  min_replicas:
    description:
      - Replicas that must be streaming from the primary.
    type: int
    default: 1
  max_replica_lag_bytes:
    description:
      - Largest tolerated replay lag in bytes.
    type: int
    default: 16777216
  max_replica_lag_seconds:
    description:
      - Largest tolerated replay lag in seconds (C(replay_lag) of C(pg_stat_replication)).
    type: float
    default: 30
  max_transaction_age:
    description:
      - Seconds a transaction may have been open.
    type: float
    default: 300
  max_lock_waits:
    description:
      - Sessions that may be waiting on a lock.
    type: int
    default: 0
  max_backup_age:
    description:
      - Seconds since the last successful backup finished.
    type: float
    default: 93600
  last_backup_time:
    description:
      - When the last successful backup finished, as epoch seconds or ISO 8601.
      - Alternative to O(pgbackrest_stanza).
    type: str
  pgbackrest_stanza:
    description:
      - Read the last backup's stop time from C(pgbackrest --stanza=<stanza> --output=json info) on the host the module runs on.
    type: str
  min_disk_free_percent:
    description:
      - Free space required on the filesystem holding O(disk_path).
    type: float
    default: 20
  disk_path:
    description:
      - Path whose filesystem is measured. Defaults to the server's C(data_directory), which must then exist on this host.
    type: path
  max_queue_latency:
    description:
      - Seconds the oldest job of any Sidekiq queue may have waited.
    type: float
    default: 60
  queue_max_latency:
    description:
      - Per-queue latency limits overriding O(max_queue_latency).
    type: dict
    default: {}
  env_file:
    description:
      - Mastodon's dotenv file (for example C(.env.production)) to look for required secrets in.
    type: path
  environment:
    description:
      - Environment the release will run with, merged over O(env_file). Only names are reported.
    type: dict
    default: {}
author:
  - fediops contributors (@fediops)
'''

EXAMPLES = r'''
- name: May 4.5.2 run its pre-deployment migrations now?
  fediops.mastodon.mastodon_migration_gate:
    release_path: /home/mastodon/releases/4.5.2
    phase: pre
    login_host: 127.0.0.1
    login_port: 5432
    login_password: "{{ mastodon_db_password }}"
    replica_host: 10.0.0.11
    pgbackrest_stanza: mastodon
    redis_host: 10.0.0.20
    redis_password: "{{ redis_persistent_password }}"
    env_file: /home/mastodon/shared/.env.production
  delegate_to: "{{ groups['postgres_primary'][0] }}"
  register: gate

- name: Show why
  ansible.builtin.debug:
    var: gate.verdict.failed
  when: gate is failed
'''

RETURN = r'''
verdict:
  description: C(passed), C(failed) (records of failed checks), C(passed_checks), C(skipped) and C(checks) (every record).
  returned: always
  type: dict
  sample:
    passed: false
    failed:
      - check: long_transactions
        passed: false
        reason: "1 transaction(s) open longer than 300s; oldest pid 4242 (idle in transaction) for 912 s: UPDATE ..."
        threshold: 300
        value: 912.0
    passed_checks: [backup_age, disk_free, migrations]
    skipped: []
pending_pre:
  description: Pending pre-deployment migration versions.
  returned: when the database was read
  type: list
  elements: str
pending_post:
  description: Pending post-deployment migration versions.
  returned: when the database was read
  type: list
  elements: str
schema_version:
  description: Highest applied migration version.
  returned: when the database was read
  type: str
target_version:
  description: Mastodon version the checks were made for.
  returned: always
  type: str
write_path:
  description: What the write through PgBouncer found (C(target), C(server), C(in_recovery), C(error), C(xact_id)).
  returned: when V(write_path) ran
  type: dict
queries:
  description: SQL statements and commands run.
  returned: always
  type: list
  elements: str
'''

import datetime
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_common import (
    postgres_common_argument_spec, redis_common_argument_spec, write_path_argument_spec, postgres_connect, direct_postgres_problem,
    ensure_direct_postgres, redis_client, fetch_dicts, postgres_connect_kwargs, psycopg2)
from ansible_collections.fediops.mastodon.plugins.module_utils import gate, migrations, sidekiq
from ansible_collections.fediops.mastodon.plugins.module_utils.versions import parse_version

REPLICATION_SQL = ("SELECT application_name AS name, host(client_addr) AS client_addr, state, "
                   "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes, "
                   "EXTRACT(EPOCH FROM replay_lag)::float8 AS lag_seconds FROM pg_stat_replication")
# Who blocks, never what they run: another session's SQL text may carry values (passwords in ALTER ROLE, user data),
# and the refusal message is printed in the playbook's log.
LONG_TX_SQL = ("SELECT pid, usename, application_name, state, EXTRACT(EPOCH FROM now() - xact_start)::float8 AS age "
               "FROM pg_stat_activity WHERE xact_start IS NOT NULL "
               "AND pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY xact_start")
LOCK_WAIT_SQL = ("SELECT pid, usename, application_name, state, EXTRACT(EPOCH FROM now() - state_change)::float8 AS wait_seconds "
                 "FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
REPLICA_SQL = ("SELECT pg_is_in_recovery() AS in_recovery, "
               "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS replay_paused, "
               "pg_last_wal_replay_lsn()::text AS replay_lsn")


def parse_backup_time(value):
    """Epoch seconds from '1767225600', '1767225600.5' or ISO 8601 ('2026-01-01T00:00:00Z')."""
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text.endswith('Z'):
        text = text[:-1] + '+00:00'
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError('last_backup_time %r is neither epoch seconds nor ISO 8601' % (value,))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def pgbackrest_last_backup(info):
    """Latest ``timestamp.stop`` over all stanzas of ``pgbackrest info --output=json``."""
    stops = []
    for stanza in info:
        for backup in stanza.get('backup', []):
            stop = (backup.get('timestamp') or {}).get('stop')
            if stop and not backup.get('error'):
                stops.append(float(stop))
    return max(stops) if stops else None


def collect_postgres(module, obs, queries):
    p = module.params
    conn = postgres_connect(module)
    ensure_direct_postgres(module, conn)
    cur = conn.cursor()
    applied = migrations.fetch_applied(cur, queries)
    if applied is None:
        obs['migrations_error'] = 'database %s has no schema_migrations table' % p['db']
        applied = set()
    obs['applied'] = sorted(applied)
    try:
        if not p['release_path']:
            raise migrations.MigrationError('release_path is not set')
        discovered = migrations.discover_migrations(p['release_path'])
        obs.update(migrations.pending_migrations(discovered, applied))
    except migrations.MigrationError as e:
        obs['migrations_error'] = str(e)
    cur.execute('SHOW server_version_num')
    queries.append('SHOW server_version_num')
    obs['postgres_version'] = int(cur.fetchone()[0])
    for key, sql in (('replicas', REPLICATION_SQL), ('long_transactions', LONG_TX_SQL), ('lock_waits', LOCK_WAIT_SQL)):
        try:
            obs[key] = fetch_dicts(cur, sql, executed=queries)
        except Exception as e:  # pylint: disable=broad-except
            obs[key + '_error'] = str(e).strip()
    if 'replica_replay' not in p['skip_checks']:
        if p['replica_host']:
            collect_replica(module, cur, obs, queries)
        else:
            obs['replica_error'] = 'replica_host is not set (skip replica_replay, or set min_replicas: 0 when there is no replica)'
    if 'disk_free' not in p['skip_checks']:
        path = p['disk_path']
        if not path:
            try:
                cur.execute('SHOW data_directory')
                queries.append('SHOW data_directory')
                path = cur.fetchone()[0]
            except Exception as e:  # pylint: disable=broad-except
                obs['disk_error'] = 'cannot read data_directory (%s); set disk_path' % str(e).strip()
        if path:
            collect_disk(path, obs)
    cur.close()
    conn.close()


def collect_replica(module, primary_cur, obs, queries):
    p = module.params
    params = dict(p, login_host=p['replica_host'], login_port=p['replica_port'], login_unix_socket='')
    problem = direct_postgres_problem(params)
    if problem:
        obs['replica_error'] = problem
        return
    try:
        rconn = psycopg2.connect(**postgres_connect_kwargs(params))
        rconn.autocommit = True
        rcur = rconn.cursor()
        row = fetch_dicts(rcur, REPLICA_SQL, executed=queries)[0]
        rconn.close()
    except Exception as e:  # pylint: disable=broad-except
        obs['replica_error'] = 'cannot query replica %s:%s: %s' % (p['replica_host'], p['replica_port'], str(e).strip())
        return
    lag = None
    if row['replay_lsn']:
        primary_cur.execute('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint', (row['replay_lsn'],))
        queries.append('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), <replica replay lsn>)')
        lag = int(primary_cur.fetchone()[0])
    obs['replica'] = {'in_recovery': row['in_recovery'], 'replay_paused': row['replay_paused'], 'lag_bytes': lag}


WRITE_PATH_SQL = [
    'BEGIN',
    'SELECT pg_is_in_recovery() AS in_recovery, host(inet_server_addr()) AS addr, inet_server_port() AS port',
    'CREATE TEMP TABLE fediops_write_probe (id integer) ON COMMIT DROP',
    'INSERT INTO fediops_write_probe VALUES (1)',
    'SELECT pg_current_xact_id()::text',
    'ROLLBACK',
]


def write_path_params(p, env):
    """Connection parameters for the write through PgBouncer: explicit options, then the env file's DB_*."""
    port = p['write_port'] or env.get('DB_PORT') or 6432
    return dict(p, login_host=p['write_host'] or env.get('DB_HOST'), login_port=int(port), login_unix_socket='',
                login_user=p['write_user'] or env.get('DB_USER') or p['login_user'],
                login_password=p['write_password'] if p['write_password'] is not None else env.get('DB_PASS'),
                db=p['write_db'] or env.get('DB_NAME') or p['db'])


def collect_write_path(module, obs, queries):
    """A real write through PgBouncer in a transaction that is rolled back; obs['write_path'] (gate.check_write_path)."""
    p = module.params
    env = {}
    if p['env_file']:
        try:
            env = migrations.read_dotenv(p['env_file'])
        except (IOError, OSError):
            env = {}
    params = write_path_params(p, env)
    if not params['login_host']:
        obs['write_path_error'] = 'write_host is not set (the PgBouncer address the application writes through)'
        return
    target = '%s:%s' % (params['login_host'], params['login_port'])
    wp = {'target': target, 'server': None, 'in_recovery': None, 'error': None, 'xact_id': None}
    try:
        conn = psycopg2.connect(**postgres_connect_kwargs(params))
    except Exception as e:  # pylint: disable=broad-except
        obs['write_path_error'] = 'cannot connect through PgBouncer %s as %s: %s' % (target, params['login_user'], str(e).strip())
        return
    conn.autocommit = True
    cur = conn.cursor()
    rolled_back = False
    try:
        for sql in WRITE_PATH_SQL:
            queries.append('write path %s: %s' % (target, sql))
            try:
                cur.execute(sql)
            except Exception as e:  # pylint: disable=broad-except
                wp['error'] = str(e).strip().splitlines()[0]
                break
            if sql.startswith('SELECT pg_is_in_recovery'):
                row = cur.fetchone()
                wp['in_recovery'] = bool(row[0])
                wp['server'] = '%s:%s' % (row[1], row[2]) if row[1] else 'local socket'
            elif sql.startswith('SELECT pg_current_xact_id'):
                wp['xact_id'] = cur.fetchone()[0]
            elif sql == 'ROLLBACK':
                rolled_back = True
    finally:
        if not rolled_back:
            try:
                cur.execute('ROLLBACK')
                queries.append('write path %s: ROLLBACK' % target)
            except Exception:  # pylint: disable=broad-except
                pass
        conn.close()
    obs['write_path'] = wp


def collect_disk(path, obs):
    try:
        st = os.statvfs(path)
    except OSError as e:
        obs['disk_error'] = '%s is not readable on this host (%s); run the gate on the database host or set disk_path' % (path, e.strerror)
        return
    obs['disk'] = {'path': path, 'free_bytes': st.f_bavail * st.f_frsize, 'total_bytes': st.f_blocks * st.f_frsize}


def collect_backup(module, obs, queries):
    p = module.params
    if p['last_backup_time']:
        try:
            obs['backup_time'] = parse_backup_time(p['last_backup_time'])
        except ValueError as e:
            module.fail_json(msg=str(e))
    elif p['pgbackrest_stanza']:
        cmd = [module.get_bin_path('pgbackrest') or 'pgbackrest', '--stanza=%s' % p['pgbackrest_stanza'], '--output=json', 'info']
        queries.append(' '.join(cmd))
        rc, out, err = module.run_command(cmd)
        if rc != 0:
            obs['backup_error'] = 'pgbackrest info failed (rc %d): %s' % (rc, (err or out).strip())
            return
        try:
            obs['backup_time'] = pgbackrest_last_backup(json.loads(out))
        except (ValueError, TypeError, AttributeError) as e:
            obs['backup_error'] = 'cannot read pgbackrest info output: %s' % e
            return
        if obs['backup_time'] is None:
            obs['backup_error'] = 'stanza %s has no successful backup' % p['pgbackrest_stanza']
    else:
        obs['backup_error'] = 'no backup source: set last_backup_time or pgbackrest_stanza'


def collect_redis(module, obs, queries):
    p = module.params
    try:
        client = sidekiq.RecordingRedis(redis_client(p))
        obs['redis_version'] = client.info('server').get('redis_version')
        obs['queues'] = sidekiq.queue_stats(client, p['redis_namespace'])
        queries.extend('redis: ' + c for c in client.commands)
    except Exception as e:  # pylint: disable=broad-except
        obs['redis_error'] = obs['queues_error'] = 'Redis unavailable: %s' % e


def collect_environment(module, obs):
    p = module.params
    env = {}
    if p['env_file']:
        try:
            env.update(migrations.read_dotenv(p['env_file']))
        except (IOError, OSError) as e:
            obs['environment_error'] = 'cannot read env_file %s: %s' % (p['env_file'], e.strerror)
            return
    env.update(p['environment'])
    if not p['env_file'] and not p['environment']:
        obs['environment_error'] = 'no environment source: set env_file or environment'
        return
    obs['environment'] = env


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(redis_common_argument_spec())
    argument_spec.update(write_path_argument_spec())
    argument_spec.update(
        release_path=dict(type='path'),
        target_version=dict(type='str'),
        phase=dict(type='str', default='pre', choices=['pre', 'post']),
        skip_checks=dict(type='list', elements='str', default=[], choices=gate.CHECKS),
        replica_host=dict(type='str'),
        replica_port=dict(type='int', default=5432),
        min_replicas=dict(type='int', default=1),
        max_replica_lag_bytes=dict(type='int', default=16777216),
        max_replica_lag_seconds=dict(type='float', default=30),
        max_transaction_age=dict(type='float', default=300),
        max_lock_waits=dict(type='int', default=0),
        max_backup_age=dict(type='float', default=93600),
        last_backup_time=dict(type='str'),
        pgbackrest_stanza=dict(type='str'),
        min_disk_free_percent=dict(type='float', default=20),
        disk_path=dict(type='path'),
        max_queue_latency=dict(type='float', default=60),
        queue_max_latency=dict(type='dict', default={}),
        env_file=dict(type='path'),
        environment=dict(type='dict', default={}, no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('last_backup_time', 'pgbackrest_stanza')])
    p = module.params
    queries = []
    problem = direct_postgres_problem(p)
    if problem:
        module.fail_json(msg=problem)
    if not p['release_path'] and ('migrations' not in p['skip_checks'] or not p['target_version']):
        module.fail_json(msg='release_path is required unless migrations is in skip_checks and target_version is given')
    target = p['target_version'] or migrations.read_release_version(p['release_path'])
    if not target:
        module.fail_json(msg='target_version not given and %s/lib/mastodon/version.rb is not readable' % p['release_path'])
    try:
        parse_version(target)
    except ValueError:
        module.fail_json(msg='target_version %r is not a version' % target)
    if p['replica_host'] is None and 'replica_replay' not in p['skip_checks']:
        # Without a replica address the replay check cannot run; min_replicas == 0 means none exists.
        if p['min_replicas'] == 0:
            p['skip_checks'] = list(p['skip_checks']) + ['replica_replay']

    obs = {}
    now = time.time()
    collect_postgres(module, obs, queries)
    if 'backup_age' not in p['skip_checks']:
        collect_backup(module, obs, queries)
    if not set(['sidekiq_latency', 'redis_version']) <= set(p['skip_checks']):
        collect_redis(module, obs, queries)
    if 'secrets' not in p['skip_checks']:
        collect_environment(module, obs)
    if 'write_path' not in p['skip_checks']:
        collect_write_path(module, obs, queries)

    thresholds = dict((k, p[k]) for k in gate.DEFAULT_THRESHOLDS)
    verdict = gate.evaluate(obs, thresholds, phase=p['phase'], target=target, skip=p['skip_checks'], now=now)
    result = dict(changed=False, verdict=verdict, target_version=target, queries=queries,
                  pending_pre=obs.get('pending_pre', []), pending_post=obs.get('pending_post', []),
                  schema_version=migrations.schema_version(obs.get('applied', [])))
    if 'write_path' in obs:
        result['write_path'] = obs['write_path']
    if not verdict['passed']:
        module.fail_json(msg=gate.summary_message(verdict), **result)
    module.exit_json(msg=gate.summary_message(verdict), **result)


if __name__ == '__main__':
    main()
