# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import threading
import time

from ansible_collections.fediops.mastodon.plugins.modules import sidekiq_queues
from .utils import run_module


def seed(client, now):
    client.sadd('queues', 'default', 'ingress')
    client.lpush('queue:ingress', json.dumps({'class': 'ActivityPub::ProcessingWorker', 'enqueued_at': int((now - 90) * 1000)}))
    client.lpush('queue:default', json.dumps({'class': 'X', 'enqueued_at': now - 5.0}))
    client.sadd('processes', 'sk1:10:a', 'sk2:20:b')
    client.hset('sk1:10:a', mapping={'info': json.dumps({'hostname': 'sk1', 'queues': ['default']}), 'busy': 2, 'beat': now})
    client.hset('sk2:20:b', mapping={'info': json.dumps({'hostname': 'sk2', 'queues': ['ingress']}), 'busy': 0, 'beat': now})


def test_report_and_latency_limit(redis_server, redis_client):
    seed(redis_client, time.time())
    args = dict(redis_unix_socket=redis_server['redis_unix_socket'])
    res = run_module(sidekiq_queues, args)
    assert not res['changed']
    assert res['queues']['ingress']['latency'] >= 89 and res['queues']['default']['depth'] == 1
    assert res['summary']['busy'] == 2 and res['summary']['processes'] == 2
    assert 'SMEMBERS queues' in res['commands']

    res = run_module(sidekiq_queues, dict(args, max_latency=600, queue_max_latency={'ingress': 60}), expect_fail=True)
    assert res['msg'].startswith('Sidekiq latency over the limit: queue ingress: oldest job waited')
    assert '(limit 60.0 s)' in res['msg']

    res = run_module(sidekiq_queues, dict(args, queues=['mailers', 'default']))
    assert sorted(res['queues']) == ['default', 'mailers']


def test_wait_until_idle(redis_server, redis_client):
    seed(redis_client, time.time())
    args = dict(redis_unix_socket=redis_server['redis_unix_socket'], hostname='sk1', wait_until='idle',
                timeout=5, poll_interval=0.05)

    def smembers_calls():
        return redis_client.info('commandstats').get('cmdstat_smembers', {}).get('calls', 0)
    before = smembers_calls()

    def finish():
        # One read of the state issues two SMEMBERS (queues, processes). Let the job finish only once the
        # module has begun its second read, so it has certainly seen the busy process and slept: this
        # asserts the waiting itself, not a wall-clock figure that a loaded CI machine can miss.
        deadline = time.time() + 10
        while smembers_calls() < before + 3 and time.time() < deadline:
            time.sleep(0.005)
        redis_client.hset('sk1:10:a', 'busy', 0)
    t = threading.Thread(target=finish)
    t.start()
    res = run_module(sidekiq_queues, args)
    t.join()
    assert res['summary']['busy'] == 0 and 0 < res['waited'] < 5
    assert res['commands'].count('SMEMBERS processes') >= 2
    assert [p['identity'] for p in res['processes']] == ['sk1:10:a']

    redis_client.hset('sk1:10:a', 'busy', 3)
    res = run_module(sidekiq_queues, dict(args, timeout=0), expect_fail=True)
    assert res['msg'] == 'Sidekiq processes still busy after 0s, running: 3 busy thread(s) on sk1:10:a (no work entry yet)'


def test_idle_timeout_names_the_running_jobs(redis_server, redis_client):
    now = time.time()
    seed(redis_client, now)
    # Sidekiq 8 (`:work`, run_at in milliseconds) and Sidekiq 6.4 (`:workers`, run_at in seconds, the lab fixture's).
    redis_client.hset('sk1:10:a:work', 'tid1', json.dumps({
        'queue': 'default', 'run_at': int((now - 125) * 1000),
        'payload': json.dumps({'class': 'LinkCrawlWorker', 'jid': 'aaa111', 'queue': 'default'})}))
    redis_client.hset('sk1:10:a:workers', 'tid2', json.dumps({
        'queue': 'mailers', 'run_at': int(now - 40),
        'payload': json.dumps({'class': 'ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper',
                               'wrapped': 'ActionMailer::MailDeliveryJob', 'jid': 'bbb222', 'queue': 'mailers'})}))
    # sk2 is not selected by hostname: its work is not read.
    redis_client.hset('sk2:20:b:work', 'tid3', json.dumps({'queue': 'ingress', 'run_at': int(now), 'payload': '{}'}))
    args = dict(redis_unix_socket=redis_server['redis_unix_socket'], hostname='sk1', wait_until='idle', timeout=0)
    res = run_module(sidekiq_queues, args, expect_fail=True)
    assert res['msg'].startswith('Sidekiq processes still busy after 0s, running: '
                                 'LinkCrawlWorker on queue default (jid aaa111) running for 12')
    assert 'ActionMailer::MailDeliveryJob on queue mailers (jid bbb222) running for 4' in res['msg']
    assert [j['jid'] for j in res['busy_jobs']] == ['aaa111', 'bbb222']
    assert 125 <= res['busy_jobs'][0]['running_for'] < 135
    assert 'HGETALL sk1:10:a:work' in res['commands'] and 'HGETALL sk2:20:b:work' not in res['commands']

    # Read on request without waiting; the module never writes.
    res = run_module(sidekiq_queues, dict(args, wait_until='none', busy_jobs=True))
    assert res['busy_summary'].count('jid') == 2 and not res['changed']


def test_namespace_and_connection_errors(redis_server, redis_client):
    redis_client.sadd('mastodon:queues', 'pull')
    redis_client.lpush('mastodon:queue:pull', json.dumps({'enqueued_at': time.time() - 1}))
    res = run_module(sidekiq_queues, dict(redis_unix_socket=redis_server['redis_unix_socket'], redis_namespace='mastodon'))
    assert res['queues']['pull']['depth'] == 1
    res = run_module(sidekiq_queues, dict(redis_unix_socket='/nonexistent/redis.sock'), expect_fail=True)
    assert res['msg'].startswith('Unable to connect to Redis at socket /nonexistent/redis.sock')
    res = run_module(sidekiq_queues, dict(wait_until='forever'), expect_fail=True)
    assert 'value of wait_until must be one of: none, idle, empty' in res['msg']


def test_pids_select_the_processes_a_scale_in_stops(redis_server, redis_client):
    now = time.time()
    redis_client.sadd('processes', 'sk1:10:a', 'sk1:11:c')
    redis_client.hset('sk1:10:a', mapping={'info': json.dumps({'hostname': 'sk1', 'pid': 10, 'tag': 'ingress'}), 'busy': 2, 'beat': now})
    redis_client.hset('sk1:11:c', mapping={'info': json.dumps({'hostname': 'sk1', 'pid': 11, 'tag': 'ingress'}), 'busy': 0, 'beat': now})
    args = dict(redis_unix_socket=redis_server['redis_unix_socket'], hostname='sk1', wait_until='idle', timeout=0)
    # The busy process 10 is not selected: the idle 11 alone is waited for.
    res = run_module(sidekiq_queues, dict(args, pids=[11]))
    assert [p['identity'] for p in res['processes']] == ['sk1:11:c'] and res['summary']['busy'] == 0
    res = run_module(sidekiq_queues, dict(args, pids=[10, 11]), expect_fail=True)
    assert res['msg'].startswith('Sidekiq processes still busy after 0s')
