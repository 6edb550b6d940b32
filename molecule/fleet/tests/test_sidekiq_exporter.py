"""The fediops Sidekiq exporter on mon1, reading the persistent Redis (after the containers were restarted), with the
fleet's own Sidekiq processes stopped for these checks (the fixture `sidekiq_stopped`) and started again after.

Jobs are pushed the way Sidekiq does (SADD queues, LPUSH queue:<name>) with `enqueued_at` in both formats -
Sidekiq <= 7 float seconds on one queue, Sidekiq 8 integer milliseconds on another - with known ages, and a
process heartbeat is written for the `ingress` pool; the exporter's /metrics must report them.
"""
import json
import os
import re
import time

import pytest
import yaml

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PERSISTENT = 6379
PORT = 9808  # fleet_exporter_ports.sidekiq
SK7_QUEUE, SK8_QUEUE = "fediops-exporter-sk7", "fediops-exporter-sk8"
SK7_AGE, SK8_AGE = 120.0, 300.0
PROCESS = "fediops-exporter-test:4242:0a1b2c"
SAMPLE = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')


@pytest.fixture(scope="module")
def redis_cli(lab_host, lab_addresses):
    with open(os.path.join(ROOT, "inventories/lab/group_vars/all/secrets.yml")) as handle:
        password = yaml.safe_load(handle)["redis_app_password"]

    def run(*args):
        # As the application user from an app host, as Sidekiq itself writes.
        command = ["redis-cli", "--no-auth-warning", "-h", lab_addresses["redis-persistent"], "-p", str(PERSISTENT),
                   "--user", "mastodon", "--pass", password] + [str(a) for a in args]
        return lab_host("sidekiq1").check_output(" ".join("'%s'" % part.replace("'", "'\\''") for part in command))

    return run


def metrics(lab_host, lab_addresses):
    text = lab_host("mon1").check_output("curl -sS --max-time 10 http://%s:%s/metrics", lab_addresses["mon1"], str(PORT))
    out = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match.group(1).startswith("fediops_sidekiq_"):
            out[(match.group(1), match.group(2) or "")] = float(match.group(3))
    assert out, "no fediops_sidekiq_ sample in:\n" + text[:2000]
    return out


SIDEKIQ_UNITS = "'mastodon-sidekiq@*.service'"
AUTOSCALER = "fediops-sidekiq-autoscaler.service"
POOLS = ("default", "ingress", "scheduler", "push", "pull", "mailers")


@pytest.fixture(scope="module")
def sidekiq_stopped(lab_host, lab_addresses, lab_groups):
    """The fleet's own Sidekiq processes (and the autoscaler, which would start them again) stopped for the module,
    so the exporter sees only the test's jobs and heartbeat; started again after. Waits until the exporter reports
    no process in any pool (a cleanly stopped Sidekiq removes its heartbeat)."""
    hosts = [h for h in lab_groups.get("sidekiq", []) + lab_groups.get("sidekiq_burst", []) if h in lab_addresses]
    mon1 = lab_host("mon1")
    autoscaler_was_active = mon1.run("systemctl is-active --quiet %s", AUTOSCALER).rc == 0
    stopped = {}
    try:
        mon1.check_output("systemctl stop %s", AUTOSCALER)
        for name in hosts:
            out = lab_host(name).check_output(
                "systemctl list-units --type=service --state=active --plain --no-legend %s" % SIDEKIQ_UNITS)
            stopped[name] = [line.split()[0] for line in out.splitlines() if line.strip()]
            if stopped[name]:
                lab_host(name).check_output("systemctl stop" + " %s" * len(stopped[name]), *stopped[name])
        deadline = time.time() + 90
        while True:
            found = metrics(lab_host, lab_addresses)
            left = {p: found.get(("fediops_sidekiq_pool_processes", 'pool="%s"' % p)) for p in POOLS}
            if not any(left.values()):
                break
            assert time.time() < deadline, "the exporter still reports Sidekiq processes after they stopped: %s" % left
            time.sleep(2)
        yield stopped
    finally:
        for name, units in stopped.items():
            if units:
                lab_host(name).run("systemctl start" + " %s" * len(units), *units)
        if autoscaler_was_active:
            mon1.run("systemctl start %s", AUTOSCALER)


