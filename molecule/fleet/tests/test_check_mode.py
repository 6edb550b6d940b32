"""site.yml --check --diff on the converged fleet (side_effect_check_mode.yml, run before any fault or upgrade):
(a) as converged - rc 0, changed=0, failed=0 on every host; (b) with settings changed that touch files on seven
hosts - the diff shown, changed > 0 there, and every host's files and running services read back unchanged.
A missing evidence file fails."""
import json
import os
import re

import pytest

LAB_NAME = "mol-fleet"
EVIDENCE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-%s-check-mode" % LAB_NAME)
HOSTS = ["db1", "db2", "pgbouncer1", "redis-cache", "redis-persistent", "web1", "web2", "sidekiq1", "sidekiq2",
         "storage", "edge-eu", "mon1"]
# Hosts whose files the changed settings touch: fediops.conf (Postgres), the Mastodon env file, nginx on the edge.
TOUCHED = ["db1", "db2", "web1", "web2", "sidekiq1", "sidekiq2", "edge-eu"]
# Services that must have kept their main process (any restart, even a check-mode "would restart" done for real, shows).
SERVICES = {"db1": "postgresql@", "db2": "postgresql@", "pgbouncer1": "pgbouncer.service", "redis-cache": "redis-server@",
            "redis-persistent": "redis-server@", "web1": "mastodon-web", "web2": "mastodon-web",
            "sidekiq1": "mastodon-sidekiq@", "sidekiq2": "mastodon-sidekiq@", "storage": "seaweedfs", "edge-eu": "nginx.service",
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


def test_check_diff_on_the_converged_fleet_changes_nothing_and_fails_nowhere(evidence):
    run = evidence["clean"]
    tail = log("clean")[-4000:]
    assert run["rc"] == 0, tail
    per_host = recap(run)
    assert sorted(per_host) == sorted(HOSTS), tail
    assert {h: r for h, r in per_host.items() if r["changed"] or r["failed"] or r["unreachable"]} == {}, tail


def test_check_diff_with_changed_settings_shows_the_diff_and_reports_the_changes(evidence):
    run = evidence["changed"]
    tail = log("changed")[-4000:]
    assert run["rc"] == 0, tail
    per_host = recap(run)
    assert sorted(per_host) == sorted(HOSTS), tail
    assert {h: r for h, r in per_host.items() if r["failed"] or r["unreachable"]} == {}, tail
    assert [h for h in TOUCHED if per_host[h]["changed"] == 0] == [], per_host
    diffs = re.findall(r"(?m)^--- before: (\S+)", log("changed"))
    assert any(path.endswith("/conf.d/fediops.conf") for path in diffs), diffs
    assert any(path.startswith("/etc/nginx/") for path in diffs), diffs
    assert "log_min_duration_statement" in log("changed")


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
