"""The Mastodon app tier after converge, idempotence and the v1 -> v2 -> rollback side effect.

Everything is read back from the running system: HTTP answers, the rows jobs wrote into Postgres,
systemd's view of the units, the rendered environment and the log of every playbook run.
"""
import json
import os
import time
import uuid

import pytest

WEB = ["web1", "web2"]
SIDEKIQ = ["sidekiq1", "sidekiq2"]
APP = WEB + SIDEKIQ
STREAMING_PORTS = [4000, 4001]
BASE = "/home/mastodon"
# Queue -> (pool, host) in inventories/lab/group_vars/all/mastodon.yml.
OWNER = {
    "default": ("default", "sidekiq1"),
    "ingress": ("ingress", "sidekiq1"),
    "scheduler": ("scheduler", "sidekiq1"),
    "push": ("push", "sidekiq2"),
    "pull": ("pull", "sidekiq2"),
    "fasp": ("pull", "sidekiq2"),
    "mailers": ("mailers", "sidekiq2"),
}


def sql(lab_host, query):
    out = lab_host("db1").check_output("sudo -u postgres psql -d mastodon_production -AtF '|' -c %s", query)
    return [line.split("|") for line in out.splitlines() if line]


def http(host, address, path, method="GET"):
    """(status, headers dict, body) of a request made on `host` itself (loopback path, firewall allows it)."""
    script = (
        "import json,sys,urllib.request\n"
        "r=urllib.request.Request(sys.argv[1],method=sys.argv[2])\n"
        "try:\n    resp=urllib.request.urlopen(r,timeout=10)\nexcept urllib.error.HTTPError as e:\n    resp=e\n"
        "print(json.dumps([resp.status,dict(resp.headers),resp.read().decode()]))\n"
    )
    status, headers, body = json.loads(host.check_output("python3 -c %s %s %s", script, "http://%s%s" % (address, path), method))
    return status, {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture(scope="module")
def env(lab_host):
    text = lab_host("web1").file("/etc/mastodon/env.production").content_string
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {k: v.strip("'") for k, v in pairs}


def test_health_answers_on_both_web_hosts_as_v1(lab_host, lab_addresses):
    for name in WEB:
        status, headers, body = http(lab_host(name), "%s:3000" % lab_addresses[name], "/health")
        assert (status, body) == (200, "OK"), name
        assert headers["x-fixture-version"] == "v1.0.0", name


def test_streaming_health_on_every_instance_as_v1(lab_host, lab_addresses):
    for name in WEB:
        for port in STREAMING_PORTS:
            status, headers, body = http(lab_host(name), "%s:%d" % (lab_addresses[name], port), "/api/v1/streaming/health")
            assert (status, body) == (200, "OK"), (name, port)
            assert headers["x-fixture-version"] == "v1.0.0", (name, port)
            assert lab_host(name).service("mastodon-streaming@%d" % port).is_enabled


def test_current_is_v1_after_the_rollback_and_v2_stays_installed(lab_host):
    for name in APP:
        host = lab_host(name)
        assert host.check_output("readlink -f %s/current", BASE) == BASE + "/releases/v1.0.0", name
        assert host.check_output("readlink -f %s/previous", BASE) == BASE + "/releases/v2.0.0", name
        assert host.file(BASE + "/releases/v2.0.0/VERSION").exists


def test_every_sidekiq_process_runs_v1(lab_host):
    for name in SIDEKIQ:
        host = lab_host(name)
        units = host.check_output("systemctl list-units --state=running --plain --no-legend 'mastodon-sidekiq@*' | awk '{print $1}'").split()
        assert units, name
        for unit in units:
            pid = host.check_output("systemctl show -p MainPID --value %s", unit)
            assert host.check_output("readlink /proc/%s/cwd", pid) == BASE + "/releases/v1.0.0", unit


def test_v2_migrations_ran_pre_and_post(lab_host):
    versions = {row[0] for row in sql(lab_host, "SELECT version FROM schema_migrations")}
    assert {"20250610090000", "20250610090100", "20250610100000"} <= versions


def test_each_queue_is_processed_by_the_pool_that_owns_it(lab_host, lab_addresses):
    web1 = lab_host("web1")
    note = "mol-%s" % uuid.uuid4().hex[:12]
    for queue in OWNER:
        status, _h, body = http(web1, "%s:3000" % lab_addresses["web1"], "/fixture/enqueue?queue=%s&note=%s" % (queue, note), "POST")
        assert status == 202, body
    deadline = time.time() + 60
    rows = []
    while time.time() < deadline:
        rows = sql(lab_host, "SELECT queue, process_tag, hostname, process_queues FROM fixture_jobs WHERE note = '%s'" % note)
        if len(rows) >= len(OWNER):
            break
        time.sleep(2)
    ran = {queue: (tag, hostname) for queue, tag, hostname, _q in rows}
    assert ran == OWNER
    # The weighted queue list reached Sidekiq: the pull pool lists pull (weight 2) and fasp (weight 1).
    assert {q for queue, _t, _h, q in rows if queue == "fasp"} == {"pull,2 fasp"}


def test_only_one_process_runs_scheduled_jobs(lab_host):
    # FIXTURE_SCHEDULER_INTERVAL is 10 s in the lab: a 35 s window holds ticks from every process that schedules.
    host = lab_host("sidekiq1")
    started = int(host.check_output("systemctl show -p ActiveEnterTimestamp --value mastodon-sidekiq@scheduler | xargs -I{} date -d {} +%s"))
    time.sleep(max(0, started + 35 - time.time()))
    rows = sql(lab_host, "SELECT DISTINCT enqueued_by, process_tag, hostname FROM fixture_jobs "
                         "WHERE job_class LIKE '%SchedulerTick%' AND created_at > now() - interval '35 seconds'")
    assert len(rows) == 1, rows
    enqueued_by, tag, hostname = rows[0]
    assert enqueued_by.startswith("sidekiq1:") and tag == "scheduler" and hostname == "sidekiq1"


def test_pools_db_pool_equals_concurrency_and_stop_timeout_exceeds_sidekiq_timeout(lab_host):
    host = lab_host("sidekiq2")
    environment = host.check_output("systemctl show -p Environment --value mastodon-sidekiq@pull")
    assert "DB_POOL=2" in environment.split() and "SIDEKIQ_CONCURRENCY=2" in environment.split()
    assert "-c 2 -t 25 -g pull -q pull,2 -q fasp,1" in host.check_output("systemctl show -p ExecStart --value mastodon-sidekiq@pull")
    assert host.check_output("systemctl show -p TimeoutStopUSec --value mastodon-sidekiq@pull") == "40s"


def test_units_are_hardened_like_upstream(lab_host):
    host = lab_host("web1")
    show = host.check_output("systemctl show -p ProtectSystem -p NoNewPrivileges -p PrivateUsers -p User -p SystemCallFilter mastodon-web")
    assert "ProtectSystem=strict" in show and "NoNewPrivileges=yes" in show and "PrivateUsers=yes" in show
    assert "User=mastodon" in show and "SystemCallFilter=" in show
    assert host.check_output("systemctl show -p Environment --value mastodon-web").count("PWD=%s/current" % BASE) == 1


def test_environment_is_identical_everywhere_and_wired_for_this_topology(lab_host, lab_addresses, env):
    digests = {lab_host(name).check_output("sha256sum /etc/mastodon/env.production | cut -d' ' -f1") for name in APP}
    assert len(digests) == 1
    f = lab_host("sidekiq1").file("/etc/mastodon/env.production")
    assert (f.user, f.group, f.mode) == ("root", "mastodon", 0o640)
    prefix = lab_addresses["db1"].rsplit(".", 1)[0]
    assert (env["DB_HOST"], env["DB_PORT"], env["PREPARED_STATEMENTS"]) == (lab_addresses["pgbouncer1"], "6432", "false")
    assert (env["REPLICA_DB_HOST"], env["REPLICA_DB_PORT"]) == (prefix + ".12", "5432")
    assert env["REDIS_URL"].endswith("@%s:6379/0" % lab_addresses["redis-persistent"])
    assert env["SIDEKIQ_REDIS_URL"] == env["REDIS_URL"]
    assert env["CACHE_REDIS_URL"].endswith("@%s:6380/0" % lab_addresses["redis-cache"])
    assert env["S3_ENABLED"] == "true" and env["S3_BUCKET"] == "mastodon-media" and env["S3_ALIAS_HOST"]
    assert env["TRUSTED_PROXY_IP"].split(",") == [prefix + ".61", prefix + ".62"]
    for key in ("SECRET_KEY_BASE", "VAPID_PRIVATE_KEY", "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY"):
        assert env[key]
    assert "BIND" not in env and "SKIP_POST_DEPLOYMENT_MIGRATIONS" not in env


def test_no_prepared_statements_through_pgbouncer(lab_host, lab_addresses):
    _s, _h, body = http(lab_host("web2"), "%s:3000" % lab_addresses["web2"], "/fixture/info")
    info = json.loads(body)
    assert info["prepared_statements"] is False


def test_no_secret_appears_in_the_playbook_log(env):
    path = os.environ.get("ANSIBLE_LOG_PATH")
    assert path and os.path.exists(path), "ANSIBLE_LOG_PATH (set in molecule.yml) is missing"
    with open(path) as handle:
        log = handle.read()
    assert "mastodon_config : Write the environment file" in log      # the log does cover the converge
    secret_keys = ["DB_PASS", "REPLICA_DB_PASS", "AWS_SECRET_ACCESS_KEY", "SECRET_KEY_BASE", "VAPID_PRIVATE_KEY",
                   "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY", "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
                   "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY"]
    values = {key: env[key] for key in secret_keys}
    values["redis password"] = env["REDIS_URL"].split("@")[0].rsplit(":", 1)[1]
    leaked = sorted(key for key, value in values.items() if value in log)
    assert leaked == [], "secret values found in the log for: %s" % leaked       # names only, never values


def test_web_port_is_closed_to_hosts_outside_the_allowed_groups(lab_host, lab_addresses, connect_error):
    assert connect_error(lab_host("sidekiq2"), lab_addresses["web1"], 3000) == "No route to host"
    # The maintenance host (sidekiq1) reaches Puma's admin API for the domain-block timer (mastodon_web_allow_maintenance_host).
    assert connect_error(lab_host("sidekiq1"), lab_addresses["web1"], 3000) is None
