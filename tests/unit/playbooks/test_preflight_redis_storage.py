"""Issue 4's bad input: the preflight refuses it naming the variable, before any change.

Runs playbooks/preflight.yml against the lab inventory with a local connection, like
test_preflight.py (the preflight only evaluates variables; no lab host needs to exist).
"""
import pytest

from .test_preflight import run_preflight

REDIS_HOSTS = "redis-cache,redis-persistent"


def test_lab_redis_and_storage_variables_pass(tmp_path):
    result = run_preflight(tmp_path, limit=REDIS_HOSTS + ",storage")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("instances,message", [
    ([{"name": "cache", "preset": "cache", "port": 6380}],
     "redis_instances[0].maxmemory is missing"),
    ([{"name": "cache", "preset": "cache", "port": 6380, "maxmemory": "1gb", "appendonly": True}],
     "redis_instances[0].appendonly is true on a cache"),
    ([{"name": "cache", "preset": "cache", "port": 6380, "maxmemory": "1gb", "save": ["900 1"]}],
     "redis_instances[0].save sets RDB snapshots on a cache"),
    ([{"name": "cache", "preset": "cache", "port": 6380, "maxmemory": "1gb"},
      {"name": "persistent", "preset": "persistent", "port": 6380}],
     "redis_instances on redis-cache gives two instances the same port"),
])
def test_bad_instances_are_refused_naming_the_variable(tmp_path, instances, message):
    result = run_preflight(tmp_path, limit="redis-cache", redis_instances=instances)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout


def test_missing_password_is_refused_naming_the_variable(tmp_path):
    result = run_preflight(tmp_path, limit=REDIS_HOSTS, redis_monitoring_password="")
    assert result.returncode != 0
    assert "On redis-cache: redis_monitoring_password is empty" in result.stdout, result.stdout


def test_giving_config_back_to_the_app_user_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="redis-cache", redis_app_extra_commands=["info", "config|set"])
    assert result.returncode != 0
    assert "redis_app_denied_commands / redis_app_extra_commands on redis-cache" in result.stdout


def test_valkey_on_bookworm_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="redis-cache", redis_flavor="valkey")
    assert result.returncode != 0
    assert "redis_flavor=valkey on redis-cache" in result.stdout


def test_replica_of_something_that_is_not_a_persistent_instance_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="redis-cache", redis_instances=[
        {"name": "cache", "preset": "cache", "port": 6380, "maxmemory": "64mb"},
        {"name": "replica", "preset": "persistent", "port": 6381, "replica_of": {"host": "redis-persistent", "port": 7000}},
    ])
    assert result.returncode != 0
    assert "redis_instances[1].replica_of on redis-cache points at redis-persistent:7000" in result.stdout


@pytest.mark.parametrize("name", ["Mastodon_Media", "ab", "media..files", "192.168.1.10", "-media"])
def test_bucket_name_s3_would_reject_is_refused(tmp_path, name):
    result = run_preflight(tmp_path, limit="storage", object_storage_buckets=[
        {"name": name, "access_key": "KEY0001", "secret_key": "a-long-enough-secret-key"}])
    assert result.returncode != 0
    assert "object_storage_buckets[0].name on storage is '%s'" % name in result.stdout


def test_missing_bucket_secret_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="storage", object_storage_buckets=[
        {"name": "mastodon-media", "access_key": "KEY0001", "secret_key": ""}])
    assert result.returncode != 0
    assert "object_storage_buckets[0] (mastodon-media) on storage: secret_key is missing" in result.stdout
