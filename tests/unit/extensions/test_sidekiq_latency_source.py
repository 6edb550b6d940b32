# -*- coding: utf-8 -*-
"""The EDA event source (extensions/eda/plugins/event_source/sidekiq_latency.py) shaping events from a fake Redis."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import asyncio
import importlib.util
import json
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SOURCE = os.path.join(REPO, 'extensions', 'eda', 'plugins', 'event_source', 'sidekiq_latency.py')
NOW = 1767225600.0


def load_source(name='sidekiq_latency_under_test'):
    # As ansible-rulebook does: the file by path (here with the collection importable, so module_utils come from it).
    spec = importlib.util.spec_from_file_location(name, SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


src = load_source()

POOLS = [
    {'name': 'ingress', 'queues': ['ingress'], 'converged': 1, 'db_pool': 5,
     'autoscale': {'min': 1, 'max': 4, 'target_latency': 10, 'scale_out_after': 20, 'scale_in_after': 30, 'step': 1,
                   'cooldown': 60}},
    {'name': 'default', 'queues': ['default,8', 'push,6'], 'converged': 1, 'db_pool': 5},
]


class FakeRedis(object):
    """The read commands module_utils/sidekiq.py issues, over dicts (bytes out, like redis-py)."""

    def __init__(self):
        self.sets, self.lists, self.hashes = {}, {}, {}

    def smembers(self, k):
        return set(x.encode() for x in self.sets.get(k, set()))

    def llen(self, k):
        return len(self.lists.get(k, []))

    def lindex(self, k, i):
        lst = self.lists.get(k, [])
        return lst[i].encode() if lst else None

    def hmget(self, k, fields):
        h = self.hashes.get(k, {})
        return [h[f].encode() if f in h else None for f in fields]

    def enqueue(self, queue, waited, count=1):
        self.sets.setdefault('queues', set()).add(queue)
        for _job in range(count):
            self.lists.setdefault('queue:%s' % queue, []).insert(0, json.dumps({'class': 'X', 'enqueued_at': int((NOW - waited) * 1000)}))

    def process(self, identity, tag, queues, busy=0, beat_age=2, quiet=False):
        self.sets.setdefault('processes', set()).add(identity)
        self.hashes[identity] = {'info': json.dumps({'hostname': identity.split(':')[0], 'pid': 1, 'tag': tag, 'queues': queues,
                                                     'concurrency': 5}),
                                 'busy': str(busy), 'beat': str(NOW - beat_age), 'quiet': 'true' if quiet else 'false'}


def fleet():
    r = FakeRedis()
    r.enqueue('ingress', waited=42, count=3)
    r.enqueue('default', waited=1)
    r.process('sidekiq1:10:a', 'ingress', ['ingress'], busy=5)
    r.process('sidekiq1:11:b', 'ingress', ['ingress'], quiet=True)        # being stopped: not counted as running
    r.process('sidekiq1:12:c', 'ingress', ['ingress'], beat_age=300)      # stale: gone
    r.process('sidekiq1:20:d', 'default', ['default', 'push'], busy=1)
    return r


def test_event_shape_per_pool():
    observed, now = src.poll(fleet(), POOLS, now=NOW)
    events, states = src.pool_events(POOLS, observed, now, {}, room=17)
    assert [e['sidekiq_latency']['pool'] for e in events] == ['ingress', 'default']
    ingress, default = (e['sidekiq_latency'] for e in events)
    assert {k: ingress[k] for k in ('latency', 'depth', 'processes', 'quiet', 'busy', 'time')} == {
        'latency': 42.0, 'depth': 3, 'processes': 1, 'quiet': 1, 'busy': 5, 'time': NOW}
    assert ingress['queues'] == {'ingress': {'depth': 3, 'latency': 42.0}}
    # The quiet process still holds its 5 connections: 17 - (2 - 1) x 5.
    assert ingress['free_connections'] == 12
    assert ingress['autoscale']['action'] == 'hold'
    assert 'for 0 s of the 20 s before scaling out' in ingress['autoscale']['reason']
    assert 'state' not in ingress['autoscale']
    assert default['autoscale'] is None and default['latency'] == 1.0 and default['queues']['push'] == {'depth': 0, 'latency': 0.0}
    json.dumps(events)  # an event is plain data


def test_burst_scales_out_once_while_the_new_process_starts():
    r = fleet()
    states = {}
    decided = []
    for t in range(0, 61, 10):
        for identity in ('sidekiq1:10:a', 'sidekiq1:11:b', 'sidekiq1:20:d'):
            r.hashes[identity]['beat'] = str(NOW + t - 2)     # the live processes' heartbeats
        observed, now = src.poll(r, POOLS, now=NOW + t)
        observed['ingress']['latency'] = 42.0     # the burst goes on; the decided process is not up yet
        events, states = src.pool_events(POOLS, observed, now, states, room=17, settle=60)
        decided.append((t, events[0]['sidekiq_latency']['autoscale']['action'], events[0]['sidekiq_latency']['autoscale']['target']))
    assert decided[2] == (20, 'scale_out', 2)
    # Counted at the decided 2 while Redis still shows 1: the next step is 3, never a second 2.
    assert decided[4] == (40, 'scale_out', 3)
    # Then the budget: 3 decided + 1 quiet process hold 4 x 5 = 20 connections, 15 above the converged one; room 17.
    assert decided[6] == (60, 'refused_budget', 3)
    assert [d for d in decided if d[1] != 'hold'] == [(20, 'scale_out', 2), (40, 'scale_out', 3), (60, 'refused_budget', 3)]


def test_budget_room_is_shared_and_refusals_are_reported():
    observed, now = src.poll(fleet(), POOLS, now=NOW)
    states = {'ingress': {'decision': {'above_since': NOW - 100}}}
    events, _states = src.pool_events(POOLS, observed, now, states, room=7)
    decision = events[0]['sidekiq_latency']['autoscale']
    # 7 - 5 (the quiet process) = 2 free, one process needs 5.
    assert (decision['action'], decision['refused']) == ('refused_budget', 1)
    assert '2 connection(s) free, 5 per process' in decision['reason']
    # Without a room the source does not check the budget.
    events, _states = src.pool_events(POOLS, observed, now, states, room=None)
    assert events[0]['sidekiq_latency']['autoscale']['action'] == 'scale_out'
    assert events[0]['sidekiq_latency']['free_connections'] is None


def test_main_puts_events_on_the_queue():
    queue = asyncio.Queue()
    asyncio.run(src.main(queue, {'client': fleet(), 'pools': POOLS, 'limit': 2, 'interval': 0, 'room': 17}))
    events = []
    while not queue.empty():
        events.append(queue.get_nowait())
    assert [e['sidekiq_latency']['pool'] for e in events] == ['ingress', 'default', 'ingress', 'default']


def test_main_needs_pools():
    with pytest.raises(ValueError, match='needs pools'):
        asyncio.run(src.main(asyncio.Queue(), {'client': fleet()}))


def test_source_loads_outside_a_collection_tree(tmp_path, monkeypatch):
    # ansible-rulebook may run the file where ansible_collections.fediops is not importable: the fallback
    # loads module_utils/sidekiq.py and sidekiq_autoscale.py by path, relative to the file.
    import builtins
    real_import = builtins.__import__

    def no_collection(name, *args, **kwargs):
        if name.startswith('ansible_collections.fediops'):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, '__import__', no_collection)
    isolated = load_source('sidekiq_latency_isolated')
    assert isolated.sidekiq_autoscale.__name__ == 'fediops_mastodon_sidekiq_autoscale'
    observed, now = isolated.poll(fleet(), POOLS, now=NOW)
    assert observed['ingress']['latency'] == 42.0


def _burst_events(room):
    """A poll each 10 s for 70 s of an ingress backlog that does not drain: (events, tally)."""
    r = fleet()
    tally = src.Tally()
    states = {}
    out = []
    for t in range(0, 71, 10):
        for identity in ('sidekiq1:10:a', 'sidekiq1:11:b', 'sidekiq1:20:d'):
            r.hashes[identity]['beat'] = str(NOW + t - 2)
        observed, now = src.poll(r, POOLS, now=NOW + t)
        observed['ingress']['latency'] = 42.0
        events, states = src.pool_events(POOLS, observed, now, states, room=room, settle=60)
        tally.record(events, now)
        out.extend(events)
    return out, tally


def test_metrics_count_decisions_and_refusals():
    events, tally = _burst_events(room=17)
    text = tally.render()
    assert 'fediops_sidekiq_autoscale_decisions_total{pool="ingress",action="scale_out"} 2' in text
    assert 'fediops_sidekiq_autoscale_decisions_total{pool="ingress",action="scale_in"} 0' in text
    assert 'fediops_sidekiq_autoscale_decisions_total{pool="ingress",action="refused_budget"} 1' in text
    assert 'fediops_sidekiq_autoscale_refused_processes_total{pool="ingress"} 1' in text
    assert 'fediops_sidekiq_autoscale_target_processes{pool="ingress"} 3' in text
    assert 'fediops_sidekiq_autoscale_latency_seconds{pool="ingress"} 42.0' in text
    assert 'fediops_sidekiq_autoscale_last_poll_timestamp_seconds %.3f' % (NOW + 70) in text
    # A pool without a policy has no autoscale series.
    assert 'pool="default"' not in text
    # Every line is a comment or "name{labels} value".
    import re
    for line in text.splitlines():
        assert line.startswith('# ') or re.match(r'^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$', line), line


def test_every_decision_but_hold_is_announced_with_its_reason():
    events, _tally = _burst_events(room=17)
    said = [src.announcement(e) for e in events]
    said = [s for s in said if s]
    assert len(said) == 3
    assert said[0].startswith('sidekiq autoscale: pool ingress scaling out to 2 process(es): latency 42.0 s > target')
    assert said[2].startswith('sidekiq autoscale: pool ingress refused 1 process(es) for the connection budget: ')
    assert src.announcement({'sidekiq_latency': {'pool': 'default', 'autoscale': None}}) is None


def test_main_serves_metrics_and_posts_decisions(monkeypatch):
    import socket
    import urllib.request
    posted = []
    monkeypatch.setattr(src, '_post', lambda url, text: posted.append((url, text)))
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    r = fleet()
    tally = src.Tally()
    # Already 100 s above target at the first poll: the first decision is a scale-out.

    async def run():
        task = asyncio.ensure_future(src.main(asyncio.Queue(), {
            'client': r, 'pools': [dict(POOLS[0], autoscale=dict(POOLS[0]['autoscale'], scale_out_after=0))],
            'limit': 1, 'interval': 0, 'room': 17, 'tally': tally, 'metrics_address': '127.0.0.1',
            'metrics_port': port, 'notify_url': 'http://discord.invalid/hook'}))
        await task
    monkeypatch.setattr(src.time, 'time', lambda: NOW)
    asyncio.run(run())
    assert len(posted) == 1 and posted[0][0] == 'http://discord.invalid/hook'
    assert 'pool ingress scaling out to 2' in posted[0][1]
    # The server is shut down with the loop; its text is the tally's.
    assert 'action="scale_out"} 1' in tally.render()
    with pytest.raises(OSError):
        urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=2)


def test_a_failed_redis_read_is_counted_and_polled_again():
    class Down(object):
        def smembers(self, k):
            raise ConnectionError('down')
        llen = lindex = hmget = smembers
    tally = src.Tally()
    queue = asyncio.Queue()
    asyncio.run(src.main(queue, {'client': Down(), 'pools': POOLS, 'limit': 2, 'interval': 0, 'tally': tally}))
    assert tally.poll_errors == 2 and queue.empty()
    assert 'fediops_sidekiq_autoscale_poll_errors_total 2' in tally.render()
