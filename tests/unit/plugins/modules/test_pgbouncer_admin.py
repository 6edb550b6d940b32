# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.fediops.mastodon.plugins.modules import pgbouncer_admin
from .utils import run_module


@pytest.fixture
def admin(pgbouncer_server):
    return dict(login_host='127.0.0.1', login_port=pgbouncer_server['login_port'], login_user='mastodon',
                login_password=pgbouncer_server['login_password'])


@pytest.fixture
def app_conn(pgbouncer_server):
    import psycopg2
    conn = psycopg2.connect(host='127.0.0.1', port=pgbouncer_server['login_port'], user='mastodon',
                            password=pgbouncer_server['login_password'], dbname=pgbouncer_server['db'])
    yield conn
    conn.close()


def test_show(admin):
    res = run_module(pgbouncer_admin, dict(admin, command='show', show='databases'))
    assert not res['changed'] and res['queries'] == ['SHOW DATABASES']
    assert 'paused' in res['rows'][0]
    res = run_module(pgbouncer_admin, dict(admin, command='show', show='version'))
    assert 'PgBouncer' in res['rows'][0]['version']


def test_pause_resume_database_idempotent(admin, pgbouncer_server):
    db = pgbouncer_server['db']
    res = run_module(pgbouncer_admin, dict(admin, command='pause', database=db), check_mode=True)
    assert res['changed'] and res['queries'][-1] == '(check mode, not sent) PAUSE %s' % db
    res = run_module(pgbouncer_admin, dict(admin, command='pause', database=db))
    assert res['changed'] and res['paused'] and res['diff'] == {'before': {'paused': False}, 'after': {'paused': True}}
    assert run_module(pgbouncer_admin, dict(admin, command='pause', database=db))['changed'] is False
    res = run_module(pgbouncer_admin, dict(admin, command='resume', database=db))
    assert res['changed'] and res['queries'][-1] == 'RESUME %s' % db
    assert run_module(pgbouncer_admin, dict(admin, command='resume', database=db))['changed'] is False


def test_global_pause_resume(admin):
    assert run_module(pgbouncer_admin, dict(admin, command='pause'))['changed']
    again = run_module(pgbouncer_admin, dict(admin, command='pause'))
    assert again['changed'] is False and again['diff']['before'] == {'paused': True}
    assert run_module(pgbouncer_admin, dict(admin, command='resume'))['changed']
    assert run_module(pgbouncer_admin, dict(admin, command='resume'))['changed'] is False


def test_pause_times_out_and_resumes(admin, app_conn, pgbouncer_server):
    cur = app_conn.cursor()
    cur.execute('SELECT 1')                   # open transaction holds a server connection
    res = run_module(pgbouncer_admin, dict(admin, command='pause', timeout=0.5), expect_fail=True)
    assert res['msg'].startswith('PAUSE did not finish within 0.5s: active queries did not drain (%s/mastodon: 1 active)'
                                 % pgbouncer_server['db'])
    assert res['msg'].endswith('pause aborted with RESUME')
    app_conn.rollback()
    cur.execute('SELECT 2')                   # traffic flows again
    assert cur.fetchone() == (2,)
    app_conn.rollback()
    res = run_module(pgbouncer_admin, dict(admin, command='pause', timeout=5))
    assert res['changed'] and res['paused']
    run_module(pgbouncer_admin, dict(admin, command='resume'))


def test_reconnect_reload_and_errors(admin, pgbouncer_server):
    res = run_module(pgbouncer_admin, dict(admin, command='reload'), check_mode=True)
    assert res['changed'] and res['queries'] == ['(check mode, not sent) RELOAD']
    assert run_module(pgbouncer_admin, dict(admin, command='reload'))['queries'] == ['RELOAD']
    res = run_module(pgbouncer_admin, dict(admin, command='reconnect', database=pgbouncer_server['db']))
    assert res['queries'] == ['SHOW DATABASES', 'RECONNECT %s' % pgbouncer_server['db']]
    res = run_module(pgbouncer_admin, dict(admin, command='pause', database='nope'), expect_fail=True)
    assert res['msg'].startswith("database 'nope' is not configured in PgBouncer (known: ")
    res = run_module(pgbouncer_admin, dict(admin, command='pause', database='x; SHUTDOWN'), expect_fail=True)
    assert 'not a plain PgBouncer database name' in res['msg']
    res = run_module(pgbouncer_admin, dict(admin, command='reload', database='x'), expect_fail=True)
    assert res['msg'] == 'database applies to pause, resume and reconnect only, not reload'
    res = run_module(pgbouncer_admin, dict(admin, command='show', login_password='wrong'), expect_fail=True)
    assert res['msg'].startswith('Unable to connect to database "pgbouncer" as user "mastodon"')
