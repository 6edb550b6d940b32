# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: plugins/action/checks.py does the work on the controller; nothing runs on the host.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: checks
short_description: Several preflight rules in one task, each failing with its own message
version_added: 0.2.0
description:
  - Evaluates a list of rules in order on the controller, as a series of C(ansible.builtin.assert) tasks would, and
    fails with the message of the first rule that does not hold. Nothing runs on the host.
  - One task for a role's rules, where one assert per rule costs the controller one task result per host even when
    every rule holds.
  - A rule's message is rendered only when the rule fails, so it may use values that only exist then.
  - A rule with O(checks[].when) is skipped unless its conditions hold; its message and conditions are then not
    rendered at all.
author:
  - fediops maintainers (@fediops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Changes nothing, so it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: all
options:
  checks:
    description:
      - The rules, evaluated in the order given.
    type: list
    elements: dict
    required: true
    suboptions:
      that:
        description: A condition or a list of conditions (Jinja2 tests without braces, as C(ansible.builtin.assert)'s
          C(that)); the rule holds when all of them do.
        type: list
        elements: raw
        required: true
      msg:
        description: The failure message, rendered when the rule does not hold. Name the variable and the host;
          never print a secret's value.
        type: str
        required: true
      when:
        description: A condition or a list of conditions; the rule is evaluated only when all of them hold.
        type: list
        elements: raw
seealso:
  - module: ansible.builtin.assert
"""

EXAMPLES = r"""
- name: Refuse bad Redis settings (each message names the variable and the host)
  fediops.mastodon.checks:
    checks:
      - that: redis_maxclients + 32 <= redis_limit_nofile
        msg: >-
          redis_maxclients={{ redis_maxclients }} on {{ inventory_hostname }} needs redis_limit_nofile of at least
          {{ redis_maxclients + 32 }} (got {{ redis_limit_nofile }}).
      - that:
          - redis_allowed_groups | difference(groups.keys()) | length == 0
        msg: redis_allowed_groups on {{ inventory_hostname }} names groups the inventory does not define.
      - when: redis_tls_enabled
        that: redis_tls_certificate | length > 0
        msg: redis_tls_certificate is empty on {{ inventory_hostname }} while redis_tls_enabled is true.
"""

RETURN = r"""
checked:
  description: How many rules were evaluated (those skipped by their O(checks[].when) are not counted).
  returned: when every rule held
  type: int
  sample: 9
assertion:
  description: The condition that did not hold.
  returned: failure
  type: str
  sample: redis_maxclients + 32 <= redis_limit_nofile
check:
  description: The number (from 1) of the rule that did not hold.
  returned: failure
  type: int
  sample: 2
"""
