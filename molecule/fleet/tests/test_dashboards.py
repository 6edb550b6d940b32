"""Every panel of every Grafana dashboard in dashboards/ returns data from the lab's Prometheus (issue 13).

Grafana itself is not installable here, so its part is done by hand: each dashboard's template variables get a
value the lab has (the first value label_values() finds; the datasource variable is not used in queries), the
interval macros a fixed window, and each panel's every query is asked from mon1 (curl to Prometheus on mon1's
private address) through /api/v1/query. An empty result fails, naming the dashboard, panel and query. A query
may be empty for a few scrapes after the converge (rate() needs two samples), so empty ones are asked again
for a short while before the test fails.
"""
import glob
import json
import os
import re
import time

import pytest

MON = "mon1"
PROMETHEUS_PORT = 9090          # fleet_exporter_ports.prometheus
WAIT_SECONDS = 120
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DASHBOARDS = sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json")))
# Grafana's interval macros: windows long enough for rate() at the lab's and production's scrape intervals.
MACROS = {"__rate_interval": "1m", "__interval": "30s", "__range": "1h", "__range_s": "3600", "__interval_ms": "30000"}


@pytest.fixture(scope="module")
def prometheus(lab_host, lab_addresses):
    """prometheus(path, **params) -> the `data` of Prometheus' answer, asked on mon1 with curl."""
    mon1 = lab_host(MON)
    base = "http://%s:%d" % (lab_addresses[MON], PROMETHEUS_PORT)

    def ask(path, **params):
        args = []
        for key, value in params.items():
            args += ["--data-urlencode", "%s=%s" % (key, value)]
        out = mon1.check_output("curl -fsS --max-time 20 --get " + " ".join(["%s"] * len(args)) + " %s", *(args + [base + path]))
        answer = json.loads(out)
        assert answer["status"] == "success", answer
        return answer["data"]
    return ask


def substitute(expr, values):
    def value(match):
        name = match.group(1) or match.group(2) or match.group(3)
        assert name in values, "variable %s of %r has no value" % (name, expr)
        return values[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]", value, expr)


def variable_values(dashboard, prometheus):
    """name -> a value the lab has, escaped for the =~ matchers the dashboards use."""
    values = dict(MACROS)
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = re.match(r"^label_values\((.+),\s*(\w+)\)$", query)
        assert match, query
        selector, label = match.group(1), match.group(2)
        found = sorted(set(series[label] for series in prometheus("/api/v1/series", **{"match[]": selector}) if label in series))
        assert found, "%s: variable %s finds no value (label_values over %s)" % (dashboard["uid"], var["name"], selector)
        # As Grafana does: regex-escaped for =~, then each backslash doubled inside PromQL's string literal.
        values[var["name"]] = re.escape(found[0]).replace("\\", "\\\\")
    return values


def queries():
    for path in DASHBOARDS:
        with open(path) as handle:
            dashboard = json.load(handle)
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield dashboard, panel, target


def test_there_are_dashboards_to_check():
    assert len(DASHBOARDS) >= 6, DASHBOARDS
    assert len(list(queries())) >= 40


def test_every_panel_query_returns_data_from_the_lab(prometheus):
    pending = {}
    values = {}
    for dashboard, panel, target in queries():
        if dashboard["uid"] not in values:
            values[dashboard["uid"]] = variable_values(dashboard, prometheus)
        expr = substitute(target["expr"], values[dashboard["uid"]])
        key = "%s / %s [%s]" % (dashboard["title"], panel["title"], target["refId"])
        pending[key] = expr
    total = len(pending)
    deadline = time.monotonic() + WAIT_SECONDS
    while pending:
        for key, expr in list(pending.items()):
            if prometheus("/api/v1/query", query=expr)["result"]:
                del pending[key]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(5)
    print("dashboard queries with data: %d of %d" % (total - len(pending), total))
    assert pending == {}, "panel queries without data after %d s: %s" % (
        WAIT_SECONDS, json.dumps(pending, indent=1, sort_keys=True))
