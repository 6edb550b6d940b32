# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import pools as p

WEB = {'hosts': ['web1', 'web2'], 'workers': 4, 'threads': 5}
SIDEKIQ = [
    {'name': 'default', 'hosts': 1, 'processes': 2, 'concurrency': 25, 'queues': ['default,8', 'push,6', 'mailers,2']},
    {'name': 'scheduler', 'concurrency': 5, 'queues': ['scheduler', 'mailers']},
    {'name': 'ingress', 'hosts': ['sk1', 'sk2'], 'processes': 4, 'concurrency': 5, 'db_pool': 5, 'queues': ['ingress']},
    {'name': 'pull', 'concurrency': 10, 'queues': ['pull', 'fasp']},
]
STREAMING = {'hosts': 1, 'processes': 2}


def test_budget_arithmetic():
    b = p.db_connection_budget(WEB, SIDEKIQ, STREAMING)
    assert b['web'] == 2 * 4 * 5
    assert b['sidekiq_by_pool'] == {'default': 50, 'scheduler': 5, 'ingress': 40, 'pull': 10}
    assert b['sidekiq'] == 105
    assert b['streaming'] == 2 * 10          # streaming DB_POOL defaults to 10 per process
    assert b['total'] == 165
    # DB_POOL above MAX_THREADS counts, since the pool can grow to it
    assert p.db_connection_budget({'hosts': 1, 'workers': 2, 'threads': 5, 'db_pool': 8})['web'] == 16


def test_budget_rejects_garbage():
    with pytest.raises(p.PoolSpecError, match='web.workers'):
        p.db_connection_budget({'hosts': 1, 'workers': 'many'})
    with pytest.raises(p.PoolSpecError, match='negative'):
        p.db_connection_budget(None, [{'name': 'x', 'hosts': -1}])


def test_connection_errors_fit():
    assert p.db_connection_errors(WEB, SIDEKIQ, STREAMING,
                                  pgbouncer={'max_client_conn': 200, 'default_pool_size': 40},
                                  postgres={'max_connections': 100}) == []
    assert p.db_connection_errors(WEB, SIDEKIQ, STREAMING, postgres={'max_connections': 200}) == []


def test_connection_errors_overflow():
    errs = p.db_connection_errors(WEB, SIDEKIQ, STREAMING,
                                  pgbouncer={'max_client_conn': 100, 'default_pool_size': 50, 'reserve_pool_size': 5, 'hosts': 2},
                                  postgres={'max_connections': 100})
    assert len(errs) == 1 and 'pgbouncer server connections 110' in errs[0] and 'leaves after superuser' in errs[0]
    errs = p.db_connection_errors(WEB, SIDEKIQ, STREAMING, pgbouncer={'max_client_conn': 150, 'default_pool_size': 20})
    assert errs == ['application fleet can open 165 connections but pgbouncer accepts 150 (max_client_conn 150 x 1 host(s))']
    errs = p.db_connection_errors(WEB, SIDEKIQ, STREAMING, postgres={'max_connections': 160})
    assert 'leaves 152' in errs[0]


def test_db_pool_below_concurrency():
    errs = p.db_connection_errors({'hosts': 1, 'workers': 1, 'threads': 5, 'db_pool': 3},
                                  [{'name': 'ingress', 'concurrency': 20, 'db_pool': 5, 'queues': ['ingress']}])
    assert errs == ['web: db_pool 3 is below threads 5 (each Puma thread needs a connection)',
                    'sidekiq pool ingress: db_pool 5 is below concurrency 20 (DB_POOL must be >= -c)']


def test_queue_layout_sound():
    assert p.sidekiq_queue_layout_errors(SIDEKIQ, mastodon_version='4.5.0') == []
    # fasp is only a Mastodon queue from 4.4; an older layout need not serve it
    assert p.sidekiq_queue_layout_errors(SIDEKIQ[:3] + [{'name': 'pull', 'queues': ['pull']}], mastodon_version='4.3.0') == []


def test_queue_layout_errors():
    layout = [
        {'name': 'a', 'hosts': 2, 'queues': ['default', 'scheduler', 'default']},
        {'name': 'b', 'concurrency': 0, 'queues': ['ingres']},
        {'name': 'b', 'queues': []},
        {'name': 'c', 'queues': [{'name': 'push', 'weight': 2}, ['pull', 1]]},
    ]
    errs = p.sidekiq_queue_layout_errors(layout, mastodon_version='4.5.0')
    assert 'sidekiq pool a lists queue default more than once' in errs
    assert 'sidekiq pool b is declared twice' in errs
    assert 'sidekiq pool b: concurrency 0 must be at least 1' in errs
    assert any(e.startswith("sidekiq pool b: queue 'ingres' is not a Mastodon queue") for e in errs)
    assert 'sidekiq pool b serves no queues' in errs
    for q in ('ingress', 'mailers', 'fasp'):
        assert 'queue %s is not served by any sidekiq pool' % q in errs
    assert 'queue scheduler must run in exactly one sidekiq process, found 2: a (2 processes)' in errs


def test_scheduler_missing_and_zero_process_pools():
    layout = [{'name': 'all', 'processes': 0, 'queues': list(p.MASTODON_QUEUES)},
              {'name': 'work', 'queues': ['default', 'push', 'ingress', 'mailers', 'pull']}]
    assert p.sidekiq_queue_layout_errors(layout) == ['queue scheduler is not served by any sidekiq pool']


def test_parse_queue():
    assert p.parse_queue('default,8') == ('default', 8)
    assert p.parse_queue(' pull ') == ('pull', None)
    with pytest.raises(p.PoolSpecError):
        p.parse_queue(',3')
    with pytest.raises(p.PoolSpecError):
        p.parse_queue(7)
