"""The fleet scenario's upgrade checks: what bench/upgrade.py counted, the order the database saw, the fleet after
the rollback. The side effect (side_effect.yml) left its logs and figures in $FEDIOPS_UPGRADE_RESULTS."""
import json
import os
import re

import pytest

RESULTS = os.environ.get("FEDIOPS_UPGRADE_RESULTS", "")
APP_HOSTS = ["web1", "web2", "sidekiq1", "sidekiq2"]
V1 = "/home/mastodon/releases/v1.0.0"
V2 = "/home/mastodon/releases/v2.0.0"


def result(name):
    """A log or figures file side_effect.yml wrote; a missing one fails the test that reads it (never skips)."""
    assert RESULTS, "FEDIOPS_UPGRADE_RESULTS is not set (molecule/fleet/molecule.yml sets it): no %s to read" % name
    path = os.path.join(RESULTS, name)
    assert os.path.exists(path), "%s is missing: the side effect (side_effect.yml) did not write it" % path
    with open(path) as handle:
        return handle.read()


def progress(name):
    return [json.loads(line) for line in result(name).splitlines() if line.strip()]


def psql(host, sql):
    out = host.check_output("runuser -u postgres -- psql -XAt -d mastodon_production -c %s", sql)
    return out.strip()


def test_gate_refused_all_three_faults_and_named_them():
    log = result("refused.log")
    assert "refused, nothing was migrated or switched" in log
    assert "[replica_replay] WAL replay is paused on the replica" in log
    assert re.search(r"\[long_transactions\] 1 transaction\(s\) open longer than 2", log), log[-3000:]
    assert re.search(r"\[backup_age\] .*threshold 1", log), log[-3000:]
    # it stopped at the gate: no migration, no host rolled
    assert "pre-deployment migrations applied" not in log
    assert "draining" not in log and "quieting Sidekiq" not in log


def test_gate_refused_a_write_path_to_the_standby():
    log = result("write-path-refused.log")
    # The live-state read at the start of upgrade.yml sees PgBouncer on the standby and refuses first; the
    # gate's own write through PgBouncer (mastodon_migration_gate's write_path check) refuses the same fault
    # when it is reached, which the module's tests show against a real standby behind PgBouncer.
    assert re.search(
        r"\[write_path\] (Write path: PgBouncer \S+ points at \S+, and \S+ runs as a standby"
        r"|a write through PgBouncer [0-9.]+:6432 reached a standby \(read-only\))", log), log[-3000:]
    assert "nothing was changed on any host" in log or "nothing was migrated or switched" in log, log[-3000:]
    assert "pre-deployment migrations applied" not in log
    assert "draining" not in log and "quieting Sidekiq" not in log


@pytest.mark.parametrize("name", ["upgrade-load.json", "rollback-load.json"])
def test_no_failed_request_and_no_lost_job(name):
    figures = json.loads(result(name))
    assert figures["command_rc"] == 0, figures
    assert figures["requests_sent"] > 200, figures
    assert figures["requests_failed"] == 0, figures
    assert figures["enqueue_failed"] == 0, figures
    assert figures["jobs_enqueued"] > 50, figures
    assert figures["jobs_processed"] == figures["jobs_enqueued"], figures


def test_every_host_rolled_one_at_a_time_after_the_pre_migrations_and_before_the_post_migrations():
    lines = progress("upgrade-progress.jsonl")
    steps = [line["step"] for line in lines]
    at = dict((line["step"], line["at"]) for line in lines)
    pre = next(s for s in steps if s.startswith("pre-deployment migrations applied"))
    assert "20250610090000" in pre and "20250610090100" in pre, pre
    post_start = next(s for s in steps if s.startswith("post-deployment migrations: starting"))
    post = next(s for s in steps if s.startswith("post-deployment migrations applied"))
    assert "20250610100000" in post, post
    rolled = [s for s in steps if re.match(r"^(web|sidekiq)\d: .* on v2\.0\.0", s)]
    assert sorted(set(s.split(":")[0] for s in rolled)) == ["sidekiq1", "sidekiq2", "web1", "web2"], steps
    assert all(at[pre] < at[s] < at[post_start] for s in rolled), lines
    # one host at a time: every roll line is followed by the same host's "done" line before any other host begins
    host_lines = [s for s in steps if re.match(r"^(web|sidekiq)\d: ", s)]
    # 2 Sidekiq rolls + 2 web-tier rolls (Puma and streaming moved in one drain), a begin and an end each
    assert len(host_lines) == 8, host_lines
    assert sum("web and streaming on v2.0.0" in s for s in host_lines) == 2, host_lines
    for begin, end in zip(host_lines[0::2], host_lines[1::2]):
        assert re.search(r": (quieting|draining)", begin) and " on v2.0.0" in end, host_lines
        assert begin.split(":")[0] == end.split(":")[0], host_lines


