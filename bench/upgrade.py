#!/usr/bin/env python3
"""HTTP load and a steady job stream through an edge while a command (the upgrade) runs; then the count.

From the controller, through one CDN edge (TLS, verified against the lab CA):
  * --readers threads GET --path (keep-alive connections, like browsers; a request that fails on a
    reused connection before any response byte is retried once on a new one and counted as a
    reconnect, as browsers and urllib3 do; everything else is a failure),
  * one writer POSTs /fixture/enqueue (a fresh connection each, never retried) --jobs-per-second
    times a second, every tenth job sleeping --slow-job seconds so quieted Sidekiq processes have
    running jobs to finish; the returned job ids are the jobs acknowledged,
while the command after `--` runs. When it exits the load stops, and the acknowledged job ids are
looked up in fixture_jobs on the primary (over SSH, psql as postgres) until all are processed or
--settle seconds pass. Prints requests sent and failed, p50/p99/max latency, reconnects, jobs
enqueued and processed, the command's time and exit status; --result writes them as JSON.

The job lookup needs the Mastodon-interface fixture (lab/fixture): it records every job it runs.

    python3 bench/upgrade.py --edge 10.89.40.61 --db 10.89.40.11 --result /tmp/upgrade.json -- \\
        ansible-playbook playbooks/upgrade.yml -e mastodon_release_version=v2.0.0
"""
import argparse
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

DISCONNECTS = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest)


class EdgeConnection(http.client.HTTPSConnection):
    """HTTPS to the edge's address, with SNI and certificate checks for the site's name."""

    def __init__(self, address, server_name, context, timeout):
        super().__init__(server_name, 443, context=context, timeout=timeout)
        self._address = address
        self._server_name = server_name
        self._ctx = context

    def connect(self):
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self._server_name)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.reconnects = 0
        self.errors = {}
        self.latencies = []

    def record(self, ok, latency=None, error=None):
        with self.lock:
            self.sent += 1
            if ok:
                self.latencies.append(latency)
            else:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def reader(args, context, stats, stop):
    conn = None
    while not stop.is_set():
        started = time.monotonic()
        attempt_reused = conn is not None
        error = None
        for _ in range(2):
            if conn is None:
                conn = EdgeConnection(args.edge, args.host, context, args.timeout)
            try:
                conn.request('GET', args.path, headers={'Host': args.host})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    error = 'HTTP %d' % resp.status
                elif resp.getheader('Connection', '').lower() == 'close':
                    conn.close()
                    conn = None
                break
            except DISCONNECTS as e:
                conn.close()
                conn = None
                if attempt_reused:
                    # The edge closed an idle keep-alive connection (its old workers exit after a
                    # reload): a client retries that once on a new connection.
                    with stats.lock:
                        stats.reconnects += 1
                    attempt_reused = False
                    continue
                error = type(e).__name__
                break
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = None
                error = type(e).__name__
                break
        stats.record(error is None, time.monotonic() - started, error)
        if args.read_interval:
            time.sleep(args.read_interval)


def writer(args, context, stats, jids, stop):
    interval = 1.0 / args.jobs_per_second
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        n += 1
        sleep_s = args.slow_job if n % 10 == 0 else 0
        started = time.monotonic()
        conn = EdgeConnection(args.edge, args.host, context, args.timeout)
        error = None
        try:
            conn.request('POST', '/fixture/enqueue?queue=%s&n=1&sleep=%s&note=bench-upgrade' % (args.queue, sleep_s),
                         headers={'Host': args.host, 'Content-Length': '0'})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 202:
                jids.extend(json.loads(body)['jids'])
            else:
                error = 'HTTP %d' % resp.status
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            error = type(e).__name__
        finally:
            conn.close()
        stats.record(error is None, time.monotonic() - started, error)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def processed_jobs(args, jids):
    """How many of `jids` fixture_jobs holds, asked on the primary over SSH."""
    script = ('CREATE TEMP TABLE acked (jid text);\nCOPY acked FROM STDIN;\n%s\n\\.\n'
              'SELECT count(DISTINCT jid) FROM acked JOIN fixture_jobs USING (jid);\n') % '\n'.join(jids)
    cmd = ['ssh', '-i', args.ssh_key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
           '-o', 'LogLevel=ERROR', 'root@%s' % args.db,
           'runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d %s -f -' % args.database]
    out = subprocess.run(cmd, input=script, capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1])


