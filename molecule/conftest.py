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


# ---- No secret in the playbook log (issue 12) ----
# Every literal secret of the lab's inventory (inventories/lab/group_vars/all/secrets.yml); `{{ }}` entries
# resolve to these same literals. The S3 access keys are identifiers and the VAPID public key is public (Mastodon
# serves it to every browser): neither is counted.
SECRET_LOG_FIGURES = []


def lab_secret_values():
    import yaml
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(repo, "inventories", "lab", "group_vars", "all", "secrets.yml")) as handle:
        data = yaml.safe_load(handle)
    return dict((name, str(value)) for name, value in data.items()
                if "{{" not in str(value) and not name.endswith(("_access_key", "vapid_public_key")))


def assert_no_secret_in_log(markers):
    """The scenario's whole run (ANSIBLE_LOG_PATH, set in its molecule.yml with ANSIBLE_VERBOSITY=1 and
    ANSIBLE_DIFF_ALWAYS=1) holds none of the lab's secret values. `markers` are lines the log must contain to
    prove it covers the playbooks the scenario claims (missing evidence fails). Returns the figure line."""
    path = os.environ.get("ANSIBLE_LOG_PATH")
    assert path and os.path.exists(path), "ANSIBLE_LOG_PATH (set in molecule.yml) is missing: no evidence"
    with open(path, errors="replace") as handle:
        log = handle.read()
    assert len(log) > 100000, "the log has %d bytes: too little to be the scenario's run" % len(log)
    missing = [marker for marker in markers if marker not in log]
    assert missing == [], "the log does not cover: %s" % missing
    # Verbosity and diff were on: results are printed (-v) and file changes diffed (--diff).
    assert '"changed": true' in log, "no -v result in the log (ANSIBLE_VERBOSITY=1 missing?)"
    assert "+++ after" in log, "no diff in the log (ANSIBLE_DIFF_ALWAYS=1 missing?)"
    values = lab_secret_values()
    assert len(values) >= 18, sorted(values)
    leaked = sorted(name for name, value in values.items() if value in log)
    figure = "checked %d secret values in %d bytes of log (%s)" % (len(values), len(log), path)
    SECRET_LOG_FIGURES.append(figure)
    print(figure)
    assert leaked == [], "secret values found in the log for: %s" % leaked       # names only, never values
    return figure


def pytest_terminal_summary(terminalreporter):
    for figure in SECRET_LOG_FIGURES:
        terminalreporter.write_line("no-secret-in-the-log: " + figure)


@pytest.fixture(scope="session")
def no_secret_in_log():
    """no_secret_in_log([markers]) -> asserts the run's log holds no lab secret; see assert_no_secret_in_log."""
    return assert_no_secret_in_log


# ---- Tests that break the fleet run last ----
# A scenario's lab serves several checks in a fixed order (molecule/fleet: monitoring, check mode, upgrades). A test
# module that makes faults on the hosts (and repairs them) sets BREAKS_THE_FLEET = True: its tests run after every
# test that reads the fleet as the side effects left it, so a fault or a repair cannot change what those read.
def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: bool(getattr(item.module, "BREAKS_THE_FLEET", False)))
