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

From the controller (--lab), against a podman lab (`make lab`, or a molecule scenario's containers with
its inventory overlay): it copies itself to an application host, starts the load there (as above), then

    --switchovers N   runs playbooks/switchover.yml N times (a pause between them) and prints each
                      switchover's write stall (the longest gap between acknowledged inserts while it
                      ran) and the median;
    --host-loss       kills the running primary's container (podman kill: its host is gone, nothing shuts
                      down cleanly), runs playbooks/failover.yml -e failover_unfenced_ok=true and prints the
                      write stall from the loss to the first acknowledged insert after it, the
                      acknowledged inserts lost and how long failover.yml took. The lost host stays down:
                      rebuild it as docs/data-tier.md says (or destroy the lab).

and, for both, the machine's load average. Figures are printed, not judged (tests judge correctness).

    python3 bench/switchover.py --lab --switchovers 5
    python3 bench/switchover.py --lab --host-loss
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import psycopg2
except ImportError:  # the controller mode (--lab) does not need it
    psycopg2 = None

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REMOTE_DIR = '/usr/local/lib/fediops-bench'

TABLE = 'fediops_switchover_probe'


def connect(dsn, timeout):
    conn = psycopg2.connect(dsn, connect_timeout=timeout)
    conn.autocommit = True
    return conn