def main():
    lab_home = os.environ.get('FEDIOPS_LAB_HOME', os.path.expanduser('~/.fediops-lab'))
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--edge', required=True, help='address of the CDN edge')
    parser.add_argument('--host', default='lab.fediops.example', help="the site's name (SNI, Host, certificate)")
    parser.add_argument('--path', default='/api/v1/instance', help='what readers GET')
    parser.add_argument('--ca', default=os.path.join(lab_home, 'ca', 'ca.crt'))
    parser.add_argument('--readers', type=int, default=4)
    parser.add_argument('--read-interval', type=float, default=0.02, help='pause of each reader between requests')
    parser.add_argument('--jobs-per-second', type=float, default=5)
    parser.add_argument('--queue', default='default')
    parser.add_argument('--slow-job', type=float, default=3.0, help='seconds every tenth job sleeps')
    parser.add_argument('--timeout', type=float, default=30)
    parser.add_argument('--warmup', type=float, default=3, help='seconds of load before the command starts')
    parser.add_argument('--db', required=True, help='address of the Postgres primary (SSH)')
    parser.add_argument('--database', default='mastodon_production')
    parser.add_argument('--ssh-key', default=os.path.join(lab_home, 'ssh', 'id_ed25519'))
    parser.add_argument('--settle', type=float, default=180, help='seconds to wait for acknowledged jobs to run')
    parser.add_argument('--result', help='write the figures as JSON to this file')
    parser.add_argument('command', nargs=argparse.REMAINDER, help='-- the command to run under load')
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        parser.error('give the command to run after --')

    context = ssl.create_default_context(cafile=args.ca)
    stats_read, stats_write = Stats(), Stats()
    jids = []
    stop = threading.Event()
    threads = [threading.Thread(target=reader, args=(args, context, stats_read, stop), daemon=True) for _ in range(args.readers)]
    threads.append(threading.Thread(target=writer, args=(args, context, stats_write, jids, stop), daemon=True))
    for t in threads:
        t.start()
    time.sleep(args.warmup)

    started = time.monotonic()
    rc = subprocess.call(command)
    command_seconds = time.monotonic() - started
    stop.set()
    for t in threads:
        t.join(args.timeout + 5)

    processed = None
    deadline = time.monotonic() + args.settle
    while True:
        try:
            processed = processed_jobs(args, jids)
        except (subprocess.CalledProcessError, ValueError, IndexError) as e:
            print('job lookup failed: %s' % e, file=sys.stderr)
        if processed == len(jids) or time.monotonic() > deadline:
            break
        time.sleep(2)

    figures = {
        'command': command, 'command_rc': rc, 'command_seconds': round(command_seconds, 1),
        'requests_sent': stats_read.sent, 'requests_failed': stats_read.failed, 'request_errors': stats_read.errors,
        'keepalive_reconnects': stats_read.reconnects,
        'latency_p50_ms': round(1000 * (percentile(stats_read.latencies, 50) or 0), 1),
        'latency_p99_ms': round(1000 * (percentile(stats_read.latencies, 99) or 0), 1),
        'latency_max_ms': round(1000 * (max(stats_read.latencies) if stats_read.latencies else 0), 1),
        'enqueue_requests': stats_write.sent, 'enqueue_failed': stats_write.failed, 'enqueue_errors': stats_write.errors,
        'jobs_enqueued': len(jids), 'jobs_processed': processed,
    }
    print('command                 %s (rc %d) in %.1f s' % (' '.join(command[:2]), rc, command_seconds))
    print('requests sent / failed  %d / %d  %s' % (stats_read.sent, stats_read.failed, stats_read.errors or ''))
    print('keep-alive reconnects   %d' % stats_read.reconnects)
    print('latency p50 / p99 / max %.1f / %.1f / %.1f ms' % (figures['latency_p50_ms'], figures['latency_p99_ms'], figures['latency_max_ms']))
    print('enqueue sent / failed   %d / %d  %s' % (stats_write.sent, stats_write.failed, stats_write.errors or ''))
    print('jobs enqueued / run     %d / %s' % (len(jids), processed))
    if args.result:
        with open(args.result, 'w') as handle:
            json.dump(figures, handle, indent=2)
    ok = rc == 0 and stats_read.failed == 0 and stats_write.failed == 0 and processed == len(jids)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
