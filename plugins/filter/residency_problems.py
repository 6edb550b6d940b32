# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: residency_problems
short_description: Hosts and buckets holding a data class outside the fleet's residency policy
version_added: 0.1.0
description:
  - Reads every inventory host's C(fediops_jurisdiction) and the buckets' declared jurisdictions, places each data
    class (I(fediops_residency_classes)) on the hosts of its groups and on its buckets, and returns one sentence per
    host or bucket outside I(fediops_residency_policy), naming it, the class and the rule.
  - The logic is in plugins/module_utils/residency.py. The filter C(residency_placements) of this file returns where
    each class lives.
positional: policy, groups, hostvars, buckets
options:
  _input:
    description: "The data classes, C({class: {groups: [...], buckets: [media|backups]}})."

    type: dict
    required: true
  policy:
    description: "C({class: [ISO codes, EU, EEA or *]})."

    type: dict
    required: true
  groups:
    description: The C(groups) magic variable.
    type: dict
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  buckets:
    description: "C({media|backups: {name, jurisdiction, endpoint}})."

    type: dict
    required: true
"""

EXAMPLES = r"""
problems: "{{ fediops_residency_classes | fediops.mastodon.residency_problems(fediops_residency_policy, groups, hostvars, buckets) }}"
"""

RETURN = r"""
_value:
  description: Problems, one sentence each (empty when the fleet complies).
  type: list
  elements: str
"""

from ansible_collections.fediops.mastodon.plugins.module_utils import residency


def _hosts(groups, hostvars):
    hosts = {}
    for host in groups.get('all', []):
        member_of = sorted(g for g, members in groups.items() if g not in ('all', 'ungrouped') and host in members)
        jurisdiction = hostvars[host].get('fediops_jurisdiction') if host in hostvars else None
        hosts[host] = {'groups': member_of, 'jurisdiction': jurisdiction}
    return hosts


def residency_problems(classes, policy, groups, hostvars, buckets):
    return residency.problems(classes, policy, _hosts(groups, hostvars), buckets)


def residency_placements(classes, groups, hostvars, buckets):
    return residency.placements(classes, _hosts(groups, hostvars), buckets)


class FilterModule(object):
    def filters(self):
        return {
            'residency_problems': residency_problems,
            'residency_placements': residency_placements,
        }
