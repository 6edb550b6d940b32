# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of fediops.mastodon.nftables_service: the rule file and drop-ins it wants, and the probe of them.

The module (plugins/modules/nftables_service.py) renders with these and acts. Its action plugin
(plugins/action/nftables_service.py) first reads, with one shell command, exactly what the module reads before it
acts: whether the base ruleset includes the rule directory, and the rule file and drop-ins (as sha256). When all
are as wanted the module would change nothing and run nothing, so the action answers for it; anything else, or an
answer it cannot trust, runs the module. The module does not look at the live ruleset (nft list ruleset) or at
nftables.service either, so neither does the probe.

Tested without a host: tests/unit/plugins/module_utils/test_nftables_rules.py.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import shlex

from ansible.module_utils.common.text.converters import to_text

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
UNIT_PATTERN = re.compile(r"^[A-Za-z0-9:_.@-]+\.(service|socket)$")
DROPIN_NAME = "fediops-firewall.conf"
DROPIN_CONTENT = (
    "# Managed by fediops.mastodon.nftables_service. This service must not run without the host\n"
    "# firewall: when nftables.service fails at boot, this unit is not started either.\n"
    "[Unit]\nRequires=nftables.service\nAfter=nftables.service\n"
)

# One spec for the module and its action, so both read the task's options alike.
ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    ports=dict(type="list", elements="int"),
    protocol=dict(type="str", choices=["tcp", "udp"], default="tcp"),
    sources=dict(type="list", elements="str", default=[]),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    config_file=dict(type="path", default="/etc/nftables.conf"),
    include_dir=dict(type="path", default="/etc/nftables.d"),
    units=dict(type="list", elements="str", default=[]),
    systemd_dir=dict(type="path", default="/etc/systemd/system"),
)
REQUIRED_IF = [("state", "present", ["ports"])]

BEGIN = "FEDIOPS-NFT-PROBE-BEGIN"
END = "FEDIOPS-NFT-PROBE-END"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ProbeError(Exception):
    """The host's state cannot be judged from the probe: run the module."""


def parse_sources(sources):
    """Split peers into IPv4 and IPv6 networks; raise ValueError naming a bad entry."""
    ipv4, ipv6 = [], []
    for source in sources:
        try:
            network = ipaddress.ip_network(to_text(source).strip(), strict=False)
        except ValueError:
            raise ValueError("sources: %r is not an IP address or network" % (source,))
        (ipv4 if network.version == 4 else ipv6).append(network)
    return _sorted_unique(ipv4), _sorted_unique(ipv6)


def _sorted_unique(networks):
    return sorted(set(networks), key=lambda network: (int(network.network_address), network.prefixlen))


def render_rules(name, ports, protocol, sources):
    ipv4, ipv6 = parse_sources(sources)
    port_list = ", ".join(str(port) for port in sorted(set(ports)))
    lines = [
        "# Managed by fediops.mastodon.nftables_service; included in the input chain of table inet fediops.",
        "# service: %s" % name,
    ]
    for family, networks in (("ip", ipv4), ("ip6", ipv6)):
        if networks:
            peers = ", ".join(str(network) for network in networks)
            lines.append('%s saddr { %s } %s dport { %s } accept comment "%s"' % (family, peers, protocol, port_list, name))
    if not ipv4 and not ipv6:
        lines.append("# no peers declared: nothing may connect to %s/%s" % (protocol, port_list))
    return "\n".join(lines) + "\n"


def unit_names(units):
    """A bare name is a service: redis -> redis.service."""
    return [unit if "." in unit else unit + ".service" for unit in units]


def rule_path(include_dir, name):
    return os.path.join(include_dir, "%s.nft" % name)


def dropin_path(systemd_dir, unit):
    return os.path.join(systemd_dir, "%s.d" % unit, DROPIN_NAME)


