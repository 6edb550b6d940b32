# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq, sidekiq_metrics

NOW = 1767225600.0  # 2026-01-01T00:00:00Z
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))

# The lab's pools (inventories/lab/group_vars/all/mastodon.yml), as mastodon_sidekiq_pools gives them.
POOLS = [
    {'name': 'default', 'hosts': ['sidekiq1'], 'concurrency': 3, 'queues': ['default']},
    {'name': 'ingress', 'hosts': ['sidekiq1'], 'concurrency': 2, 'queues': ['ingress']},
    {'name': 'push', 'hosts': ['sidekiq2'], 'concurrency': 2, 'queues': ['push']},
    {'name': 'pull', 'hosts': ['sidekiq2'], 'concurrency': 2, 'queues': ['pull,2', 'fasp,1']},
]


class FakeRedis(object):
    """What redis-py returns (bytes), for the read commands the exporter issues."""

    def __init__(self):
        self.sets, self.lists, self.hashes, self.zsets = {}, {}, {}, {}
        self.commands = []

    def smembers(self, k):
        self.commands.append('SMEMBERS')
        return set(x.encode() for x in self.sets.get(k, set()))

    def llen(self, k):
        self.commands.append('LLEN')
        return len(self.lists.get(k, []))

    def lindex(self, k, i):
        self.commands.append('LINDEX')
        lst = self.lists.get(k, [])
        return lst[i].encode() if lst else None

    def hmget(self, k, fields):
        self.commands.append('HMGET')
        h = self.hashes.get(k, {})
        return [str(h[f]).encode() if f in h else None for f in fields]

    def zcard(self, k):
        self.commands.append('ZCARD')
        return len(self.zsets.get(k, []))


def _process(r, ns, identity, info, busy, beat):
    r.sets.setdefault(sidekiq.key(ns, 'processes'), set()).add(identity)
    r.hashes[sidekiq.key(ns, identity)] = {'info': json.dumps(info), 'busy': busy, 'beat': beat, 'quiet': 'false'}


def _populate(r, ns=''):
    def key(name):
        return sidekiq.key(ns, name)
    r.sets[key('queues')] = {'default', 'ingress', 'push', 'legacy'}
    # LPUSH puts the newest at index 0: the tail is the oldest job.
    # Sidekiq 8 (Mastodon 4.5+): integer epoch milliseconds.
    r.lists[key('queue:default')] = [json.dumps({'class': 'A', 'enqueued_at': int((NOW - 3) * 1000)}),
                                     json.dumps({'class': 'A', 'enqueued_at': int((NOW - 300) * 1000)})]
    # Sidekiq <= 7 (Mastodon <= 4.4): float seconds.
    r.lists[key('queue:ingress')] = [json.dumps({'class': 'B', 'enqueued_at': NOW - 5.5}),
                                     json.dumps({'class': 'B', 'enqueued_at': NOW - 120.25}),
                                     json.dumps({'class': 'B', 'enqueued_at': NOW - 119.0})]
    # Registered in `queues` by some process but served by no configured pool: still exported.
    r.lists[key('queue:legacy')] = [json.dumps({'class': 'C', 'created_at': int((NOW - 10) * 1000)})]
    # Two live ingress processes (tagged with -g ingress), one stale one, one live default process
    # whose beat is Sidekiq 8's float seconds, and one untagged process serving pull's queues.
    _process(r, ns, 'sidekiq1:10:aa', {'hostname': 'sidekiq1', 'tag': 'ingress', 'queues': ['ingress']}, 2, NOW - 4)
    _process(r, ns, 'sidekiq3:11:bb', {'hostname': 'sidekiq3', 'tag': 'ingress', 'queues': ['ingress']}, 1, NOW - 9.5)
    _process(r, ns, 'sidekiq4:12:cc', {'hostname': 'sidekiq4', 'tag': 'ingress', 'queues': ['ingress']}, 5, NOW - 400)
    _process(r, ns, 'sidekiq1:13:dd', {'hostname': 'sidekiq1', 'tag': 'default', 'queues': ['default']}, 0, NOW - 1.5)
    _process(r, ns, 'sidekiq2:14:ee', {'hostname': 'sidekiq2', 'queues': ['fasp', 'pull']}, 1, NOW - 2)
    # A process whose hash expired (it died without cleaning the set): not live.
    r.sets[key('processes')].add('gone:1:zz')
    r.zsets[key('retry')] = ['r1', 'r2', 'r3']
    r.zsets[key('schedule')] = ['s1']


