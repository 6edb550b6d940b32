# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mastodon release minimums (Postgres, Redis, Ruby, Node) and version comparison."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.fediops.mastodon.plugins.module_utils.migrations import OTP_SECRET_MIGRATION

_NUM_RE = re.compile(r'(\d+(?:\.\d+)*)')

# Per minor release series: minimum versions from the release notes and db:pre_migration_check.
# 'postgres_excluded' lists (low, high) inclusive ranges that are refused anyway.
RELEASE_MINIMUMS = {
    (4, 2): {'postgres': '10', 'redis': '4', 'ruby': '3.0', 'node': '16'},
    (4, 3): {'postgres': '12', 'redis': '4', 'ruby': '3.1', 'node': '18',
             'postgres_excluded': [('14.0', '14.3')]},
    (4, 4): {'postgres': '13', 'redis': '6.2', 'ruby': '3.2', 'node': '20'},
    (4, 5): {'postgres': '14', 'redis': '7.0', 'ruby': '3.2', 'node': '20.19'},
    (4, 6): {'postgres': '14', 'redis': '7.0', 'ruby': '3.3', 'node': '22'},
}

BASE_SECRETS = ['SECRET_KEY_BASE', 'VAPID_PRIVATE_KEY', 'VAPID_PUBLIC_KEY']
AR_ENCRYPTION_SECRETS = ['ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY',
                         'ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT',
                         'ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY']


def parse_version(value):
    """Parse '4.5.0', 'v4.7.0-alpha.2', '15.18 (Debian 15.18-0+deb12u1)' or 150018 into a tuple.

    An integer of 5+ digits is read as Postgres' server_version_num (150018 -> (15, 18)).
    Raises ValueError when no number is found.
    """
    if isinstance(value, bool):
        raise ValueError('not a version: %r' % (value,))
    if isinstance(value, int):
        if value >= 100000:
            return (value // 10000, value % 10000)
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(int(x) for x in value)
    m = _NUM_RE.search(str(value))
    if not m:
        raise ValueError('not a version: %r' % (value,))
    return tuple(int(x) for x in m.group(1).split('.'))


def format_version(value):
    """Dotted form of any version parse_version() accepts (150018 -> '15.18')."""
    return '.'.join(str(x) for x in parse_version(value))


def compare_versions(a, b):
    """-1, 0 or 1 comparing two versions; missing trailing parts count as 0 ('14' == '14.0')."""
    ta, tb = parse_version(a), parse_version(b)
    n = max(len(ta), len(tb))
    ta = ta + (0,) * (n - len(ta))
    tb = tb + (0,) * (n - len(tb))
    return (ta > tb) - (ta < tb)


def version_at_least(value, minimum):
    return compare_versions(value, minimum) >= 0


def release_series(target):
    """(major, minor) of a Mastodon version."""
    t = parse_version(target)
    return (t[0], t[1] if len(t) > 1 else 0)


def release_minimums(target):
    """Minimums for a Mastodon release; releases newer than the table use the newest known row.

    Returns (minimums, series_used).
    """
    series = release_series(target)
    known = sorted(RELEASE_MINIMUMS)
    if series in RELEASE_MINIMUMS:
        return RELEASE_MINIMUMS[series], series
    if series > known[-1]:
        return RELEASE_MINIMUMS[known[-1]], known[-1]
    if series < known[0]:
        raise ValueError('Mastodon %s is older than the oldest release this collection knows (%d.%d)'
                         % (target, known[0][0], known[0][1]))
    older = [k for k in known if k < series]
    return RELEASE_MINIMUMS[older[-1]], older[-1]


def dependency_problems(target, postgres=None, redis=None, ruby=None, node=None):
    """List of {'check', 'reason', 'threshold', 'value'} for dependencies below the target's minimums.

    Dependencies passed as None are not checked.
    """
    minimums, _series = release_minimums(target)
    problems = []
    for name, value in (('postgres', postgres), ('redis', redis), ('ruby', ruby), ('node', node)):
        if value is None or name not in minimums:
            continue
        if not version_at_least(value, minimums[name]):
            shown = format_version(value)
            problems.append({'check': '%s_version' % name,
                             'reason': '%s %s is older than Mastodon %s requires' % (name, shown, target),
                             'threshold': '>= %s' % minimums[name], 'value': shown})
    if postgres is not None:
        for low, high in minimums.get('postgres_excluded', []):
            if compare_versions(postgres, low) >= 0 and compare_versions(postgres, high) <= 0:
                shown = format_version(postgres)
                problems.append({'check': 'postgres_version',
                                 'reason': 'postgres %s is in the range %s-%s that Mastodon %s refuses' % (shown, low, high, target),
                                 'threshold': 'not %s-%s' % (low, high), 'value': shown})
    return problems


def required_secrets(target, pending_versions=None):
    """Environment variables a Mastodon release needs present (names only).

    OTP_SECRET is needed before 4.4, and later too while the 4.3 post-deployment migration that
    re-encrypts two-factor secrets is still pending.
    """
    series = release_series(target)
    names = list(BASE_SECRETS)
    if series >= (4, 3):
        names.extend(AR_ENCRYPTION_SECRETS)
    if series < (4, 4) or (pending_versions and OTP_SECRET_MIGRATION in pending_versions):
        names.append('OTP_SECRET')
    return names


def missing_secrets(target, environment, pending_versions=None):
    """Names of required secrets that are absent or empty in ``environment``."""
    needed = required_secrets(target, pending_versions)
    missing = [n for n in needed if not environment.get(n)]
    if 'OTP_SECRET' in missing and environment.get('MIGRATION_IGNORE_INVALID_OTP_SECRET') and release_series(target) >= (4, 4):
        missing.remove('OTP_SECRET')
    return missing
