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
