# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import pools as p

SIDEKIQ = [
    {'name': 'default', 'hosts': 1, 'processes': 2, 'concurrency': 25, 'queues': ['default,8', 'push,6', 'mailers,2']},
    {'name': 'scheduler', 'concurrency': 5, 'queues': ['scheduler', 'mailers']},
    {'name': 'ingress', 'hosts': ['sk1', 'sk2'], 'processes': 4, 'concurrency': 5, 'db_pool': 5, 'queues': ['ingress']},
    {'name': 'pull', 'concurrency': 10, 'queues': ['pull', 'fasp']},
]

# inventories/example-production (group_vars/all/sizing.yml, group_vars/postgres: max_connections 200).
EXAMPLE_PRODUCTION = {
    'web': [{'host': 'web-fsn-1', 'workers': 4, 'threads': 5}, {'host': 'web-fsn-2', 'workers': 4, 'threads': 5}],
    'streaming': [{'host': 'web-fsn-1', 'ports': [4000, 4001], 'db_pool': 10}, {'host': 'web-fsn-2', 'ports': [4000, 4001], 'db_pool': 10}],
    'sidekiq': [
        {'name': 'default', 'hosts': ['sidekiq-fsn-1'], 'concurrency': 25, 'queues': ['default,8', 'mailers,2']},
        {'name': 'ingress', 'hosts': ['sidekiq-fsn-1'], 'concurrency': 25, 'queues': ['ingress']},
        {'name': 'push-pull', 'hosts': ['sidekiq-fsn-2'], 'concurrency': 25, 'queues': ['push,6', 'pull,4', 'fasp']},
        {'name': 'scheduler', 'hosts': ['sidekiq-fsn-2'], 'concurrency': 5, 'queues': ['scheduler']},
    ],
    'sidekiq_default_hosts': ['sidekiq-fsn-1', 'sidekiq-fsn-2'],
    'reserve': 10, 'headroom_percent': 25,
    'pgbouncer': {'hosts': 1, 'pools': 1},
    'postgres': {'max_connections': 200, 'superuser_reserved_connections': 3, 'reserved_connections': 10},
}


def sizing(**changes):
    out = dict(EXAMPLE_PRODUCTION)
    out.update(changes)
    return out


def test_example_production_budget():
    b = p.connection_budget(EXAMPLE_PRODUCTION)
    assert (b['web'], b['streaming'], b['sidekiq'], b['reserve'], b['total']) == (40, 40, 80, 10, 170)
    assert b['sidekiq_by_pool'] == {'default': 25, 'ingress': 25, 'push-pull': 25, 'scheduler': 5}
    assert b['by_host'] == {'web-fsn-1': 40, 'web-fsn-2': 40, 'sidekiq-fsn-1': 50, 'sidekiq-fsn-2': 30}
    # max_client_conn = ceil(170 x 1.25); Postgres leaves 200 - 3 - 10 = 187; reserve pool ceil(187 / 10) = 19;
    # default pool min(170, 187 - 19) = 168; 168 + 19 = 187 server connections <= 187.
    assert b['pgbouncer'] == {'hosts': 1, 'pools': 1, 'max_client_conn': 213, 'default_pool_size': 168,
                              'reserve_pool_size': 19, 'server_connections': 187}
    assert b['postgres']['available'] == 187
    assert p.connection_budget_errors(EXAMPLE_PRODUCTION) == []
    assert p.describe_budget(b) == ('web 40 + streaming 40 + sidekiq 80 (default 25, ingress 25, push-pull 25, scheduler 5) '
                                    '+ reserve 10 = 170')


def test_lab_budget():
    lab = {
        'web': [{'host': 'web1', 'workers': 1, 'threads': 3}, {'host': 'web2', 'workers': 1, 'threads': 3}],
        'streaming': [{'host': 'web1', 'ports': [4000, 4001], 'db_pool': 10}, {'host': 'web2', 'ports': [4000, 4001], 'db_pool': 10}],
        'sidekiq': [{'name': n, 'hosts': [h], 'concurrency': c} for n, h, c in
                    (('default', 'sidekiq1', 3), ('ingress', 'sidekiq1', 2), ('scheduler', 'sidekiq1', 1),
                     ('push', 'sidekiq2', 2), ('pull', 'sidekiq2', 2), ('mailers', 'sidekiq2', 1))],
        'pgbouncer': {'hosts': 1}, 'postgres': {'max_connections': 100},
    }
    b = p.connection_budget(lab)
    assert (b['web'], b['streaming'], b['sidekiq'], b['total']) == (6, 40, 11, 67)
    assert b['pgbouncer']['max_client_conn'] == 84
    assert (b['pgbouncer']['default_pool_size'], b['pgbouncer']['reserve_pool_size']) == (67, 9)   # never more than the clients
    assert p.connection_budget_errors(lab) == []


def test_budget_counts_each_host_and_pool_as_deployed():
    b = p.connection_budget({
        'web': [{'host': 'w1', 'workers': 0, 'threads': 5},                 # Puma single mode: one process
                {'host': 'w2', 'workers': 2, 'threads': 5, 'db_pool': 8}],   # DB_POOL above MAX_THREADS counts
        'streaming': [{'host': 'w1', 'instances': 3}],                       # DB_POOL defaults to 10
        'sidekiq': SIDEKIQ, 'sidekiq_default_hosts': ['sk1', 'sk2', 'sk3'],
        'reserve': 0, 'postgres': {'max_connections': 500},
    })
    assert b['web'] == 5 + 16 and b['streaming'] == 30
    # default: 1 host x 2 x 25; scheduler and pull on the 3 default hosts; ingress 2 hosts x 4 x 5
    assert b['sidekiq_by_pool'] == {'default': 50, 'scheduler': 15, 'ingress': 40, 'pull': 30}
    assert b['by_host']['sk1'] == 5 + 20 + 10 and b['by_host']['w1'] == 35
    assert b['total'] == 21 + 30 + 135


