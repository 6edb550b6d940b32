# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: memory_step
short_description: A measured memory size rounded down to a whole step, so small drift changes nothing
version_added: 0.1.0
description:
  - Rounds a memory size in MiB (such as C(ansible_facts.memtotal_mb)) down to a multiple of O(step), and
    never below one step.
  - The kernel's reported total memory drifts by a few MiB between boots and kernel updates. Settings derived
    from it (Postgres' C(shared_buffers) needs a restart) must not change with that drift; rounding down to a
    step of 256 MiB moves them only when the host really gained or lost memory (or the figure crosses a step,
    at most once per resize).
  - Rounded down, not to the nearest, because the figure is what the host has, and the kernel shows a little less than the
    installed memory, so a host of 8 GiB (about 7,900 MiB reported) counts as 7,936 MiB on every boot.
positional: step
options:
  _input:
    description: Memory in MiB.
    type: raw
    required: true
  step:
    description: Step in MiB.
    type: int
    default: 256
"""

EXAMPLES = r"""
postgresql_memory_mb: "{{ ansible_facts.memtotal_mb | fediops.mastodon.memory_step(256) }}"
"""

RETURN = r"""
_value:
  description: The size in MiB, a multiple of O(step), at least O(step).
  type: int
"""

from ansible.errors import AnsibleFilterError


def memory_step(memory_mb, step=256):
    try:
        memory_mb = int(memory_mb)
        step = int(step)
    except (TypeError, ValueError):
        raise AnsibleFilterError("memory_step: %r MiB (step %r) is not a whole number" % (memory_mb, step))
    if step <= 0 or memory_mb <= 0:
        raise AnsibleFilterError("memory_step: memory (%d MiB) and step (%d MiB) must be positive" % (memory_mb, step))
    return max(memory_mb // step * step, step)


class FilterModule(object):
    def filters(self):
        return {'memory_step': memory_step}
