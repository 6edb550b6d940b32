# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq

NOW = 1767225600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize('value, expected', [
    (1767225590.25, 1767225590.25),          # Sidekiq <= 7: float seconds
    (1767225590250, 1767225590.25),          # Sidekiq 8: integer milliseconds
    ('1767225590.25', 1767225590.25),
    ('1767225590250', 1767225590.25),
    (b'1767225590250', 1767225590.25),
    (1767225590, 1767225590.0),              # an integer of seconds is not read as ms
    (1767225590.0, 1767225590.0),            # a float that happens to be whole stays seconds
])
def test_parse_timestamp_both_formats(value, expected):
    assert sidekiq.parse_timestamp(value) == pytest.approx(expected)


@pytest.mark.parametrize('value', [None, True, 'soon', '', [], {}])
def test_parse_timestamp_rejects(value):
    with pytest.raises(ValueError):
        sidekiq.parse_timestamp(value)


def test_job_latency_from_payloads():
    sk7 = json.dumps({'class': 'X', 'enqueued_at': NOW - 12.5, 'created_at': NOW - 20})
    sk8 = json.dumps({'class': 'X', 'enqueued_at': int((NOW - 12.5) * 1000), 'created_at': int((NOW - 20) * 1000)})
    assert sidekiq.job_latency(sk7, now=NOW) == pytest.approx(12.5)
    assert sidekiq.job_latency(sk8, now=NOW) == pytest.approx(12.5)
    # scheduled jobs moved to a queue carry created_at only until enqueued
    assert sidekiq.job_latency({'created_at': int((NOW - 3) * 1000)}, now=NOW) == pytest.approx(3)
    # clock skew never gives negative latency
    assert sidekiq.job_latency({'enqueued_at': NOW + 5}, now=NOW) == 0.0
    with pytest.raises(ValueError):
        sidekiq.job_latency('{"class": "X"}', now=NOW)


@pytest.mark.parametrize('run_at', [int(NOW - 75), int((NOW - 75) * 1000), NOW - 75.0, str(int(NOW - 75))],
                         ids=['sidekiq<=7 seconds', 'sidekiq8 milliseconds', 'float seconds', 'string'])
def test_parse_work_reads_class_queue_jid_and_time_running(run_at):
    raw = json.dumps({'queue': 'push', 'run_at': run_at,
                      'payload': json.dumps({'class': 'Web::PushNotificationWorker', 'jid': 'j1', 'queue': 'push'})})
    job = sidekiq.parse_work('sk1:1:push', b'tid9', raw.encode(), now=NOW)
    assert job == {'identity': 'sk1:1:push', 'tid': 'tid9', 'queue': 'push', 'class': 'Web::PushNotificationWorker',
                   'jid': 'j1', 'run_at': pytest.approx(NOW - 75, abs=1), 'running_for': pytest.approx(75, abs=1)}


def test_parse_work_payload_as_hash_activejob_and_garbage():
    job = sidekiq.parse_work('p', 't', json.dumps({'queue': 'mailers', 'run_at': int(NOW * 1000),
                                                   'payload': {'class': 'JobWrapper', 'wrapped': 'MailDeliveryJob', 'jid': 'm'}}),
                             now=NOW + 3)
    assert (job['class'], job['jid'], job['running_for']) == ('MailDeliveryJob', 'm', 3.0)
    job = sidekiq.parse_work('p', 't', 'not json', now=NOW)
    assert job['class'] is None and job['running_for'] is None
    job = sidekiq.parse_work('p', 't', json.dumps({'queue': 'q', 'payload': 'not json', 'run_at': None}), now=NOW)
    assert (job['queue'], job['class'], job['running_for']) == ('q', None, None)


def test_busy_jobs_reads_both_work_keys_longest_first_and_names_them():
    r = FakeRedis()
    r.hashes['sk1:1:a:workers'] = {'t1': json.dumps({'queue': 'default', 'run_at': int(NOW - 10),
                                                     'payload': json.dumps({'class': 'A', 'jid': 'ja'})})}
    r.hashes['ns:sk2:2:b:work'] = {}
    r.hashes['sk2:2:b:work'] = {'t2': json.dumps({'queue': 'ingress', 'run_at': int((NOW - 300) * 1000),
                                                  'payload': json.dumps({'class': 'B', 'jid': 'jb'})})}
    jobs = sidekiq.busy_jobs(r, ['sk1:1:a', 'sk2:2:b'], now=NOW)
    assert [(j['jid'], j['running_for']) for j in jobs] == [('jb', 300.0), ('ja', 10.0)]
    line = sidekiq.describe_busy_jobs(jobs, {'sk1:1:a': 1, 'sk2:2:b': 1, 'sk3:3:c': 2})
    assert line == ('B on queue ingress (jid jb) running for 300 s on sk2:2:b; '
                    'A on queue default (jid ja) running for 10 s on sk1:1:a; '
                    '2 busy thread(s) on sk3:3:c (no work entry yet)')
    assert sidekiq.describe_busy_jobs([]) == 'none'


