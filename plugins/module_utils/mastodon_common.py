# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection helpers shared by the fediops.mastodon modules.

Postgres and Redis connection options are declared once here (and documented once in
plugins/doc_fragments/postgres.py and redis.py) so every module accepts the same names.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib

PSYCOPG2_IMP_ERR = None
try:
    import psycopg2
    import psycopg2.extras
    HAS_PSYCOPG2 = True
except ImportError:
    psycopg2 = None
    PSYCOPG2_IMP_ERR = traceback.format_exc()
    HAS_PSYCOPG2 = False

REDIS_IMP_ERR = None
try:
    import redis
    HAS_REDIS = True
except ImportError:
    redis = None
    REDIS_IMP_ERR = traceback.format_exc()
    HAS_REDIS = False

PGBOUNCER_DEFAULT_PORT = 6432
SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']


def postgres_common_argument_spec():
    """Connection options every Postgres-speaking module accepts."""
    return dict(
        login_host=dict(type='str', default='localhost', aliases=['db_host']),
        login_port=dict(type='int', default=5432, aliases=['db_port']),
        login_unix_socket=dict(type='str', default=''),
        login_user=dict(type='str', default='mastodon', aliases=['db_user']),
        login_password=dict(type='str', no_log=True, aliases=['db_password']),
        db=dict(type='str', default='mastodon_production', aliases=['db_name']),
        ssl_mode=dict(type='str', default='prefer', choices=SSL_MODES),
        ca_cert=dict(type='path'),
        connect_timeout=dict(type='int', default=10),
    )


def write_path_argument_spec():
    """Where the application writes: PgBouncer, as the application's database user (doc fragment write_path)."""
    return dict(
        write_host=dict(type='str'),
        write_port=dict(type='int'),
        write_user=dict(type='str'),
        write_password=dict(type='str', no_log=True),
        write_db=dict(type='str'),
    )


def redis_common_argument_spec():
    """Connection options for the Redis instance Sidekiq uses."""
    return dict(
        redis_host=dict(type='str', default='localhost'),
        redis_port=dict(type='int', default=6379),
        redis_unix_socket=dict(type='path'),
        redis_username=dict(type='str'),
        redis_password=dict(type='str', no_log=True),
        redis_db=dict(type='int', default=0),
        redis_tls=dict(type='bool', default=False),
        redis_namespace=dict(type='str', default=''),
        redis_timeout=dict(type='float', default=5.0),
    )


def describe_postgres_target(params):
    """Human-readable description of where a connection goes, for messages (no password)."""
    if params.get('login_unix_socket'):
        where = 'socket %s' % params['login_unix_socket']
    else:
        where = '%s:%s' % (params.get('login_host'), params.get('login_port'))
    return 'database "%s" as user "%s" at %s' % (params.get('db'), params.get('login_user'), where)


def postgres_connect_kwargs(params, db=None):
    """Translate module parameters into psycopg2.connect() keyword arguments."""
    kwargs = {
        'dbname': db if db is not None else params.get('db'),
        'user': params.get('login_user'),
        'port': params.get('login_port'),
        'connect_timeout': params.get('connect_timeout'),
        'application_name': 'fediops',
    }
    if params.get('login_unix_socket'):
        kwargs['host'] = params['login_unix_socket']
    elif params.get('login_host'):
        kwargs['host'] = params['login_host']
    if params.get('login_password'):
        kwargs['password'] = params['login_password']
    if params.get('ssl_mode') and not params.get('login_unix_socket'):
        kwargs['sslmode'] = params['ssl_mode']
    if params.get('ca_cert'):
        kwargs['sslrootcert'] = params['ca_cert']
    return dict((k, v) for k, v in kwargs.items() if v is not None)


def postgres_connect(module, params=None, db=None, autocommit=True, extra_kwargs=None):
    """Open a psycopg2 connection or fail the module with a message naming the target."""
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2 (Debian: python3-psycopg2)'),
                         exception=PSYCOPG2_IMP_ERR)
    params = params if params is not None else module.params
    kwargs = postgres_connect_kwargs(params, db=db)
    if extra_kwargs:
        kwargs.update(extra_kwargs)
    try:
        conn = psycopg2.connect(**kwargs)
        conn.autocommit = autocommit
    except Exception as e:  # pylint: disable=broad-except
        module.fail_json(msg='Unable to connect to %s: %s' % (describe_postgres_target(params), str(e).strip()))
    return conn


def redis_target(params):
    if params.get('redis_unix_socket'):
        return 'socket %s' % params['redis_unix_socket']
    return '%s:%s' % (params.get('redis_host'), params.get('redis_port'))


