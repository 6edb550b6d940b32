# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection-pool arithmetic and Sidekiq queue-layout checks shared by modules and preflights.

``connection_budget`` is the fleet's one model of its database connections: every web host's Puma
workers x threads, every streaming host's instances x DB pool, every Sidekiq pool's hosts x processes x
DB pool, plus a reserve; PgBouncer's ``max_client_conn`` and pool sizes are derived from it and
``connection_budget_errors`` checks the settings actually used (see the section below).
Sidekiq pools are ``mastodon_sidekiq_pools`` entries: {name, hosts (list or number), processes,
concurrency, db_pool (default concurrency), queues: [default, 'push,6', ...]}.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.six import string_types
from ansible_collections.fediops.mastodon.plugins.module_utils.versions import release_series

MASTODON_QUEUES = ['default', 'push', 'ingress', 'mailers', 'pull', 'scheduler']
MASTODON_QUEUES_4_4 = MASTODON_QUEUES + ['fasp']
STREAMING_DEFAULT_DB_POOL = 10


class PoolSpecError(ValueError):
    """A fleet description that cannot be computed with."""


def mastodon_queues(version=None):
    """Queues a Mastodon release uses (``fasp`` since 4.4)."""
    if version is None:
        return list(MASTODON_QUEUES)
    return list(MASTODON_QUEUES_4_4 if release_series(version) >= (4, 4) else MASTODON_QUEUES)


def _count(value, what):
    if value is None:
        return 1
    if isinstance(value, (list, tuple, set)):
        return len(value)
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise PoolSpecError('%s must be a number or a list of hosts, not %r' % (what, value))
    if n < 0:
        raise PoolSpecError('%s must not be negative (%d)' % (what, n))
    return n


def _int(value, what, default=None):
    if value is None or value == '':
        if default is None:
            raise PoolSpecError('%s is required' % what)
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PoolSpecError('%s must be an integer, not %r' % (what, value))


def parse_queue(entry):
    """('name', weight or None) from 'name', 'name,8', ['name', 8] or {'name':, 'weight':}."""
    if isinstance(entry, dict):
        name, weight = entry.get('name'), entry.get('weight')
    elif isinstance(entry, (list, tuple)):
        name, weight = entry[0], (entry[1] if len(entry) > 1 else None)
    elif isinstance(entry, string_types):
        name, _sep, weight = entry.partition(',')
        weight = weight or None
    else:
        raise PoolSpecError('queue entry %r is neither a name nor name,weight' % (entry,))
    name = str(name).strip() if name is not None else ''
    if not name:
        raise PoolSpecError('queue entry %r has no name' % (entry,))
    return name, (int(weight) if weight is not None else None)


def _pool_name(pool, index):
    return str(pool.get('name') or 'sidekiq[%d]' % index)


# ---- The fleet's connection budget: one computation for PgBouncer's settings and the preflight ----
#
# Sizing (plain dicts, built by roles/fleet/defaults/main.yml from each host's actual values)::
#
#     web:       [{host: web-1, workers: 2, threads: 5, db_pool: (threads)}, ...]      # one per web host
#     streaming: [{host: web-1, instances: 2 (or ports: [4000, 4001]), db_pool: 10}, ...]
#     sidekiq:   mastodon_sidekiq_pools as written: [{name, hosts (default: sidekiq_default_hosts),
#                processes (1), concurrency, db_pool (concurrency)}, ...]
#     sidekiq_default_hosts: [sidekiq-1, ...]
#     reserve:   client connections kept for tootctl / rails console / migrations through PgBouncer
#     headroom_percent: margin on max_client_conn (restart overlap, a console too many)
#     pgbouncer: {hosts: 1, pools: 1}                   # poolers, database/user pairs per pooler
#     postgres:  {max_connections, superuser_reserved_connections (3), reserved_connections (10)}
#
# Derivation (documented in roles/fleet/meta/argument_specs.yml and docs/data-tier.md):
#     clients          = web + streaming + sidekiq + reserve          (each process's pool, fully used)
#     max_client_conn  = ceil(clients x (100 + headroom_percent) / 100 / poolers)     per pooler
#     available        = max_connections - superuser_reserved - reserved_connections
#     per_pool         = floor(available / (poolers x pools))   the server connections one pool may hold
#     reserve_pool     = ceil(per_pool / 10)                    bursts, after reserve_pool_timeout
#     default_pool     = max(1, min(clients, per_pool - reserve_pool))
# so poolers x pools x (default_pool + reserve_pool) <= available <= max_connections by construction,
# and a pool never holds more server connections than the clients could use. In transaction pooling a
# server connection is held only for a transaction, so fewer server than client connections is normal:
# clients beyond the pool wait in PgBouncer's queue instead of failing at Postgres.