def test_database_saw_v2_only_after_pre_and_v1_only_before_post(lab_host):
    db1 = lab_host("db1")
    lines = progress("upgrade-progress.jsonl")
    rollback_started = progress("rollback-progress.jsonl")[0]["at"]
    pre_done = next(line["at"] for line in lines if line["step"].startswith("pre-deployment migrations applied"))
    post_start = next(line["at"] for line in lines if line["step"].startswith("post-deployment migrations: starting"))
    first_v2 = float(psql(db1, "SELECT extract(epoch FROM min(started_at)) FROM fixture_jobs WHERE release = 'v2.0.0'"))
    assert first_v2 > pre_done
    # The backfill labelled every row v1 had written; a v1 process still running after it would have left
    # unlabelled rows (until the rollback, which runs v1 again).
    unlabelled = int(psql(db1, "SELECT count(*) FROM fixture_jobs WHERE release IS NULL "
                               "AND finished_at < to_timestamp(%s)" % rollback_started))
    assert unlabelled == 0
    last_v1 = float(psql(db1, "SELECT extract(epoch FROM max(finished_at)) FROM fixture_jobs WHERE release = 'v1.0.0'"))
    assert last_v1 < post_start
    assert psql(db1, "SELECT count(*) FROM schema_migrations WHERE version IN "
                     "('20250610090000', '20250610090100', '20250610100000')") == "3"


def test_rerun_changed_nothing():
    log = result("rerun.log")
    recap = [line for line in log.splitlines() if re.match(r"^\S+\s+: ok=", line)]
    assert len(recap) == 11, recap
    assert all(" changed=0 " in line and " failed=0 " in line for line in recap), recap


def test_rollback_again_changed_nothing():
    log = result("rollback-again.log")
    recap = [line for line in log.splitlines() if re.match(r"^\S+\s+: ok=", line)]
    assert len(recap) == 11, recap
    assert all(" changed=0 " in line and " failed=0 " in line for line in recap), recap
    assert "rollback from v1.0.0 to v1.0.0 started" in log


def test_upgrade_recorded_where_it_started_and_the_rollback_went_there(lab_host):
    record = json.loads(lab_host("web1").file("/var/lib/fediops-mastodon/upgrade.json").content_string)
    assert record["from"] == "v1.0.0" and record["to"] == "v2.0.0" and record["started"], record
    assert record["rolled_back"]["to"] == "v1.0.0", record


@pytest.mark.parametrize("name", APP_HOSTS)
def test_every_process_runs_v1_as_the_process_reports_it(lab_host, lab_addresses, name):
    host = lab_host(name)
    units = host.check_output("systemctl list-units --type=service --state=active --plain --no-legend "
                              "'mastodon-web.service' 'mastodon-streaming@*.service' 'mastodon-sidekiq@*.service'")
    units = [line.split()[0] for line in units.splitlines() if line.strip()]
    assert units, name
    for unit in units:
        pid = host.check_output("systemctl show -p MainPID --value %s", unit)
        assert pid != "0", unit
        assert host.check_output("readlink /proc/%s/cwd", pid) == V1, unit
    if name.startswith("web"):
        body = json.loads(host.check_output("curl -sf -H 'Host: lab.fediops.example' http://%s:3000/api/v1/instance",
                                            lab_addresses[name]))
        assert body["version"] == "v1.0.0", body


@pytest.mark.parametrize("name", APP_HOSTS)
def test_rolled_back_to_v1_with_v2_kept_as_previous(lab_host, name):
    host = lab_host(name)
    assert host.check_output("readlink -f /home/mastodon/current") == V1
    assert host.check_output("readlink -f /home/mastodon/previous") == V2
    for state in host.check_output("ls /var/lib/fediops-mastodon").split():
        if state in ("web.release", "sidekiq.state", "streaming.state"):
            assert host.file("/var/lib/fediops-mastodon/" + state).content_string.splitlines()[0] == V1


@pytest.mark.parametrize("name", ["web1", "web2"])
def test_web_answers_as_v1_and_is_back_on_the_edge(lab_host, lab_addresses, name):
    host = lab_host(name)
    headers = host.check_output("curl -sfI http://%s:3000/health" % lab_addresses[name])
    assert "x-fixture-version: v1.0.0" in headers.lower()
    upstreams = lab_host("edge-eu").check_output("cat /etc/nginx/fediops/upstreams.conf")
    assert lab_addresses[name] in upstreams
    assert not re.search(r"%s:\d+[^;]*\bdown\b" % re.escape(lab_addresses[name]), upstreams), upstreams


def test_no_secret_appears_in_the_log_of_site_upgrade_rollback_switchovers_and_failover(no_secret_in_log):
    """site.yml (converge), upgrade.yml (refused, run, re-run), rollback.yml, and the data tier's side effect
    (switchover.yml, failover.yml, the rebuild's converge), all with -v --diff (molecule.yml)."""
    no_secret_in_log(["mastodon_config : Write the environment file",
                      "PLAY [Upgrade - gate, database side", "PLAY [Rollback - find the release to go back to",
                      "postgresql : Keep the replication password where the streaming client finds it",
                      "PLAY [Switchover - hand the writes over while PgBouncer holds them]",
                      "PLAY [Failover - promote the standby"])
