# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection-pool arithmetic and Sidekiq queue-layout checks shared by modules and preflights.

Fleet description (plain dicts, so it can be built in Jinja from inventory)::

    web:       {hosts: 2, workers: 4, threads: 5, db_pool: 5}          # db_pool optional
    sidekiq:   [{name: default, hosts: 1, processes: 2, concurrency: 25,
                 db_pool: 25, queues: [default, 'push,6', ...]}, ...]
    streaming: {hosts: 1, processes: 2, db_pool: 10}

``hosts`` may be a number or a list of host names. Each Puma worker holds up to ``db_pool``
(default ``threads``, i.e. MAX_THREADS) connections; each Sidekiq process up to ``db_pool``
(default its concurrency); each streaming process up to ``db_pool`` (default 10).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.six import string_types
from ansible_collections.fediops.mastodon.plugins.module_utils.versions import release_series

MASTODON_QUEUES = ['default', 'push', 'ingress', 'mailers', 'pull', 'scheduler']
MASTODON_QUEUES_4_4 = MASTODON_QUEUES + ['fasp']
STREAMING_DEFAULT_DB_POOL = 10
DEFAULT_RESERVED = 5


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


def db_connection_budget(web=None, sidekiq=None, streaming=None):
    """Maximum database connections the application fleet can open, by tier."""
    web = web or {}
    budget = {'web': 0, 'sidekiq': 0, 'streaming': 0, 'sidekiq_by_pool': {}, 'total': 0}
    if web:
        threads = _int(web.get('threads'), 'web.threads', 5)
        per_worker = _int(web.get('db_pool'), 'web.db_pool', threads)
        budget['web'] = _count(web.get('hosts'), 'web.hosts') * _int(web.get('workers'), 'web.workers', 2) * per_worker
    for index, pool in enumerate(sidekiq or []):
        name = _pool_name(pool, index)
        concurrency = _int(pool.get('concurrency'), 'sidekiq pool %s concurrency' % name, 5)
        per_proc = _int(pool.get('db_pool'), 'sidekiq pool %s db_pool' % name, concurrency)
        n = _count(pool.get('hosts'), 'sidekiq pool %s hosts' % name) * _count(pool.get('processes'), 'sidekiq pool %s processes' % name) * per_proc
        budget['sidekiq_by_pool'][name] = budget['sidekiq_by_pool'].get(name, 0) + n
        budget['sidekiq'] += n
    if streaming:
        per_proc = _int(streaming.get('db_pool'), 'streaming.db_pool', STREAMING_DEFAULT_DB_POOL)
        budget['streaming'] = _count(streaming.get('hosts'), 'streaming.hosts') * _count(streaming.get('processes'), 'streaming.processes') * per_proc
    budget['total'] = budget['web'] + budget['sidekiq'] + budget['streaming']
    return budget


def db_connection_errors(web=None, sidekiq=None, streaming=None, pgbouncer=None, postgres=None):
    """Messages for every way the fleet's connections do not fit; [] when they do.

    ``pgbouncer``: {max_client_conn, default_pool_size, reserve_pool_size (0), hosts (1),
    pools (1: database/user pairs served)}; clients are assumed spread over the hosts.
    ``postgres``: {max_connections, superuser_reserved_connections (3), reserved (5: replication,
    migrations, monitoring)}. Without pgbouncer the fleet connects to Postgres directly.
    """
    errors = []
    try:
        budget = db_connection_budget(web, sidekiq, streaming)
    except PoolSpecError as e:
        return [str(e)]
    if web:
        threads = _int(web.get('threads'), 'web.threads', 5)
        if web.get('db_pool') not in (None, '') and int(web['db_pool']) < threads:
            errors.append('web: db_pool %s is below threads %s (each Puma thread needs a connection)' % (web['db_pool'], threads))
    for index, pool in enumerate(sidekiq or []):
        name = _pool_name(pool, index)
        concurrency = _int(pool.get('concurrency'), 'sidekiq pool %s concurrency' % name, 5)
        if pool.get('db_pool') not in (None, '') and int(pool['db_pool']) < concurrency:
            errors.append('sidekiq pool %s: db_pool %s is below concurrency %s (DB_POOL must be >= -c)' % (name, pool['db_pool'], concurrency))
    available = None
    if postgres:
        max_conn = _int(postgres.get('max_connections'), 'postgres.max_connections')
        available = (max_conn - _int(postgres.get('superuser_reserved_connections'), 'x', 3)
                     - _int(postgres.get('reserved'), 'postgres.reserved', DEFAULT_RESERVED))
    if pgbouncer:
        hosts = _count(pgbouncer.get('hosts'), 'pgbouncer.hosts')
        max_client = _int(pgbouncer.get('max_client_conn'), 'pgbouncer.max_client_conn', 100)
        if budget['total'] > hosts * max_client:
            errors.append('application fleet can open %d connections but pgbouncer accepts %d (max_client_conn %d x %d host(s))'
                          % (budget['total'], hosts * max_client, max_client, hosts))
        server = hosts * _int(pgbouncer.get('pools'), 'pgbouncer.pools', 1) * (
            _int(pgbouncer.get('default_pool_size'), 'pgbouncer.default_pool_size', 20)
            + _int(pgbouncer.get('reserve_pool_size'), 'pgbouncer.reserve_pool_size', 0))
        if available is not None and server > available:
            errors.append('pgbouncer server connections %d (default_pool_size + reserve_pool_size per pool x pools x hosts) exceed '
                          'the %d Postgres max_connections leaves after superuser and reserved slots' % (server, available))
    elif available is not None and budget['total'] > available:
        errors.append('application fleet can open %d connections (web %d + sidekiq %d + streaming %d) but Postgres max_connections '
                      'leaves %d after superuser and reserved slots'
                      % (budget['total'], budget['web'], budget['sidekiq'], budget['streaming'], available))
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