def _samples(families):
    out = {}
    for fam in families:
        for values, value in fam['samples']:
            out[(fam['name'],) + tuple(values)] = value
    return out


@pytest.mark.parametrize('ns', ['', 'mastodon_production'], ids=['unprefixed (Mastodon 4.4+)', 'REDIS_NAMESPACE (Mastodon <= 4.3)'])
def test_scrape_reads_both_timestamp_formats_pools_and_sets(ns):
    r = FakeRedis()
    _populate(r, ns)
    families, error = sidekiq_metrics.scrape(r, ns, pools=POOLS, now=NOW)
    assert error is None
    s = _samples(families)
    assert s[('fediops_sidekiq_up',)] == 1.0
    # Sidekiq 8 integer milliseconds: 300 s, not 300000 s and not 0.
    assert s[('fediops_sidekiq_queue_latency_seconds', 'default')] == pytest.approx(300.0)
    # Sidekiq <= 7 float seconds: the tail (oldest) job, 119 s.
    assert s[('fediops_sidekiq_queue_latency_seconds', 'ingress')] == pytest.approx(119.0)
    assert s[('fediops_sidekiq_queue_latency_seconds', 'legacy')] == pytest.approx(10.0)
    assert (s[('fediops_sidekiq_queue_size', 'default')], s[('fediops_sidekiq_queue_size', 'ingress')]) == (2.0, 3.0)
    # Configured queues nobody pushed to yet: size 0, latency 0.
    for queue in ('push', 'pull', 'fasp'):
        assert s[('fediops_sidekiq_queue_size', queue)] == 0.0
        assert s[('fediops_sidekiq_queue_latency_seconds', queue)] == 0.0
    assert s[('fediops_sidekiq_pool_processes', 'ingress')] == 2.0
    assert s[('fediops_sidekiq_pool_busy', 'ingress')] == 3.0            # the stale process's 5 do not count
    assert s[('fediops_sidekiq_pool_heartbeat_age_seconds', 'ingress')] == pytest.approx(9.5)
    assert s[('fediops_sidekiq_pool_processes', 'default')] == 1.0
    assert s[('fediops_sidekiq_pool_heartbeat_age_seconds', 'default')] == pytest.approx(1.5)
    # The untagged process is matched to the pool serving the same queues (pull: pull + fasp).
    assert s[('fediops_sidekiq_pool_processes', 'pull')] == 1.0
    # A configured pool with no live process: 0 processes, 0 busy, no heartbeat series.
    assert s[('fediops_sidekiq_pool_processes', 'push')] == 0.0
    assert s[('fediops_sidekiq_pool_busy', 'push')] == 0.0
    assert ('fediops_sidekiq_pool_heartbeat_age_seconds', 'push') not in s
    assert (s[('fediops_sidekiq_retry_size',)], s[('fediops_sidekiq_scheduled_size',)], s[('fediops_sidekiq_dead_size',)]) == (3.0, 1.0, 0.0)


def test_every_family_has_the_contract_name_and_a_help():
    r = FakeRedis()
    _populate(r)
    families, _error = sidekiq_metrics.scrape(r, pools=POOLS, now=NOW)
    assert [f['name'] for f in families] == [
        'fediops_sidekiq_up', 'fediops_sidekiq_queue_size', 'fediops_sidekiq_queue_latency_seconds',
        'fediops_sidekiq_pool_processes', 'fediops_sidekiq_pool_busy', 'fediops_sidekiq_pool_heartbeat_age_seconds',
        'fediops_sidekiq_retry_size', 'fediops_sidekiq_scheduled_size', 'fediops_sidekiq_dead_size']
    assert all(f['help'] for f in families)
    # Read-only: the exporter issues only these commands (the Redis monitoring user's ACL allows them).
    assert set(r.commands) == {'SMEMBERS', 'LLEN', 'LINDEX', 'HMGET', 'ZCARD'}


def test_a_process_of_an_unconfigured_pool_is_exported_under_its_tag():
    r = FakeRedis()
    _process(r, '', 'x:1:a', {'tag': 'experimental', 'queues': ['x']}, 4, NOW - 1)
    _process(r, '', 'y:1:b', {'queues': ['nothing-configured']}, 0, NOW - 1)
    s = _samples(sidekiq_metrics.scrape(r, pools=POOLS, now=NOW)[0])
    assert s[('fediops_sidekiq_pool_processes', 'experimental')] == 1.0
    assert s[('fediops_sidekiq_pool_busy', 'experimental')] == 4.0
    assert s[('fediops_sidekiq_pool_processes', 'unknown')] == 1.0
    assert s[('fediops_sidekiq_pool_processes', 'push')] == 0.0


