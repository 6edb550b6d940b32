"""lab/plugins/vars/fediops_lab_connection.py: the literal connection variables of lab hosts, from the pure function
and from the inventories as ansible-inventory loads them (the lab's, and the lab's with molecule's layered over it)."""
import importlib.util
import json
import os
import subprocess

import pytest

REPO = os.path.join(os.path.dirname(__file__), "..", "..", "..")
PATH = os.path.join(REPO, "lab", "plugins", "vars", "fediops_lab_connection.py")
VENV_BIN = os.path.join(REPO, ".venv", "bin")


@pytest.fixture(scope="module")
def plugin():
    spec = importlib.util.spec_from_file_location("fediops_lab_connection", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_lab_host_gets_literal_values(plugin):
    found = plugin.connection_vars({"lab_host_number": 31, "lab_subnet_prefix": "10.89.40"},
                                   environ={"HOME": "/home/volunteer"})
    assert found == {"ansible_host": "10.89.40.31", "lab_home": "/home/volunteer/.fediops-lab",
                     "ansible_ssh_private_key_file": "/home/volunteer/.fediops-lab/ssh/id_ed25519"}


def test_the_lab_home_follows_the_environment(plugin):
    found = plugin.connection_vars({"lab_host_number": 11, "lab_subnet_prefix": "10.89.50"},
                                   environ={"HOME": "/root", "FEDIOPS_LAB_HOME": "/srv/lab"})
    assert found["lab_home"] == "/srv/lab"
    assert found["ansible_ssh_private_key_file"] == "/srv/lab/ssh/id_ed25519"


@pytest.mark.parametrize("inventory_vars", [
    {"lab_subnet_prefix": "10.89.40"},                                  # not a lab host (production)
    {"lab_host_number": 31},                                            # no prefix
    {"lab_host_number": 31, "lab_subnet_prefix": "{{ some_prefix }}"},  # a template: not resolved here
])
def test_other_hosts_get_nothing(plugin, inventory_vars):
    assert plugin.connection_vars(inventory_vars, environ={"HOME": "/root"}) == {}


def _inventory_host(host, *sources):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), FEDIOPS_LAB_HOME="/srv/lab")
    args = [os.path.join(VENV_BIN, "ansible-inventory")]
    for source in sources:
        args += ["-i", os.path.join(REPO, source)]
    result = subprocess.run(args + ["--host", host], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_the_lab_inventory_resolves_through_the_plugin():
    found = _inventory_host("web1", "inventories/lab")
    assert found["ansible_host"] == "10.89.40.31"
    assert found["ansible_ssh_private_key_file"] == "/srv/lab/ssh/id_ed25519"


def test_a_host_named_like_its_group_resolves_too():
    # The YAML inventory puts the lab's storage host's lab_host_number on the group of the same name.
    assert _inventory_host("storage", "inventories/lab")["ansible_host"] == "10.89.40.51"


def test_a_layered_inventory_keeps_its_own_subnet():
    assert _inventory_host("db1", "inventories/lab", "molecule/fleet/inventory.yml")["ansible_host"] == "10.89.50.11"