@pytest.fixture(scope="module")
def pushed(redis_cli, lab_host, lab_addresses, sidekiq_stopped):
    before = metrics(lab_host, lab_addresses)
    now = time.time()
    sk7 = {"class": "ActivityPub::ProcessingWorker", "queue": SK7_QUEUE, "jid": "fediopsexp7",
           "created_at": now - SK7_AGE, "enqueued_at": now - SK7_AGE}
    sk8 = {"class": "ActivityPub::DeliveryWorker", "queue": SK8_QUEUE, "jid": "fediopsexp8",
           "created_at": int((now - SK8_AGE) * 1000), "enqueued_at": int((now - SK8_AGE) * 1000)}
    newer8 = dict(sk8, jid="fediopsexp8b", enqueued_at=int((now - 5) * 1000))
    try:
        redis_cli("SADD", "queues", SK7_QUEUE, SK8_QUEUE)
        redis_cli("LPUSH", "queue:" + SK7_QUEUE, json.dumps(sk7))
        # The oldest job is the tail: push it first, the newer one after.
        redis_cli("LPUSH", "queue:" + SK8_QUEUE, json.dumps(sk8), json.dumps(newer8))
        # A live process of the ingress pool, as `sidekiq -g ingress` registers it (Sidekiq 8: beat in float seconds).
        redis_cli("SADD", "processes", PROCESS)
        redis_cli("HSET", PROCESS, "info", json.dumps({"hostname": "fediops-exporter-test", "pid": 4242, "tag": "ingress",
                                                        "queues": ["ingress"], "concurrency": 2, "version": "8.0.9"}),
                  "busy", "2", "beat", "%.3f" % (now - 5), "quiet", "false", "rss", "1000")
        redis_cli("EXPIRE", PROCESS, "60")
        redis_cli("ZADD", "retry", "%.3f" % now, json.dumps(dict(sk8, jid="fediopsexpretry")))
        redis_cli("ZADD", "schedule", "%.3f" % (now + 3600), json.dumps(dict(sk8, jid="fediopsexpsched1")),
                  "%.3f" % (now + 7200), json.dumps(dict(sk8, jid="fediopsexpsched2")))
        scraped = metrics(lab_host, lab_addresses)
        yield {"before": before, "after": scraped, "elapsed": time.time() - now}
    finally:
        redis_cli("DEL", "queue:" + SK7_QUEUE, "queue:" + SK8_QUEUE, PROCESS)
        redis_cli("SREM", "queues", SK7_QUEUE, SK8_QUEUE)
        redis_cli("SREM", "processes", PROCESS)
        redis_cli("ZREMRANGEBYSCORE", "retry", "%.3f" % (now - 1), "%.3f" % (now + 1))
        redis_cli("ZREMRANGEBYSCORE", "schedule", "%.3f" % (now + 3599), "%.3f" % (now + 7201))


def test_exporter_reads_redis(pushed):
    assert pushed["after"][("fediops_sidekiq_up", "")] == 1.0


@pytest.mark.parametrize("queue,age", [(SK7_QUEUE, SK7_AGE), (SK8_QUEUE, SK8_AGE)],
                         ids=["sidekiq<=7 float seconds", "sidekiq8 integer milliseconds"])
def test_latency_of_both_timestamp_formats(pushed, queue, age):
    latency = pushed["after"][("fediops_sidekiq_queue_latency_seconds", 'queue="%s"' % queue)]
    # At least the age given, at most that plus the time the pushes and the scrape took (and 1 s of rounding).
    assert age - 1 <= latency <= age + pushed["elapsed"] + 1, (queue, latency, pushed["elapsed"])


