# -*- coding: utf-8 -*-
"""Real Postgres / PgBouncer / Redis servers for tests, started in a temp dir on loopback.

Each fixture skips (with the reason) when its binaries are missing. When the tests run as root
the servers run as the ``postgres`` user (Postgres and PgBouncer refuse to run as root).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

PG_PASSWORD = 'fediops-test'


def _pg_bindir():
    for candidate in sorted(glob.glob('/usr/lib/postgresql/*/bin'), reverse=True):
        if os.path.exists(os.path.join(candidate, 'initdb')):
            return candidate
    found = shutil.which('initdb')
    return os.path.dirname(found) if found else None


def _free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _runas():
    """(prefix argv, uid, gid) to run servers unprivileged."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam('postgres')
    except KeyError:
        pytest.skip('running as root and there is no "postgres" user to run servers as')
    return ['runuser', '-u', 'postgres', '--'], pw.pw_uid, pw.pw_gid


def _wait_port(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope='session')
def server_dir():
    prefix, uid, gid = _runas()
    d = tempfile.mkdtemp(prefix='fediops-srv-')
    if uid is not None:
        os.chown(d, uid, gid)
        os.chmod(d, 0o755)
    yield d, prefix, uid, gid
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope='session')
def pg_server(server_dir):
    """A throwaway Postgres on 127.0.0.1 with a password-protected ``mastodon`` superuser."""
    psycopg2 = pytest.importorskip('psycopg2')
    bindir = _pg_bindir()
    if not bindir:
        pytest.skip('PostgreSQL server binaries (initdb/pg_ctl) not installed; apt-get install postgresql-15')
    base, prefix, _uid, _gid = server_dir
    data = os.path.join(base, 'pg')
    pwfile = os.path.join(base, 'pwfile')
    with open(pwfile, 'w') as f:
        f.write(PG_PASSWORD + '\n')
    os.chmod(pwfile, 0o644)
    subprocess.check_call(prefix + [os.path.join(bindir, 'initdb'), '-D', data, '-U', 'mastodon', '--pwfile', pwfile,
                                    '-A', 'scram-sha-256', '--no-sync', '-E', 'UTF8'],
                          stdout=subprocess.DEVNULL)
    port = _free_port()
    opts = "-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='%s' -c fsync=off " \
           "-c max_connections=40 -c shared_buffers=16MB" % (port, base)
    subprocess.check_call(prefix + [os.path.join(bindir, 'pg_ctl'), '-D', data, '-o', opts, '-w', '-l',
                                    os.path.join(base, 'pg.log'), 'start'], stdout=subprocess.DEVNULL)
    info = {'login_host': '127.0.0.1', 'login_port': port, 'login_user': 'mastodon',
            'login_password': PG_PASSWORD, 'db': 'postgres', 'socket_dir': base, 'bindir': bindir}
    try:
        conn = psycopg2.connect(host='127.0.0.1', port=port, user='mastodon', password=PG_PASSWORD, dbname='postgres')
        conn.autocommit = True
        conn.cursor().execute('CREATE DATABASE mastodon_test')
        conn.close()
        info['db'] = 'mastodon_test'
        yield info
    finally:
        subprocess.call(prefix + [os.path.join(bindir, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture()
def pg_conn(pg_server):
    import psycopg2
    conn = psycopg2.connect(host=pg_server['login_host'], port=pg_server['login_port'], user='mastodon',
                            password=PG_PASSWORD, dbname=pg_server['db'])
    conn.autocommit = True
    yield conn
    conn.close()


def _start_pgbouncer(server_dir, pg, name):
    """PgBouncer in transaction mode in front of ``pg`` (files named ``name``), admin user ``mastodon``."""
    exe = shutil.which('pgbouncer') or ('/usr/sbin/pgbouncer' if os.path.exists('/usr/sbin/pgbouncer') else None)
    if not exe:
        pytest.skip('pgbouncer not installed; apt-get install pgbouncer')
    base, prefix, _uid, _gid = server_dir
    port = _free_port()
    ini = os.path.join(base, '%s.ini' % name)
    with open(os.path.join(base, 'userlist.txt'), 'w') as f:
        f.write('"mastodon" "%s"\n' % PG_PASSWORD)
    with open(ini, 'w') as f:
        f.write('[databases]\n%s = host=127.0.0.1 port=%d dbname=%s\n\n[pgbouncer]\n'
                'listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\nauth_type = scram-sha-256\n'
                'auth_file = %s/userlist.txt\nadmin_users = mastodon\npool_mode = transaction\n'
                'logfile = %s/%s.log\npidfile = %s/%s.pid\nserver_reset_query =\n'
                % (pg['db'], pg['login_port'], pg['db'], port, base, base, name, base, name))
    subprocess.check_call(prefix + [exe, '-d', ini], stdout=subprocess.DEVNULL)
    if not _wait_port(port):
        pytest.skip('pgbouncer did not start; see %s/%s.log' % (base, name))
    return dict(pg, login_port=port, backend_port=pg['login_port'])


def _stop_pgbouncer(server_dir, name):
    try:
        with open(os.path.join(server_dir[0], '%s.pid' % name)) as f:
            os.kill(int(f.read().strip()), 15)
    except (IOError, OSError, ValueError):
        pass


@pytest.fixture(scope='session')
def pgbouncer_server(server_dir, pg_server):
    """PgBouncer in transaction mode in front of pg_server, admin user ``mastodon``."""
    yield _start_pgbouncer(server_dir, pg_server, 'pgbouncer')
    _stop_pgbouncer(server_dir, 'pgbouncer')


@pytest.fixture(scope='session')
def pgbouncer_standby(server_dir, pg_replica):
    """A second PgBouncer whose database line points at the streaming replica (a misrouted write path)."""
    yield _start_pgbouncer(server_dir, pg_replica, 'pgbouncer-standby')
    _stop_pgbouncer(server_dir, 'pgbouncer-standby')


@pytest.fixture(scope='session')
def redis_server(server_dir):
    """redis-server listening on a Unix socket only (--port 0)."""
    pytest.importorskip('redis')
    exe = shutil.which('redis-server')
    if not exe:
        pytest.skip('redis-server not installed; apt-get install redis-server')
    base, prefix, _uid, _gid = server_dir
    sock = os.path.join(base, 'redis.sock')
    proc = subprocess.Popen(prefix + [exe, '--port', '0', '--unixsocket', sock, '--unixsocketperm', '777',
                                      '--save', '', '--appendonly', 'no', '--dir', base],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.05)
    if not os.path.exists(sock):
        proc.kill()
        pytest.skip('redis-server did not create its socket')
    yield {'redis_unix_socket': sock}
    proc.terminate()
    proc.wait(10)


@pytest.fixture()
def redis_client(redis_server):
    import redis
    client = redis.Redis(unix_socket_path=redis_server['redis_unix_socket'])
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope='session')
def pg_replica(server_dir, pg_server):
    """A streaming replica of pg_server (pg_basebackup -R), on its own loopback port."""
    base, prefix, _uid, _gid = server_dir
    bindir = pg_server['bindir']
    data = os.path.join(base, 'pg-replica')
    env = dict(os.environ, PGPASSWORD=PG_PASSWORD)
    subprocess.check_call(prefix + ['env', 'PGPASSWORD=%s' % PG_PASSWORD, os.path.join(bindir, 'pg_basebackup'),
                                    '-h', '127.0.0.1', '-p', str(pg_server['login_port']), '-U', 'mastodon', '-D', data,
                                    '-R', '-X', 'stream', '--no-sync', '-c', 'fast'], stdout=subprocess.DEVNULL, env=env)
    port = _free_port()
    opts = "-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='%s' -c fsync=off " \
           "-c max_connections=40 -c shared_buffers=16MB -c hot_standby=on" % (port, base)
    subprocess.check_call(prefix + [os.path.join(bindir, 'pg_ctl'), '-D', data, '-o', opts, '-w', '-l',
                                    os.path.join(base, 'pg-replica.log'), 'start'], stdout=subprocess.DEVNULL)
    try:
        yield dict(pg_server, login_port=port)
    finally:
        subprocess.call(prefix + [os.path.join(bindir, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
