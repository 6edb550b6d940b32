# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import versions as v


@pytest.mark.parametrize('raw, parsed', [
    ('4.5.0', (4, 5, 0)), ('v4.7.0-alpha.2', (4, 7, 0)), ('15.18 (Debian 15.18-0+deb12u1)', (15, 18)),
    (150018, (15, 18)), (90624, (90624,)), ('7.0.15', (7, 0, 15)), ((3, 3), (3, 3)),
])
def test_parse_version(raw, parsed):
    assert v.parse_version(raw) == parsed


def test_parse_version_rejects():
    for bad in ('', 'abc', True):
        with pytest.raises(ValueError):
            v.parse_version(bad)


def test_compare():
    assert v.compare_versions('14', '14.0') == 0
    assert v.compare_versions('6.2.1', '7.0') == -1
    assert v.compare_versions(150018, '14') == 1
    assert v.version_at_least('20.19.1', '20.19')
    assert v.format_version(160004) == '16.4'


def test_release_minimums_fallbacks():
    assert v.release_minimums('4.5.3')[0]['postgres'] == '14'
    assert v.release_minimums('4.7.4')[1] == (4, 6)       # newer than the table: newest row
    with pytest.raises(ValueError, match='older than the oldest'):
        v.release_minimums('3.5.0')


def test_dependency_problems():
    assert v.dependency_problems('4.5.0', postgres=150018, redis='7.0.15', ruby='3.4.7') == []
    probs = v.dependency_problems('4.5.0', postgres=130004, redis='6.2.1')
    assert [(p['check'], p['threshold'], p['value']) for p in probs] == [
        ('postgres_version', '>= 14', '13.4'), ('redis_version', '>= 7.0', '6.2.1')]
    assert v.dependency_problems('4.6.0', ruby='3.2.9')[0]['threshold'] == '>= 3.3'
    excluded = v.dependency_problems('4.3.1', postgres='14.2')
    assert excluded[0]['threshold'] == 'not 14.0-14.3'
    assert v.dependency_problems('4.3.1', postgres='14.4') == []


def test_secrets():
    env = dict((k, 'x') for k in v.BASE_SECRETS)
    assert v.missing_secrets('4.2.0', env) == ['OTP_SECRET']
    assert v.missing_secrets('4.3.0', dict(env, OTP_SECRET='y')) == v.AR_ENCRYPTION_SECRETS
    full = dict(env, **dict((k, 'x') for k in v.AR_ENCRYPTION_SECRETS))
    assert v.missing_secrets('4.5.0', full) == []
    # the 4.3 two-factor post-migration still needs OTP_SECRET while pending
    assert v.missing_secrets('4.5.0', full, pending_versions=['20240307180905']) == ['OTP_SECRET']
    assert v.missing_secrets('4.5.0', dict(full, MIGRATION_IGNORE_INVALID_OTP_SECRET='true'),
                             pending_versions=['20240307180905']) == []
    assert v.missing_secrets('4.5.0', dict(full, SECRET_KEY_BASE='')) == ['SECRET_KEY_BASE']
