# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sys


from ansible_collections.fediops.mastodon.plugins.modules import mastodon_migrate
from .utils import run_module

# A stand-in for bin/rails: applies db/migrate (and db/post_migrate unless SKIP_... is set, in
# any value, as Mastodon does) by inserting versions into schema_migrations through DB_* env.
FAKE_RAILS = r'''#!%(python)s
import os, re, sys
import psycopg2
assert sys.argv[1:] == ['db:migrate'], sys.argv
assert os.environ['RAILS_ENV'] == 'production'
dirs = ['db/migrate'] + ([] if 'SKIP_POST_DEPLOYMENT_MIGRATIONS' in os.environ else ['db/post_migrate'])
conn = psycopg2.connect(host=os.environ['DB_HOST'], port=os.environ['DB_PORT'], user=os.environ['DB_USER'],
                        password=os.environ.get('DB_PASS'), dbname=os.environ['DB_NAME'])
cur = conn.cursor()
with open('env.log', 'a') as log:
    log.write('SKIP=%%r\n' %% os.environ.get('SKIP_POST_DEPLOYMENT_MIGRATIONS'))
for d in dirs:
    for name in sorted(os.listdir(d)):
        m = re.match(r'^(\d{14})_', name)
        if m:
            if 'fail' in name:
                print('migration %%s failed' %% name, file=sys.stderr)
                conn.commit()
                sys.exit(1)
            cur.execute('INSERT INTO schema_migrations VALUES (%%s) ON CONFLICT DO NOTHING', (m.group(1),))
conn.commit()
print('migrated')
'''


def make_release(root, pre, post, version='4.5.2'):
    for d in ('db/migrate', 'db/post_migrate', 'bin', 'lib/mastodon'):
        os.makedirs(os.path.join(root, d))
    for v in pre:
        open(os.path.join(root, 'db', 'migrate', '%s_m.rb' % v), 'w').close()
    for v in post:
        open(os.path.join(root, 'db', 'post_migrate', '%s_p.rb' % v), 'w').close()
    rails = os.path.join(root, 'bin', 'rails')
    with open(rails, 'w') as f:
        f.write(FAKE_RAILS % {'python': sys.executable})
    os.chmod(rails, 0o755)
    major, minor, patch = version.split('.')
    with open(os.path.join(root, 'lib', 'mastodon', 'version.rb'), 'w') as f:
        f.write('def major\n  %s\nend\ndef minor\n  %s\nend\ndef patch\n  %s\nend\n' % (major, minor, patch))
    return root


def conn_args(pg):
    return dict((k, pg[k]) for k in ('login_host', 'login_port', 'login_user', 'login_password', 'db'))


def applied(cur):
    cur.execute('SELECT version FROM schema_migrations ORDER BY 1')
    return [r[0] for r in cur.fetchall()]


def test_pre_then_post(tmp_path, pg_server, schema, monkeypatch):
    release = make_release(str(tmp_path / 'r'), pre=['20250101000001', '20250101000002'], post=['20250201000001'])
    args = dict(conn_args(pg_server), release_path=release, phase='pre')

    res = run_module(mastodon_migrate, args, check_mode=True)
    assert res['changed'] and res['pending'] == ['20250101000001', '20250101000002']
    assert res['pending_names'] == ['20250101000001_m.rb', '20250101000002_m.rb']
    assert res['cmd'] == [os.path.join(release, 'bin', 'rails'), 'db:migrate']
    assert res['env']['set']['SKIP_POST_DEPLOYMENT_MIGRATIONS'] == 'true'
    assert 'DB_PASS' not in res['env']['set']
    assert applied(schema) == ['20240101000000']              # check mode ran nothing

    res = run_module(mastodon_migrate, args)
    assert res['changed'] and res['applied'] == ['20250101000001', '20250101000002']
    assert res['schema_version_before'] == '20240101000000' and res['schema_version_after'] == '20250101000002'
    assert res['diff']['after']['pending'] == []
    assert '20250201000001' not in applied(schema)

    assert run_module(mastodon_migrate, args)['changed'] is False   # idempotent

    # post phase: the variable must be absent even if the controller's environment had it
    monkeypatch.setenv('SKIP_POST_DEPLOYMENT_MIGRATIONS', 'false')
    res = run_module(mastodon_migrate, dict(args, phase='post'))
    assert res['applied'] == ['20250201000001']
    assert 'SKIP_POST_DEPLOYMENT_MIGRATIONS' in res['env']['removed']
    with open(os.path.join(release, 'env.log')) as f:
        assert f.read().splitlines() == ["SKIP='true'", 'SKIP=None']


