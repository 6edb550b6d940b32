# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pool-size and queue-layout filters: thin wrappers over module_utils/pools.py.

Fleet shape (see module_utils/pools.py)::

    {web: {hosts, workers, threads, db_pool}, sidekiq: [{name, hosts, processes, concurrency,
     db_pool, queues}], streaming: {hosts, processes, db_pool}}

Examples::

    {{ fleet | fediops.mastodon.db_connection_budget }}            -> {web, sidekiq, streaming, total, ...}
    {{ fleet | fediops.mastodon.db_connection_errors(pgbouncer=pgb, postgres=pg) }}   -> [messages]
    {{ fleet.sidekiq | fediops.mastodon.sidekiq_queue_layout_errors(mastodon_version='4.5.0') }}
    {{ '4.5.0' | fediops.mastodon.mastodon_queues }}
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils import pools


def _fleet(fleet):
    if not isinstance(fleet, dict):
        raise AnsibleFilterError('expected a fleet dict with web / sidekiq / streaming keys, got %s' % type(fleet).__name__)
    unknown = sorted(set(fleet) - set(['web', 'sidekiq', 'streaming']))
    if unknown:
        raise AnsibleFilterError('unknown fleet keys: %s (expected web, sidekiq, streaming)' % ', '.join(unknown))
    return fleet.get('web'), fleet.get('sidekiq'), fleet.get('streaming')


def db_connection_budget(fleet):
    web, sidekiq, streaming = _fleet(fleet)
    try:
        return pools.db_connection_budget(web, sidekiq, streaming)
    except pools.PoolSpecError as e:
        raise AnsibleFilterError(str(e))


def db_connection_errors(fleet, pgbouncer=None, postgres=None):
    web, sidekiq, streaming = _fleet(fleet)
    return pools.db_connection_errors(web, sidekiq, streaming, pgbouncer=pgbouncer, postgres=postgres)


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
            'db_connection_budget': db_connection_budget,
            'db_connection_errors': db_connection_errors,
            'sidekiq_queue_layout_errors': sidekiq_queue_layout_errors,
            'mastodon_queues': mastodon_queues,
        }
