# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from unittest import mock

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import mastodon_common as mc


def params(**kw):
    p = dict((k, v.get('default')) for k, v in mc.postgres_common_argument_spec().items())
    p.update(kw)
    return p


def test_argument_spec_shape():
    spec = mc.postgres_common_argument_spec()
    assert spec['login_port']['default'] == 5432
    assert spec['login_password']['no_log'] is True
    assert spec['ssl_mode']['choices'][-1] == 'verify-full'
    assert mc.redis_common_argument_spec()['redis_password']['no_log'] is True
    # a fresh dict each call, so modules may override defaults safely
    spec['login_port']['default'] = 6432
    assert mc.postgres_common_argument_spec()['login_port']['default'] == 5432


def test_connect_kwargs():
    kw = mc.postgres_connect_kwargs(params(login_host='10.0.0.10', login_password='pw', ca_cert='/ca.pem'))
    assert kw == {'dbname': 'mastodon_production', 'user': 'mastodon', 'port': 5432, 'connect_timeout': 10,
                  'application_name': 'fediops', 'host': '10.0.0.10', 'password': 'pw', 'sslmode': 'prefer',
                  'sslrootcert': '/ca.pem'}
    kw = mc.postgres_connect_kwargs(params(login_unix_socket='/run/postgresql'), db='other')
    assert kw['host'] == '/run/postgresql' and kw['dbname'] == 'other' and 'sslmode' not in kw and 'password' not in kw


def test_describe_target_never_shows_password():
    text = mc.describe_postgres_target(params(login_host='db', login_password='hunter2'))
    assert text == 'database "mastodon_production" as user "mastodon" at db:5432' and 'hunter2' not in text


@pytest.mark.parametrize('kw, server_port, console, fragment', [
    ({'login_port': 6432}, None, False, "PgBouncer's port"),
    ({}, None, True, 'admin console answered SHOW VERSION'),
    ({'login_port': 5433}, 5432, False, 'a proxy (PgBouncer?) sits in between'),
    ({}, 5432, False, None),
    ({'login_unix_socket': '/run/postgresql', 'login_port': 5433}, None, False, None),
])
def test_direct_postgres_problem(kw, server_port, console, fragment):
    problem = mc.direct_postgres_problem(params(**kw), server_port=server_port, is_pgbouncer=console)
    if fragment is None:
        assert problem is None
    else:
        assert fragment in problem


def test_missing_psycopg2_fails_clearly():
    module = mock.Mock()
    module.fail_json.side_effect = SystemExit
    with mock.patch.object(mc, 'HAS_PSYCOPG2', False):
        with pytest.raises(SystemExit):
            mc.postgres_connect(module, params())
    msg = module.fail_json.call_args[1]['msg']
    assert 'psycopg2 (Debian: python3-psycopg2)' in msg


def test_missing_redis_fails_clearly():
    module = mock.Mock()
    module.fail_json.side_effect = SystemExit
    with mock.patch.object(mc, 'HAS_REDIS', False):
        with pytest.raises(SystemExit):
            mc.redis_connect(module, {})
    assert 'python3-redis' in module.fail_json.call_args[1]['msg']


def test_ensure_direct_on_real_servers(pg_server, pgbouncer_server):
    import psycopg2
    module = mock.Mock()
    module.fail_json.side_effect = SystemExit
    conn = psycopg2.connect(**mc.postgres_connect_kwargs(params(**dict((k, pg_server[k]) for k in (
        'login_host', 'login_port', 'login_password', 'db')))))
    conn.autocommit = True
    mc.ensure_direct_postgres(module, conn, dict(pg_server, login_unix_socket=''))
    assert not module.fail_json.called
    conn.close()
    console_params = params(login_host='127.0.0.1', login_port=pgbouncer_server['login_port'],
                            login_password=pgbouncer_server['login_password'], db='pgbouncer')
    conn = psycopg2.connect(**mc.postgres_connect_kwargs(console_params))
    conn.autocommit = True
    assert mc.is_pgbouncer_console(conn)
    with pytest.raises(SystemExit):
        mc.ensure_direct_postgres(module, conn, console_params)
    assert 'admin console' in module.fail_json.call_args[1]['msg']
    conn.close()
