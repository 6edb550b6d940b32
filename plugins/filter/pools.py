# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pool-size and queue-layout filters: thin wrappers over module_utils/pools.py.

Sizing shape: fleet_db_sizing in roles/fleet/defaults/main.yml (see module_utils/pools.py).

Examples::

    {{ fleet_db_sizing | fediops.mastodon.connection_budget }}      -> {web, streaming, sidekiq, reserve, total,
                                                                        pgbouncer: {max_client_conn, default_pool_size, ...}}
    {{ fleet_db_sizing | fediops.mastodon.connection_budget_errors(pgbouncer={'max_client_conn': 400}) }}  -> [messages]
    {{ mastodon_sidekiq_pools | fediops.mastodon.sidekiq_queue_layout_errors(mastodon_version='4.5.0') }}
    {{ '4.5.0' | fediops.mastodon.mastodon_queues }}
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils import pools


def connection_budget(sizing):
    """The fleet's connection budget (roles/fleet: fleet_db_sizing); see module_utils/pools.py."""
    if not isinstance(sizing, dict):
        raise AnsibleFilterError('connection_budget expects the fleet sizing dict (fleet_db_sizing), got %s' % type(sizing).__name__)
    try:
        return pools.connection_budget(sizing)
    except pools.PoolSpecError as e:
        raise AnsibleFilterError('connection budget: %s' % e)


def connection_budget_errors(sizing, pgbouncer=None):
    if not isinstance(sizing, dict):
        raise AnsibleFilterError('connection_budget_errors expects the fleet sizing dict (fleet_db_sizing), got %s' % type(sizing).__name__)
    return pools.connection_budget_errors(sizing, pgbouncer=pgbouncer)


def sidekiq_queue_layout_errors(sidekiq_pools, required_queues=None, mastodon_version=None):
    if isinstance(sidekiq_pools, dict) and 'sidekiq' in sidekiq_pools:
        sidekiq_pools = sidekiq_pools['sidekiq']
    if not isinstance(sidekiq_pools, list):
        raise AnsibleFilterError('expected a list of sidekiq pools, got %s' % type(sidekiq_pools).__name__)
    return pools.sidekiq_queue_layout_errors(sidekiq_pools, required_queues=required_queues,
                                             mastodon_version=mastodon_version)


def mastodon_queues(version=None):
    return pools.mastodon_queues(version)


class FilterModule(object):
    def filters(self):
        return {
            'connection_budget': connection_budget,
            'connection_budget_errors': connection_budget_errors,
            'sidekiq_queue_layout_errors': sidekiq_queue_layout_errors,
            'mastodon_queues': mastodon_queues,
        }