BUDGET_RESERVE = 10
BUDGET_HEADROOM_PERCENT = 25
BUDGET_POSTGRES_RESERVED = 10
BUDGET_SUPERUSER_RESERVED = 3


def _ceil_div(a, b):
    return -(-a // b)


def _positive(value, what, default=None):
    n = _int(value, what, default)
    if n < 0:
        raise PoolSpecError('%s must not be negative (%d)' % (what, n))
    return n


def connection_budget(sizing):
    """Client connections per tier and the PgBouncer / Postgres settings derived from them.

    Returns ``{web, streaming, sidekiq, reserve, total, by_host, sidekiq_by_pool, pgbouncer:
    {hosts, pools, max_client_conn, default_pool_size, reserve_pool_size, server_connections},
    postgres: {max_connections, superuser_reserved_connections, reserved_connections, available}}``.
    ``server_connections`` is what all poolers together may open to Postgres. Raises PoolSpecError.
    """
    sizing = sizing or {}
    by_host = {}

    def add(host, n):
        if host is not None:
            by_host[str(host)] = by_host.get(str(host), 0) + n

    web = 0
    for index, entry in enumerate(sizing.get('web') or []):
        what = 'web host %s' % entry.get('host', index)
        threads = _positive(entry.get('threads'), '%s mastodon_web_max_threads' % what)
        if threads < 1:
            raise PoolSpecError('%s mastodon_web_max_threads must be at least 1' % what)
        # WEB_CONCURRENCY=0 is Puma's single mode: one process.
        processes = max(_positive(entry.get('workers'), '%s mastodon_web_concurrency' % what), 1)
        n = processes * _positive(entry.get('db_pool'), '%s db_pool' % what, threads)
        web += n
        add(entry.get('host'), n)

    streaming = 0
    for index, entry in enumerate(sizing.get('streaming') or []):
        what = 'streaming host %s' % entry.get('host', index)
        if entry.get('instances') not in (None, ''):
            instances = _positive(entry.get('instances'), '%s instances' % what)
        else:
            instances = _count(entry.get('ports') or [], '%s mastodon_streaming_ports' % what)
        n = instances * _positive(entry.get('db_pool'), '%s mastodon_streaming_db_pool' % what, STREAMING_DEFAULT_DB_POOL)
        streaming += n
        add(entry.get('host'), n)

    sidekiq = 0
    by_pool = {}
    default_hosts = sizing.get('sidekiq_default_hosts') or []
    for index, pool in enumerate(sizing.get('sidekiq') or []):
        name = _pool_name(pool, index)
        what = 'mastodon_sidekiq_pools entry %s' % name
        hosts = pool.get('hosts')
        if hosts is None or hosts == '':
            hosts = default_hosts
        concurrency = _positive(pool.get('concurrency'), '%s concurrency' % what)
        per_process = _positive(pool.get('db_pool'), '%s db_pool' % what, concurrency)
        processes = _count(pool.get('processes'), '%s processes' % what)
        per_host = processes * per_process
        n = _count(hosts, '%s hosts' % what) * per_host
        by_pool[name] = by_pool.get(name, 0) + n
        sidekiq += n
        if isinstance(hosts, (list, tuple)):
            for host in hosts:
                add(host, per_host)

    reserve = _positive(sizing.get('reserve'), 'fleet_db_reserve_connections', BUDGET_RESERVE)
    headroom = _positive(sizing.get('headroom_percent'), 'fleet_db_headroom_percent', BUDGET_HEADROOM_PERCENT)
    total = web + streaming + sidekiq + reserve

    pgb = sizing.get('pgbouncer') or {}
    poolers = max(_count(pgb.get('hosts'), 'pgbouncer hosts'), 1)
    pools = max(_positive(pgb.get('pools'), 'pgbouncer pools', 1), 1)
    pg = sizing.get('postgres') or {}
    max_connections = _positive(pg.get('max_connections'), 'postgresql_max_connections')
    superuser = _positive(pg.get('superuser_reserved_connections'), 'postgresql_superuser_reserved_connections',
                          BUDGET_SUPERUSER_RESERVED)
    reserved = _positive(pg.get('reserved_connections'), 'fleet_postgres_reserved_connections', BUDGET_POSTGRES_RESERVED)
    available = max_connections - superuser - reserved
    per_pool = max(available, 0) // (poolers * pools)
    reserve_pool = _ceil_div(per_pool, 10) if per_pool > 1 else 0
    default_pool = max(1, min(total, per_pool - reserve_pool))

    return {
        'web': web, 'streaming': streaming, 'sidekiq': sidekiq, 'reserve': reserve, 'total': total,
        'by_host': by_host, 'sidekiq_by_pool': by_pool, 'headroom_percent': headroom,
        'pgbouncer': {
            'hosts': poolers, 'pools': pools,
            'max_client_conn': _ceil_div(total * (100 + headroom), 100 * poolers),
            'default_pool_size': default_pool, 'reserve_pool_size': reserve_pool,
            'server_connections': poolers * pools * (default_pool + reserve_pool),
        },
        'postgres': {'max_connections': max_connections, 'superuser_reserved_connections': superuser,
                     'reserved_connections': reserved, 'available': available},
    }


def describe_budget(budget):
    """'web 40 + streaming 40 + sidekiq 80 (default 25, ...) + reserve 10 = 170' for messages."""
    pools = ', '.join('%s %d' % (name, n) for name, n in sorted(budget['sidekiq_by_pool'].items()))
    return 'web %d + streaming %d + sidekiq %d%s + reserve %d = %d' % (
        budget['web'], budget['streaming'], budget['sidekiq'], ' (%s)' % pools if pools else '',
        budget['reserve'], budget['total'])


def connection_budget_errors(sizing, pgbouncer=None):
    """Messages for every way the fleet's connections do not fit; [] when they do.

    ``pgbouncer``: the settings one pooler actually uses ({max_client_conn, default_pool_size,
    reserve_pool_size}; missing keys take the derived values) - inventory may override the derived
    ones, and this is where such overrides are checked. Each message names the variables to change.
    """
    try:
        budget = connection_budget(sizing)
    except PoolSpecError as e:
        return ['connection budget: %s' % e]
    derived = budget['pgbouncer']
    settings = dict(derived)
    for key, value in (pgbouncer or {}).items():
        if value not in (None, ''):
            try:
                settings[key] = int(value)
            except (TypeError, ValueError):
                return ['pgbouncer_%s must be an integer, not %r' % (key, value)]
    poolers, pools = derived['hosts'], derived['pools']
    pg = budget['postgres']
    errors = []
    if pg['available'] < 2:
        errors.append(
            'postgresql_max_connections %d leaves %d connection(s) for PgBouncer after postgresql_superuser_reserved_connections %d '
            'and fleet_postgres_reserved_connections %d; raise postgresql_max_connections'
            % (pg['max_connections'], pg['available'], pg['superuser_reserved_connections'], pg['reserved_connections']))
    accepted = settings['max_client_conn'] * poolers
    if budget['total'] > accepted:
        errors.append(
            'the application fleet can open %d client connections (%s) but PgBouncer accepts %d '
            '(pgbouncer_max_client_conn %d x %d pooler(s)); raise pgbouncer_max_client_conn to at least %d (derived: %d) '
            'or lower mastodon_web_concurrency / mastodon_web_max_threads / mastodon_streaming_ports / mastodon_streaming_db_pool / '
            'mastodon_sidekiq_pools concurrency or processes / fleet_db_reserve_connections'
            % (budget['total'], describe_budget(budget), accepted, settings['max_client_conn'], poolers,
               _ceil_div(budget['total'], poolers), derived['max_client_conn']))
    if settings['default_pool_size'] < 1:
        errors.append('pgbouncer_default_pool_size %d must be at least 1' % settings['default_pool_size'])
    server = poolers * pools * (settings['default_pool_size'] + settings['reserve_pool_size'])
    if pg['available'] >= 2 and server > pg['available']:
        errors.append(
            'PgBouncer may open %d server connections ((pgbouncer_default_pool_size %d + pgbouncer_reserve_pool_size %d) x %d pool(s) '
            'x %d pooler(s)) but Postgres has %d (postgresql_max_connections %d - postgresql_superuser_reserved_connections %d '
            '- fleet_postgres_reserved_connections %d); lower pgbouncer_default_pool_size / pgbouncer_reserve_pool_size '
            '(derived: %d / %d) or raise postgresql_max_connections'
            % (server, settings['default_pool_size'], settings['reserve_pool_size'], pools, poolers, pg['available'],
               pg['max_connections'], pg['superuser_reserved_connections'], pg['reserved_connections'],
               derived['default_pool_size'], derived['reserve_pool_size']))
    return errors


def sidekiq_queue_layout_errors(pools, required_queues=None, mastodon_version=None):
    """Messages for a Sidekiq pool layout that would lose or double work; [] when sound.

    Checks: every pool has queues and positive concurrency, no unknown queue names, every
    required Mastodon queue is served, and ``scheduler`` runs in exactly one process.
    """
    errors = []
    required = list(required_queues) if required_queues is not None else mastodon_queues(mastodon_version)
    known = set(MASTODON_QUEUES_4_4) | set(required)
    served = {}
    scheduler_processes = 0
    scheduler_pools = []
    names = []
    for index, pool in enumerate(pools or []):
        name = _pool_name(pool, index)
        if name in names:
            errors.append('sidekiq pool %s is declared twice' % name)
        names.append(name)
        try:
            concurrency = _int(pool.get('concurrency'), 'concurrency', 5)
            processes = _count(pool.get('hosts'), 'hosts') * _count(pool.get('processes'), 'processes')
            queues = [parse_queue(q) for q in (pool.get('queues') or [])]
        except PoolSpecError as e:
            errors.append('sidekiq pool %s: %s' % (name, e))
            continue
        if concurrency < 1:
            errors.append('sidekiq pool %s: concurrency %d must be at least 1' % (name, concurrency))
        if not queues:
            errors.append('sidekiq pool %s serves no queues' % name)
        qnames = [q[0] for q in queues]
        for dup in sorted(set(q for q in qnames if qnames.count(q) > 1)):
            errors.append('sidekiq pool %s lists queue %s more than once' % (name, dup))
        for qname in qnames:
            if qname not in known:
                errors.append('sidekiq pool %s: queue %r is not a Mastodon queue (known: %s)' % (name, qname, ', '.join(sorted(known))))
            if processes > 0:
                served.setdefault(qname, []).append(name)
        if 'scheduler' in qnames and processes > 0:
            scheduler_processes += processes
            scheduler_pools.append('%s (%d process%s)' % (name, processes, '' if processes == 1 else 'es'))
    for qname in required:
        if qname not in served:
            errors.append('queue %s is not served by any sidekiq pool' % qname)
    if scheduler_processes > 1:
        errors.append('queue scheduler must run in exactly one sidekiq process, found %d: %s'
                      % (scheduler_processes, ', '.join(scheduler_pools)))
    return errors
