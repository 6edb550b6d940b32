# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: group_addresses
short_description: Private addresses of every host in some inventory groups
version_added: 0.1.0
description:
  - Returns the sorted, de-duplicated C(fediops_private_address) of every host in the named groups.
  - Roles use it to turn "which groups may reach this port" into firewall peers and C(pg_hba) entries,
    so that allowing a peer is always stated in terms of inventory groups.
  - A group missing from the inventory is an error that names it; an empty group yields no addresses.
positional: groups, hostvars
options:
  _input:
    description: Names of inventory groups.
    type: list
    elements: str
    required: true
  groups:
    description: The C(groups) magic variable.
    type: dict
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  variable:
    description: Host variable holding the address.
    type: str
    default: fediops_private_address
"""

EXAMPLES = r"""
sources: "{{ ['pgbouncer', 'mastodon'] | fediops.mastodon.group_addresses(groups, hostvars) }}"
"""

RETURN = r"""
_value:
  description: Addresses, sorted and unique.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def group_addresses(group_names, groups, hostvars, variable="fediops_private_address"):
    if isinstance(group_names, str):
        group_names = [group_names]
    addresses = set()
    for group in group_names:
        if group not in groups:
            raise AnsibleFilterError("group_addresses: inventory has no group %r" % group)
        for host in groups[group]:
            value = hostvars[host].get(variable)
            if not value:
                raise AnsibleFilterError("group_addresses: host %r in group %r has no %s" % (host, group, variable))
            addresses.add(str(value))
    return sorted(addresses)


class FilterModule(object):
    def filters(self):
        return {"group_addresses": group_addresses}
