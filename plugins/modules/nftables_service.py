#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nftables_service
short_description: Open a service's ports to a list of peers in the fediops nftables firewall
version_added: 0.1.0
description:
  - Writes one rule file per service under I(include_dir) (by default C(/etc/nftables.d)), which the
    C(fediops.mastodon.common) role's C(/etc/nftables.conf) includes inside its default-deny input chain.
  - The whole ruleset is checked with C(nft -c) before it is applied; an invalid rule file is rolled back
    and the module fails with nft's own message.
  - Applying reloads the complete C(/etc/nftables.conf), the same file C(nftables.service) loads at boot,
    so what runs is always what comes back after a reboot.
  - A service whose peer list is empty gets a rule file with no accept rule, so it is reachable by no one.
  - Its action plugin first reads the host with one shell command (whether I(config_file) includes I(include_dir),
    and the sha256 of the rule file and of each drop-in). When all are as wanted it returns unchanged without
    running this module; otherwise, or when that answer is not clear, the module runs, reads again and acts.
    Neither looks at the live ruleset; the rule file is applied, with the whole of I(config_file), whenever it
    changes.
author:
  - fediops maintainers (@fediops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the service; the rule file is C(<include_dir>/<name>.nft) and the rule's comment.
      - Lower-case letters, digits, C(-) and C(_).
    type: str
    required: true
  ports:
    description:
      - Destination ports to open.
      - Required when I(state=present).
    type: list
    elements: int
  protocol:
    description: Transport protocol of I(ports).
    type: str
    choices: [tcp, udp]
    default: tcp
  sources:
    description:
      - Addresses or networks (IPv4 or IPv6, with or without a prefix length) allowed to reach I(ports).
    type: list
    elements: str
    default: []
  state:
    description: Whether the service's rule file should exist.
    type: str
    choices: [present, absent]
    default: present
  config_file:
    description: The base ruleset that includes I(include_dir) and that C(nftables.service) loads.
    type: path
    default: /etc/nftables.conf
  include_dir:
    description: Directory of per-service rule files.
    type: path
    default: /etc/nftables.d
  units:
    description:
      - systemd units of this service that must never run without the firewall.
      - Each gets a drop-in C(fediops-firewall.conf) with C(Requires=nftables.service) and
        C(After=nftables.service), so the unit is not started when the ruleset failed to load at boot
        (and is stopped if the firewall is stopped). With I(state=absent) the drop-ins are removed.
    type: list
    elements: str
    default: []
  systemd_dir:
    description: Where unit drop-in directories live.
    type: path
    default: /etc/systemd/system
requirements:
  - nft (Debian package C(nftables)) on the managed host
notes:
  - The base configuration is provided by the C(fediops.mastodon.common) role; this module refuses to
    run on a host without it, rather than write rules that nothing loads.
"""

EXAMPLES = r"""
- name: Let the pooler and the app hosts reach PostgreSQL
  fediops.mastodon.nftables_service:
    name: postgresql
    ports: [5432]
    sources: "{{ ['pgbouncer', 'mastodon'] | fediops.mastodon.group_addresses(groups, hostvars) }}"

- name: Close the old metrics port
  fediops.mastodon.nftables_service:
    name: legacy-metrics
    state: absent
"""

RETURN = r"""
dropins:
  description: Drop-in files managed for I(units).
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/redis-server@cache.service.d/fediops-firewall.conf]
path:
  description: The rule file managed.
  returned: always
  type: str
  sample: /etc/nftables.d/postgresql.nft
rules:
  description: Content of the rule file after the run (empty when I(state=absent)).
  returned: always
  type: str
