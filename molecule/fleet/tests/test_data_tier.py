"""The data tier after two switchovers, a restart-discipline block and a host-loss failover under load.

These run on the fleet's lab (side_effect_data_tier.yml, the side effect's last part; once the `postgresql`
scenario's). db1/db2 are the Postgres pair (the side effect hands the writes back to db1 at its end: the tests ask
the running clusters), pgbouncer1 pools, web1 is an application host, mon1 is outside the groups allowed to reach
Postgres.
"""
import json
import os
import time
import uuid

import pytest

import yaml

_SECRETS_FILE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'inventories', 'lab', 'group_vars', 'all',
                             'secrets.yml')
with open(_SECRETS_FILE) as _handle:
    LAB_SECRETS = yaml.safe_load(_handle)
APP_PASSWORD = LAB_SECRETS['fediops_lab_db_app_password']
ADMIN_PASSWORD = LAB_SECRETS['pgbouncer_admin_password']
REPLICATION_PASSWORD = LAB_SECRETS['postgresql_replication_password']
LAB_NAME = 'mol-fleet'


def psql(host, sql, db='postgres'):
    return host.check_output("su postgres -c %s", "psql -X -At -d %s -c %s" % (db, _quote(sql)))


def _quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def client(host, dsn, sql, password=APP_PASSWORD):
    """Run SQL with psycopg2 on `host` (as an application would); return (rc, output)."""
    script = (
        "import psycopg2,sys\n"
        "try:\n"
        "    c=psycopg2.connect(sys.argv[1], connect_timeout=5); c.autocommit=True; cur=c.cursor(); cur.execute(sys.argv[2])\n"
        "    print(cur.fetchall() if cur.description else cur.statusmessage)\n"
        "except Exception as e:\n"
        "    print(str(e).strip()); sys.exit(1)\n"
    )
    result = host.run("PGPASSWORD=%s python3 -c %s %s %s", password, script, dsn, sql)
    return result.rc, result.stdout.strip()


def evidence(name):
    """A figures/evidence file the side effect wrote; a missing file fails the test (never skips it)."""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-%s-%s.json" % (LAB_NAME, name))
    assert os.path.exists(path), "%s is missing: the side effect did not record it" % path
    with open(path) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def roles(lab_host):
    """{'primary': name, 'replica': name} from the running clusters."""
    found = {}
    for name in ("db1", "db2"):
        found["replica" if psql(lab_host(name), "SELECT pg_is_in_recovery()") == "t" else "primary"] = name
    assert set(found) == {"primary", "replica"}, found
    return found


