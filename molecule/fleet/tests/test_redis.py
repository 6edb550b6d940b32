"""The Redis pair after the containers were restarted (side_effect_foundation.yml).

Clients run on sidekiq1 (an app host), mon1 (monitoring) and edge-eu (outside the allowed groups).
Passwords are the lab-only ones in inventories/lab/group_vars/all/secrets.yml.
"""
import json
import os
import subprocess
import time

import pytest
import yaml

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CACHE, PERSISTENT, REPLICA = 6380, 6379, 6381
PROBE_QUEUE = "fediops-restart-probe"  # side_effect_foundation.yml: a queue no Sidekiq pool serves


@pytest.fixture(scope="module")
def secrets():
    with open(os.path.join(ROOT, "inventories/lab/group_vars/all/secrets.yml")) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def cli(lab_host, lab_addresses, secrets):
    """cli(client, server, port, *args, user='mastodon') -> (rc, output) of redis-cli run on `client`."""
    users = {
        "mastodon": secrets["redis_app_password"],
        "monitoring": secrets["redis_monitoring_password"],
        "admin": secrets["redis_admin_password"],
    }

    def run(client, server, port, *args, user="mastodon"):
        auth = [] if user is None else ["--user", user, "--pass", users[user]]
        command = ["redis-cli", "--no-auth-warning", "-h", lab_addresses[server], "-p", str(port)] + auth + list(args)
        result = lab_host(client).run(" ".join("'%s'" % part.replace("'", "'\\''") for part in command))
        return result.rc, (result.stdout + result.stderr).strip()

    return run


def info(cli, server, port, section, user="mastodon", client="sidekiq1"):
    _, out = cli(client, server, port, "INFO", section, user=user)
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("#"))


@pytest.mark.parametrize("server,port", [("redis-cache", CACHE), ("redis-persistent", PERSISTENT)])
def test_unauthenticated_command_is_refused(cli, server, port):
    _, out = cli("sidekiq1", server, port, "SET", "anonymous", "1", user=None)
    assert "NOAUTH" in out


@pytest.mark.parametrize("server,port", [("redis-cache", CACHE), ("redis-persistent", PERSISTENT)])
def test_app_user_reads_and_writes_but_cannot_reconfigure(cli, lab_addresses, server, port):
    assert cli("sidekiq1", server, port, "SET", "fediops:probe", "ok")[1] == "OK"
    assert cli("sidekiq1", server, port, "GET", "fediops:probe")[1] == "ok"
    # The attack on Hachyderm's cache: make it a replica of someone else's server.
    for command in (["CONFIG", "SET", "dir", "/tmp"], ["CONFIG", "GET", "maxmemory"],
                    ["REPLICAOF", lab_addresses["mon1"], "6379"], ["SLAVEOF", lab_addresses["mon1"], "6379"],
                    ["DEBUG", "SLEEP", "0"], ["FLUSHALL"], ["SHUTDOWN"]):
        _, out = cli("sidekiq1", server, port, *command)
        # Refused by the ACL (NOPERM), or for DEBUG already by enable-debug-command.
        assert "NOPERM" in out or "DEBUG command not allowed" in out, (command, out)
    assert info(cli, server, port, "replication")["role"] == "master"


@pytest.mark.parametrize("server,port", [("redis-cache", CACHE), ("redis-persistent", PERSISTENT)])
def test_monitoring_user_reads_info_but_cannot_write(cli, server, port):
    assert "redis_version" in cli("mon1", server, port, "INFO", "server", user="monitoring")[1]
    assert "NOPERM" in cli("mon1", server, port, "SET", "x", "1", user="monitoring")[1]


@pytest.mark.parametrize("server,port", [("redis-cache", CACHE), ("redis-persistent", PERSISTENT)])
def test_peer_outside_allowed_groups_cannot_connect(connect_error, lab_host, lab_addresses, server, port):
    assert connect_error(lab_host("sidekiq1"), lab_addresses[server], port) is None
    assert connect_error(lab_host("mon1"), lab_addresses[server], port) is None
    assert connect_error(lab_host("edge-eu"), lab_addresses[server], port) == "No route to host"


def test_instances_bind_only_private_and_loopback(lab_host, lab_addresses):
    for server, port in (("redis-cache", CACHE), ("redis-persistent", PERSISTENT)):
        host = lab_host(server)
        assert host.socket("tcp://%s:%d" % (lab_addresses[server], port)).is_listening
        assert host.socket("tcp://127.0.0.1:%d" % port).is_listening
        assert not host.socket("tcp://0.0.0.0:%d" % port).is_listening


def test_units_are_guarded_by_the_firewall_and_back_after_restart(lab_host):
    for server, unit in (("redis-cache", "redis-server@cache"), ("redis-cache", "redis-server@persistent-replica"),
                         ("redis-persistent", "redis-server@persistent")):
        host = lab_host(server)
        assert host.service(unit).is_running and host.service(unit).is_enabled
        assert "nftables.service" in host.check_output("systemctl show -p Requires --value %s", unit).split()
        assert host.check_output("systemctl show -p LimitNOFILE --value %s", unit) == "16384"
        assert "comment \"%s\"" % unit.replace("-server@", "-") in host.check_output("nft list table inet fediops")
    assert not lab_host("redis-persistent").service("redis-server").is_running


