"""Every Grafana dashboard in dashboards/ is provisioning JSON Grafana loads as it is: a uid and title of its own,
the Prometheus datasource as a template variable (the uid differs per Grafana), panels with unique ids, a grid
position and queries (targets with expr) on that datasource, and only variables the dashboard defines. Every
metric a query names is one the fleet exports: the monitoring contract's own (fediops_*) or the Debian exporters'
real names (checked against prometheus-postgres-exporter 0.11, -redis-exporter 1.45, -nginx-exporter 0.11,
-pgbouncer-exporter 1.7, -node-exporter 1.5, -blackbox-exporter 0.23). molecule/fleet/tests/test_dashboards.py
runs every query against the lab's Prometheus."""
import glob
import json
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DASHBOARDS = sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json")))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
BUILTINS = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}
TIERS = {"key-vitals", "postgres", "redis", "sidekiq", "edges", "hosts"}

KNOWN_METRICS = {
    # prometheus (every job)
    "up",
    # node exporter 1.5 (job node) and the textfile collector (common, cdn_edge, pgbackrest roles)
    "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_cpu_seconds_total", "node_load1",
    "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes", "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total", "node_uname_info",
    "fediops_firewall_loaded", "fediops_tls_cert_not_after_seconds",
    "fediops_pgbackrest_info_success", "fediops_pgbackrest_last_backup_completion_seconds",
    # postgres exporter 0.11 (job postgres) and the fleet's custom queries
    "pg_up", "pg_settings_max_connections", "pg_stat_database_numbackends", "pg_stat_database_xact_commit",
    "pg_stat_database_xact_rollback", "pg_stat_database_blks_hit", "pg_stat_database_blks_read", "pg_database_size_bytes",
    "fediops_pg_in_recovery", "fediops_pg_archiver_archived_count", "fediops_pg_archiver_failed_count",
    "fediops_pg_archiver_last_archived_age_seconds", "fediops_pg_replication_slot_retained_bytes",
    "fediops_pg_replication_replay_lag_bytes",
    # pgbouncer exporter 1.7 (job pgbouncer; pgbouncer_up and pgbouncer_queries_total from the role's shim)
    "pgbouncer_up", "pgbouncer_active_clients", "pgbouncer_waiting_clients", "pgbouncer_queries_total",
    # redis exporter 1.45 (job redis)
    "redis_up", "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_connected_clients",
    "redis_commands_processed_total", "redis_keyspace_hits_total", "redis_keyspace_misses_total",
    "redis_evicted_keys_total", "redis_db_keys", "redis_rdb_last_bgsave_status", "redis_aof_last_write_status",
    # nginx exporter 0.11 (job nginx)
    "nginx_up", "nginx_http_requests_total", "nginx_connections_active", "nginx_connections_reading",
    "nginx_connections_writing", "nginx_connections_waiting", "nginx_connections_accepted", "nginx_connections_handled",
    # blackbox exporter 0.23 (jobs blackbox_http, blackbox_tcp)
    "probe_success", "probe_duration_seconds", "probe_ssl_earliest_cert_expiry",
    # the fleet's Sidekiq exporter (job sidekiq)
    "fediops_sidekiq_up", "fediops_sidekiq_queue_size", "fediops_sidekiq_queue_latency_seconds",
    "fediops_sidekiq_pool_processes", "fediops_sidekiq_pool_busy", "fediops_sidekiq_pool_heartbeat_age_seconds",
    "fediops_sidekiq_retry_size", "fediops_sidekiq_scheduled_size", "fediops_sidekiq_dead_size",
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}


def load(path):
    with open(path) as handle:
        return json.load(handle)


