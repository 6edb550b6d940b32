"""playbooks/preflight.yml refuses bad input with a message naming the variable, touching no host.

The preflight only runs controller-side checks (argument specs, asserts), so it runs here against
the lab inventory without any lab host existing (connection "local": nothing in a preflight may
act on a host).
"""
import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")


def run_preflight(tmp_path, limit="db1,mon1,web1", **extra_vars):
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(tmp_path / "facts")
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(extra_vars))
    cmd = [
        "ansible-playbook", os.path.join(REPO, "playbooks", "preflight.yml"),
        "-i", os.path.join(REPO, "inventories", "lab"),
        "--limit", limit,
        "-e", "ansible_connection=local",
        "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python"),
        "-e", "@%s" % extra,
    ]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)


def test_valid_lab_inventory_passes(tmp_path):
    result = run_preflight(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_empty_ssh_sources_is_refused_naming_the_variable(tmp_path):
    result = run_preflight(tmp_path, common_firewall_ssh_sources=[])
    assert result.returncode != 0
    assert "common_firewall_ssh_sources is empty" in result.stdout


def test_wrong_type_is_refused_by_the_argument_spec(tmp_path):
    result = run_preflight(tmp_path, common_firewall_ssh_port="ssh")
    assert result.returncode != 0
    assert "common_firewall_ssh_port" in result.stdout


def test_unknown_group_for_exporter_peers_is_refused(tmp_path):
    result = run_preflight(tmp_path, common_node_exporter_allowed_groups=["prometheus_servers"])
    assert result.returncode != 0
    assert "prometheus_servers" in result.stdout


@pytest.mark.parametrize("hosts", ["db1,mon1,web1"])
def test_a_failure_on_one_host_stops_every_host(tmp_path, hosts):
    # any_errors_fatal: the recap must show no host that went on past the failing task.
    result = run_preflight(tmp_path, limit=hosts, common_firewall_ssh_sources=[])
    assert "NO MORE HOSTS LEFT" in result.stdout or "failed=1" in result.stdout
    assert result.stdout.count("failed=1") == len(hosts.split(","))


# ---- Mastodon app tier (issue 5): bad input fails in the preflight, naming the problem ----

@pytest.fixture(scope="module", autouse=True)
def fixture_artifacts():
    # The lab inventory points mastodon_release_artifact_src at the fixture's artifacts; the
    # preflight verifies their checksums, so they must exist (build.sh is deterministic, < 1 s).
    subprocess.run(["bash", os.path.join(REPO, "lab", "fixture", "build.sh")], check=True, capture_output=True)


LAB_POOLS = [
    {"name": "default", "hosts": ["sidekiq1"], "concurrency": 3, "queues": ["default"]},
    {"name": "ingress", "hosts": ["sidekiq1"], "concurrency": 2, "queues": ["ingress"]},
    {"name": "scheduler", "hosts": ["sidekiq1"], "concurrency": 1, "queues": ["scheduler"]},
    {"name": "push", "hosts": ["sidekiq2"], "concurrency": 2, "queues": ["push"]},
    {"name": "pull", "hosts": ["sidekiq2"], "concurrency": 2, "queues": ["pull,2", "fasp,1"]},
    {"name": "mailers", "hosts": ["sidekiq2"], "concurrency": 1, "queues": ["mailers"]},
]


def _pools(**changes):
    return [dict(pool, **changes.get(pool["name"], {})) for pool in LAB_POOLS if changes.get(pool["name"]) != "drop"]


def test_valid_app_tier_passes(tmp_path):
    result = run_preflight(tmp_path, limit="web1,sidekiq1")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("extra, limit, message", [
    ({"mastodon_sidekiq_pools": _pools(default={"queues": ["default", "scheduler"]})}, "sidekiq1",
     "queue scheduler must run in exactly one sidekiq process, found 2"),
    ({"mastodon_sidekiq_pools": _pools(scheduler={"hosts": ["sidekiq1", "sidekiq2"]})}, "sidekiq1",
     "queue scheduler must run in exactly one sidekiq process, found 2"),
    ({"mastodon_sidekiq_pools": _pools(mailers="drop")}, "sidekiq1",
     "queue mailers is not served by any sidekiq pool"),
    ({"mastodon_sidekiq_pools": _pools(default={"db_pool": 1})}, "sidekiq1",
     "default: db_pool 1 is below concurrency 3"),
    # The one connection budget, checked on the pooler: a pool grown past PgBouncer's (overridden) limit.
    ({"mastodon_sidekiq_pools": _pools(default={"concurrency": 40}), "pgbouncer_max_client_conn": 90}, "pgbouncer1",
     "the application fleet can open 104 client connections (web 6 + streaming 40 + sidekiq 48 (default 40, ingress 2, mailers 1, "
     "pull 2, push 2, scheduler 1) + reserve 10 = 104) but PgBouncer accepts 90 (pgbouncer_max_client_conn 90 x 1 pooler(s))"),
    ({"mastodon_config_active_record_encryption_primary_key": ""}, "web1",
     "needs ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY, missing on web1"),
    ({"mastodon_config_extra": {"SIDEKIQ_THREADZ": "5"}}, "web1",
     "Unknown env key SIDEKIQ_THREADZ"),
    ({"mastodon_config_extra": {"DB_HOST": "10.0.0.1"}}, "web1",
     "sets DB_HOST, which is set from mastodon_config_db_host"),
    ({"mastodon_config_extra": {"SKIP_POST_DEPLOYMENT_MIGRATIONS": "false"}}, "web1",
     "SKIP_POST_DEPLOYMENT_MIGRATIONS (any value, even false"),
    ({"mastodon_config_prepared_statements": True}, "web1",
     "mastodon_config_prepared_statements is true while mastodon_config_db_pool_mode is transaction"),
    ({"mastodon_release_artifact_checksum": "0" * 64}, "web1",
     "Checksum mismatch"),
    ({"mastodon_web_max_threads": "many"}, "web1",
     "mastodon_web_max_threads"),
])
def test_bad_app_tier_input_is_refused_naming_the_problem(tmp_path, extra, limit, message):
    result = run_preflight(tmp_path, limit=limit, **extra)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-3000:]


def test_refusals_never_print_secret_values(tmp_path):
    result = run_preflight(tmp_path, limit="web1", mastodon_config_extra={"NOPE": "x"})
    assert result.returncode != 0
    import yaml
    with open(os.path.join(REPO, "inventories", "lab", "group_vars", "all", "secrets.yml")) as handle:
        lab_secrets = yaml.safe_load(handle)
    for name in ("fediops_lab_db_app_password", "redis_app_password"):
        assert lab_secrets[name] not in result.stdout, name


def test_upstream_source_passes_without_an_artifact(tmp_path):
    # The production default: the release is built once from the git tag, no artifact to verify here.
    result = run_preflight(tmp_path, limit="web1", mastodon_release_source="upstream", mastodon_release_version="v4.5.2",
                           mastodon_release_mastodon_version="4.5.2")
    assert result.returncode == 0, result.stdout[-3000:]