def _restart_evidence():
    # side_effect_foundation.yml reads the job back right after the restart (then removes it: the fleet's alerts must
    # not see a year-old job) into $TMPDIR/fediops-<lab_name>-redis-restart.json.
    with open(os.path.join(SCENARIO, "inventory.yml")) as handle:
        lab_name = yaml.safe_load(handle)["all"]["vars"]["lab_name"]
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-%s-redis-restart.json" % lab_name)) as handle:
        return json.load(handle)


def test_persistent_instance_kept_the_queued_job_across_the_restart():
    evidence = _restart_evidence()
    jobs = evidence["primary_jobs"]
    assert any("fediops0side0effect0" in job for job in jobs), evidence
    assert json.loads(jobs[-1])["class"] == "ActivityPub::DeliveryWorker"
    assert PROBE_QUEUE in evidence["primary_queues"]
    assert str(evidence["aof_enabled"]) == "1"


def test_replica_on_another_host_follows_the_persistent_instance(cli):
    for _ in range(30):  # after a restart the primary waits a few seconds before a diskless sync
        replication = info(cli, "redis-cache", REPLICA, "replication")
        if replication.get("master_link_status") == "up":
            break
        time.sleep(1)
    assert replication["role"] == "slave" and replication["master_link_status"] == "up"
    cli("sidekiq1", "redis-persistent", PERSISTENT, "SET", "fediops:replicated", "yes")
    for _ in range(20):
        if cli("sidekiq1", "redis-cache", REPLICA, "GET", "fediops:replicated")[1] == "yes":
            break
        time.sleep(0.5)
    assert cli("sidekiq1", "redis-cache", REPLICA, "GET", "fediops:replicated")[1] == "yes"
    # The job queued before the restart reached the replica too (read before it was removed).
    evidence = _restart_evidence()
    assert evidence["replica_link"] == "up" and any("fediops0side0effect0" in job for job in evidence["replica_jobs"]), evidence
    assert "READONLY" in cli("sidekiq1", "redis-cache", REPLICA, "SET", "fediops:on-replica", "no")[1]


FILL = r"""
import sys, redis
r = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), username='mastodon', password=sys.argv[3])
value = b'x' * 65536
for batch in range(40):
    pipe = r.pipeline(transaction=False)
    for i in range(50):
        pipe.set('cache:fill:%d:%d' % (batch, i), value)
    pipe.execute()
print(r.info('stats')['evicted_keys'], r.info('memory')['used_memory'], r.info('memory')['maxmemory'])
"""


def test_cache_evicts_under_memory_pressure(lab_host, lab_addresses, secrets):
    # 2000 x 64 KiB = 125 MiB into a 64 MiB cache: every write succeeds, old keys are evicted.
    out = lab_host("sidekiq1").check_output(
        "python3 -c %s %s %s %s", FILL, lab_addresses["redis-cache"], str(CACHE), secrets["redis_app_password"])
    evicted, used, maxmemory = (int(x) for x in out.split())
    assert maxmemory == 64 * 1024 * 1024
    assert evicted > 0
    assert used <= maxmemory * 1.1


def _container(name):
    with open(os.path.join(SCENARIO, "inventory.yml")) as handle:
        return "%s-%s" % (yaml.safe_load(handle)["all"]["vars"]["lab_name"], name)


def test_cache_keeps_accepting_writes_when_its_disk_is_full(cli, lab_host):
    """Hachyderm's MISCONF outage: the cache could not save to a full disk and refused writes."""
    container = _container("redis-cache")
    data = "/var/lib/redis/cache"
    # Lab fault injection: a 256 KiB file system over the cache's data directory, filled up.
    subprocess.run(["podman", "exec", "--privileged", container, "sh", "-c",
                    "mount -t tmpfs -o size=256k,mode=0750,uid=$(id -u redis),gid=$(id -g redis) tmpfs %s"
                    " && systemctl restart redis-server@cache && (dd if=/dev/zero of=%s/fill bs=4k 2>/dev/null; true)"
                    % (data, data)], check=True)
    try:
        assert lab_host("redis-cache").check_output("df --output=avail %s | tail -1", data).strip() == "0"
        assert cli("sidekiq1", "redis-cache", CACHE, "SET", "before", "1")[1] == "OK"
        # Something asks for a snapshot anyway (an operator, or a preset mistake): it fails on the full disk...
        cli("sidekiq1", "redis-cache", CACHE, "BGSAVE", user="admin")
        for _ in range(40):
            persistence = info(cli, "redis-cache", CACHE, "persistence", user="admin")
            if persistence["rdb_bgsave_in_progress"] == "0":
                break
            time.sleep(0.25)
        assert persistence["rdb_last_bgsave_status"] == "err"
        # ...and the cache still takes writes: no MISCONF.
        rc, out = cli("sidekiq1", "redis-cache", CACHE, "SET", "after-failed-save", "1")
        assert out == "OK", out
        assert cli("sidekiq1", "redis-cache", CACHE, "GET", "after-failed-save")[1] == "1"
    finally:
        subprocess.run(["podman", "exec", "--privileged", container, "sh", "-c",
                        "umount %s; systemctl restart redis-server@cache" % data], check=False)
