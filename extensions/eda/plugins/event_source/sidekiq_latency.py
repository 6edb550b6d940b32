# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fediops.mastodon.sidekiq_latency - an ansible-rulebook event source: Sidekiq latency per pool, and the
autoscaling decision for every pool that has an ``autoscale`` block.

Every ``interval`` seconds it reads Sidekiq's queues and processes straight from Redis (the functions of
plugins/module_utils/sidekiq.py: ``LLEN``/``LINDEX queue:<name>``, the ``processes`` set and hashes) and puts
one event per pool on the queue::

    {"sidekiq_latency": {
        "pool": "ingress", "time": 1767225600.0,
        "latency": 42.0, "depth": 310,                      # the pool's worst queue, its jobs waiting
        "queues": {"ingress": {"depth": 310, "latency": 42.0}},
        "processes": 1, "quiet": 0, "busy": 2,              # live processes tagged with the pool (-g <pool>)
        "free_connections": 17,                             # the budget's room left (None: no budget given)
        "autoscale": {"action": "scale_out", "count": 1, "processes": 1, "target": 2,
                      "refused": 0, "reason": "latency 42.0 s > target 10.0 s for 30 s: adding 1 ..."}}}

``autoscale`` is None for a pool without a policy. The decision is module_utils/sidekiq_autoscale.py's
``decide``; this source keeps its state between polls. After a scale-out or scale-in it counts the pool
at the decided size until Redis shows it (or ``settle`` seconds pass), so a process still starting is
not asked for twice.

