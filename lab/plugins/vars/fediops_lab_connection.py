# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's connection variables, as literal values (lab only; enabled by the repository's ansible.cfg).

A lab host is reached at <lab_subnet_prefix>.<lab_host_number> with the key under the lab's home. Written as
templates in group_vars, these were rendered again for every task and host (the connection options are
resolved per task), with two environment lookups each time: about a sixth of the controller's time in a
no-op site.yml on the 13-host lab (issue 15). Here they are computed from the inventory as it was loaded,
so molecule's and the bench's layered inventories (their own lab_subnet_prefix) still apply.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: fediops_lab_connection
short_description: The lab hosts' ansible_host, lab_home and SSH key, as literal values
description:
  - For every host with C(lab_host_number), returns C(ansible_host) (C(lab_subnet_prefix).C(lab_host_number), the
    prefix and the number from the host's inventory variables, its groups' merged under its own), C(lab_home) (C(FEDIOPS_LAB_HOME), else
    C(~/.fediops-lab)) and C(ansible_ssh_private_key_file) (C(lab_home)/ssh/id_ed25519).
  - Hosts without C(lab_host_number) (production inventories) get nothing from it.
options:
  stage:
    ini:
      - key: stage
        section: vars_fediops_lab_connection
    env:
      - name: ANSIBLE_VARS_PLUGIN_STAGE
extends_documentation_fragment:
  - vars_plugin_staging
"""

import os

from ansible.inventory.helpers import sort_groups
from ansible.inventory.host import Host
from ansible.plugins.vars import BaseVarsPlugin


def lab_home(environ=None):
    """Where lab/bootstrap.sh keeps the lab's SSH key and CA: $FEDIOPS_LAB_HOME, else ~/.fediops-lab."""
    environ = os.environ if environ is None else environ
    return environ.get('FEDIOPS_LAB_HOME') or os.path.join(environ.get('HOME', os.path.expanduser('~')), '.fediops-lab')


def connection_vars(inventory_vars, environ=None):
    """The literal connection variables of one lab host (its inventory variables, groups' merged under the host's),
    or {} for a host that is not a lab host."""
    number = inventory_vars.get('lab_host_number')
    prefix = inventory_vars.get('lab_subnet_prefix')
    if number is None or prefix is None or '{' in str(prefix) or '{' in str(number):
        return {}
    home = lab_home(environ)
    return {
        'ansible_host': '%s.%s' % (prefix, number),
        'lab_home': home,
        'ansible_ssh_private_key_file': os.path.join(home, 'ssh', 'id_ed25519'),
    }


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = True
    # No state between calls: one instance serves the whole run (otherwise the loader makes a new one per call,
    # and it is called for every task and host).
    is_stateless = True

    def get_vars(self, loader, path, entities, cache=True):
        super(VarsModule, self).get_vars(loader, path, entities)
        found = {}
        for entity in entities if isinstance(entities, list) else [entities]:
            if not isinstance(entity, Host):
                continue
            # As the inventory merges them: groups by depth and priority, then the host. (A host named like a group,
            # as the lab's storage, has its inventory variables on the group.)
            merged = {}
            for group in sort_groups(entity.get_groups()):
                merged.update(group.get_vars())
            merged.update(entity.get_vars())
            found.update(connection_vars(merged))
        return found
