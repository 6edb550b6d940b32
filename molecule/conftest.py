"""Fixtures shared by every molecule scenario's testinfra tests.

molecule/verify.yml passes the hosts of the run (inventory name -> address), the inventory's
groups and the lab SSH key in environment variables; tests ask for hosts by inventory name.
"""
import json
import os
import socket

import pytest
import testinfra

SSH_OPTIONS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def _lab_hosts():
    raw = os.environ.get("FEDIOPS_LAB_HOSTS")
    if not raw:
        pytest.fail("FEDIOPS_LAB_HOSTS is not set: run the tests through `make molecule S=<scenario>` "
                    "(molecule/verify.yml sets it); without the lab's hosts there is nothing to check", pytrace=False)
    return json.loads(raw)


@pytest.fixture(scope="session")
def lab_addresses():
    """Inventory name -> address of every host in this run."""
    return _lab_hosts()


@pytest.fixture(scope="session")
def lab_groups():
    return json.loads(os.environ.get("FEDIOPS_LAB_GROUPS", "{}"))


@pytest.fixture(scope="session")
def lab_host(lab_addresses):
    """lab_host('db1') -> a testinfra host reached over SSH as root."""
    ssh_config = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-testinfra-ssh.conf")
    with open(ssh_config, "w") as handle:
        handle.write(
            "Host *\n  User root\n  IdentityFile %s\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n  ControlMaster auto\n  ControlPath /tmp/fediops-ti-%%C\n  ControlPersist 60s\n"
            % os.environ["FEDIOPS_LAB_SSH_KEY"]
        )
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = testinfra.get_host("ssh://%s" % lab_addresses[name], ssh_config=ssh_config)
        return cache[name]

    return get


def tcp_connect_error(host, address, port, timeout=3):
    """From `host`, try a TCP connection; return None on success or the error text."""
    script = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
        "s.settimeout(%d)\n"
        "try:\n    s.connect((sys.argv[1], int(sys.argv[2])))\nexcept OSError as e:\n    print(e.strerror or e); sys.exit(1)\n"
    ) % timeout
    result = host.run("python3 -c %s %s %s", script, address, str(port))
    return None if result.rc == 0 else (result.stdout.strip() or result.stderr.strip())


@pytest.fixture(scope="session")
def connect_error():
    return tcp_connect_error


# Keep socket imported for tests that probe from the controller.
__all__ = ["socket"]