Arguments (the rulebook's source arguments):

    redis_url:          redis://[:password@]host:port/db (or unix://...); or host/port/db/username/password/unix_socket_path
    namespace:          Sidekiq key prefix (Mastodon <= 4.3 with REDIS_NAMESPACE); default none
    interval:           seconds between polls (default 10)
    settle:             seconds a decided size is assumed while Redis catches up (default 60)
    room:               client connections the connection budget leaves for autoscaled processes
                        (fediops.mastodon.sidekiq_autoscale_room); omitted: no budget check here
    pools:              [{name, queues: [...], converged (hosts x processes), db_pool, autoscale: {...}}]
    limit:              stop after this many polls (tests, probes); default forever
    metrics_address:    serve Prometheus metrics on http://<address>:<metrics_port>/metrics (omitted: none)
    metrics_port:       (with metrics_address) - fediops_sidekiq_autoscale_* below
    notify_url:         a Discord webhook (or the lab's stand-in): every scale-out, scale-in and budget refusal
                        is posted there, with its reason (omitted: not posted; always in the journal)
    notify_prefix:      the first words of each post (default "sidekiq autoscale")

Every decision other than ``hold`` is also printed to stdout (the service's journal) with its reason. The metrics
(per pool): ``fediops_sidekiq_autoscale_processes`` (live, not quiet, as counted for the decision),
``_quiet_processes``, ``_latency_seconds``, ``_target_processes`` (what the last action asked for),
``_decisions_total{action}`` (scale_out, scale_in, refused_budget), ``_refused_processes_total``; and
``fediops_sidekiq_autoscale_free_connections`` (the budget's room left), ``_last_poll_timestamp_seconds``,
``_poll_errors_total`` (a Redis read that failed; the poll is retried at the next interval).
"""

from __future__ import absolute_import, division, print_function

import asyncio
import json
import os
import threading
import time

try:
    from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq, sidekiq_autoscale
except ImportError:  # ansible-rulebook runs the file by path: load the two pure modules beside it in the collection.
    import importlib.util

    def _load(name):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'plugins', 'module_utils',
                            name + '.py')
        spec = importlib.util.spec_from_file_location('fediops_mastodon_' + name, os.path.normpath(path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    sidekiq = _load('sidekiq')
    sidekiq_autoscale = _load('sidekiq_autoscale')

DEFAULT_INTERVAL = 10
DEFAULT_SETTLE = 60


def _queue_name(entry):
    if isinstance(entry, dict):
        return str(entry.get('name'))
    if isinstance(entry, (list, tuple)):
        return str(entry[0])
    return str(entry).split(',', maxsplit=1)[0].strip()


def observe(pools, queues, processes):
    """Per pool: its queues' depth and latency, its worst latency, and its live processes.

    ``queues``: module_utils/sidekiq.queue_stats; ``processes``: sidekiq.process_stats. A process
    belongs to a pool by its tag (the role starts every process with ``-g <pool>``); stale processes
    are not counted, quiet ones (being stopped) are counted apart.
    """
    out = {}
    for pool in pools:
        name = str(pool['name'])
        names = [_queue_name(q) for q in pool.get('queues') or []]
        mine = dict((q, {'depth': queues.get(q, {}).get('depth', 0), 'latency': queues.get(q, {}).get('latency', 0.0)})
                    for q in names)
        live = [p for p in processes if p.get('tag') == name and not p.get('stale')]
        out[name] = {
            'queues': mine,
            'latency': max([q['latency'] for q in mine.values()] or [0.0]),
            'depth': sum(q['depth'] for q in mine.values()),
            'processes': len([p for p in live if not p.get('quiet')]),
            'quiet': len([p for p in live if p.get('quiet')]),
            'busy': sum(int(p.get('busy') or 0) for p in live),
        }
    return out


def pool_events(pools, observed, now, states, room=None, settle=DEFAULT_SETTLE):
    """The events of one poll and the state for the next: ([event], states).

    ``pools``: the source's ``pools`` argument; ``observed``: ``observe()``; ``states``: {pool: {decision
    state, pending_target, pending_until}} from the previous poll ({} at first); ``room``: the budget's
    room (None: no budget). Pure: ``states`` is not changed.
    """
    states = dict((k, dict(v)) for k, v in (states or {}).items())
    # Processes counted per autoscaled pool: what Redis shows, or the size just decided while it starts or stops.
    counted = {}
    for pool in pools:
        name = str(pool['name'])
        seen = observed[name]['processes']
        st = states.get(name) or {}
        pending = st.get('pending_target')
        if pending is not None and seen != pending and now < (st.get('pending_until') or 0):
            counted[name] = pending
        else:
            counted[name] = seen
            st.pop('pending_target', None)
            st.pop('pending_until', None)
        states[name] = st
    free = None
    if room is not None:
        # Connections are held by every process that exists, quiet ones too (a quiet process is still finishing
        # its jobs), and by one decided but not yet seen.
        free = sidekiq_autoscale.free_connections(int(room), [
            {'converged': int(p.get('converged') or 0),
             'processes': (max(counted[str(p['name'])], observed[str(p['name'])]['processes'])
                           + observed[str(p['name'])]['quiet']),
             'db_pool': sidekiq_autoscale.pool_db_pool(p)}
            for p in pools if p.get('autoscale')])
    events = []
    for pool in pools:
        name = str(pool['name'])
        obs = observed[name]
        decision = None
        if pool.get('autoscale'):
            st = states[name]
            budget = None if free is None else {'connections_per_process': sidekiq_autoscale.pool_db_pool(pool),
                                                'free_connections': free}
            full = sidekiq_autoscale.decide(pool['autoscale'], st.get('decision'),
                                            {'now': now, 'latency': obs['latency'], 'processes': counted[name]}, budget)
            st['decision'] = full.pop('state')
            if full['action'] in (sidekiq_autoscale.SCALE_OUT, sidekiq_autoscale.SCALE_IN) and full['count']:
                st['pending_target'], st['pending_until'] = full['target'], now + settle
                if free is not None:
                    free -= (full['target'] - full['processes']) * sidekiq_autoscale.pool_db_pool(pool)
            decision = full
        events.append({'sidekiq_latency': dict(obs, pool=name, time=now, free_connections=free, autoscale=decision)})
    return events, states


ACTIONS_COUNTED = ('scale_out', 'scale_in', 'refused_budget')


class Tally(object):
    """What the metrics show: the last event of each pool and counters since the service started."""

    def __init__(self):
        self.last = {}
        self.decisions = {}
        self.refused = {}
        self.targets = {}
        self.free = None
        self.last_poll = None
        self.poll_errors = 0
        self.lock = threading.Lock()

    def record(self, events, now):
        with self.lock:
            self.last_poll = now
            for event in events:
                ev = event['sidekiq_latency']
                pool = ev['pool']
                self.last[pool] = ev
                self.free = ev.get('free_connections')
                decision = ev.get('autoscale')
                if not decision:
                    continue
                for action in ACTIONS_COUNTED:
                    self.decisions.setdefault((pool, action), 0)
                self.refused.setdefault(pool, 0)
                self.targets.setdefault(pool, decision['processes'])
                if decision['action'] in ('scale_out', 'scale_in') and decision['count']:
                    self.decisions[(pool, decision['action'])] += 1
                    self.targets[pool] = decision['target']
                if decision['action'] == 'refused_budget':
                    self.decisions[(pool, 'refused_budget')] += 1
                self.refused[pool] += int(decision.get('refused') or 0)

    def render(self):
        """Prometheus' text format."""
        def esc(value):
            return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')

        lines = []

        def family(name, kind, text, samples):
            lines.append('# HELP %s %s' % (name, text))
            lines.append('# TYPE %s %s' % (name, kind))
            for labels, value in samples:
                label_text = ','.join('%s="%s"' % (k, esc(v)) for k, v in labels)
                lines.append('%s{%s} %s' % (name, label_text, value) if label_text else '%s %s' % (name, value))

        with self.lock:
            pools = sorted(p for p, ev in self.last.items() if ev.get('autoscale'))
            family('fediops_sidekiq_autoscale_processes', 'gauge',
                   'Live, not quiet, processes of the pool as counted for the decision.',
                   [((('pool', p),), self.last[p]['autoscale']['processes']) for p in pools])
            family('fediops_sidekiq_autoscale_quiet_processes', 'gauge', 'Processes of the pool being quieted.',
                   [((('pool', p),), self.last[p].get('quiet', 0)) for p in pools])
            family('fediops_sidekiq_autoscale_latency_seconds', 'gauge',
                   'Latency of the pool (its worst queue) at the last poll.',
                   [((('pool', p),), self.last[p].get('latency', 0.0)) for p in pools])
            family('fediops_sidekiq_autoscale_target_processes', 'gauge',
                   'Processes the last scale-out or scale-in asked for (the size at start before any).',
                   [((('pool', p),), self.targets.get(p, 0)) for p in pools])
            family('fediops_sidekiq_autoscale_decisions_total', 'counter',
                   'Scale-outs, scale-ins and budget refusals decided since the service started.',
                   [((('pool', p), ('action', a)), self.decisions.get((p, a), 0)) for p in pools for a in ACTIONS_COUNTED])
            family('fediops_sidekiq_autoscale_refused_processes_total', 'counter',
                   'Processes a scale-out wanted and the connection budget refused.',
                   [((('pool', p),), self.refused.get(p, 0)) for p in pools])
            if self.free is not None:
                family('fediops_sidekiq_autoscale_free_connections', 'gauge',
                       'Client connections the budget still leaves for autoscaled processes.', [((), self.free)])
            if self.last_poll is not None:
                family('fediops_sidekiq_autoscale_last_poll_timestamp_seconds', 'gauge',
                       'When Redis was last read.', [((), '%.3f' % self.last_poll)])
            family('fediops_sidekiq_autoscale_poll_errors_total', 'counter', 'Redis reads that failed.',
                   [((), self.poll_errors)])
        return '\n'.join(lines) + '\n'


def announcement(event, prefix='sidekiq autoscale'):
    """The line logged and posted for a decision, or None for ``hold`` and a pool without a policy."""
    ev = event['sidekiq_latency']
    decision = ev.get('autoscale')
    if not decision:
        return None
    action = decision['action']
    if action in ('scale_out', 'scale_in') and decision['count']:
        text = '%s: pool %s %s to %d process(es): %s' % (
            prefix, ev['pool'], 'scaling out' if action == 'scale_out' else 'scaling in', decision['target'],
            decision['reason'])
        if decision.get('refused'):
            text += ' (%d process(es) refused for the connection budget)' % decision['refused']
        return text
    if action == 'refused_budget':
        return '%s: pool %s refused %d process(es) for the connection budget: %s' % (
            prefix, ev['pool'], decision.get('refused') or 0, decision['reason'])
    return None


def _post(url, text):
    import urllib.request
    body = json.dumps({'content': text[:1900]}).encode()
    request = urllib.request.Request(url, data=body, headers={'Content-Type': 'application/json',
                                                              'User-Agent': 'fediops-sidekiq-autoscaler'})
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec - the operator's webhook
        response.read()


def serve_metrics(tally, address, port):
    """Serve ``tally.render()`` on /metrics in a daemon thread; returns the server."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path.split('?')[0] != '/metrics':
                self.send_error(404)
                return
            body = tally.render().encode()
            self.send_response(200)
            self.send_header('Content-Type', 'text/plain; version=0.0.4')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes are not news
            pass

    server = ThreadingHTTPServer((address, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _client(args):
    import redis  # only where the source runs; the shaping above needs no Redis
    if args.get('redis_url'):
        return redis.Redis.from_url(args['redis_url'])
    return redis.Redis(host=args.get('host', 'localhost'), port=int(args.get('port', 6379)), db=int(args.get('db', 0)),
                       username=args.get('username'), password=args.get('password'),
                       unix_socket_path=args.get('unix_socket_path'))


def poll(client, pools, namespace='', now=None):
    """One blocking read of Redis: (observed per pool, now)."""
    now = time.time() if now is None else now
    wanted = sorted(set(_queue_name(q) for p in pools for q in p.get('queues') or []))
    queues = sidekiq.queue_stats(client, namespace, names=wanted, now=now)
    processes = sidekiq.process_stats(client, namespace, now=now)
    return observe(pools, queues, processes), now


async def main(queue, args):
    """ansible-rulebook's entry point: poll, decide, put one event per pool, sleep, again."""
    pools = list(args.get('pools') or [])
    if not pools:
        raise ValueError('sidekiq_latency needs pools: [{name, queues, converged, db_pool, autoscale}]')
    interval = float(args.get('interval', DEFAULT_INTERVAL))
    settle = float(args.get('settle', DEFAULT_SETTLE))
    room = args.get('room')
    limit = args.get('limit')
    client = args.get('client') or _client(args)
    loop = asyncio.get_running_loop()
    tally = args.get('tally') or Tally()
    server = serve_metrics(tally, args['metrics_address'], args['metrics_port']) if args.get('metrics_port') else None
    notify_url = args.get('notify_url') or ''
    prefix = args.get('notify_prefix') or 'sidekiq autoscale'
    states = {}
    polls = 0
    try:
        while limit is None or polls < int(limit):
            polls += 1
            try:
                observed, now = await loop.run_in_executor(None, poll, client, pools, args.get('namespace') or '')
            # Redis down: say so, count it, poll again.
            except Exception as e:  # pylint: disable=broad-except
                tally.poll_errors += 1
                print('sidekiq autoscale: reading Redis failed: %s' % type(e).__name__, flush=True)
                if limit is None or polls < int(limit):
                    await asyncio.sleep(interval)
                continue
            events, states = pool_events(pools, observed, now, states, room=room, settle=settle)
            tally.record(events, now)
            for event in events:
                text = announcement(event, prefix)
                if text:
                    print(text, flush=True)
                    if notify_url:
                        try:
                            await loop.run_in_executor(None, _post, notify_url, text)
                        # A post lost is not a decision lost.
                        except Exception as e:  # pylint: disable=broad-except
                            print('sidekiq autoscale: posting to the webhook failed: %s' % type(e).__name__, flush=True)
                await queue.put(event)
            if limit is None or polls < int(limit):
                await asyncio.sleep(interval)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


if __name__ == '__main__':
    # A look at the events without ansible-rulebook: REDIS_URL=redis://... python sidekiq_latency.py
    class _PrintQueue:
        async def put(self, event):
            print(event)

    asyncio.run(main(_PrintQueue(), {'redis_url': os.environ.get('REDIS_URL', 'redis://localhost:6379/0'), 'limit': 1,
                                     'pools': [{'name': n, 'queues': [n]}
                                               for n in ('default', 'push', 'ingress', 'mailers', 'pull', 'scheduler')]}))