commands:
  description: Commands executed on the host (none in check mode or when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["nft -c -f /etc/nftables.conf", "nft -f /etc/nftables.conf"]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.fediops.mastodon.plugins.module_utils.nftables_rules import (
    ARGUMENT_SPEC, DROPIN_CONTENT, NAME_PATTERN, REQUIRED_IF, UNIT_PATTERN, dropin_path, render_rules, rule_path,
    unit_names,
)


def read_text(path):
    try:
        with open(path, "r") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_text(module, path, content):
    tmp_path = "%s.fediops-tmp" % path
    with open(tmp_path, "w") as handle:
        handle.write(content)
    os.chmod(tmp_path, 0o644)
    module.atomic_move(tmp_path, path)


def restore(module, path, previous):
    if previous is None:
        if os.path.exists(path):
            os.unlink(path)
    else:
        write_text(module, path, previous)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    params = module.params
    name = params["name"]
    if not NAME_PATTERN.match(name):
        module.fail_json(msg="name: %r must be lower-case letters, digits, '-' or '_' (at most 63)" % name)

    path = rule_path(params["include_dir"], name)
    result = dict(changed=False, path=path, rules="", commands=[], dropins=[])
    units = unit_names(params["units"])
    bad_units = [unit for unit in units if not UNIT_PATTERN.match(unit)]
    if bad_units:
        module.fail_json(msg="units: %s are not systemd service or socket unit names" % ", ".join(bad_units), **result)

    if params["state"] == "present":
        # ports: null passes required_if (the key is there): refuse it here rather than fail on None.
        bad_ports = [port for port in params["ports"] or [] if not 1 <= port <= 65535]
        if not params["ports"] or bad_ports:
            module.fail_json(msg="ports: every port must be between 1 and 65535 (got %s)" % params["ports"], **result)
        try:
            wanted = render_rules(name, params["ports"], params["protocol"], params["sources"])
        except ValueError as exc:
            module.fail_json(msg=to_text(exc), **result)
    else:
        wanted = None

    base = read_text(params["config_file"])
    if base is None or params["include_dir"].rstrip("/") not in base:
        module.fail_json(
            msg="%s does not include %s: apply the fediops.mastodon.common role (common_firewall_enabled) first"
            % (params["config_file"], params["include_dir"]),
            **result
        )

    current = read_text(path)
    result["rules"] = wanted or ""
    dropins_changed = manage_dropins(module, units, params["state"] == "present", result)
    if current == wanted:
        finish(module, dropins_changed, result)

    result["changed"] = True
    if module._diff:
        result["diff"] = dict(before=current or "", after=wanted or "", before_header=path, after_header=path)
    if module.check_mode:
        module.exit_json(**result)

    nft = module.get_bin_path("nft", required=True)
    if wanted is None:
        os.unlink(path)
    else:
        write_text(module, path, wanted)

    check_cmd = [nft, "-c", "-f", params["config_file"]]
    result["commands"].append(" ".join(check_cmd))
    rc, out, err = module.run_command(check_cmd)
    if rc != 0:
        restore(module, path, current)
        module.fail_json(msg="nft rejected the ruleset with %s; the previous rule file was restored: %s" % (path, err.strip() or out.strip()), **result)

    apply_cmd = [nft, "-f", params["config_file"]]
    result["commands"].append(" ".join(apply_cmd))
    rc, out, err = module.run_command(apply_cmd)
    if rc != 0:
        restore(module, path, current)
        module.run_command(apply_cmd)
        module.fail_json(msg="nft failed to apply the ruleset; the previous rule file was restored: %s" % (err.strip() or out.strip()), **result)

    finish(module, dropins_changed, result)


def manage_dropins(module, units, present, result):
    """Write or remove each unit's firewall drop-in; return whether any file changed."""
    changed = False
    for unit in units:
        dropin = dropin_path(module.params["systemd_dir"], unit)
        directory = os.path.dirname(dropin)
        result["dropins"].append(dropin)
        current = read_text(dropin)
        wanted = DROPIN_CONTENT if present else None
        if current == wanted:
            continue
        changed = True
        if module.check_mode:
            continue
        if wanted is None:
            os.unlink(dropin)
        else:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            write_text(module, dropin, wanted)
    return changed


def finish(module, dropins_changed, result):
    if dropins_changed:
        result["changed"] = True
        if not module.check_mode:
            systemctl = module.get_bin_path("systemctl", required=True)
            result["commands"].append("systemctl daemon-reload")
            rc, out, err = module.run_command([systemctl, "daemon-reload"])
            if rc != 0:
                module.fail_json(msg="systemctl daemon-reload failed: %s" % (err.strip() or out.strip()), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