def test_an_unreadable_oldest_job_gives_latency_zero_not_a_failed_scrape():
    r = FakeRedis()
    r.sets['queues'] = {'pull'}
    r.lists['queue:pull'] = ['not json']
    families, error = sidekiq_metrics.scrape(r, pools=[], now=NOW)
    s = _samples(families)
    assert error is None and s[('fediops_sidekiq_up',)] == 1.0
    assert s[('fediops_sidekiq_queue_size', 'pull')] == 1.0 and s[('fediops_sidekiq_queue_latency_seconds', 'pull')] == 0.0


def test_a_failed_read_gives_up_zero_and_nothing_else():
    class Down(FakeRedis):
        def smembers(self, k):
            raise ConnectionError('Error 111 connecting to 10.0.0.1:6379. Connection refused.')
    families, error = sidekiq_metrics.scrape(Down(), pools=POOLS, now=NOW)
    assert [(f['name'], f['samples']) for f in families] == [('fediops_sidekiq_up', [((), 0.0)])]
    assert 'Connection refused' in error


def test_render_is_prometheus_text_format():
    r = FakeRedis()
    _populate(r)
    text = sidekiq_metrics.render(sidekiq_metrics.scrape(r, pools=POOLS, now=NOW)[0])
    assert '# TYPE fediops_sidekiq_queue_latency_seconds gauge\n' in text
    assert 'fediops_sidekiq_queue_latency_seconds{queue="default"} 300.0\n' in text
    assert 'fediops_sidekiq_pool_processes{pool="push"} 0.0\n' in text
    assert 'fediops_sidekiq_up 1.0\n' in text
    assert sidekiq_metrics.render([sidekiq_metrics.family('queue_size', ['queue'], [(('a"b\\c',), 1)])]).splitlines()[-1] == \
        'fediops_sidekiq_queue_size{queue="a\\"b\\\\c"} 1.0'


def _monitoring_acl_commands():
    """The commands roles/redis gives its monitoring user (the `user {{ redis_monitoring_user }}` line)."""
    with open(os.path.join(REPO, 'roles', 'redis', 'templates', 'redis.conf.j2')) as handle:
        line = [x for x in handle if x.startswith('user {{ redis_monitoring_user }}')][0]
    return re.findall(r'(?<=\s)\+[a-z|]+', line)


def test_against_real_redis_as_the_roles_monitoring_user(redis_client):
    """The exporter's reads succeed with exactly the monitoring user's ACL from roles/redis (read-only)."""
    import redis
    redis_client.sadd('queues', 'default', 'ingress')
    redis_client.lpush('queue:default', json.dumps({'enqueued_at': int((NOW - 300) * 1000)}))
    redis_client.lpush('queue:ingress', json.dumps({'enqueued_at': NOW - 120.0}))
    redis_client.sadd('processes', 'h:1:x')
    redis_client.hset('h:1:x', mapping={'info': json.dumps({'hostname': 'h', 'tag': 'ingress', 'queues': ['ingress']}),
                                        'busy': 2, 'beat': NOW - 3})
    redis_client.zadd('dead', {'j1': NOW, 'j2': NOW})
    redis_client.execute_command('ACL', 'SETUSER', 'fediops-test-monitoring', 'on', '>monitoring-test', 'resetkeys', '%R~*',
                                 'resetchannels', '-@all', *_monitoring_acl_commands())
    conn = redis_client.connection_pool.connection_kwargs
    monitoring = redis.Redis(unix_socket_path=conn['path'], username='fediops-test-monitoring', password='monitoring-test')
    try:
        families, error = sidekiq_metrics.scrape(monitoring, pools=POOLS, now=NOW)
        assert error is None
        s = _samples(families)
        assert s[('fediops_sidekiq_queue_latency_seconds', 'default')] == pytest.approx(300.0)
        assert s[('fediops_sidekiq_queue_latency_seconds', 'ingress')] == pytest.approx(120.0)
        assert s[('fediops_sidekiq_pool_processes', 'ingress')] == 1.0 and s[('fediops_sidekiq_pool_busy', 'ingress')] == 2.0
        assert s[('fediops_sidekiq_pool_processes', 'push')] == 0.0
        assert s[('fediops_sidekiq_dead_size',)] == 2.0
        with pytest.raises(redis.exceptions.NoPermissionError):
            monitoring.lpush('queue:default', 'x')
    finally:
        monitoring.close()
        redis_client.execute_command('ACL', 'DELUSER', 'fediops-test-monitoring')
