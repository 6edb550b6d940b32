# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sidekiq autoscaling filters: thin wrappers over module_utils/sidekiq_autoscale.py.

Examples::

    {{ fleet_db_sizing | fediops.mastodon.sidekiq_autoscale_errors }}                     -> [messages]
    {{ fleet_db_sizing | fediops.mastodon.sidekiq_autoscale_errors(pgbouncer={'max_client_conn': 400}) }}
    {{ fleet_db_sizing | fediops.mastodon.sidekiq_autoscale_room }}   -> {accepted, counted, room, max_client_conn, poolers}
    {{ fleet_db_sizing | fediops.mastodon.sidekiq_autoscale_pools }}  -> the event source's pools argument
    {{ fleet_db_sizing | fediops.mastodon.sidekiq_scale_plan('ingress', 3, {'sidekiq1': ['ingress-x1']}) }}
        -> {wanted, add, remove, placed, refused, reason, ...} (playbooks/sidekiq_scale.yml)
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils import pools, sidekiq_autoscale


def sidekiq_autoscale_errors(sizing, pgbouncer=None):
    """Every autoscale block of mastodon_sidekiq_pools that cannot work (scheduler, min > max, a max the budget never fits)."""
    if not isinstance(sizing, dict):
        raise AnsibleFilterError('sidekiq_autoscale_errors expects the fleet sizing dict (fleet_db_sizing), got %s' % type(sizing).__name__)
    return sidekiq_autoscale.autoscale_errors(sizing, pgbouncer=pgbouncer)


def sidekiq_autoscale_room(sizing, pgbouncer=None):
    """Client connections the budget leaves for autoscaled processes (PgBouncer's accepted clients - the budget's total)."""
    if not isinstance(sizing, dict):
        raise AnsibleFilterError('sidekiq_autoscale_room expects the fleet sizing dict (fleet_db_sizing), got %s' % type(sizing).__name__)
    try:
        room = sidekiq_autoscale.budget_room(sizing, pgbouncer=pgbouncer)
    except pools.PoolSpecError as e:
        raise AnsibleFilterError('connection budget: %s' % e)
    return dict((k, v) for k, v in room.items() if k != 'budget')


def sidekiq_scale_plan(sizing, pool, processes, current, pgbouncer=None):
    """Which added processes of an autoscaled pool each host runs for `processes` fleet-wide (module_utils scale_plan)."""
    if not isinstance(sizing, dict):
        raise AnsibleFilterError('sidekiq_scale_plan expects the fleet sizing dict (fleet_db_sizing), got %s' % type(sizing).__name__)
    try:
        return sidekiq_autoscale.scale_plan(sizing, pool, processes, current, pgbouncer=pgbouncer)
    except (sidekiq_autoscale.AutoscaleError, pools.PoolSpecError) as e:
        raise AnsibleFilterError(str(e))


def sidekiq_autoscale_pools(sizing):
    """The autoscaled pools as the event source takes them: [{name, queues, converged, db_pool, autoscale}]."""
    if not isinstance(sizing, dict):
        raise AnsibleFilterError('sidekiq_autoscale_pools expects the fleet sizing dict (fleet_db_sizing), got %s' % type(sizing).__name__)
    try:
        return sidekiq_autoscale.source_pools(sizing)
    except (ValueError, TypeError, KeyError) as e:
        raise AnsibleFilterError('sidekiq_autoscale_pools: %s' % e)


class FilterModule(object):
    def filters(self):
        return {
            'sidekiq_autoscale_errors': sidekiq_autoscale_errors,
            'sidekiq_autoscale_pools': sidekiq_autoscale_pools,
            'sidekiq_autoscale_room': sidekiq_autoscale_room,
            'sidekiq_scale_plan': sidekiq_scale_plan,
        }
