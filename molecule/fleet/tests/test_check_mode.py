"""site.yml --check --diff on the converged fleet with changed settings (side_effect_check_mode.yml, run before
any fault or upgrade): rc 0 and failed=0 everywhere, the diff shown, changed > 0 on the eight hosts the settings
touch and changed=0 on the five others, every reported change in the role whose setting changed, and every
host's files and running services read back unchanged. (The real second converge, changed=0 on every host, is
the molecule idempotence step.) A missing evidence file fails."""
import json
import os
import re

import pytest

LAB_NAME = "mol-fleet"
EVIDENCE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-%s-check-mode" % LAB_NAME)
HOSTS = ["db1", "db2", "pgbouncer1", "redis-cache", "redis-persistent", "web1", "web2", "sidekiq1", "sidekiq2",
         "storage", "edge-eu", "edge-us", "mon1"]
# Hosts whose files the changed settings touch, and the roles that may report a change there: fediops.conf
# (Postgres), the Mastodon env file (and the restart of what reads it), nginx's upstreams on both edges.
APP_ROLES = ("mastodon_config", "mastodon_release", "mastodon_web", "mastodon_streaming", "mastodon_sidekiq")
TOUCHED = {"db1": ("postgresql",), "db2": ("postgresql",), "web1": APP_ROLES, "web2": APP_ROLES,
           "sidekiq1": APP_ROLES, "sidekiq2": APP_ROLES, "edge-eu": ("cdn_edge",), "edge-us": ("cdn_edge",)}
# Services that must have kept their main process (any restart, even a check-mode "would restart" done for real, shows).
SERVICES = {"db1": "postgresql@", "db2": "postgresql@", "pgbouncer1": "pgbouncer.service", "redis-cache": "redis-server@",
            "redis-persistent": "redis-server@", "web1": "mastodon-web", "web2": "mastodon-web",
            "sidekiq1": "mastodon-sidekiq@", "sidekiq2": "mastodon-sidekiq@", "storage": "seaweedfs", "edge-eu": "nginx.service",
            "edge-us": "nginx.service",
            "mon1": "prometheus.service"}


@pytest.fixture(scope="module")
def evidence():
    path = EVIDENCE + ".json"
    assert os.path.exists(path), "%s not found: the check-mode side effect did not run or did not finish" % path
    with open(path) as handle:
        return json.load(handle)


def log(name):
    path = "%s-%s.log" % (EVIDENCE, name)
    assert os.path.exists(path), "%s not found" % path
    with open(path) as handle:
        return handle.read()


def recap(run):
    return dict((host, {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)})
                for host, ok, changed, unreachable, failed in run["recap"])


def test_check_diff_with_changed_settings_shows_the_diff_and_reports_the_changes(evidence):
    run = evidence["changed"]
    tail = log("changed")[-4000:]
    assert run["rc"] == 0, tail
    per_host = recap(run)
    assert sorted(per_host) == sorted(HOSTS), tail
    assert {h: r for h, r in per_host.items() if r["failed"] or r["unreachable"]} == {}, tail
    assert [h for h in TOUCHED if per_host[h]["changed"] == 0] == [], per_host
    assert {h: r["changed"] for h, r in per_host.items() if h not in TOUCHED and r["changed"]} == {}, tail
    diffs = re.findall(r"(?m)^--- before: (\S+)", log("changed"))
    assert any(path.endswith("/conf.d/fediops.conf") for path in diffs), diffs
    assert any(path.startswith("/etc/nginx/") for path in diffs), diffs
    assert "log_min_duration_statement" in log("changed")


def changed_tasks(output):
    """(host, task) for every "changed: [host]" line, the task being the TASK or RUNNING HANDLER header above it."""
    task, found = None, set()
    for line in output.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\] \*+$", line)
        if header:
            task = header.group(1)
        changed = re.match(r"^changed: \[([^\]]+)\]", line)
        if changed:
            found.add((changed.group(1).split(" -> ")[0], task))
    return found


def test_only_the_roles_whose_settings_changed_report_a_change():
    """A task of another role reporting a change in check mode would be a task that is not idempotent or that
    lies in check mode; the recap alone cannot show it on a host that also has an expected change."""
    found = changed_tasks(log("changed"))
    assert found, "no changed task found in the check-mode output"
    unexpected = sorted((host, task) for host, task in found
                        if not any(task.startswith("fediops.mastodon.%s : " % role) for role in TOUCHED.get(host, ())))
    assert unexpected == [], unexpected


@pytest.mark.parametrize("host", HOSTS)
def test_no_file_changed_on_the_host(evidence, host):
    before, after = evidence["before"][host], evidence["after"][host]
    assert before["files"], "%s: no managed file read back" % host
    changed = sorted(p for p in set(before["files"]) | set(after["files"])
                     if before["files"].get(p) != after["files"].get(p))
    assert changed == [], "%s: files changed by a check-mode run: %s" % (host, changed)
    assert before["etc_digest"] == after["etc_digest"], "%s: something under /etc changed" % host
    assert before["current"] == after["current"], host


@pytest.mark.parametrize("host", HOSTS)
def test_no_service_restarted_on_the_host(evidence, host):
    before, after = evidence["before"][host]["main_pids"], evidence["after"][host]["main_pids"]
    assert any(unit.startswith(SERVICES[host]) for unit in before), "%s: %s not running before: %s" % (host, SERVICES[host], before)
    # Units running at both reads (a timer's short job may run at one read only) kept their main process.
    restarted = sorted(u for u in set(before) & set(after) if before[u] != after[u])
    assert restarted == [], "%s: restarted during the check-mode runs: %s" % (host, restarted)
    assert [u for u in before if u.startswith(SERVICES[host]) and u not in after] == [], (host, before, after)


def test_the_changed_settings_were_the_ones_described(evidence):
    settings = evidence["changed"]["settings"]
    assert settings["postgresql_settings"] == {"log_min_duration_statement": "2500"}
    assert settings["mastodon_config_authorized_fetch"] is True
    assert settings["cdn_edge_web_fail_timeout"] == 11
