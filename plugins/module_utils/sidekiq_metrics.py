# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus samples of Sidekiq's state, from what Redis returns (the fediops Sidekiq exporter's logic).

Pure: ``scrape`` takes a Redis client (anything with ``smembers``, ``llen``, ``lindex``, ``hmget`` and
``zcard``) and returns metric families as plain data, so it is tested without a server and without
prometheus_client; the exporter (roles/sidekiq_exporter) turns them into prometheus_client families.
Queue and process reading is module_utils/sidekiq.py's (both ``enqueued_at`` formats, namespaces).

A process belongs to the pool it is tagged with: roles/mastodon_sidekiq starts each pool's processes
with ``sidekiq -g <pool name>``, which Sidekiq stores as ``tag`` in the process's ``info``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq

PREFIX = 'fediops_sidekiq_'
# Label value for a live process with no tag that matches no configured pool by its queues.
UNKNOWN_POOL = 'unknown'

HELP = {
    'up': '1 when the last read of the Sidekiq Redis succeeded, else 0.',
    'queue_size': 'Jobs waiting in the queue.',
    'queue_latency_seconds': 'Seconds the oldest job of the queue has waited (0 when empty).',
    'pool_processes': 'Live Sidekiq processes of the pool (heartbeat younger than the stale limit).',
    'pool_busy': 'Busy threads of the pool\'s live processes.',
    'pool_heartbeat_age_seconds': 'Age of the oldest heartbeat among the pool\'s live processes.',
    'retry_size': 'Jobs in the retry set.',
    'scheduled_size': 'Jobs in the scheduled set.',
    'dead_size': 'Jobs in the dead set.',
}
SETS = (('retry_size', 'retry'), ('scheduled_size', 'schedule'), ('dead_size', 'dead'))


def queue_name(entry):
    """A queue's name from a pool's queue entry (``"default,8"`` -> ``default``)."""
    return str(entry).split(',', 1)[0].strip()


def normalize_pools(pools):
    """[(pool name, [queue names])] from mastodon_sidekiq_pools entries (dicts) or plain names."""
    out = []
    for pool in pools or []:
        if isinstance(pool, dict):
            out.append((str(pool['name']), [queue_name(q) for q in pool.get('queues') or []]))
        else:
            out.append((str(pool), []))
    return out


def pool_of(process, pools):
    """The pool a process belongs to: its tag; without a tag, the configured pool serving the same queues."""
    tag = process.get('tag')
    if tag:
        return str(tag)
    queues = sorted(process.get('queues') or [])
    for name, pool_queues in pools:
        if queues and sorted(pool_queues) == queues:
            return name
    return UNKNOWN_POOL


def family(name, labels, samples):
    return {'name': PREFIX + name, 'help': HELP[name], 'labels': list(labels), 'samples': samples}


def collect(client, namespace='', pools=(), queues=(), now=None, stale_after=sidekiq.HEARTBEAT_TTL):
    """Metric families (without ``up``) from one read of the Sidekiq Redis.

    ``pools``: mastodon_sidekiq_pools entries; each is exported even with no live process (0), and their
    queues are exported even before anything was pushed to them, as are the extra ``queues``.
    """
    now = time.time() if now is None else now
    pools = normalize_pools(pools)
    wanted = set(queues or [])
    for _pool_name, pool_queues in pools:
        wanted.update(pool_queues)
    qstats = sidekiq.queue_stats(client, namespace, names=sorted(wanted), now=now)
    procs = sidekiq.process_stats(client, namespace, now=now, stale_after=stale_after)

    per_pool = dict((name, {'processes': 0, 'busy': 0, 'ages': []}) for name, _pool_queues in pools)
    for proc in procs:
        if proc['stale']:
            continue
        entry = per_pool.setdefault(pool_of(proc, pools), {'processes': 0, 'busy': 0, 'ages': []})
        entry['processes'] += 1
        entry['busy'] += proc['busy']
        entry['ages'].append(proc['beat_age'])

    names = sorted(qstats)
    pool_names = sorted(per_pool)
    families = [
        family('queue_size', ['queue'], [((q,), float(qstats[q]['depth'])) for q in names]),
        family('queue_latency_seconds', ['queue'], [((q,), float(qstats[q]['latency'])) for q in names]),
        family('pool_processes', ['pool'], [((p,), float(per_pool[p]['processes'])) for p in pool_names]),
        family('pool_busy', ['pool'], [((p,), float(per_pool[p]['busy'])) for p in pool_names]),
        # No live process, no heartbeat: the series is absent (pool_processes says 0).
        family('pool_heartbeat_age_seconds', ['pool'],
               [((p,), float(max(per_pool[p]['ages']))) for p in pool_names if per_pool[p]['ages']]),
    ]
    for name, set_key in SETS:
        families.append(family(name, [], [((), float(client.zcard(sidekiq.key(namespace, set_key))))]))
    return families


def scrape(client, namespace='', pools=(), queues=(), now=None, stale_after=sidekiq.HEARTBEAT_TTL):
    """(families with ``up`` first, error text or None). A failed read gives ``up`` 0 and nothing else."""
    try:
        families = collect(client, namespace, pools, queues, now=now, stale_after=stale_after)
        error = None
    except Exception as e:  # pylint: disable=broad-except
        families = []
        error = '%s: %s' % (type(e).__name__, e)
    up = family('up', [], [((), 0.0 if error else 1.0)])
    return [up] + families, error


def _escape(value):
    return str(value).replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"')


def render(families):
    """The families in Prometheus' text exposition format (for tests and for reading by eye)."""
    lines = []
    for fam in families:
        lines.append('# HELP %s %s' % (fam['name'], fam['help']))
        lines.append('# TYPE %s gauge' % fam['name'])
        for values, value in fam['samples']:
            labels = ','.join('%s="%s"' % (k, _escape(v)) for k, v in zip(fam['labels'], values))
            lines.append('%s%s %s' % (fam['name'], '{%s}' % labels if labels else '', repr(float(value))))
    return '\n'.join(lines) + '\n'
