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


def test_resume_with_reload_first_installs_the_staged_file_and_resumes_on_one_connection(
        admin, pgbouncer_server, server_dir, app_conn):
    import os
    import shutil
    db = pgbouncer_server['db']
    ini = os.path.join(server_dir[0], 'pgbouncer.ini')
    original, staged = ini + '.original', ini + '.staged'
    shutil.copy(ini, original)
    with open(ini) as handle:
        text = handle.read()
    with open(staged, 'w') as handle:  # one more [databases] line: visible in SHOW DATABASES after the RELOAD
        handle.write(text.replace('[databases]\n', '[databases]\nswitched_to = host=127.0.0.1 port=%d dbname=%s\n'
                                  % (pgbouncer_server['backend_port'], db)))
    os.chmod(staged, 0o644)
    try:
        run_module(pgbouncer_admin, dict(admin, command='pause', database=db))
        switch = dict(admin, command='resume', database=db, reload_first=True, staged_config=staged, config_path=ini)
        res = run_module(pgbouncer_admin, switch, check_mode=True)
        assert res['changed'] and res['queries'][:2] == ['(check mode, not done) rename %s -> %s' % (staged, ini),
                                                         '(check mode, not sent) RELOAD']
        assert os.path.exists(staged)
        res = run_module(pgbouncer_admin, switch)
        assert res['changed'] and not res['paused'] and res['installed'] == '%s -> %s' % (staged, ini)
        assert res['queries'] == ['RELOAD', 'SHOW DATABASES', 'RESUME %s' % db]
        assert not os.path.exists(staged)
        shown = run_module(pgbouncer_admin, dict(admin, command='show', show='databases'))['rows']
        assert 'switched_to' in [row['name'] for row in shown]
        cur = app_conn.cursor()
        cur.execute('SELECT 3')                # held traffic flows again
        assert cur.fetchone() == (3,)
        app_conn.rollback()
        # A missing staged file: refused before anything is sent.
        res = run_module(pgbouncer_admin, switch, expect_fail=True)
        assert res['msg'] == 'staged_config %s does not exist: nothing to install, nothing sent' % staged
        res = run_module(pgbouncer_admin, dict(admin, command='pause', reload_first=True), expect_fail=True)
        assert res['msg'] == 'reload_first applies to resume only, not pause'
    finally:
        shutil.copy(original, ini)
        run_module(pgbouncer_admin, dict(admin, command='reload'))
        run_module(pgbouncer_admin, dict(admin, command='resume', database=db))
