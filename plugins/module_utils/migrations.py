# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mastodon migration discovery and bookkeeping, without Rails.

Pre-deployment migrations live in ``db/migrate``, post-deployment ones in ``db/post_migrate``;
both record their 14-digit timestamp in ``schema_migrations.version`` and nothing else tells
them apart, so the folder a file sits in is the only way to classify an applied version.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

MIGRATION_FILE_RE = re.compile(r'^(\d{14})_([A-Za-z0-9_]+)\.rb$')
PRE_DIR = os.path.join('db', 'migrate')
POST_DIR = os.path.join('db', 'post_migrate')

# db:pre_migration_check refuses SKIP_POST_DEPLOYMENT_MIGRATIONS below these schema versions:
# 4.4-4.6 need a >= 4.2.0 schema, 4.7 / main a >= 4.3.0 schema.
ZERO_DOWNTIME_MIN_SCHEMA = (
    ((4, 7), '20241007071624', '4.3.0'),
    ((4, 4), '20230907150100', '4.2.0'),
)

# Post-deployment migration that still reads OTP_SECRET (added in 4.3.0).
OTP_SECRET_MIGRATION = '20240307180905'


class MigrationError(Exception):
    """Raised when a release tree cannot be read as a Mastodon release."""


def _scan(directory):
    found = {}
    if not os.path.isdir(directory):
        return found
    for name in sorted(os.listdir(directory)):
        m = MIGRATION_FILE_RE.match(name)
        if m:
            found[m.group(1)] = name
    return found


def discover_migrations(release_path):
    """Return ``{'pre': {version: filename}, 'post': {version: filename}}`` for a release tree.

    Raises MigrationError when ``db/migrate`` is missing (not a Mastodon release) or a version
    appears in both folders.
    """
    pre_dir = os.path.join(release_path, PRE_DIR)
    if not os.path.isdir(pre_dir):
        raise MigrationError('%s has no %s directory; is it a Mastodon release?' % (release_path, PRE_DIR))
    pre = _scan(pre_dir)
    post = _scan(os.path.join(release_path, POST_DIR))
    both = sorted(set(pre) & set(post))
    if both:
        raise MigrationError('migration versions present in both %s and %s: %s' % (PRE_DIR, POST_DIR, ', '.join(both)))
    return {'pre': pre, 'post': post}


def pending_migrations(discovered, applied):
    """Compare discovered migrations with the applied version set.

    Returns a dict with sorted lists ``pending_pre``, ``pending_post`` and ``unknown_applied``
    (versions in the database that the release does not know, e.g. after a rollback of code).
    """
    applied = set(str(v) for v in applied)
    pre = set(discovered['pre'])
    post = set(discovered['post'])
    return {
        'pending_pre': sorted(pre - applied),
        'pending_post': sorted(post - applied),
        'unknown_applied': sorted(applied - pre - post),
    }


def migration_names(discovered, versions):
    """Map versions to their file names (for readable output)."""
    lookup = dict(discovered['pre'])
    lookup.update(discovered['post'])
    return [lookup.get(v, v) for v in versions]


def schema_version(applied):
    """Highest applied version as a string ('0' when none)."""
    versions = [str(v) for v in applied if str(v).isdigit()]
    return max(versions, key=int) if versions else '0'


def zero_downtime_min_schema(target_version):
    """Minimum schema version for pre-deployment (SKIP) mode when upgrading to ``target_version``.

    ``target_version`` is a (major, minor, ...) tuple. Returns (schema_version, release) or None
    when the target release has no such check.
    """
    key = tuple(target_version[:2])
    for since, schema, release in ZERO_DOWNTIME_MIN_SCHEMA:
        if key >= since:
            return schema, release
    return None


def zero_downtime_problem(target_version, applied):
    """Message if a zero-downtime (two-phase) migration to ``target_version`` is refused, else None."""
    floor = zero_downtime_min_schema(target_version)
    if floor is None:
        return None
    current = schema_version(applied)
    if int(current) < int(floor[0]):
        return ('schema version %s is older than %s (Mastodon %s); Mastodon refuses zero-downtime migrations '
                'from there, upgrade to %s first or migrate with all processes stopped' % (current, floor[0], floor[1], floor[1]))
    return None


SCHEMA_MIGRATIONS_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"
SCHEMA_MIGRATIONS_SELECT = 'SELECT version FROM schema_migrations'


def fetch_applied(cursor, executed=None):
    """Return the set of applied versions, or None when schema_migrations does not exist."""
    cursor.execute(SCHEMA_MIGRATIONS_EXISTS)
    if executed is not None:
        executed.append(SCHEMA_MIGRATIONS_EXISTS)
    if not cursor.fetchone()[0]:
        return None
    cursor.execute(SCHEMA_MIGRATIONS_SELECT)
    if executed is not None:
        executed.append(SCHEMA_MIGRATIONS_SELECT)
    return set(str(row[0]) for row in cursor.fetchall())


SKIP_VAR = 'SKIP_POST_DEPLOYMENT_MIGRATIONS'


def migrate_environment(base_env, phase, db_host=None, db_port=None, db_name=None, db_user=None,
                        db_password=None, rails_env='production', extra=None):
    """Environment for ``bin/rails db:migrate`` in the given phase.

    Phase ``pre`` sets SKIP_POST_DEPLOYMENT_MIGRATIONS=true. Phase ``post`` removes the variable:
    Mastodon checks only that it is set, so any value (even "false") would skip post-migrations.
    """
    if phase not in ('pre', 'post'):
        raise ValueError('phase must be "pre" or "post", not %r' % (phase,))
    env = dict(base_env)
    if extra:
        if SKIP_VAR in extra:
            raise ValueError('%s must not be passed in environment; the phase decides it' % SKIP_VAR)
        if 'DATABASE_URL' in extra:
            raise ValueError('DATABASE_URL must not be passed in environment; it would override DB_HOST/DB_PORT')
        env.update(extra)
    env['RAILS_ENV'] = rails_env
    for key, value in (('DB_HOST', db_host), ('DB_PORT', db_port), ('DB_NAME', db_name),
                       ('DB_USER', db_user), ('DB_PASS', db_password)):
        if value not in (None, ''):
            env[key] = str(value)
    env.pop('DATABASE_URL', None)
    if phase == 'pre':
        env[SKIP_VAR] = 'true'
    else:
        env.pop(SKIP_VAR, None)
    return env


def read_dotenv(path):
    """Parse a dotenv file into a dict (KEY=VALUE, optional ``export``, quotes, comments)."""
    result = {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('export '):
                line = line[len('export '):].lstrip()
            if '=' not in line:
                continue
            key, value = line.split('=', 1)
            key = key.strip()
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in ('"', "'"):
                value = value[1:-1]
            elif ' #' in value:
                value = value.split(' #', 1)[0].rstrip()
            result[key] = value
    return result


_VERSION_RB_RE = re.compile(r'def (major|minor|patch)\s*\n\s*(\d+)\s*\n\s*end')


def read_release_version(release_path):
    """Read Mastodon's version from ``lib/mastodon/version.rb``; None when unreadable."""
    path = os.path.join(release_path, 'lib', 'mastodon', 'version.rb')
    try:
        with open(path) as f:
            text = f.read()
    except (IOError, OSError):
        return None
    parts = dict(_VERSION_RB_RE.findall(text))
    if not all(k in parts for k in ('major', 'minor', 'patch')):
        return None
    return '%s.%s.%s' % (parts['major'], parts['minor'], parts['patch'])