class Lab(object):
    """The lab, driven from the controller with this checkout's ansible.cfg and collection."""

    def __init__(self, args):
        self.args = args
        self.env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'),
                        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, 'collections'), ANSIBLE_NOCOLOR='1',
                        ANSIBLE_FORCE_COLOR='0')
        self.common = []
        for inventory in args.inventory or [os.path.join(REPO, 'inventories', 'lab')]:
            self.common += ['-i', inventory]
        if args.limit:
            self.common += ['--limit', args.limit]

    def ansible(self, host, module, module_args, check=True, extra=()):
        argv = ['ansible', host] + self.common + ['-b', '-m', module, '-a', module_args] + list(extra)
        done = subprocess.run(argv, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if check and done.returncode != 0:
            raise SystemExit('%s failed (rc %d):\n%s' % (' '.join(argv[:2] + argv[-4:]), done.returncode, done.stdout[-3000:]))
        return done

    def var(self, host, name):
        done = self.ansible(host, 'ansible.builtin.debug', 'msg={{ %s }}' % name, extra=['-o'])
        # one line: host | SUCCESS => {"changed": false, "msg": "..."}
        return json.loads(done.stdout.split('=>', 1)[1])['msg']

    def playbook(self, playbook, *extra):
        argv = ['ansible-playbook'] + self.common + [os.path.join(REPO, 'playbooks', playbook)] + list(extra)
        self.runs = getattr(self, 'runs', 0) + 1
        log = os.path.join(tempfile.gettempdir(), 'fediops-bench-%s-%d.log' % (playbook.replace('.yml', ''), self.runs))
        started = time.time()
        with open(log, 'w') as handle:
            rc = subprocess.call(argv, cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        return rc, started, time.time(), log

    def primary(self, hosts):
        for host in hosts:
            done = self.ansible(host, 'ansible.builtin.command', "psql -XAtc 'SELECT pg_is_in_recovery()'",
                                check=False, extra=['--become-user', 'postgres', '-o'])
            if done.returncode == 0 and '(stdout) f' in done.stdout:
                return host
        raise SystemExit('no running primary among %s' % ', '.join(hosts))


def lab_main(args):
    lab = Lab(args)
    app, pooler = args.app_host, args.pgbouncer_host
    run = 'bench-%d' % time.time()
    stop, result = '/tmp/%s-stop' % run, '/tmp/%s.json' % run
    lab.ansible(app, 'ansible.builtin.copy', 'src=%s dest=%s/ mode=0755' % (os.path.abspath(__file__), REMOTE_DIR))
    dsn = 'host={{ hostvars["%s"].fediops_private_address }} port=%d dbname=%s user=%s' % (
        pooler, args.pgbouncer_port, args.dbname, args.user)
    # The password is templated on the controller into the environment of the remote command, never printed.
    command = ('PGPASSWORD={{ pgbouncer_app_password | quote }} exec python3 %s/switchover.py --dsn %s --stop-file %s '
               '--result %s --rate %s --run %s > /tmp/%s.log 2>&1'
               % (REMOTE_DIR, shlex.quote(dsn), stop, result, args.rate, run, run))
    lab.ansible(app, 'ansible.builtin.shell', command, extra=['-B', '3600', '-P', '0'])
    print('load: numbered inserts through %s from %s at %s/s (run %s)' % (pooler, app, args.rate, run))
    time.sleep(args.settle)

    windows, rcs, extra_lines = [], [], []
    try:
        if args.host_loss:
            pg_hosts = [h.strip() for h in args.postgres_hosts.split(',')]
            primary = lab.primary(pg_hosts)
            container = '%s-%s' % (lab.var(primary, 'lab_name'), primary)
            load_before = os.getloadavg()
            lost_at = time.time()
            subprocess.check_call(['podman', 'kill', container], stdout=subprocess.DEVNULL)
            killed = time.time()
            rc, started, ended, log = lab.playbook('failover.yml', '-e', 'failover_unfenced_ok=true')
            rcs.append(rc)
            windows.append((lost_at, ended))
            extra_lines.append('host lost:                   %s (podman kill %s took %.2f s)' % (primary, container, killed - lost_at))
            extra_lines.append('failover.yml:                rc %d, done %.1f s after the loss (%.1f s run; log %s)'
                               % (rc, ended - lost_at, ended - started, log))
            extra_lines.append('load average at the loss:    %.2f %.2f %.2f (%d CPUs)' % (load_before + (os.cpu_count(),)))
        else:
            for number in range(args.switchovers):
                load_before = os.getloadavg()
                rc, started, ended, log = lab.playbook('switchover.yml')
                rcs.append(rc)
                windows.append((started, ended))
                extra_lines.append('switchover %d: rc %d, %.1f s run, load average %.2f (log %s)'
                                   % (number + 1, rc, ended - started, load_before[0], log))
                if rc != 0:
                    break
                time.sleep(args.settle)
        time.sleep(args.settle)
    finally:
        lab.ansible(app, 'ansible.builtin.file', 'path=%s state=touch mode=0644' % stop)
        figures = None
        deadline = time.time() + 120
        local = os.path.join(tempfile.gettempdir(), '%s.json' % run)
        while time.time() < deadline:
            if lab.ansible(app, 'ansible.builtin.fetch', 'src=%s dest=%s flat=true' % (result, local), check=False).returncode == 0 \
                    and os.path.exists(local):
                with open(local) as handle:
                    figures = json.load(handle)
                break
            time.sleep(2)
    if figures is None:
        raise SystemExit('the load wrote no result (see /tmp/%s.log on %s)' % (run, app))

    stalls = figures.get('stalls') or []
    print('acknowledged inserts:        %d' % figures['acknowledged_inserts'])
    print('acknowledged inserts lost:   %d' % figures['acknowledged_inserts_lost'])
    print('unacknowledged but present:  %d' % figures['unacknowledged_inserts_present'])
    print('client errors:               %d %s' % (figures['client_errors'], json.dumps(figures['errors_by_kind']) if figures['errors_by_kind'] else ''))
    print('longest write stall:         %.3f s' % figures['longest_write_stall_s'])
    for line in extra_lines:
        print(line)
    if args.host_loss:
        lost_at = windows[0][0]
        after = [st for st in stalls if st['to'] > lost_at]
        if after and after[0]['from'] <= lost_at + 1:
            print('write stall from the loss:   %.3f s (from the kill to the first acknowledged insert after it; the '
                  'last one before it was acknowledged %+.3f s from the kill)' % (after[0]['to'] - lost_at, after[0]['from'] - lost_at))
        else:
            print('write stall from the loss:   none recorded (writes went on?) %s' % after[:2])
        if rcs[0] == 0:
            print('next: the lost host stays down; rebuild it as docs/data-tier.md says ("The procedure, command by command")')
    else:
        measured = []
        for number, (started, ended) in enumerate(windows, 1):
            inside = [st['s'] for st in stalls if st['to'] >= started and st['from'] <= ended]
            measured.append(max(inside) if inside else 0.0)
            print('switchover %d write stall:    %.3f s' % (number, measured[-1]))
        if measured:
            print('median write stall:          %.3f s over %d switchovers' % (statistics.median(measured), len(measured)))
    if any(rc != 0 for rc in rcs):
        return 2
    return 1 if figures['acknowledged_inserts_lost'] else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    lab = parser.add_argument_group('from the controller, against a podman lab')
    lab.add_argument('--lab', action='store_true', help='drive the lab from the controller (see above)')
    lab.add_argument('-i', '--inventory', action='append', help='inventory source (repeat; default inventories/lab)')
    lab.add_argument('--limit', help="ansible's --limit (a molecule scenario's hosts)")
    lab.add_argument('--switchovers', type=int, default=0, help='run playbooks/switchover.yml this many times')
    lab.add_argument('--host-loss', action='store_true', help="kill the primary's container and run playbooks/failover.yml")
    lab.add_argument('--app-host', default='web1', help='where the load runs')
    lab.add_argument('--pgbouncer-host', default='pgbouncer1', help='the PgBouncer the load goes through')
    lab.add_argument('--pgbouncer-port', type=int, default=6432)
    lab.add_argument('--dbname', default='mastodon_production')
    lab.add_argument('--user', default='mastodon')
    lab.add_argument('--postgres-hosts', default='db1,db2', help='where to look for the running primary')
    lab.add_argument('--settle', type=float, default=3, help='seconds of load before, between and after the runs')
    parser.add_argument('--dsn', help='libpq connection string to PgBouncer (the load client)')
    parser.add_argument('--stop-file', help='stop when this file exists')
    parser.add_argument('--duration', type=float, default=0, help='stop after this many seconds (0: only --stop-file)')
    parser.add_argument('--rate', type=float, default=200, help='inserts per second to aim at (0: as fast as possible)')
    parser.add_argument('--result', help='write the figures as JSON to this file')
    parser.add_argument('--run', default=str(int(time.time())), help='run label stored with each row')
    parser.add_argument('--stall-threshold', type=float, default=0.25,
                        help='record every gap between acknowledged inserts longer than this (seconds) in the JSON')
    args = parser.parse_args()
    if args.lab:
        if bool(args.switchovers) == bool(args.host_loss):
            parser.error('--lab needs one of --switchovers N or --host-loss')
        return lab_main(args)
    if not args.dsn:
        parser.error('give --dsn (the load client) or --lab')
    if psycopg2 is None:
        parser.error('the load client needs psycopg2')
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
    last_ok_wall = time.time()
    longest_stall = 0.0
    stall_started_at = None
    stalls = []  # every gap between two acknowledged inserts longer than --stall-threshold, in wall-clock time
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
            done, done_wall = time.monotonic(), time.time()
            acked.append(n)
            if done - last_ok > longest_stall:
                longest_stall = done - last_ok
                stall_started_at = done_wall - (done - last_ok)
            if done - last_ok > args.stall_threshold:
                stalls.append({'from': round(last_ok_wall, 3), 'to': round(done_wall, 3), 's': round(done - last_ok, 3)})
            last_ok, last_ok_wall = done, done_wall
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
        'stalls': stalls,
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