def test_budget_derivation_with_several_poolers_and_a_tight_postgres():
    b = p.connection_budget(sizing(pgbouncer={'hosts': 2, 'pools': 1},
                                   postgres={'max_connections': 100, 'superuser_reserved_connections': 3, 'reserved_connections': 5}))
    assert b['pgbouncer']['max_client_conn'] == 107                      # ceil(170 x 1.25 / 2)
    assert b['postgres']['available'] == 92                               # 46 per pooler: reserve 5, pool 41
    assert (b['pgbouncer']['default_pool_size'], b['pgbouncer']['reserve_pool_size']) == (41, 5)
    assert b['pgbouncer']['server_connections'] == 92
    assert p.connection_budget_errors(sizing(pgbouncer={'hosts': 2}, postgres={'max_connections': 100})) == []


def test_budget_rejects_garbage():
    with pytest.raises(p.PoolSpecError, match='web host w1 mastodon_web_concurrency must be an integer'):
        p.connection_budget(sizing(web=[{'host': 'w1', 'workers': 'many', 'threads': 5}]))
    with pytest.raises(p.PoolSpecError, match='negative'):
        p.connection_budget(sizing(sidekiq=[{'name': 'x', 'hosts': -1, 'concurrency': 5}]))
    with pytest.raises(p.PoolSpecError, match='postgresql_max_connections is required'):
        p.connection_budget(sizing(postgres={}))
    assert p.connection_budget_errors(sizing(web=[{'host': 'w1', 'workers': 2, 'threads': 0}])) == [
        'connection budget: web host w1 mastodon_web_max_threads must be at least 1']
    assert p.connection_budget_errors(EXAMPLE_PRODUCTION, pgbouncer={'max_client_conn': 'lots'}) == [
        "pgbouncer_max_client_conn must be an integer, not 'lots'"]


def test_overrides_are_checked_naming_the_variables():
    errs = p.connection_budget_errors(EXAMPLE_PRODUCTION, pgbouncer={'max_client_conn': 100})
    assert errs == [
        'the application fleet can open 170 client connections (web 40 + streaming 40 + sidekiq 80 (default 25, ingress 25, '
        'push-pull 25, scheduler 5) + reserve 10 = 170) but PgBouncer accepts 100 (pgbouncer_max_client_conn 100 x 1 pooler(s)); '
        'raise pgbouncer_max_client_conn to at least 170 (derived: 213) or lower mastodon_web_concurrency / mastodon_web_max_threads / '
        'mastodon_streaming_ports / mastodon_streaming_db_pool / mastodon_sidekiq_pools concurrency or processes / '
        'fleet_db_reserve_connections']
    assert p.connection_budget_errors(EXAMPLE_PRODUCTION, pgbouncer={'max_client_conn': '170'}) == []
    errs = p.connection_budget_errors(EXAMPLE_PRODUCTION, pgbouncer={'default_pool_size': 180, 'reserve_pool_size': 10})
    assert errs == [
        'PgBouncer may open 190 server connections ((pgbouncer_default_pool_size 180 + pgbouncer_reserve_pool_size 10) x 1 pool(s) '
        'x 1 pooler(s)) but Postgres has 187 (postgresql_max_connections 200 - postgresql_superuser_reserved_connections 3 '
        '- fleet_postgres_reserved_connections 10); lower pgbouncer_default_pool_size / pgbouncer_reserve_pool_size '
        '(derived: 168 / 19) or raise postgresql_max_connections']
    # the old example-production overrides (60 + 10) fit
    assert p.connection_budget_errors(EXAMPLE_PRODUCTION, pgbouncer={'default_pool_size': 60, 'reserve_pool_size': 10}) == []


def test_a_postgres_too_small_for_any_pool_is_refused():
    errs = p.connection_budget_errors(sizing(postgres={'max_connections': 14}))
    assert errs == ['postgresql_max_connections 14 leaves 1 connection(s) for PgBouncer after postgresql_superuser_reserved_connections 3 '
                    'and fleet_postgres_reserved_connections 10; raise postgresql_max_connections']


def test_the_example_production_budget_no_longer_fails_as_before():
    # Before the one budget: the Sidekiq preflight counted 115 connections against a max_client_conn it read as 100.
    b = p.connection_budget(sizing(web=[{'host': h, 'workers': 2, 'threads': 5} for h in ('web-fsn-1', 'web-fsn-2')],
                                   sidekiq=[{'name': 'default', 'concurrency': 25, 'queues': ['default']},
                                            {'name': 'scheduler', 'hosts': ['sidekiq-fsn-1'], 'concurrency': 5, 'queues': ['scheduler']}]))
    assert (b['web'], b['streaming'], b['sidekiq']) == (20, 40, 55) and b['total'] == 125
    assert b['pgbouncer']['max_client_conn'] == 157
    assert p.connection_budget_errors(sizing(sidekiq=[{'name': 'default', 'concurrency': 25, 'queues': ['default']}])) == []


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
