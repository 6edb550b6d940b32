# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's picture: thin wrapper over module_utils/fleet.py.

    {{ fleet_observed.results | fediops.mastodon.fleet_picture(inventory, mode='site') }}

``fleet_observed`` is what a looped, delegated ``fediops.mastodon.fleet_state`` task registered
(``item`` is the inventory name); an unreachable or failed item counts as a host that does not answer.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils import fleet

KEYS = ('postgres', 'pgbouncer', 'processes', 'web_version', 'edge', 'probes')


def observations(results):
    found = {}
    for result in results or []:
        host = result.get('item')
        if isinstance(host, dict):
            host = host.get('name')
        if not host:
            raise AnsibleFilterError('fleet_picture: each result needs the inventory name as its item')
        if result.get('unreachable') or result.get('failed'):
            reason = 'does not answer' if result.get('unreachable') else 'could not be read'
            found[host] = {'unreachable': True, 'msg': '%s: %s' % (reason, str(result.get('msg', '')).strip()[:300])}
            continue
        found[host] = dict((k, result[k]) for k in KEYS if k in result)
    return found


def fleet_picture(results, inventory, mode='site'):
    try:
        return fleet.picture(observations(results), inventory, mode)
    except ValueError as e:
        raise AnsibleFilterError(str(e))


def fleet_refusal(picture):
    """One line per difference, with its fix (empty when nothing contradicts the inventory)."""
    return fleet.summary(picture)


class FilterModule(object):
    def filters(self):
        return {'fleet_picture': fleet_picture, 'fleet_refusal': fleet_refusal}