def test_failed_migration_reports_partial(tmp_path, pg_server, schema):
    release = make_release(str(tmp_path / 'r'), pre=['20250101000001', '20250101000002'], post=[])
    os.rename(os.path.join(release, 'db', 'migrate', '20250101000002_m.rb'),
              os.path.join(release, 'db', 'migrate', '20250101000002_fail.rb'))
    res = run_module(mastodon_migrate, dict(conn_args(pg_server), release_path=release, phase='pre'), expect_fail=True)
    assert 'failed with rc 1' in res['msg'] and 'applied before failing: 20250101000001' in res['msg']
    assert 'migration 20250101000002_fail.rb failed' in res['stderr']


def test_refuses_pgbouncer_port_and_env_overrides(tmp_path, pg_server, schema):
    release = make_release(str(tmp_path / 'r'), pre=['20250101000001'], post=[])
    base = dict(conn_args(pg_server), release_path=release, phase='pre')
    res = run_module(mastodon_migrate, dict(base, login_port=6432), expect_fail=True)
    assert "PgBouncer's port" in res['msg']
    res = run_module(mastodon_migrate, dict(base, environment={'SKIP_POST_DEPLOYMENT_MIGRATIONS': 'false'}), expect_fail=True)
    assert 'environment must not contain' in res['msg']
    with open(os.path.join(release, '.env.production'), 'w') as f:
        f.write('SKIP_POST_DEPLOYMENT_MIGRATIONS=false\n')
    res = run_module(mastodon_migrate, dict(base, phase='post'), expect_fail=True)
    assert 'would skip post-deployment migrations whatever its value' in res['msg']


def test_refuses_through_pgbouncer(tmp_path, pgbouncer_server, schema):
    release = make_release(str(tmp_path / 'r'), pre=['20250101000001'], post=[])
    res = run_module(mastodon_migrate, dict(conn_args(pgbouncer_server), release_path=release, phase='pre'), expect_fail=True)
    assert 'a proxy (PgBouncer?) sits in between' in res['msg']


def test_zero_downtime_floor(tmp_path, pg_server, schema):
    schema.execute("DELETE FROM schema_migrations")
    schema.execute("INSERT INTO schema_migrations VALUES ('20220101000000')")
    release = make_release(str(tmp_path / 'r'), pre=['20250101000001'], post=[], version='4.5.2')
    res = run_module(mastodon_migrate, dict(conn_args(pg_server), release_path=release, phase='pre'), expect_fail=True)
    assert 'Zero-downtime' in res['msg'] or 'zero-downtime' in res['msg']


def test_argument_validation(tmp_path):
    res = run_module(mastodon_migrate, {'release_path': str(tmp_path)}, expect_fail=True)
    assert 'missing required arguments: phase' in res['msg']
    res = run_module(mastodon_migrate, {'release_path': str(tmp_path), 'phase': 'all'}, expect_fail=True)
    assert 'value of phase must be one of: pre, post' in res['msg']
    res = run_module(mastodon_migrate, {'release_path': str(tmp_path), 'phase': 'pre'}, expect_fail=True)
    assert 'is it a Mastodon release' in res['msg']


def test_missing_schema_migrations(tmp_path, pg_server, pg_conn):
    pg_conn.cursor().execute('DROP TABLE IF EXISTS schema_migrations')
    release = make_release(str(tmp_path / 'r'), pre=['20250101000001'], post=[])
    res = run_module(mastodon_migrate, dict(conn_args(pg_server), release_path=release, phase='pre'), expect_fail=True)
    assert 'has no schema_migrations table' in res['msg']


def test_connection_failure_names_target(tmp_path):
    release = make_release(str(tmp_path / 'r'), pre=['20250101000001'], post=[])
    res = run_module(mastodon_migrate, dict(release_path=release, phase='pre', login_host='127.0.0.1', login_port=1,
                                            connect_timeout=2), expect_fail=True)
    assert res['msg'].startswith('Unable to connect to database "mastodon_production" as user "mastodon" at 127.0.0.1:1')