def redis_client(params):
    """A connected redis-py client (redis-py 4.3 from Debian 12 or later); raises on failure."""
    if not HAS_REDIS:
        raise ImportError(missing_required_lib('redis (Debian: python3-redis)'))
    kwargs = dict(
        db=params.get('redis_db') or 0,
        password=params.get('redis_password') or None,
        socket_timeout=params.get('redis_timeout'),
        socket_connect_timeout=params.get('redis_timeout'),
    )
    if params.get('redis_username'):
        kwargs['username'] = params['redis_username']
    if params.get('redis_unix_socket'):
        kwargs['unix_socket_path'] = params['redis_unix_socket']
    else:
        kwargs['host'] = params.get('redis_host')
        kwargs['port'] = params.get('redis_port')
        if params.get('redis_tls'):
            kwargs['ssl'] = True
    client = redis.Redis(**kwargs)
    client.ping()
    return client


def redis_connect(module, params=None):
    """Open a redis-py client or fail the module with a message naming the target."""
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib('redis (Debian: python3-redis)'), exception=REDIS_IMP_ERR)
    params = params if params is not None else module.params
    try:
        return redis_client(params)
    except Exception as e:  # pylint: disable=broad-except
        module.fail_json(msg='Unable to connect to Redis at %s: %s' % (redis_target(params), e))


def fetch_dicts(cursor, query, args=None, executed=None):
    """Run a query and return its rows as dicts; record the query text in ``executed``."""
    cursor.execute(query, args)
    if executed is not None:
        executed.append(cursor.query.decode('utf-8', 'replace') if isinstance(cursor.query, bytes) else query)
    if cursor.description is None:
        return []
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, row)) for row in cursor.fetchall()]


def is_pgbouncer_console(conn):
    """True when the server is PgBouncer's admin console (``SHOW VERSION`` names PgBouncer).

    A pooled (non-admin) PgBouncer connection forwards queries to Postgres; that case is caught
    by comparing inet_server_port() with the port we connected to.
    """
    cur = conn.cursor()
    try:
        cur.execute('SHOW VERSION')
        row = cur.fetchone()
        return bool(row) and 'pgbouncer' in str(row[0]).lower()
    except Exception:  # pylint: disable=broad-except
        if not conn.autocommit:
            conn.rollback()
        return False
    finally:
        try:
            cur.close()
        except Exception:  # pylint: disable=broad-except
            pass


def direct_postgres_problem(params, server_port=None, is_pgbouncer=False):
    """Return why a connection is not a direct Postgres connection, or None.

    Migrations and the gate must talk to Postgres itself: PgBouncer in transaction mode breaks
    advisory locks and session settings Rails migrations rely on.
    """
    port = params.get('login_port')
    if port == PGBOUNCER_DEFAULT_PORT:
        return ('login_port %s is PgBouncer\'s port; migrations and the gate must connect to '
                'Postgres directly (usually 5432)' % port)
    if is_pgbouncer:
        return ('the server at %s is PgBouncer (its admin console answered SHOW VERSION); connect to '
                'Postgres directly' % describe_postgres_target(params))
    if server_port is not None and not params.get('login_unix_socket') and int(server_port) != int(port):
        return ('connected to port %s but the Postgres backend listens on %s, so a proxy (PgBouncer?) '
                'sits in between; connect to Postgres directly' % (port, server_port))
    return None


def ensure_direct_postgres(module, conn, params=None):
    """Fail the module unless ``conn`` goes straight to Postgres (not through PgBouncer).

    ``SELECT inet_server_port()`` answers on Postgres (and, forwarded, through a pooled
    PgBouncer connection, where the port differs from ours); PgBouncer's admin console rejects
    it, and is then recognised by ``SHOW VERSION``. Postgres never sees the SHOW, so its log
    stays free of errors.
    """
    params = params if params is not None else module.params
    server_port = None
    console = False
    cur = conn.cursor()
    try:
        cur.execute('SELECT inet_server_port()')
        server_port = cur.fetchone()[0]
    except Exception:  # pylint: disable=broad-except
        if not conn.autocommit:
            conn.rollback()
        console = is_pgbouncer_console(conn)
        if not console:
            module.fail_json(msg='%s does not answer "SELECT inet_server_port()"; is it PostgreSQL?'
                                 % describe_postgres_target(params))
    finally:
        cur.close()
    problem = direct_postgres_problem(params, server_port=server_port, is_pgbouncer=console)
    if problem:
        module.fail_json(msg=problem)


def mastodon_api_argument_spec():
    """Connection options of every module that speaks Mastodon's HTTP API (doc fragment mastodon_api)."""
    return dict(
        api_url=dict(type='str', required=True),
        api_token=dict(type='str', required=True, no_log=True),
        ca_path=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        api_timeout=dict(type='int', default=30),
    )