class FakeRedis(object):
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

    def hgetall(self, k):
        return dict((f.encode(), v.encode()) for f, v in self.hashes.get(k, {}).items())


def _populate(r, ns=''):
    def key(name):
        return sidekiq.key(ns, name)
    r.sets[key('queues')] = {'default', 'ingress', 'pull'}
    # LPUSH puts the newest at index 0; the oldest job is the tail.
    r.lists[key('queue:default')] = [json.dumps({'enqueued_at': int((NOW - 1) * 1000)}),
                                     json.dumps({'enqueued_at': int((NOW - 42) * 1000)})]
    r.lists[key('queue:ingress')] = [json.dumps({'enqueued_at': NOW - 7.5})]
    r.lists[key('queue:pull')] = ['not json']
    r.sets[key('processes')] = {'web1:100:aaa', 'web2:200:bbb', 'gone:1:zzz'}
    r.hashes[key('web1:100:aaa')] = {'info': json.dumps({'hostname': 'web1', 'pid': 100, 'queues': ['default', 'scheduler'],
                                                         'concurrency': 25, 'version': '8.0.9'}),
                                     'busy': '3', 'beat': str(NOW - 4.2), 'quiet': 'false', 'rss': '123456'}
    r.hashes[key('web2:200:bbb')] = {'info': json.dumps({'hostname': 'web2', 'pid': 200, 'queues': ['ingress'], 'concurrency': 5}),
                                     'busy': '1', 'beat': str(NOW - 90), 'quiet': 'true'}


@pytest.mark.parametrize('ns', ['', 'mastodon_production'])
def test_queue_and_process_stats(ns):
    r = FakeRedis()
    _populate(r, ns)
    queues = sidekiq.queue_stats(r, ns, names=['mailers'], now=NOW)
    assert sorted(queues) == ['default', 'ingress', 'mailers', 'pull']
    assert queues['default']['depth'] == 2
    assert queues['default']['latency'] == pytest.approx(42)
    assert queues['ingress']['latency'] == pytest.approx(7.5)
    assert queues['mailers'] == {'depth': 0, 'latency': 0.0, 'oldest_enqueued_at': None, 'error': None}
    assert 'cannot read oldest job' in queues['pull']['error']

    procs = dict((p['identity'], p) for p in sidekiq.process_stats(r, ns, now=NOW))
    assert procs['web1:100:aaa']['busy'] == 3 and not procs['web1:100:aaa']['stale']
    assert procs['web1:100:aaa']['queues'] == ['default', 'scheduler']
    assert procs['web1:100:aaa']['rss_kb'] == 123456
    assert procs['web2:200:bbb']['stale'] and procs['web2:200:bbb']['quiet']
    assert procs['gone:1:zzz']['stale'] and procs['gone:1:zzz']['beat'] is None

    summary = sidekiq.summarize(queues, list(procs.values()))
    assert summary == {'enqueued': 4, 'max_latency': pytest.approx(42), 'busy': 3, 'processes': 1,
                       'stale_processes': 2, 'quiet_processes': 0}


def test_latency_violations_per_queue_override():
    queues = {'default': {'latency': 10.0}, 'ingress': {'latency': 100.0}, 'pull': {'latency': 500.0}}
    bad = sidekiq.latency_violations(queues, 60, {'pull': 900, 'default': 5})
    assert [(v['reason'].split(':')[0], v['threshold']) for v in bad] == [('queue default', 5), ('queue ingress', 60)]
    assert sidekiq.latency_violations(queues, None) == []


def test_against_real_redis(redis_client):
    _NOW = NOW
    redis_client.sadd('queues', 'default', 'push')
    redis_client.lpush('queue:default', json.dumps({'enqueued_at': int((_NOW - 30) * 1000)}))
    redis_client.lpush('queue:default', json.dumps({'enqueued_at': int((_NOW - 2) * 1000)}))
    redis_client.sadd('processes', 'h:1:x')
    redis_client.hset('h:1:x', mapping={'info': json.dumps({'hostname': 'h', 'queues': ['default']}), 'busy': 2, 'beat': _NOW - 1})
    rec = sidekiq.RecordingRedis(redis_client)
    queues = sidekiq.queue_stats(rec, now=_NOW)
    assert queues['default']['depth'] == 2 and queues['default']['latency'] == pytest.approx(30)
    assert queues['push']['depth'] == 0
    procs = sidekiq.process_stats(rec, now=_NOW)
    assert procs[0]['busy'] == 2 and procs[0]['hostname'] == 'h' and not procs[0]['stale']
    assert 'LINDEX queue:default -1' in rec.commands
