# -*- coding: utf-8 -*-
"""Data residency (plugins/module_utils/residency.py): placements, policy regions, refusals naming host, class and rule."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.fediops.mastodon.plugins.module_utils import residency as R

HOSTS = {
    'db1': {'groups': ['postgres', 'postgres_primary', 'core_eu'], 'jurisdiction': 'DE'},
    'db2': {'groups': ['postgres', 'postgres_replica', 'core_eu'], 'jurisdiction': 'DE'},
    'redis-persistent': {'groups': ['redis', 'redis_persistent'], 'jurisdiction': 'DE'},
    'redis-cache': {'groups': ['redis', 'redis_cache'], 'jurisdiction': 'DE'},
    'edge-eu': {'groups': ['cdn_edge', 'edge_eu'], 'jurisdiction': 'NL'},
    'edge-us': {'groups': ['cdn_edge', 'edge_us'], 'jurisdiction': 'US'},
    'web1': {'groups': ['web'], 'jurisdiction': 'DE'},
}
BUCKETS = {'media': {'name': 'mastodon-media', 'jurisdiction': 'DE', 'endpoint': 'https://s3'},
           'backups': {'name': 'pgbackrest', 'jurisdiction': 'DE', 'endpoint': 'https://s3'}}
POLICY = {'user_data': ['EU'], 'backups': ['EU'], 'caches': ['EU', 'US']}


def test_the_placements_name_each_host_and_bucket_of_each_class():
    where = R.placements(R.DEFAULT_CLASSES, HOSTS, BUCKETS)
    assert [(p['name'], p['jurisdiction']) for p in where['user_data']] == [
        ('db1', 'DE'), ('db2', 'DE'), ('redis-persistent', 'DE'), ('mastodon-media', 'DE')]
    assert [p['name'] for p in where['backups']] == ['pgbackrest']
    assert [p['name'] for p in where['caches']] == ['edge-eu', 'edge-us', 'redis-cache']
    assert where['user_data'][0]['via'] == 'group postgres_primary'


def test_a_compliant_fleet_has_no_problem():
    assert R.problems(R.DEFAULT_CLASSES, POLICY, HOSTS, BUCKETS) == []


def test_a_us_database_host_under_an_eu_only_policy_is_refused_naming_host_class_and_rule():
    hosts = dict(HOSTS, db1=dict(HOSTS['db1'], jurisdiction='US'))
    assert R.problems(R.DEFAULT_CLASSES, POLICY, hosts, BUCKETS) == [
        'host db1 holds user_data (group postgres_primary) in US; the policy allows user_data only in EU '
        '(fediops_residency_policy.user_data)']


def test_a_bucket_outside_the_policy_and_an_undeclared_host_are_refused():
    buckets = dict(BUCKETS, backups=dict(BUCKETS['backups'], jurisdiction='us'))
    hosts = dict(HOSTS, db2=dict(HOSTS['db2'], jurisdiction=None))
    found = R.problems(R.DEFAULT_CLASSES, POLICY, hosts, buckets)
    assert 'bucket pgbackrest holds backups (backups bucket at https://s3) in US; the policy allows backups only in EU ' \
           '(fediops_residency_policy.backups)' in found
    assert 'host db2 holds user_data (group postgres_replica) but declares no jurisdiction: set fediops_jurisdiction ' \
           '(ISO 3166-1 alpha-2, e.g. DE)' in found


def test_regions_codes_and_anywhere():
    assert 'DE' in R.expand(['EU']) and 'NO' not in R.expand(['EU']) and 'NO' in R.expand(['EEA'])
    assert R.expand(['CH', 'eu']) >= {'CH', 'FR'}
    assert R.expand(['*']) is None
    assert R.problems(R.DEFAULT_CLASSES, {'caches': ['*'], 'user_data': ['EU'], 'backups': ['EU']}, HOSTS, BUCKETS) == []


def test_a_malformed_policy_is_refused():
    found = R.problems(R.DEFAULT_CLASSES, {'userdata': ['EU'], 'caches': ['Germany'], 'backups': []}, HOSTS, BUCKETS)
    assert found[:3] == [
        'fediops_residency_policy.backups: a non-empty list of country codes, EU, EEA or * is required',
        "fediops_residency_policy.caches: 'Germany' is not an ISO 3166-1 alpha-2 code, EU, EEA or *",
        'fediops_residency_policy.userdata: no such data class (known: backups, caches, user_data)']
