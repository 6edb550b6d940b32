# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import migrations as m


def make_release(root, pre=(), post=(), extra_files=(), version=None):
    os.makedirs(os.path.join(root, 'db', 'migrate'))
    os.makedirs(os.path.join(root, 'db', 'post_migrate'))
    for v in pre:
        open(os.path.join(root, 'db', 'migrate', '%s_pre_%s.rb' % (v, v[-2:])), 'w').close()
    for v in post:
        open(os.path.join(root, 'db', 'post_migrate', '%s_post_%s.rb' % (v, v[-2:])), 'w').close()
    for rel in extra_files:
        open(os.path.join(root, rel), 'w').close()
    if version:
        os.makedirs(os.path.join(root, 'lib', 'mastodon'))
        major, minor, patch = version.split('.')
        with open(os.path.join(root, 'lib', 'mastodon', 'version.rb'), 'w') as f:
            f.write('module Mastodon\n  module Version\n    module_function\n\n    def major\n      %s\n    end\n\n'
                    '    def minor\n      %s\n    end\n\n    def patch\n      %s\n    end\n  end\nend\n' % (major, minor, patch))
    return root


def test_discover_ignores_noise(tmp_path):
    root = make_release(str(tmp_path), pre=['20240101000001', '20240101000002'], post=['20240201000001'],
                        extra_files=['db/post_migrate/.gitkeep', 'db/migrate/README.md', 'db/migrate/2024_bad.rb',
                                     'db/migrate/202401010000011_too_long.rb'])
    found = m.discover_migrations(root)
    assert sorted(found['pre']) == ['20240101000001', '20240101000002']
    assert found['post'] == {'20240201000001': '20240201000001_post_01.rb'}


def test_discover_without_post_dir(tmp_path):
    os.makedirs(str(tmp_path / 'db' / 'migrate'))
    assert m.discover_migrations(str(tmp_path)) == {'pre': {}, 'post': {}}


def test_discover_errors(tmp_path):
    with pytest.raises(m.MigrationError, match='is it a Mastodon release'):
        m.discover_migrations(str(tmp_path))
    root = make_release(str(tmp_path / 'r'), pre=['20240101000001'], post=['20240101000001'])
    with pytest.raises(m.MigrationError, match='both'):
        m.discover_migrations(root)


def test_pending_and_schema_version():
    found = {'pre': {'20240101000001': 'a', '20240101000002': 'b'}, 'post': {'20240201000001': 'c'}}
    status = m.pending_migrations(found, ['20240101000001', '20231231000000'])
    assert status == {'pending_pre': ['20240101000002'], 'pending_post': ['20240201000001'],
                      'unknown_applied': ['20231231000000']}
    assert m.migration_names(found, status['pending_pre']) == ['b']
    assert m.schema_version(['20240101000001', '20231231000000']) == '20240101000001'
    assert m.schema_version([]) == '0'


@pytest.mark.parametrize('target, applied, refused', [
    ((4, 5, 0), ['20230907150099'], True),       # below 4.2.0 schema
    ((4, 5, 0), ['20230907150100'], False),
    ((4, 7, 1), ['20240101000000'], True),       # 4.7 needs a 4.3.0 schema
    ((4, 7, 1), ['20241007071624'], False),
    ((4, 3, 0), ['20200101000000'], False),      # no check before 4.4
])
def test_zero_downtime_threshold(target, applied, refused):
    problem = m.zero_downtime_problem(target, applied)
    assert bool(problem) is refused
    if refused:
        assert 'zero-downtime' in problem


def test_migrate_environment_phases():
    base = {'PATH': '/usr/bin', 'SKIP_POST_DEPLOYMENT_MIGRATIONS': 'false', 'DATABASE_URL': 'postgres://pgbouncer:6432/x'}
    pre = m.migrate_environment(base, 'pre', db_host='10.0.0.10', db_port=5432, db_password='s3cret')
    assert pre['SKIP_POST_DEPLOYMENT_MIGRATIONS'] == 'true'
    assert pre['RAILS_ENV'] == 'production' and pre['DB_HOST'] == '10.0.0.10' and pre['DB_PORT'] == '5432'
    assert pre['DB_PASS'] == 's3cret' and 'DATABASE_URL' not in pre
    post = m.migrate_environment(base, 'post', db_host='10.0.0.10', db_port=5432)
    # removed, never set to "false": Mastodon skips whenever the variable is set
    assert 'SKIP_POST_DEPLOYMENT_MIGRATIONS' not in post
    assert post['PATH'] == '/usr/bin'
    with pytest.raises(ValueError):
        m.migrate_environment({}, 'both')
    with pytest.raises(ValueError, match='SKIP_POST'):
        m.migrate_environment({}, 'post', extra={'SKIP_POST_DEPLOYMENT_MIGRATIONS': ''})
    with pytest.raises(ValueError, match='DATABASE_URL'):
        m.migrate_environment({}, 'pre', extra={'DATABASE_URL': 'x'})


def test_read_dotenv(tmp_path):
    p = tmp_path / '.env.production'
    p.write_text('# comment\nLOCAL_DOMAIN=example.org\nexport SECRET_KEY_BASE="abc def"\nOTP_SECRET=\'x\'\n'
                 'DB_POOL=25 # inline\nBROKEN LINE\n\nEMPTY=\n')
    env = m.read_dotenv(str(p))
    assert env == {'LOCAL_DOMAIN': 'example.org', 'SECRET_KEY_BASE': 'abc def', 'OTP_SECRET': 'x',
                   'DB_POOL': '25', 'EMPTY': ''}


def test_read_release_version(tmp_path):
    root = make_release(str(tmp_path), version='4.5.2')
    assert m.read_release_version(root) == '4.5.2'
    assert m.read_release_version(str(tmp_path / 'nowhere')) is None


class FakeCursor(object):
    def __init__(self, exists, rows):
        self.exists, self.rows, self.last = exists, rows, None

    def execute(self, sql, args=None):
        self.last = sql

    def fetchone(self):
        return (self.exists,)

    def fetchall(self):
        return [(r,) for r in self.rows]


def test_fetch_applied_fake():
    executed = []
    assert m.fetch_applied(FakeCursor(True, ['20240101000001']), executed) == set(['20240101000001'])
    assert executed == [m.SCHEMA_MIGRATIONS_EXISTS, m.SCHEMA_MIGRATIONS_SELECT]
    assert m.fetch_applied(FakeCursor(False, [])) is None


def test_fetch_applied_real(pg_conn):
    cur = pg_conn.cursor()
    cur.execute('DROP TABLE IF EXISTS schema_migrations')
    assert m.fetch_applied(cur) is None
    cur.execute('CREATE TABLE schema_migrations (version character varying PRIMARY KEY)')
    cur.execute("INSERT INTO schema_migrations VALUES ('20240101000001'), ('20240201000001')")
    assert m.fetch_applied(cur) == set(['20240101000001', '20240201000001'])
    cur.execute('DROP TABLE schema_migrations')
