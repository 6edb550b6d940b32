# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: plugins/action/packages.py does the work (a dpkg-query probe, then ansible.builtin.apt
# when needed), so there is no module code to ship to the host.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: packages
short_description: Install Debian packages, asking dpkg first so a converged host costs no apt run
version_added: 0.2.0
description:
  - Makes sure the named Debian packages are installed, as C(ansible.builtin.apt) with C(state=present)
    does, but first asks dpkg with one short read-only C(dpkg-query) command whether they already are.
  - When every package is installed (C(ii)) or installed and held (C(hi)), the task reports C(ok) without running any
    module on the host. Otherwise C(ansible.builtin.apt) runs with all the names given and the options the task set,
    and its result (including check mode and C(--diff)) is the task's result.
  - A package dpkg knows only as removed with its configuration kept (C(rc)), half installed or half configured counts
    as missing, so apt repairs or installs it.
  - Names the probe cannot judge, such as a version pin (C(pkg=1.2)), a wildcard, a release (C(pkg/bookworm-backports))
    or a C(.deb) path, always run apt, as does a probe answer that cannot be read.
  - Only installs. Remove packages with C(ansible.builtin.apt).
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
    details: The probe only reads, so it runs in check mode too; apt then runs in check mode when something is missing.
  diff_mode:
    support: full
    details: As C(ansible.builtin.apt) reports it, when apt runs.
  platform:
    platforms: debian
options:
  name:
    description:
      - The packages to install. A single name is accepted as well as a list.
      - Plain names (optionally with an architecture, C(libc6:amd64)) are checked with dpkg first; anything else is
        handed to apt as it is.
    type: list
    elements: str
    required: true
  update_cache:
    description:
      - Update the apt cache before installing, as C(ansible.builtin.apt) does.
      - Only happens when apt runs, that is when a package is missing; a host that has everything keeps its cache.
    type: bool
  cache_valid_time:
    description:
      - Update the apt cache when it is older than this many seconds, as C(ansible.builtin.apt) does.
      - Only considered when apt runs.
    type: int
  update_cache_when_missing:
    description:
      - Update the apt cache whenever apt runs, that is when the probe finds a package not installed (or cannot
        tell), however fresh the lists look; a host that has every package asks no mirror.
      - For packages the base image does not carry while its package lists, empty or old, look fresh to
        O(cache_valid_time).
      - The same as O(update_cache=true) without O(cache_valid_time); it cannot be combined with either.
    type: bool
  install_recommends:
    description:
      - Whether apt installs recommended packages too; apt's own default (the host's apt configuration) when omitted.
    type: bool
  default_release:
    description:
      - The release to install from, such as C(bookworm-backports), passed to apt as C(-t).
      - The probe does not look at where an installed package came from, only whether it is installed.
    type: str
notes:
  - The probe is C(LC_ALL=C dpkg-query -W) over the plain names, run with the task's become settings.
  - A virtual package name (one no real package is called) is unknown to dpkg, so such a task runs apt every time;
    name the real package instead.
seealso:
  - module: ansible.builtin.apt
"""

EXAMPLES = r"""
- name: Install PostgreSQL
  fediops.mastodon.packages:
    name: [postgresql-15, postgresql-contrib]
    update_cache: true
    cache_valid_time: 3600

- name: Install the node exporter, refreshing the lists first only when it is missing
  fediops.mastodon.packages:
    name: prometheus-node-exporter
    update_cache_when_missing: true

- name: Install a newer nginx from backports, without recommends
  fediops.mastodon.packages:
    name: nginx
    default_release: bookworm-backports
    install_recommends: false
"""

RETURN = r"""
packages:
  description:
    - What the dpkg probe found before any change, in the order given.
    - When RV(packages.missing) is empty no module ran and the task is C(ok).
    - Absent when the probe did not run or could not be read (apt ran for the whole list).
  returned: when the probe ran and was read
  type: dict
  contains:
    installed:
      description: Names dpkg holds installed.
      type: list
      elements: str
      sample: [postgresql-15]
    missing:
      description: Names that are not installed (or that the probe cannot judge); apt ran for the whole list.
      type: list
      elements: str
      sample: [postgresql-contrib]
  sample: {installed: [postgresql-15], missing: [postgresql-contrib]}
cache_updated:
  description: From C(ansible.builtin.apt), when it ran.
  returned: when apt ran
  type: bool
  sample: true
stdout:
  description: From C(ansible.builtin.apt), when it ran and installed something.
  returned: when apt ran and installed something
  type: str
  sample: ""
"""
