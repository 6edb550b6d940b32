# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read Sidekiq's state straight from Redis: queue depth and latency, processes, busy threads.

Keys (optionally prefixed with ``<namespace>:`` for Mastodon <= 4.3 with REDIS_NAMESPACE):
``queues`` (set of names), ``queue:<name>`` (list; LPUSH by clients, so index -1 is the oldest
job), ``processes`` (set of identities) and one hash per identity with ``info`` (JSON),
``busy``, ``beat``, ``quiet`` and ``rss``, expiring 60 s after the last heartbeat, beside it
``<identity>:work`` (``:workers`` before Sidekiq 6.5) with the job each busy thread runs.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time

# Integers below this are taken as seconds rather than milliseconds: 1e11 ms is March 1973,
# 1e11 s is the year 5138, so the two readings cannot be confused for real timestamps.
_MS_THRESHOLD = 100000000000
HEARTBEAT_TTL = 60


def parse_timestamp(value):
    """Epoch seconds (float) from a Sidekiq timestamp.

    Sidekiq <= 7 writes ``enqueued_at`` as a float of seconds (1700000000.123); Sidekiq 8 writes
    an integer of milliseconds (1700000000123). As in Sidekiq 8's own latency code, a float is
    seconds; an integer is milliseconds, unless it is too small to be a millisecond timestamp
    of this century. Numeric strings are accepted. Raises ValueError otherwise.
    """
    if value is None or isinstance(value, bool):
        raise ValueError('not a Sidekiq timestamp: %r' % (value,))
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValueError('not a Sidekiq timestamp: %r' % (text,))
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        if abs(value) >= _MS_THRESHOLD:
            return value / 1000.0
        return float(value)
    raise ValueError('not a Sidekiq timestamp: %r' % (value,))


def job_latency(payload, now=None):
    """Seconds a job has waited, from its JSON payload (``enqueued_at``, else ``created_at``)."""
    now = time.time() if now is None else now
    if isinstance(payload, bytes):
        payload = payload.decode('utf-8')
    job = json.loads(payload) if isinstance(payload, str) else payload
    stamp = job.get('enqueued_at', job.get('created_at'))
    if stamp is None:
        raise ValueError('job has neither enqueued_at nor created_at')
    return max(0.0, now - parse_timestamp(stamp))


def _text(value):
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return value


def key(namespace, name):
    return '%s:%s' % (namespace, name) if namespace else name


def queue_stats(client, namespace='', names=None, now=None):
    """Depth and latency per queue.

    ``names`` adds queues to look at beyond those registered in the ``queues`` set (a queue
    nobody has pushed to yet reports depth 0, latency 0). Returns {name: {'depth', 'latency',
    'oldest_enqueued_at', 'error'}}.
    """
    now = time.time() if now is None else now
    registered = set(_text(n) for n in client.smembers(key(namespace, 'queues')))
    wanted = sorted(registered | set(names or []))
    stats = {}
    for name in wanted:
        qkey = key(namespace, 'queue:%s' % name)
        depth = int(client.llen(qkey))
        entry = {'depth': depth, 'latency': 0.0, 'oldest_enqueued_at': None, 'error': None}
        if depth:
            oldest = client.lindex(qkey, -1)
            if oldest is not None:
                try:
                    job = json.loads(_text(oldest))
                    stamp = job.get('enqueued_at', job.get('created_at'))
                    entry['oldest_enqueued_at'] = parse_timestamp(stamp)
                    entry['latency'] = round(max(0.0, now - entry['oldest_enqueued_at']), 3)
                except (ValueError, TypeError, AttributeError) as e:
                    entry['error'] = 'cannot read oldest job: %s' % e
        stats[name] = entry
    return stats


def process_stats(client, namespace='', now=None, stale_after=HEARTBEAT_TTL):
    """Sidekiq processes from the ``processes`` set with their heartbeat and busy threads.

    A process whose hash has expired (it stopped without cleaning up) or whose ``beat`` is older
    than ``stale_after`` seconds is reported with ``stale: true``.
    """
    now = time.time() if now is None else now
    result = []
    for identity in sorted(_text(i) for i in client.smembers(key(namespace, 'processes'))):
        raw = client.hmget(key(namespace, identity), ['info', 'busy', 'beat', 'quiet', 'rss'])
        info_raw, busy, beat, quiet, rss = [_text(v) for v in raw]
        proc = {'identity': identity, 'hostname': None, 'pid': None, 'tag': None, 'queues': [],
                'concurrency': None, 'busy': int(busy or 0), 'beat': None, 'beat_age': None,
                'quiet': quiet == 'true', 'rss_kb': int(rss) if rss and rss.isdigit() else None,
                'stale': True, 'version': None}
        if info_raw:
            try:
                info = json.loads(info_raw)
            except ValueError:
                info = {}
            proc['hostname'] = info.get('hostname')
            proc['pid'] = info.get('pid')
            proc['tag'] = info.get('tag')
            proc['queues'] = list(info.get('queues') or [])
            proc['concurrency'] = info.get('concurrency')
            proc['version'] = info.get('version')
        if beat is not None:
            try:
                proc['beat'] = parse_timestamp(beat)
                proc['beat_age'] = round(max(0.0, now - proc['beat']), 3)
                proc['stale'] = proc['beat_age'] > stale_after
            except ValueError:
                pass
        result.append(proc)
    return result


