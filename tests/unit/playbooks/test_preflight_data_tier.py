"""Issue 3's bad input: the preflight refuses it naming the variable, before any change.

Runs playbooks/preflight.yml with a local connection like test_preflight.py; inventories that move
hosts between groups are built in tmp_path around the lab's group_vars.
"""
import json
import os
import subprocess

import pytest

from .test_preflight import REPO, VENV_BIN, run_preflight

DATA_HOSTS = "db1,db2,pgbouncer1"


def run_with_groups(tmp_path, groups, limit, **extra_vars):
    """Preflight against an inventory of the lab's hosts in `groups` ({group: [hosts]}) and its group_vars."""
    inv = tmp_path / "inventory"
    inv.mkdir()
    os.symlink(os.path.join(REPO, "inventories", "lab", "group_vars"), str(inv / "group_vars"))
    numbers = {"db1": 11, "db2": 12, "pgbouncer1": 13, "web1": 31, "sidekiq1": 41, "storage": 51, "mon1": 71}
    children = {name: {"hosts": {h: {"lab_host_number": numbers[h]} for h in hosts}} for name, hosts in groups.items()}
    children.setdefault("monitoring", {"hosts": {}})
    children.setdefault("mastodon", {"hosts": {}})
    (inv / "hosts.yml").write_text(json.dumps({"all": {"vars": {"lab_name": "lab", "lab_subnet_prefix": "10.89.40"},
                                                       "children": children}}))
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(extra_vars))
    cmd = ["ansible-playbook", os.path.join(REPO, "playbooks", "preflight.yml"), "-i", str(inv / "hosts.yml"), "--limit", limit,
           "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python"), "-e", "@%s" % extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)


def test_lab_data_tier_variables_pass(tmp_path):
    result = run_preflight(tmp_path, limit=DATA_HOSTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_primaries_are_refused(tmp_path):
    result = run_with_groups(tmp_path, {"postgres_primary": ["db1", "db2"], "pgbouncer": ["pgbouncer1"]}, DATA_HOSTS)
    assert result.returncode != 0
    assert "postgres_primary (postgresql_primary_group) has 2 hosts" in result.stdout, result.stdout


def test_replica_without_primary_is_refused(tmp_path):
    result = run_with_groups(tmp_path, {"postgres_primary": [], "postgres_replica": ["db2"], "pgbouncer": ["pgbouncer1"]}, "db2")
    assert result.returncode != 0
    assert "postgres_primary (postgresql_primary_group) has 0 hosts" in result.stdout, result.stdout
    assert "postgres_replica has db2, which need a primary to stream from" in result.stdout


def test_pools_over_max_connections_are_refused(tmp_path):
    result = run_preflight(tmp_path, limit=DATA_HOSTS, pgbouncer_default_pool_size=150)
    assert result.returncode != 0
    message = " ".join(result.stdout.split())
    assert "The fleet's database connections do not fit PgBouncer on pgbouncer1" in message, message
    assert ("PgBouncer may open 159 server connections ((pgbouncer_default_pool_size 150 + pgbouncer_reserve_pool_size 9) x 1 pool(s) "
            "x 1 pooler(s)) but Postgres has 87 (postgresql_max_connections 100 - postgresql_superuser_reserved_connections 3 "
            "- fleet_postgres_reserved_connections 10)") in message


def test_fleet_over_max_client_conn_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit=DATA_HOSTS, pgbouncer_max_client_conn=50)
    assert result.returncode != 0
    message = " ".join(result.stdout.split())
    assert "but PgBouncer accepts 50 (pgbouncer_max_client_conn 50 x 1 pooler(s)); raise pgbouncer_max_client_conn to at least 67" in message, \
        message


@pytest.mark.parametrize("variable", ["postgresql_app_password", "postgresql_replication_password", "postgresql_monitor_password",
                                      "pgbouncer_admin_password"])
def test_missing_password_is_refused_naming_the_variable(tmp_path, variable):
    result = run_preflight(tmp_path, limit=DATA_HOSTS, **{variable: ""})
    assert result.returncode != 0
    assert "%s is empty" % variable in result.stdout, result.stdout


def test_max_connections_set_on_the_postgres_hosts_sizes_the_pools(tmp_path):
    # inventories/lab sets postgresql_max_connections (100) on the postgres group only: the pooler reads the
    # primary's value, so a pool that fits the fleet default (200) but not the primary is refused.
    result = run_preflight(tmp_path, limit="pgbouncer1", pgbouncer_default_pool_size=100, pgbouncer_reserve_pool_size=0)
    assert result.returncode != 0
    assert "but Postgres has 87 (postgresql_max_connections 100" in " ".join(result.stdout.split()), result.stdout


def test_s3_repository_without_credentials_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="db1", fediops_s3_backups_secret_key="")
    assert result.returncode != 0
    assert "pgbackrest_s3_key_secret is empty on db1" in result.stdout, result.stdout


def test_archive_timeout_over_a_minute_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="db1", pgbackrest_archive_timeout=300)
    assert result.returncode != 0
    assert "pgbackrest_archive_timeout (300) must be 1-60 seconds" in result.stdout, result.stdout