def test_row_written_on_primary_is_read_on_replica(lab_host, roles):
    marker = str(uuid.uuid4())
    primary = lab_host(roles["primary"])
    psql(primary, "CREATE TABLE IF NOT EXISTS verify_replication (marker text); "
         "INSERT INTO verify_replication VALUES ('%s')" % marker, db="mastodon_production")
    written = psql(primary, "SELECT pg_current_wal_lsn()")
    replica = lab_host(roles["replica"])
    # Wait for the replica to replay past the commit, then read the row: until then the table itself may not
    # exist there yet (a loaded CI machine replayed the CREATE later than the first read).
    replayed = ""
    for _ in range(100):
        replayed = psql(replica, "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % written)
        if replayed == "t":
            break
        time.sleep(0.2)
    assert replayed == "t", "%s never replayed %s's WAL up to %s" % (roles["replica"], roles["primary"], written)
    assert psql(replica, "SELECT count(*) FROM verify_replication WHERE marker = '%s'" % marker, db="mastodon_production") == "1"


def test_replica_streams_through_an_active_slot(lab_host, roles):
    primary = lab_host(roles["primary"])
    assert psql(primary, "SELECT active FROM pg_replication_slots WHERE slot_name = '%s'" % roles["replica"]) == "t"
    assert psql(primary, "SELECT state FROM pg_stat_replication WHERE application_name = '%s'" % roles["replica"]) == "streaming"
    # No stale slot left on the replica to pin its WAL.
    assert psql(lab_host(roles["replica"]), "SELECT count(*) FROM pg_replication_slots") == "0"


def test_app_user_connects_through_pgbouncer_in_transaction_mode(lab_host, lab_addresses):
    rc, out = client(lab_host("web1"), "host=%s port=6432 dbname=mastodon_production user=mastodon" % lab_addresses["pgbouncer1"],
                     "SELECT current_user, inet_server_port()")
    assert rc == 0, out
    assert "'mastodon', 5432" in out
    pgbouncer = lab_host("pgbouncer1")
    rc, out = client(pgbouncer, "host=127.0.0.1 port=6432 dbname=pgbouncer user=pgbouncer_admin", "SHOW CONFIG",
                     password=ADMIN_PASSWORD)
    assert rc == 0, out
    assert "('pool_mode', 'transaction'" in out
    assert "('auth_type', 'hba'" in out


def test_wrong_password_is_refused(lab_host, lab_addresses):
    web1 = lab_host("web1")
    for target in ("host=%s port=6432" % lab_addresses["pgbouncer1"], "host=%s port=5432" % lab_addresses["db1"]):
        rc, out = client(web1, target + " dbname=mastodon_production user=mastodon", "SELECT 1", password="not-the-password")
        assert rc == 1
        assert "authentication failed" in out, out


def test_host_outside_allowed_groups_cannot_reach_postgres(lab_host, lab_addresses, connect_error):
    # mon1 is in no allowed group: the firewall refuses it before Postgres sees it.
    assert connect_error(lab_host("mon1"), lab_addresses["db1"], 5432) == "No route to host"
    assert connect_error(lab_host("mon1"), lab_addresses["pgbouncer1"], 6432) is None  # stats user from monitoring
    # pgbouncer1 reaches 5432 but pg_hba gives it the application user only: no replication.
    rc, out = client(lab_host("pgbouncer1"), "host=%s port=5432 dbname=mastodon_production user=replicator" % lab_addresses["db1"],
                     "SELECT 1", password=REPLICATION_PASSWORD)
    assert rc == 1 and "no pg_hba.conf entry" in out, out


def test_services_bind_to_the_private_address_and_need_the_firewall(lab_host, lab_addresses):
    db1 = lab_host("db1")
    assert db1.socket("tcp://%s:5432" % lab_addresses["db1"]).is_listening
    assert not db1.socket("tcp://0.0.0.0:5432").is_listening
    assert "nftables.service" in db1.check_output("systemctl show -p Requires --value postgresql@15-main").split()
    pgbouncer = lab_host("pgbouncer1")
    assert pgbouncer.socket("tcp://%s:6432" % lab_addresses["pgbouncer1"]).is_listening
    assert not pgbouncer.socket("tcp://0.0.0.0:6432").is_listening
    assert "nftables.service" in pgbouncer.check_output("systemctl show -p Requires --value pgbouncer").split()


def test_pgbouncer_open_files_follow_max_client_conn(lab_host):
    pgbouncer = lab_host("pgbouncer1")
    max_client = int(pgbouncer.check_output("awk -F' = ' '/^max_client_conn/ {print $2}' /etc/pgbouncer/pgbouncer.ini"))
    limit = int(pgbouncer.check_output("systemctl show -p LimitNOFILE --value pgbouncer"))
    assert limit > max_client
    pid = pgbouncer.check_output("systemctl show -p MainPID --value pgbouncer")
    assert str(limit) in pgbouncer.check_output("grep 'Max open files' /proc/%s/limits" % pid)


def test_no_plaintext_password_on_disk(lab_host):
    assert APP_PASSWORD not in lab_host("pgbouncer1").check_output("cat /etc/pgbouncer/userlist.txt")
    assert "SCRAM-SHA-256$4096:" in lab_host("pgbouncer1").check_output("cat /etc/pgbouncer/userlist.txt")


def test_switchovers_under_load_lost_nothing(lab_host, roles):
    figures = evidence("switchover")
    assert figures["acknowledged_inserts"] > 1000
    assert figures["acknowledged_inserts_lost"] == 0, figures
    # Two switchovers (db1 -> db2 -> db1): roles were back where they started.
    assert evidence("roles-after-switchovers") == {"db1": "f", "db2": "t"}


def test_failover_after_host_loss_lost_no_acknowledged_insert():
    # db1's container was killed under numbered inserts through PgBouncer; failover.yml promoted db2.
    # Replication was synchronous by then (the restart block's converges turn it on): every acknowledged insert was on db2.
    figures = evidence("failover")
    back = evidence("old-primary-back")
    lost_at = float(back["host_lost_at"])
    # The gap between acknowledged inserts that began at the loss, and ended when writes resumed.
    resumed = [stall for stall in figures["stalls"] if stall["to"] > lost_at]
    assert resumed and resumed[0]["from"] <= lost_at + 1, (lost_at, figures["stalls"])
    print("failover after host loss: %d acknowledged inserts, %d lost (synchronous replication), %d unacknowledged "
          "but present; write stall from the loss to the first acknowledged insert after it %.3f s (longest %.3f s); "
          "failover.yml done %s s after the loss; load average at the loss %s; errors %s"
          % (figures["acknowledged_inserts"], figures["acknowledged_inserts_lost"],
             figures.get("unacknowledged_inserts_present", -1), resumed[0]["to"] - lost_at,
             figures["longest_write_stall_s"], back["failover_playbook_s"], back["load_average_at_the_loss"], figures["errors_by_kind"]))
    assert figures["acknowledged_inserts"] > 200, figures  # the load ran through the failover
    assert figures["acknowledged_inserts_lost"] == 0, figures["lost_numbers"]
    # Writes resumed on db2 through PgBouncer (the gap that began at the loss ended with an acknowledged insert,
    # checked above). The stall is a figure (printed above; bench/switchover.py --lab --host-loss prints it
    # too), not a pass mark: it moves with the machine's load.


def test_old_primary_host_came_back_and_was_refused_as_a_second_primary(lab_addresses):
    back = evidence("old-primary-back")
    # The start guard refused to start db1's Postgres: nothing accepts writes on db1.
    assert back["unit_state"] != "active", back
    assert back["pg_is_in_recovery"] != "f", back
    assert int(back["write_rc"]) != 0, back
    refusals = [line for line in back["guard_journal"] if "REFUSING" in line]
    assert refusals, back["guard_journal"]
    assert "peer db2 (%s:5432)" % lab_addresses["db2"] in refusals[0], refusals
    assert "timeline" in refusals[0] and "postgresql_replica_rebuild=true" in refusals[0], refusals
    # PgBouncer still pointed at db2 (file and running configuration).
    assert "host=%s " % lab_addresses["db2"] in back["databases_ini"], back["databases_ini"]
    hosts = [row["host"] for row in back["show_databases"] if row["name"] == "mastodon_production"]
    assert hosts == [lab_addresses["db2"]], back["show_databases"]


def test_stale_inventory_after_failover_is_refused_on_every_host_before_any_change(lab_addresses):
    # db1 back, the inventory still naming it postgres_primary: playbooks/site.yml, run as an operator would
    # before editing the inventory, stopped at the live-state check on every host.
    stale = evidence("stale-inventory")
    print("site.yml with the stale inventory: rc %s; %s" % (stale["rc"], stale["refusal"][:1]))
    assert int(stale["rc"]) != 0, stale
    assert stale["refusal"], stale
    text = stale["refusal"][0]
    assert "[primary] The inventory names db1 as postgres_primary, but db2 runs as the primary" in text, text
    assert "Move db2 into postgres_primary and db1 into postgres_replica" in text, text
    assert "--limit db1 -e postgresql_replica_rebuild=true" in text, text
    # Every host of the run failed at that check, and none changed anything.
    recap = dict((line.split()[0], line) for line in stale["recap"])
    assert sorted(recap) == sorted(lab_addresses), stale["recap"]  # the whole fleet ran it
    for host, line in recap.items():
        assert "changed=0" in line and "failed=1" in line, line
    # No play after the live state ran (no role touched a host) ...
    assert not [p for p in stale["plays"] if "Live state" not in p and "Preflight" not in p], stale["plays"]
    # ... and what site.yml would change first is byte for byte what it was.
    assert stale["after"] == stale["before"], (stale["before"], stale["after"])


def test_failover_promoted_db2_and_db1_was_rebuilt_as_its_replica(lab_host, roles, lab_addresses):
    # After the failover the side effect updated the inventory and ran the data-tier plays of site.yml
    # with --limit db1 -e postgresql_replica_rebuild=true; it read the pair before handing the writes back to db1.
    rebuilt = evidence("rebuilt")
    standby = dict((name, row.split("|")) for name, row in rebuilt["servers"].items())
    assert standby["db2"][0] == "f" and standby["db1"][0] == "t", rebuilt
    assert rebuilt["db1_streams_from_db2"] == "streaming", rebuilt
    # The rebuilt replica is a copy of db2: same system identifier; its guard let it start as a standby.
    assert standby["db1"][1] == standby["db2"][1], rebuilt
    assert rebuilt["db1_unit"] == "active", rebuilt
    # PgBouncer pointed at db2 and took the application's writes there.
    hosts = [row["host"] for row in rebuilt["show_databases"] if row["name"] == "mastodon_production"]
    assert hosts == [lab_addresses["db2"]], rebuilt["show_databases"]
    assert "INSERT 0 1" in rebuilt["insert"], rebuilt["insert"]
    # Then a switchover handed the writes back to db1: the lab inventory is true again, and the pair streams.
    assert evidence("roles-after-switchback") == {"db1": "f", "db2": "t"}
    assert roles == {"primary": "db1", "replica": "db2"}
    assert psql(lab_host("db1"), "SELECT state FROM pg_stat_replication WHERE application_name = 'db2'") == "streaming"
    assert "host=%s " % lab_addresses["db1"] in lab_host("pgbouncer1").file("/etc/pgbouncer/databases.ini").content_string
    rc, out = client(lab_host("web1"), "host=%s port=6432 dbname=mastodon_production user=mastodon" % lab_addresses["pgbouncer1"],
                     "INSERT INTO fediops_switchover_probe (run, n) VALUES ('verify-%s', 1)" % uuid.uuid4())
    assert rc == 0 and "INSERT 0 1" in out, out


def test_start_guard_is_installed_and_lets_the_standby_start(lab_host):
    db1 = lab_host("db1")
    dropin = "/etc/systemd/system/postgresql@15-main.service.d/fediops-start-guard.conf"
    assert "ExecStartPre=/usr/bin/python3 /usr/local/sbin/fediops-pg-start-guard" in db1.file(dropin).content_string
    assert "fediops-pg-start-guard" in db1.check_output("systemctl show -p ExecStartPre --value postgresql@15-main")
    config = db1.file("/etc/fediops/pg-start-guard-15-main.json")
    assert config.mode == 0o640 and config.user == "root" and config.group == "postgres"
    assert REPLICATION_PASSWORD not in config.content_string  # the password stays in the 0600 pgpass file
    journal = db1.check_output("journalctl -u postgresql@15-main -o cat --no-pager | grep fediops-pg-start-guard || true")
    assert "starts as a standby" in journal, journal


# ---- Restart discipline (side effect: "Restart discipline - ..." plays) --------------------------------
def _servers(rows):
    """[db1 row, db2 row] of `start|standby|shared_buffers|log_min_duration_statement|pending` -> by name."""
    found = {}
    for name, row in zip(("db1", "db2"), rows):
        start, standby, shared_buffers, log_min, pending = row.split("|")
        found[name] = {"start": float(start), "standby": standby == "t", "shared_buffers": shared_buffers,
                       "log_min_duration_statement": log_min, "pending": [p for p in pending.split(",") if p]}
    return found


def test_reload_only_change_restarted_neither_postgres_nor_pgbouncer():
    ev = evidence("restarts")
    before, after = _servers(ev["before"]), _servers(ev["after_reload"])
    for name in ("db1", "db2"):
        assert after[name]["log_min_duration_statement"] == "3s", (name, after[name])
        assert after[name]["start"] == before[name]["start"], "%s restarted for a reload-only change" % name
        assert after[name]["pending"] == []
    pid, idle_timeout = ev["pgbouncer_after_reload"]
    assert idle_timeout == "601"
    assert pid == ev["pgbouncer_pid_before"], "PgBouncer restarted for a reload-only change"


def test_restart_setting_restarts_the_standby_and_only_reports_the_primary():
    ev = evidence("restarts")
    before, after = _servers(ev["before"]), _servers(ev["after_converge"])
    primary = [n for n in after if not after[n]["standby"]]
    assert primary == ["db1"], after
    assert after["db2"]["start"] > before["db2"]["start"], "the standby was not restarted"
    assert after["db2"]["shared_buffers"] == "200MB" and after["db2"]["pending"] == []
    assert after["db1"]["start"] == before["db1"]["start"], "the primary was restarted without a switchover or opt-in"
    assert after["db1"]["pending"] == ["shared_buffers"]
    assert ev["converge_warning"], "site.yml's data tier did not report the primary's pending restart"
    metric = dict(zip(("db1", "db2"), ev["metric_after_converge"]))
    assert metric["db1"].splitlines()[-1].endswith(" 1") and metric["db2"].splitlines()[-1].endswith(" 0"), metric
    assert ev["pgbouncer_pid_after"] == ev["pgbouncer_pid_before"]


def test_postgres_restart_applied_the_setting_on_both_servers_and_kept_the_roles():
    ev = evidence("restarts")
    before, after = _servers(ev["before"]), _servers(ev["after_restart"])
    for name in ("db1", "db2"):
        assert after[name]["shared_buffers"] == "200MB" and after[name]["pending"] == [], (name, after[name])
        assert after[name]["start"] > before[name]["start"]
    assert not after["db1"]["standby"] and after["db2"]["standby"], "postgres_restart.yml did not switch back"
    assert all(m.splitlines()[-1].endswith(" 0") for m in ev["metric_after_restart"]), ev["metric_after_restart"]


def test_primary_and_replica_were_never_down_together_and_no_insert_was_lost():
    sampler = evidence("restarts")["sampler"]
    assert sampler["samples"] > 100, sampler
    # The sampler saw each server's restart (so it can see downtime at all) ...
    assert sampler["down_samples"]["db1"] > 0 and sampler["down_samples"]["db2"] > 0, sampler
    # ... and never an instant where neither answered.
    assert sampler["both_down_samples"] == 0, sampler["both_down_at"]
    load = evidence("switchover")  # the same numbered-insert load ran through the whole restart block
    assert load["acknowledged_inserts_lost"] == 0, load.get("lost_numbers")