def panels(dashboard):
    """Every panel, rows' nested panels included (rows themselves have no queries)."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def query_panels(dashboard):
    return [p for p in panels(dashboard) if p["type"] != "row"]


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, label names or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                       # string literals
    text = re.sub(r"\{[^}]*\}", "", text)                                  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                                 # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)   # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def variables(expr):
    return set(re.findall(r"\$\{?(\w+)", expr)) | set(re.findall(r"\[\[(\w+)\]\]", expr))


def test_there_is_a_key_vitals_dashboard_and_one_per_tier():
    names = set(os.path.basename(p)[:-len(".json")] for p in DASHBOARDS)
    assert names == TIERS, names


def test_uids_and_titles_are_unique_across_dashboards():
    dashboards = [load(p) for p in DASHBOARDS]
    uids = [d["uid"] for d in dashboards]
    titles = [d["title"] for d in dashboards]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles), (uids, titles)
    for uid in uids:
        assert re.match(r"^[a-zA-Z0-9_-]{1,40}$", uid), uid          # Grafana's uid limit


@pytest.mark.parametrize("path", DASHBOARDS, ids=os.path.basename)
def test_dashboard_is_valid_provisioning_json(path):
    dashboard = load(path)
    assert "id" not in dashboard or dashboard["id"] is None, "provisioned dashboards carry no database id"
    assert dashboard["title"].startswith("fediops / ") and "fediops" in dashboard["tags"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    defined = dict((v["name"], v) for v in dashboard["templating"]["list"])
    datasource = defined.get("datasource")
    assert datasource and datasource["type"] == "datasource" and datasource["query"] == "prometheus", defined.keys()
    for var in defined.values():
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE, var["name"]
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            assert re.match(r"^label_values\(.+,\s*\w+\)$", query), (var["name"], query)
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "duplicate panel ids in %s: %s" % (os.path.basename(path), ids)
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(query_panels(dashboard)) >= 6
    for panel in query_panels(dashboard):
        where = "%s panel %d %r" % (os.path.basename(path), panel["id"], panel["title"])
        assert panel["type"] in ("timeseries", "stat", "gauge", "table", "bargauge"), where
        assert panel["datasource"] == DATASOURCE, where
        assert panel.get("description"), where
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, where
        assert panel["targets"], where
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), where
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, where
            expr = target["expr"]
            assert expr.strip(), where
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), (where, expr)
            undefined = variables(expr) - set(defined) - BUILTINS
            assert undefined == set(), (where, undefined)


@pytest.mark.parametrize("path", DASHBOARDS, ids=os.path.basename)
def test_every_query_names_metrics_the_fleet_exports(path):
    dashboard = load(path)
    unknown = {}
    exprs = [t["expr"] for p in query_panels(dashboard) for t in p["targets"]]
    exprs += [re.sub(r"^label_values\((.+),\s*\w+\)$", r"\1", v["query"]["query"])
              for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        for name in names - KNOWN_METRICS:
            unknown.setdefault(name, expr)
    assert unknown == {}, unknown


def test_metric_name_parser():
    assert metric_names('sum by (queue) (rate(nginx_http_requests_total{job="nginx",x=~"a|b"}[$__rate_interval])) / up') == {
        "nginx_http_requests_total", "up"}
    assert metric_names("time() - max by (stanza, type) (fediops_pgbackrest_last_backup_completion_seconds)") == {
        "fediops_pgbackrest_last_backup_completion_seconds"}
    assert metric_names("predict_linear(node_filesystem_avail_bytes{a=\"b\"}[6h], 4 * 3600)") == {"node_filesystem_avail_bytes"}


def test_the_key_vitals_cover_hachyderms_public_dashboard():
    dashboard = load(os.path.join(REPO, "dashboards", "key-vitals.json"))
    exprs = " ".join(t["expr"] for p in query_panels(dashboard) for t in p["targets"])
    for metric in ("nginx_http_requests_total", "fediops_sidekiq_queue_latency_seconds", "fediops_sidekiq_pool_busy",
                   "pg_stat_database_numbackends", "fediops_pg_replication_replay_lag_bytes", "redis_memory_used_bytes",
                   "node_filesystem_avail_bytes", "fediops_pgbackrest_last_backup_completion_seconds"):
        assert metric in exprs, metric
