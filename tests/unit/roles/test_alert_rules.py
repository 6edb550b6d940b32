"""The monitoring role's alert rules: rendered with the role's defaults, checked and unit-tested by promtool.

The rule templates (roles/monitoring/templates/rules/*.yml.j2) are rendered by Ansible itself
(tests/promtool/render_rules.yml against tests/promtool/inventory.yml), then:
- `promtool check rules` on every rendered file,
- `promtool test rules` on every tests/promtool/*_test.yml (each alert: a firing and a not-firing case),
- every alert carries severity, summary and a runbook link whose anchor is a section of docs/monitoring.md.

promtool is Debian's, unpacked by lab/bootstrap.sh into .cache/prometheus/ (no Prometheus server on the
controller). Without it these tests fail: run `make bootstrap`.
"""
import glob
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
PROMTOOL = os.path.join(REPO, ".cache", "prometheus", "promtool")
PROMTOOL_TESTS = os.path.join(REPO, "tests", "promtool")
TEMPLATES = os.path.join(REPO, "roles", "monitoring", "templates", "rules")
DOC = os.path.join(REPO, "docs", "monitoring.md")
DEFAULTS = os.path.join(REPO, "roles", "monitoring", "defaults", "main.yml")


def render(out_dir, **extra_vars):
    """Render every rule template into out_dir with Ansible (extra_vars override the defaults)."""
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = os.path.join(out_dir, ".facts")
    extra_file = os.path.join(out_dir, ".extra.json")
    with open(extra_file, "w", encoding="utf-8") as f:
        json.dump(dict(extra_vars, rules_out=out_dir), f)
    cmd = ["ansible-playbook", os.path.join(PROMTOOL_TESTS, "render_rules.yml"),
           "-i", os.path.join(PROMTOOL_TESTS, "inventory.yml"), "-e", "@" + extra_file]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(glob.glob(os.path.join(out_dir, "*.yml")))


def promtool(*args, cwd=None):
    assert os.access(PROMTOOL, os.X_OK), (
        "promtool is missing at %s: run `make bootstrap` (lab/bootstrap.sh unpacks it from Debian's "
        "prometheus package)" % PROMTOOL)
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, check=False)


def alerts_of(rule_files):
    found = []
    for path in rule_files:
        with open(path, encoding="utf-8") as f:
            for group in yaml.safe_load(f)["groups"]:
                found += [dict(rule, file=os.path.basename(path)) for rule in group["rules"] if "alert" in rule]
    return found


def doc_anchors():
    """GitHub's anchors of the doc's headings (lower case, punctuation dropped, spaces to dashes)."""
    with open(DOC, encoding="utf-8") as f:
        headings = re.findall(r"^#+\s+(.+?)\s*$", f.read(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("rules"))
    files = render(out)
    assert [os.path.basename(p) for p in files] == sorted(
        os.path.basename(p)[:-len(".j2")] for p in glob.glob(os.path.join(TEMPLATES, "*.yml.j2")))
    return out, files


@pytest.fixture(scope="module")
def defaults():
    with open(DEFAULTS, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def promtool_tests():
    paths = sorted(glob.glob(os.path.join(PROMTOOL_TESTS, "*_test.yml")))
    assert paths, "no promtool tests in tests/promtool"
    tests = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            tests[os.path.basename(path)] = yaml.safe_load(f)
    return tests


def test_promtool_is_debians_and_present():
    result = promtool("--version")
    assert result.returncode == 0, result.stderr
    assert "promtool, version 2." in result.stdout + result.stderr


def test_every_rule_file_passes_promtool_check_rules(rendered):
    files = rendered[1]
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def test_promtool_test_rules_passes(rendered, promtool_tests):
    out = rendered[0]
    for name in promtool_tests:
        shutil.copy(os.path.join(PROMTOOL_TESTS, name), out)
    result = promtool("test", "rules", *sorted(promtool_tests), cwd=out)
    print(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_every_rule_file_has_a_promtool_test(rendered, promtool_tests):
    files = rendered[1]
    tested = {rule_file for test in promtool_tests.values() for rule_file in test["rule_files"]}
    assert {os.path.basename(p) for p in files} <= tested


def test_every_alert_has_a_firing_and_a_not_firing_case(rendered, promtool_tests):
    firing, quiet = set(), set()
    for test_file in promtool_tests.values():
        for case in test_file["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in alerts_of(rendered[1])}
    assert names - firing == set(), "alerts without a firing case"
    assert names - quiet == set(), "alerts without a not-firing case (exp_alerts: [])"
    assert (firing | quiet) - names == set(), "tests of alerts that do not exist"


def test_every_alert_has_severity_summary_and_a_runbook_section(rendered, defaults):
    anchors = doc_anchors()
    base = defaults["monitoring_runbook_base_url"]
    alerts = alerts_of(rendered[1])
    assert len({a["alert"] for a in alerts}) == len(alerts), "an alert name is used twice"
    for alert in alerts:
        name = alert["alert"]
        assert alert.get("labels", {}).get("severity") in ("page", "ticket"), name
        annotations = alert.get("annotations", {})
        assert len(annotations.get("summary", "")) > 40, name
        assert annotations.get("runbook") == "%s#%s" % (base, name.lower()), name
        assert name.lower() in anchors, "docs/monitoring.md has no section %s" % name
        assert re.fullmatch(r"\d+s", alert.get("for", "")), name


def test_every_metric_the_rules_read_is_listed_in_the_doc(rendered):
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    metric = re.compile(r"\b((?:fediops|pg|pgbouncer|redis|node|probe)_[a-z0-9_]+|up)\b")
    missing = set()
    for alert in alerts_of(rendered[1]):
        # label matchers and quoted strings are not metric names
        expr = re.sub(r"\{[^}]*\}|\"[^\"]*\"", "", alert["expr"])
        missing |= {m for m in metric.findall(expr) if not re.search(r"`%s[`{]" % m, doc)}
    assert missing == set()


def test_the_lab_shortens_every_for_and_thresholds_are_per_queue(tmp_path):
    files = render(str(tmp_path), monitoring_alert_for_scale=0.1,
                   monitoring_alert_for_overrides={"FirewallNotLoaded": 30},
                   monitoring_alert_queue_latency_seconds={"default": 100, "mailers": 10},
                   monitoring_alert_postgres_standbys=0)
    alerts = {a["alert"]: a for a in alerts_of(files)}
    assert alerts["SidekiqQueueLatencyHigh"]["for"] == "30s"
    assert alerts["FirewallNotLoaded"]["for"] == "3s"
    expr = " ".join(alerts["SidekiqQueueLatencyHigh"]["expr"].split())
    assert expr == ('fediops_sidekiq_queue_latency_seconds{queue="mailers"} > 10 or '
                    'fediops_sidekiq_queue_latency_seconds{queue!~"mailers"} > 100')
    # no replica in the inventory: nothing to stream to, no alert for it
    assert "PostgresReplicaDown" not in alerts
    assert promtool("check", "rules", *files).returncode == 0
