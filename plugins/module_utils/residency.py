# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data residency: where each class of data lives, and whether the policy allows it there.

Every host declares its jurisdiction (``fediops_jurisdiction``, an ISO 3166-1 alpha-2 code) and the S3 buckets
declare theirs. A data class (user data, backups, caches) is held by inventory groups and buckets
(``fediops_residency_classes``); the policy (``fediops_residency_policy``) lists the jurisdictions each class
may live in, by code or by a region name (EU, EEA) or ``*`` (anywhere). Pure functions, no Ansible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

EU = ('AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE', 'IT', 'LV', 'LT', 'LU',
      'MT', 'NL', 'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE')
REGIONS = {
    'EU': EU,
    'EEA': EU + ('IS', 'LI', 'NO'),
}
CODE = re.compile(r'^[A-Z]{2}$')

# What holds each class by default: the groups of the fleet's hosts and the buckets (by role) of its S3 endpoint.
DEFAULT_CLASSES = {
    'user_data': {'groups': ['postgres_primary', 'postgres_replica', 'redis_persistent'], 'buckets': ['media']},
    'backups': {'groups': [], 'buckets': ['backups']},
    'caches': {'groups': ['cdn_edge', 'redis_cache'], 'buckets': []},
}


def expand(allowed):
    """A policy entry (codes, region names, '*') -> a set of codes, or None for anywhere."""
    codes = set()
    for item in allowed or []:
        item = str(item).strip().upper()
        if item == '*':
            return None
        if item in REGIONS:
            codes.update(REGIONS[item])
        else:
            codes.add(item)
    return codes


def policy_problems(policy, classes):
    """Malformed policy entries (unknown class, bad code)."""
    problems = []
    for name in sorted(policy or {}):
        if name not in classes:
            problems.append('fediops_residency_policy.%s: no such data class (known: %s)' % (name, ', '.join(sorted(classes))))
            continue
        allowed = policy[name]
        if not isinstance(allowed, (list, tuple)) or not allowed:
            problems.append('fediops_residency_policy.%s: a non-empty list of country codes, EU, EEA or * is required' % name)
            continue
        for item in allowed:
            text = str(item).strip().upper()
            if text != '*' and text not in REGIONS and not CODE.match(text):
                problems.append('fediops_residency_policy.%s: %r is not an ISO 3166-1 alpha-2 code, EU, EEA or *' % (name, item))
    return problems


def placements(classes, hosts, buckets):
    """Where each class lives.

    classes: {class: {'groups': [...], 'buckets': [...]}}; hosts: {host: {'groups': [...], 'jurisdiction': code|None}};
    buckets: {role: {'name': bucket, 'jurisdiction': code|None, 'endpoint': url}}.
    Returns {class: [{'kind': 'host'|'bucket', 'name', 'jurisdiction', 'via'}]} sorted by kind and name.
    """
    result = {}
    for cls in sorted(classes):
        spec = classes[cls] or {}
        where = []
        for host in sorted(hosts):
            via = [g for g in spec.get('groups', []) if g in hosts[host].get('groups', [])]
            if via:
                where.append({'kind': 'host', 'name': host, 'jurisdiction': hosts[host].get('jurisdiction'),
                              'via': 'group ' + ', '.join(via)})
        for role in spec.get('buckets', []):
            bucket = buckets.get(role)
            if bucket and bucket.get('name'):
                where.append({'kind': 'bucket', 'name': bucket['name'], 'jurisdiction': bucket.get('jurisdiction'),
                              'via': '%s bucket at %s' % (role, bucket.get('endpoint', '?'))})
        result[cls] = where
    return result


def problems(classes, policy, hosts, buckets):
    """Every host or bucket holding a class outside the policy, naming the host or bucket, the class and the rule."""
    found = policy_problems(policy, classes)
    for cls, where in sorted(placements(classes, hosts, buckets).items()):
        for place in where:
            code = place['jurisdiction']
            label = ('host %s' % place['name']) if place['kind'] == 'host' else ('bucket %s' % place['name'])
            declare = 'fediops_jurisdiction' if place['kind'] == 'host' else 'fediops_s3_jurisdiction'
            if not code:
                found.append('%s holds %s (%s) but declares no jurisdiction: set %s (ISO 3166-1 alpha-2, e.g. DE)'
                             % (label, cls, place['via'], declare))
                continue
            code = str(code).strip().upper()
            if not CODE.match(code):
                found.append('%s: %s=%r is not an ISO 3166-1 alpha-2 code' % (label, declare, place['jurisdiction']))
                continue
            if cls not in (policy or {}):
                continue
            allowed = expand(policy[cls])
            if allowed is not None and code not in allowed:
                found.append('%s holds %s (%s) in %s; the policy allows %s only in %s (fediops_residency_policy.%s)'
                             % (label, cls, place['via'], code, cls, ', '.join(str(a) for a in policy[cls]), cls))
    return found
