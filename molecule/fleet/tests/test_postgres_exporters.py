"""The data tier's Prometheus exporters (issue 13), after the side effect's switchovers and failover.

mon1 (group monitoring) scrapes the Postgres exporter on db1 and db2 and the PgBouncer exporter on
pgbouncer1; web1 (an application host) is refused by the firewall. Which server is the primary is asked
of the running clusters.
"""
import os

import pytest
import yaml

from exposition import only, scrape

with open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "inventories", "lab", "group_vars", "all",
                       "secrets.yml")) as _handle:
    LAB_MONITOR_PASSWORD = yaml.safe_load(_handle)["postgresql_monitor_password"]


@pytest.fixture(scope="module")
def pg_roles(lab_host):
    """{'primary': name, 'replica': name} from the running clusters."""
    found = {}
    for name in ("db1", "db2"):
        standby = lab_host(name).check_output("su postgres -c \"psql -X -At -c 'SELECT pg_is_in_recovery()'\"")
        found["replica" if standby == "t" else "primary"] = name
    assert set(found) == {"primary", "replica"}, found
    return found


@pytest.fixture(scope="module")
def pg_metrics(lab_host, lab_addresses):
    return {name: scrape(lab_host("mon1"), "http://%s:9187/metrics" % lab_addresses[name]) for name in ("db1", "db2")}


def test_postgres_exporter_logs_in_and_every_custom_query_runs(pg_metrics):
    for name, metrics in pg_metrics.items():
        assert only(metrics, "pg_up") == 1, name
        # 0.11 sets it to 1 when any custom query (namespace) failed: the archive ages' queries ran too.
        assert only(metrics, "pg_exporter_last_scrape_error") == 0, name
        assert only(metrics, "pg_settings_max_connections") >= 100, name
        assert only(metrics, "fediops_pg_archiver_archived_count") >= 0, name
        assert only(metrics, "fediops_pg_archiver_failed_count") >= 0, name
        assert any(dict(labels).get("datname") == "mastodon_production"
                   for labels in metrics.get("pg_stat_database_numbackends", {})), name


def test_postgres_exporter_tells_primary_from_standby_and_measures_the_standby(pg_metrics, pg_roles):
    primary, replica = pg_metrics[pg_roles["primary"]], pg_metrics[pg_roles["replica"]]
    assert only(primary, "fediops_pg_in_recovery") == 0
    assert only(replica, "fediops_pg_in_recovery") == 1
    # The primary: one slot and one replay-lag series, both named after the standby (its slot / application_name).
    # (0.11 adds a `server` label - the socket - to every custom series.)
    slots = primary.get("fediops_pg_replication_slot_retained_bytes", {})
    assert [dict(labels)["slot_name"] for labels in slots] == [pg_roles["replica"]], slots
    assert 0 <= list(slots.values())[0] < 1024 ** 3, slots
    lag = primary.get("fediops_pg_replication_replay_lag_bytes", {})
    assert [dict(labels)["application_name"] for labels in lag] == [pg_roles["replica"]], lag
    assert 0 <= list(lag.values())[0] < 1024 ** 3, lag
    # The standby streams to nobody; its query asked no pg_current_wal_lsn() (an error in recovery).
    assert replica.get("fediops_pg_replication_replay_lag_bytes", {}) == {}


def test_pgbouncer_exporter_reads_the_pools(lab_host, lab_addresses):
    metrics = scrape(lab_host("mon1"), "http://%s:9127/metrics" % lab_addresses["pgbouncer1"])
    assert only(metrics, "pgbouncer_up") == 1
    assert only(metrics, "pgbouncer_databases") >= 1
    pool = metrics.get("pgbouncer_pool_size", {})
    assert any(dict(labels).get("database") == "mastodon_production" and value > 0 for labels, value in pool.items()), pool
    assert any(dict(labels).get("database") == "mastodon_production" for labels in metrics.get("pgbouncer_waiting_clients", {}))
    # SHOW STATS' current columns (PgBouncer 1.18), which the packaged exporter alone cannot read.
    queries = metrics.get("pgbouncer_queries_total", {})
    assert any(dict(labels).get("database") == "mastodon_production" and value > 0 for labels, value in queries.items()), queries


def test_exporters_listen_on_the_private_address_only_for_monitoring(lab_host, lab_addresses, connect_error):
    for name, port in (("db1", 9187), ("db2", 9187), ("pgbouncer1", 9127)):
        host = lab_host(name)
        assert host.socket("tcp://%s:%d" % (lab_addresses[name], port)).is_listening, (name, port)
        assert not host.socket("tcp://0.0.0.0:%d" % port).is_listening, (name, port)
        assert connect_error(lab_host("web1"), lab_addresses[name], port) == "No route to host", (name, port)
    unit = lab_host("db1").check_output("systemctl show -p Requires --value prometheus-postgres-exporter")
    assert "nftables.service" in unit.split()


def test_postgres_exporter_stores_no_password(lab_host):
    # Peer login over the socket (pg_ident.conf maps the exporter's OS user to the monitoring role).
    settings = lab_host("db1").file("/etc/default/prometheus-postgres-exporter").content_string
    assert "user=fediops_monitor host=/var/run/postgresql" in settings
    assert "password=" not in settings.lower()
    assert LAB_MONITOR_PASSWORD not in settings
    env = lab_host("pgbouncer1").file("/etc/fediops/pgbouncer-exporter.env")
    assert env.mode == 0o600 and env.user == "root"