# The hash of a process's running jobs, one field per thread: ``<identity>:work`` since Sidekiq 6.5
# (Mastodon 4.2+), ``<identity>:workers`` in Sidekiq 6.4 and older (and in the lab fixture).
WORK_SUFFIXES = ('work', 'workers')


def parse_work(identity, tid, raw, now=None):
    """One running job from a field of a process's work hash.

    ``raw`` is Sidekiq's JSON ``{"queue", "payload", "run_at"}``; ``payload`` is the job as a JSON
    string (or already a hash), ``run_at`` epoch seconds (Sidekiq <= 7, an integer) or epoch
    milliseconds (Sidekiq 8). Returns {'identity', 'tid', 'queue', 'class', 'jid', 'run_at',
    'running_for'}; fields that cannot be read are None, never an exception.
    """
    now = time.time() if now is None else now
    job = {'identity': identity, 'tid': _text(tid), 'queue': None, 'class': None, 'jid': None,
           'run_at': None, 'running_for': None}
    try:
        work = json.loads(_text(raw))
    except (TypeError, ValueError):
        return job
    if not isinstance(work, dict):
        return job
    payload = work.get('payload')
    if isinstance(payload, (str, bytes)):
        try:
            payload = json.loads(_text(payload))
        except ValueError:
            payload = {}
    if not isinstance(payload, dict):
        payload = {}
    job['queue'] = work.get('queue') or payload.get('queue')
    # ActiveJob (Mastodon's mailers) runs through a wrapper class; the job's own class is `wrapped`.
    job['class'] = payload.get('wrapped') or payload.get('class')
    job['jid'] = payload.get('jid')
    try:
        job['run_at'] = parse_timestamp(work.get('run_at'))
        job['running_for'] = round(max(0.0, now - job['run_at']), 1)
    except ValueError:
        pass
    return job


def busy_jobs(client, identities, namespace='', now=None):
    """The jobs the given processes are running, longest-running first (from their work hashes)."""
    now = time.time() if now is None else now
    jobs = []
    for identity in identities:
        for suffix in WORK_SUFFIXES:
            work = client.hgetall(key(namespace, '%s:%s' % (identity, suffix))) or {}
            for tid, raw in sorted(work.items()):
                jobs.append(parse_work(identity, tid, raw, now=now))
    return sorted(jobs, key=lambda j: (-(j['running_for'] or 0.0), j['identity'], j['tid']))


def describe_busy_jobs(jobs, busy_processes=None):
    """One line naming the running jobs: class, queue, jid, how long it has run and where.

    ``busy_processes`` ({identity: busy count}) names, for a process whose work hash was not
    (yet) written, how many threads it reports busy, so nothing busy goes unnamed.
    """
    parts = []
    for job in jobs:
        parts.append('%s on queue %s (jid %s) running for %s on %s' % (
            job['class'] or 'unknown class', job['queue'] or '?', job['jid'] or '?',
            '%d s' % job['running_for'] if job['running_for'] is not None else 'an unknown time', job['identity']))
    named = set(j['identity'] for j in jobs)
    for identity, busy in sorted((busy_processes or {}).items()):
        if busy and identity not in named:
            parts.append('%d busy thread(s) on %s (no work entry yet)' % (busy, identity))
    return '; '.join(parts) or 'none'


def summarize(queues, processes):
    """Totals used by modules and gates."""
    live = [p for p in processes if not p['stale']]
    return {
        'enqueued': sum(q['depth'] for q in queues.values()),
        'max_latency': max([q['latency'] for q in queues.values()] or [0.0]),
        'busy': sum(p['busy'] for p in live),
        'processes': len(live),
        'stale_processes': len(processes) - len(live),
        'quiet_processes': len([p for p in live if p['quiet']]),
    }


def latency_violations(queues, max_latency, per_queue=None):
    """[{'check', 'reason', 'threshold', 'value'}] for queues whose latency exceeds the limit."""
    per_queue = per_queue or {}
    out = []
    for name in sorted(queues):
        limit = per_queue.get(name, max_latency)
        if limit is None:
            continue
        lat = queues[name]['latency']
        if lat > limit:
            out.append({'check': 'sidekiq_latency', 'reason': 'queue %s: oldest job waited %.1f s' % (name, lat),
                        'threshold': limit, 'value': lat})
    return out


class RecordingRedis(object):
    """Wraps a redis client and records the read commands issued (for a module's return)."""

    def __init__(self, client, limit=200):
        self._client = client
        self._limit = limit
        self.commands = []
        self.dropped = 0

    def _record(self, text):
        if len(self.commands) < self._limit:
            self.commands.append(text)
        else:
            self.dropped += 1

    def smembers(self, name):
        self._record('SMEMBERS %s' % name)
        return self._client.smembers(name)

    def llen(self, name):
        self._record('LLEN %s' % name)
        return self._client.llen(name)

    def lindex(self, name, index):
        self._record('LINDEX %s %s' % (name, index))
        return self._client.lindex(name, index)

    def hmget(self, name, keys):
        self._record('HMGET %s %s' % (name, ' '.join(keys)))
        return self._client.hmget(name, keys)

    def hgetall(self, name):
        self._record('HGETALL %s' % name)
        return self._client.hgetall(name)

    def info(self, section=None):
        self._record('INFO %s' % (section or ''))
        return self._client.info(section) if section else self._client.info()
