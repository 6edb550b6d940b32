#!/usr/bin/env python3
"""pgbench through PgBouncer and directly against Postgres, and the ratio.

Runs on a host allowed to reach both (an application host: PgBouncer for traffic, Postgres for
migrations). Uses pgbench's built-in select-only script in simple-query mode (PgBouncer's transaction
pooling cannot carry prepared statements), once with persistent client connections and once with a new
connection per transaction (-C), the case a pooler exists for. The password comes from PGPASSWORD.

    PGPASSWORD=... python3 bench/pgbouncer.py --pgbouncer 'host=10.89.44.13 port=6432' --direct 'host=10.89.44.11 port=5432' \\
        --dbname mastodon_production --user mastodon
"""
import argparse
import json
import re
import subprocess
import sys

PGBENCH = '/usr/lib/postgresql/15/bin/pgbench'


def pgbench(target, args, extra):
    cmd = [args.pgbench, '-n', '-M', 'simple', '-S', '-c', str(args.clients), '-j', str(args.jobs), '-T', str(args.seconds)]
    cmd += extra + [target]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit('pgbench failed (%s): %s' % (' '.join(cmd[:-1]), out.stderr.strip()[-400:]))
    match = re.search(r'tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)', out.stdout) \
        or re.search(r'tps = ([0-9.]+)', out.stdout)
    return float(match.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--pgbouncer', required=True, help='libpq host/port of PgBouncer')
    parser.add_argument('--direct', required=True, help='libpq host/port of the Postgres primary')
    parser.add_argument('--dbname', default='mastodon_production')
    parser.add_argument('--user', default='mastodon')
    parser.add_argument('--clients', type=int, default=16)
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--seconds', type=int, default=10)
    parser.add_argument('--scale', type=int, default=1)
    parser.add_argument('--pgbench', default=PGBENCH)
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    args = parser.parse_args()
    base = ' dbname=%s user=%s' % (args.dbname, args.user)
    init = subprocess.run([args.pgbench, '-i', '-q', '-s', str(args.scale), args.direct + base], capture_output=True, text=True)
    if init.returncode != 0:
        raise SystemExit('pgbench -i failed: %s' % init.stderr.strip()[-400:])
    figures = {}
    for label, extra in (('persistent connections', []), ('new connection per transaction (-C)', ['-C'])):
        via = pgbench(args.pgbouncer + base, args, extra)
        direct = pgbench(args.direct + base, args, extra)
        figures[label] = {'pgbouncer_tps': via, 'direct_tps': direct, 'ratio': round(via / direct, 3) if direct else None}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print('pgbench -S -M simple -c %d -j %d -T %d' % (args.clients, args.jobs, args.seconds))
        print('%-38s %14s %14s %8s' % ('', 'via PgBouncer', 'direct', 'ratio'))
        for label, f in figures.items():
            print('%-38s %14.1f %14.1f %8.3f' % (label, f['pgbouncer_tps'], f['direct_tps'], f['ratio']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
