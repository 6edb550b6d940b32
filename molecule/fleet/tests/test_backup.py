"""pgBackRest after a full backup and a restore drill (side_effect_foundation.yml)."""
import json
import os
import re
import time

import yaml


SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _report(name):
    # side_effect_foundation.yml writes $TMPDIR/fediops-<lab_name>-<name>.json; lab_name is the scenario inventory's.
    with open(os.path.join(SCENARIO, "inventory.yml")) as handle:
        lab_name = yaml.safe_load(handle)["all"]["vars"]["lab_name"]
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-%s-%s.json" % (lab_name, name))) as handle:
        return json.load(handle)


def test_restore_drill_recovered_rows_written_after_the_backup():
    # 1000 + 500 rows written after the full backup: only the archived WAL can have brought them back.
    report = _report("restore-drill")
    assert report["result"] == ["1500"], report
    assert report["recovered_to"]


def test_point_in_time_restore_stops_between_the_batches():
    report = _report("restore-drill-pitr")
    assert report["result"] == ["1000"], report


def test_wal_is_archived_within_a_minute(lab_host):
    db1 = lab_host("db1")
    assert db1.check_output("su postgres -c \"psql -XAtc 'SHOW archive_timeout'\"") in ("1min", "60s")
    assert db1.check_output("su postgres -c \"psql -XAtc 'SELECT failed_count FROM pg_stat_archiver'\"") == "0"


def test_repository_holds_a_full_backup_and_the_retention_covers_three_weeks(lab_host):
    db1 = lab_host("db1")
    info = json.loads(db1.check_output("su postgres -c 'pgbackrest --stanza=mastodon --output=json info'"))
    assert info[0]["status"]["code"] == 0
    assert [b["type"] for b in info[0]["backup"]][:1] == ["full"]
    conf = db1.file("/etc/pgbackrest.conf")
    assert conf.mode == 0o600 and conf.user == "postgres"
    text = conf.content_string
    assert "repo1-retention-full-type=time" in text and "repo1-retention-full=21" in text
    assert "repo1-retention-archive-type=full" in text
    assert "repo1-storage-verify-tls=n" not in text


def test_timers_schedule_weekly_full_and_daily_incremental(lab_host):
    db1 = lab_host("db1")
    for kind, calendar in (("full", "Sun"), ("incr", "Mon..Sat")):
        timer = db1.service("pgbackrest-backup-%s.timer" % kind)
        assert timer.is_enabled and timer.is_running
        assert calendar in db1.check_output("systemctl show -p TimersCalendar --value pgbackrest-backup-%s.timer" % kind)


def test_never_two_backups_at_once(lab_host):
    db1 = lab_host("db1")
    # Hold the backup lock as a running backup would; a second backup must wait, not run alongside.
    result = db1.run("su postgres -c 'flock /var/spool/pgbackrest/fediops-backup.lock sleep 5' & sleep 1; "
                     "timeout 2 su postgres -c '/usr/local/sbin/fediops-pgbackrest-backup incr'; echo rc=$?")
    assert "rc=124" in result.stdout, result.stdout


def test_restore_drill_left_nothing_behind(lab_host):
    db1 = lab_host("db1")
    assert not db1.file("/var/lib/postgresql/restore-drill").exists
    assert not db1.socket("unix:///var/lib/postgresql/restore-drill/run/.s.PGSQL.5499").is_listening


def test_restore_drill_that_does_not_fit_is_refused_with_the_figures_and_restores_nothing():
    report = _report("restore-drill-refused")
    out = report["stdout"]
    assert report["rc"] != 0, out[-3000:]
    match = re.search(r"Restore drill refused on db1, nothing restored: the copy needs (\d+) bytes .*"
                      r"/var/lib/postgresql/restore-drill is on (\S+), which has (\d+) bytes", out, re.S)
    assert match, out[-3000:]
    needed, mount, free = int(match.group(1)), match.group(2), int(match.group(3))
    assert needed > free > 0, match.group(0)
    assert mount.startswith("/"), mount
    assert "Restore the latest backup" not in out, out[-3000:]
    assert not report["scratch_dir_exists"]
    assert report["restores_logged_after"] == report["restores_logged_before"], report


def test_backup_signals_reach_node_exporter_after_the_backup(lab_host, lab_addresses):
    """fediops_pgbackrest_* in the textfile directory, refreshed when the side effect's full backup ended."""
    db1 = lab_host("db1")
    info = json.loads(db1.check_output("su postgres -c 'pgbackrest --stanza=mastodon --output=json info'"))
    newest_full = max(b["timestamp"]["stop"] for b in info[0]["backup"] if b["type"] == "full")
    expected = 'fediops_pgbackrest_last_backup_completion_seconds{stanza="mastodon",type="full"} %d' % newest_full
    prom = db1.file("/var/lib/prometheus/node-exporter/fediops_pgbackrest.prom")
    for _ in range(30):  # the backup unit starts the refresh without waiting for it
        if prom.exists and expected in prom.content_string:
            break
        time.sleep(1)
    text = prom.content_string
    assert 'fediops_pgbackrest_info_success{stanza="mastodon"} 1' in text, text
    assert expected in text, text
    assert 0 <= int(db1.check_output("date +%s")) - newest_full < 3600, newest_full
    assert (prom.mode, prom.user) == (0o644, "root")
    timer = db1.service("fediops-pgbackrest-metrics.timer")
    assert timer.is_enabled and timer.is_running
    # Node exporter serves them (asked from db1 itself: its firewall opens the port to the monitoring group only).
    served = db1.check_output("curl -sS --max-time 10 http://%s:9100/metrics", lab_addresses["db1"])
    samples = dict(line.rsplit(" ", 1) for line in served.splitlines() if line.startswith("fediops_pgbackrest_"))
    # node exporter prints every value as a float (1.796012635e+09)
    assert float(samples['fediops_pgbackrest_last_backup_completion_seconds{stanza="mastodon",type="full"}']) == newest_full
    assert float(samples['fediops_pgbackrest_info_success{stanza="mastodon"}']) == 1