def plan(params):
    """What the module would want, from validated options: dict(path, rules (None: absent), dropins (paths, one per
    unit, as the module lists them), dropin (their content, None: absent), config_file, include). ValueError for
    anything the module refuses (it then fails with its own message)."""
    name = params["name"]
    if not NAME_PATTERN.match(name):
        raise ValueError("name %r" % (name,))
    units = unit_names(params["units"])
    if any(not UNIT_PATTERN.match(unit) for unit in units):
        raise ValueError("units %s" % (units,))
    present = params["state"] == "present"
    rules = None
    if present:
        ports = params["ports"] or []
        if any(not 1 <= port <= 65535 for port in ports) or not ports:
            raise ValueError("ports %s" % (ports,))
        rules = render_rules(name, ports, params["protocol"], params["sources"])
    return dict(
        path=rule_path(params["include_dir"], name),
        rules=rules,
        dropins=[dropin_path(params["systemd_dir"], unit) for unit in units],
        dropin=DROPIN_CONTENT if present else None,
        config_file=params["config_file"],
        include=params["include_dir"].rstrip("/"),
    )


def digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _readable_path(path):
    return isinstance(path, str) and path.startswith("/") and "\n" not in path and "$" not in path


def probe_command(wanted):
    """The /bin/sh script that answers: does the base ruleset include the directory, and the sha256 (or missing,
    or unreadable) of the rule file and of each drop-in, one line each between markers.

    ProbeError when a path is one the probe would not read as the module does (relative, ~ or $VAR the module
    expands on the host).
    """
    paths = [wanted["config_file"], wanted["path"]] + wanted["dropins"]
    if not all(_readable_path(path) for path in paths) or not wanted["include"] or "\n" in wanted["include"]:
        raise ProbeError("a path the probe cannot judge: %r" % (paths,))
    # stderr is silenced at once: with a tty it would be mixed into stdout.
    script = [
        "exec 2>/dev/null",
        'h() { if [ -e "$1" ] || [ -L "$1" ]; then x=$(sha256sum < "$1") && echo "${x%% *}" || echo unreadable; '
        "else echo missing; fi; }",
        "echo %s" % BEGIN,
        "if LC_ALL=C grep -qF -e %s -- %s; then echo included; else echo not-included; fi"
        % (shlex.quote(wanted["include"]), shlex.quote(wanted["config_file"])),
    ]
    script.extend("h %s" % shlex.quote(path) for path in [wanted["path"]] + wanted["dropins"])
    script.append("echo %s" % END)
    return "; ".join(script)


def parse_probe(rc, stdout, wanted):
    """The probe's answer: dict(included: bool, files: {path: sha256, 'missing' or 'unreadable'}); ProbeError when
    it cannot be trusted."""
    if rc != 0:
        raise ProbeError("the probe exited with %r" % (rc,))
    lines = [line.rstrip("\r") for line in (stdout or "").splitlines()]
    try:
        start = lines.index(BEGIN)
        stop = lines.index(END, start + 1)
    except ValueError:
        raise ProbeError("no complete answer in %r" % ((stdout or "")[-300:],))
    body = lines[start + 1:stop]
    paths = [wanted["path"]] + wanted["dropins"]
    if len(body) != 1 + len(paths):
        raise ProbeError("%d lines for %d paths" % (len(body) - 1, len(paths)))
    if body[0] not in ("included", "not-included"):
        raise ProbeError("unexpected line %r" % body[0])
    for line in body[1:]:
        if line not in ("missing", "unreadable") and not _SHA256.match(line):
            raise ProbeError("unexpected line %r" % line)
    # A path listed twice (the same unit twice) is read twice: both answers are the same file's.
    return dict(included=body[0] == "included", files=dict(zip(paths, body[1:])))


def differences(wanted, held):
    """What the module would find to do (or to refuse), in words; [] when it would change nothing."""
    found = []
    if not held["included"]:
        found.append("%s does not include %s" % (wanted["config_file"], wanted["include"]))
    expected = [(wanted["path"], wanted["rules"])] + [(path, wanted["dropin"]) for path in wanted["dropins"]]
    for path, content in expected:
        state = held["files"].get(path)
        if content is None:
            if state != "missing":
                found.append("%s is %s, not absent" % (path, "present" if state and _SHA256.match(state) else state))
        elif state != digest(content):
            found.append("%s is %s" % (path, "different" if state and _SHA256.match(state) else state))
    return found


def unchanged_result(wanted):
    """The module's result when it changes nothing."""
    return dict(changed=False, path=wanted["path"], rules=wanted["rules"] or "", commands=[],
                dropins=list(wanted["dropins"]))