def test_queue_sizes(pushed):
    after = pushed["after"]
    assert after[("fediops_sidekiq_queue_size", 'queue="%s"' % SK7_QUEUE)] == 1.0
    assert after[("fediops_sidekiq_queue_size", 'queue="%s"' % SK8_QUEUE)] == 2.0
    # Queues of configured pools nobody pushed to: exported, empty.
    assert after[("fediops_sidekiq_queue_size", 'queue="mailers"')] == 0.0
    assert after[("fediops_sidekiq_queue_latency_seconds", 'queue="mailers"')] == 0.0


def test_retry_and_scheduled_set_sizes(pushed):
    before, after = pushed["before"], pushed["after"]
    assert after[("fediops_sidekiq_retry_size", "")] == before[("fediops_sidekiq_retry_size", "")] + 1
    assert after[("fediops_sidekiq_scheduled_size", "")] == before[("fediops_sidekiq_scheduled_size", "")] + 2
    assert after[("fediops_sidekiq_dead_size", "")] == before[("fediops_sidekiq_dead_size", "")]


def test_pools_processes_busy_and_heartbeat(pushed):
    after = pushed["after"]
    assert after[("fediops_sidekiq_pool_processes", 'pool="ingress"')] == 1.0
    assert after[("fediops_sidekiq_pool_busy", 'pool="ingress"')] == 2.0
    assert 5 - 1 <= after[("fediops_sidekiq_pool_heartbeat_age_seconds", 'pool="ingress"')] <= 5 + pushed["elapsed"] + 1
    # Every configured pool (the lab's mastodon_sidekiq_pools) is exported; none of the others has a process here.
    for pool in ("default", "scheduler", "push", "pull", "mailers"):
        assert after[("fediops_sidekiq_pool_processes", 'pool="%s"' % pool)] == 0.0, pool
        assert ("fediops_sidekiq_pool_heartbeat_age_seconds", 'pool="%s"' % pool) not in after


def test_port_is_open_to_the_monitoring_host_only(connect_error, lab_host, lab_addresses):
    assert connect_error(lab_host("mon1"), lab_addresses["mon1"], PORT) is None
    assert connect_error(lab_host("edge-eu"), lab_addresses["mon1"], PORT) == "No route to host"
    assert connect_error(lab_host("sidekiq1"), lab_addresses["mon1"], PORT) == "No route to host"
    mon1 = lab_host("mon1")
    assert mon1.socket("tcp://%s:%d" % (lab_addresses["mon1"], PORT)).is_listening
    assert not mon1.socket("tcp://0.0.0.0:%d" % PORT).is_listening


def test_service_is_hardened_unprivileged_and_guarded_by_the_firewall(lab_host):
    mon1 = lab_host("mon1")
    unit = "fediops-sidekiq-exporter.service"
    assert mon1.service(unit).is_running and mon1.service(unit).is_enabled
    assert "nftables.service" in mon1.check_output("systemctl show -p Requires --value %s", unit).split()
    pid = mon1.check_output("systemctl show -p MainPID --value %s", unit)
    assert mon1.check_output("stat -c %%U /proc/%s", pid) == "fediops-sidekiq-exporter"
    config = mon1.file("/etc/fediops-sidekiq-exporter/config.json")
    assert (config.mode, config.user, config.group) == (0o640, "root", "fediops-sidekiq-exporter")
    # The exporter imports the collection's own module_utils, copied at deploy time.
    assert mon1.file("/usr/local/lib/fediops-sidekiq-exporter/ansible_collections/fediops/mastodon/plugins/module_utils/"
                     "sidekiq.py").content_string == open(os.path.join(ROOT, "plugins/module_utils/sidekiq.py")).read()
    report = mon1.check_output("systemd-analyze security --no-pager %s", unit)
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", report)
    assert level, report[-500:]
    print("systemd-analyze security %s: %s %s" % (unit, level.group(1), level.group(2)))
    # systemd rates exposure from 0 (sandboxed) to 10 (none); the unit as written rates 1.6 "OK" offline.
    assert float(level.group(1)) < 2.0, report
