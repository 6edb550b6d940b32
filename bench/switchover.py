#!/usr/bin/env python3
"""Continuous numbered inserts through PgBouncer while the primary is switched; then the count.

Runs on a host that may reach PgBouncer (an application host): one client inserts rows numbered
1, 2, 3 ... each in its own autocommit transaction, remembers which inserts the server acknowledged,
reconnects on errors, and stops when --stop-file appears (or after --duration seconds). It then reads
back which numbers exist and prints:

    acknowledged inserts, acknowledged inserts lost (must be 0 for a switchover; a failover with
    asynchronous replication may lose the last ones), unacknowledged inserts that exist anyway (the
    commit happened but its acknowledgement was lost with the connection), client errors by kind
    (each failed insert is counted once and never retried: the next insert takes the next number),
    longest write stall (the longest gap between two acknowledged inserts, and when it began),
    throughput

With --result FILE it also writes the figures as JSON. The password comes from PGPASSWORD.

    PGPASSWORD=... python3 bench/switchover.py --dsn 'host=10.89.44.13 port=6432 dbname=mastodon_production user=mastodon' \\
        --stop-file /tmp/stop --result /tmp/switchover.json &
    ansible-playbook playbooks/switchover.yml; touch /tmp/stop; wait
"""
import argparse
import json
import os
import sys
import time

import psycopg2

TABLE = 'fediops_switchover_probe'


def connect(dsn, timeout):
    conn = psycopg2.connect(dsn, connect_timeout=timeout)
    conn.autocommit = True
    return conn


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dsn', required=True, help='libpq connection string to PgBouncer')
    parser.add_argument('--stop-file', help='stop when this file exists')
    parser.add_argument('--duration', type=float, default=0, help='stop after this many seconds (0: only --stop-file)')
    parser.add_argument('--rate', type=float, default=200, help='inserts per second to aim at (0: as fast as possible)')
    parser.add_argument('--result', help='write the figures as JSON to this file')
    parser.add_argument('--run', default=str(int(time.time())), help='run label stored with each row')
    args = parser.parse_args()
    if not args.stop_file and not args.duration:
        parser.error('give --stop-file or --duration')

    conn = connect(args.dsn, 5)
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE IF NOT EXISTS %s (run text NOT NULL, n bigint NOT NULL, at timestamptz NOT NULL DEFAULT now(), '
                    'PRIMARY KEY (run, n))' % TABLE)
    acked = []
    errors = {}
    n = 0
    started = last_ok = time.monotonic()
    longest_stall = 0.0
    stall_started_at = None
    interval = 1.0 / args.rate if args.rate > 0 else 0
    while True:
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            break
        if args.stop_file and os.path.exists(args.stop_file):
            break
        n += 1
        try:
            if conn is None:
                conn = connect(args.dsn, 2)
            with conn.cursor() as cur:
                cur.execute('INSERT INTO ' + TABLE + ' (run, n) VALUES (%s, %s)', (args.run, n))
            done = time.monotonic()
            acked.append(n)
            if done - last_ok > longest_stall:
                longest_stall = done - last_ok
                stall_started_at = time.time() - (done - last_ok)
            last_ok = done
        except psycopg2.Error as e:
            kind = (getattr(e, 'pgcode', None) or type(e).__name__) + ': ' + str(e).strip().splitlines()[0][:120]
            errors[kind] = errors.get(kind, 0) + 1
            try:
                if conn is not None:
                    conn.close()
            except psycopg2.Error:
                pass
            conn = None
            time.sleep(0.05)
            continue
        if interval:
            pause = interval - (time.monotonic() - now)
            if pause > 0:
                time.sleep(pause)
    elapsed = time.monotonic() - started

    present = None
    deadline = time.monotonic() + 60
    while present is None:
        try:
            check = connect(args.dsn, 5)
            with check.cursor() as cur:
                cur.execute('SELECT n FROM ' + TABLE + ' WHERE run = %s', (args.run,))
                present = set(row[0] for row in cur.fetchall())
            check.close()
        except psycopg2.Error as e:
            if time.monotonic() > deadline:
                print('could not read the rows back: %s' % e, file=sys.stderr)
                return 2
            time.sleep(0.5)
    lost = sorted(set(acked) - present)
    unacked_present = sorted(present - set(acked))
    result = {
        'run': args.run,
        'attempted_inserts': n,
        'acknowledged_inserts': len(acked),
        'acknowledged_inserts_lost': len(lost),
        'lost_numbers': lost[:50],
        'unacknowledged_inserts_present': len(unacked_present),
        'client_errors': sum(errors.values()),
        'errors_by_kind': errors,
        'longest_write_stall_s': round(longest_stall, 3),
        'longest_stall_started_at': stall_started_at,
        'seconds': round(elapsed, 1),
        'inserts_per_s': round(len(acked) / elapsed, 1) if elapsed else 0,
    }
    print('acknowledged inserts:        %d' % result['acknowledged_inserts'])
    print('acknowledged inserts lost:   %d' % result['acknowledged_inserts_lost'])
    print('unacknowledged but present:  %d' % result['unacknowledged_inserts_present'])
    print('client errors:               %d %s' % (result['client_errors'], json.dumps(errors) if errors else ''))
    print('longest write stall:         %.3f s%s' % (result['longest_write_stall_s'], time.strftime(
        ' (from %H:%M:%S UTC)', time.gmtime(stall_started_at)) if stall_started_at else ''))
    print('throughput:                  %.1f inserts/s over %.1f s' % (result['inserts_per_s'], elapsed))
    if args.result:
        with open(args.result, 'w') as handle:
            json.dump(result, handle, indent=2)
    return 1 if lost else 0


if __name__ == '__main__':
    sys.exit(main())
