"""inventories/example-production passes its own preflight once its secrets are filled in.

The inventory is copied to tmp_path and every vault placeholder is replaced by a valid value: Mastodon's
application secrets by playbooks/mastodon_secrets.yml itself (it replaces the CHANGE-ME placeholders it finds),
every other vault_* value by a random 48-character token. Then playbooks/preflight.yml runs
against the copy. Nothing touches a production host: the preflight is controller-side (asserts,
argument specs, the controller-side artifact stat); the one task that would read a host - the redis
role's distribution fact - is given the release the production hosts run (Debian 12, bookworm) and
skipped, which the test checks; ansible_connection=local is only a safety net.
"""
import json
import os
import re
import secrets
import shutil
import subprocess

import pytest

from .test_preflight import REPO, VENV_BIN

SOURCE = os.path.join(REPO, "inventories", "example-production")
VAULT_LINE = re.compile(r'^(vault_[a-z0-9_]+):\s*.*$', re.M)


def _env(tmp_path, **extra):
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    env.update(extra)
    return env


def _run(tmp_path, args, **env):
    return subprocess.run([os.path.join(VENV_BIN, "ansible-playbook")] + args, cwd=REPO, env=_env(tmp_path, **env),
                          capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    """A copy of example-production with every vault placeholder replaced by a valid generated value."""
    tmp = tmp_path_factory.mktemp("example-production")
    inv = tmp / "inventory"
    shutil.copytree(SOURCE, str(inv))
    vault_files = sorted(os.path.join(d, f) for d, _dirs, files in os.walk(str(inv / "group_vars"))
                         for f in files if f.startswith("vault") and f.endswith(".yml"))
    assert vault_files, "example-production has no vault files any more: update this test"
    replaced = []
    for path in vault_files:
        with open(path) as handle:
            text = handle.read()

        def fill(match):
            name = match.group(1)
            replaced.append(name)
            if name.startswith("vault_mastodon_"):
                return match.group(0)      # replaced below by playbooks/mastodon_secrets.yml, as the file's comment says
            return '%s: "%s"' % (name, secrets.token_hex(24))
        with open(path, "w") as handle:
            handle.write(VAULT_LINE.sub(fill, text))
    assert any(n.startswith("vault_mastodon_") for n in replaced)
    generated = _run(tmp, ["-i", "localhost,", os.path.join(REPO, "playbooks", "mastodon_secrets.yml"),
                           "-e", "mastodon_secrets_file=%s" % (inv / "group_vars" / "mastodon" / "vault.yml"),
                           "-e", "mastodon_secrets_version=4.5.3", "-e", "mastodon_secrets_plaintext=true",
                           "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python")])
    assert generated.returncode == 0, generated.stdout[-3000:] + generated.stderr
    # No placeholder is left anywhere in the copy.
    for path in vault_files:
        with open(path) as handle:
            text = handle.read()
        assert not re.search(r'CHANGE-ME|REPLACE|replace-with', text), path
    return tmp, inv


def _preflight(tmp, inv, *extra):
    return _run(tmp, [os.path.join(REPO, "playbooks", "preflight.yml"), "-i", str(inv / "hosts.yml"),
                      "-e", "ansible_connection=local", "-e", "ansible_distribution_release=bookworm",
                      "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python")] + list(extra))


def test_example_production_passes_its_preflight(inventory):
    tmp, inv = inventory
    result = _preflight(tmp, inv)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    out = result.stdout
    # The fleet's connection budget was checked on the pooler, and nothing read a host.
    # The pgbouncer role's rules are one fediops.mastodon.checks task, the budget rule among them (no `when`): the
    # task passed, so the budget rule ran and held.
    budget_task = out.split("TASK [fediops.mastodon.pgbouncer : Refuse weak or placeholder secrets", 1)[1].split("TASK [", 1)[0]
    assert "a connection budget that does not fit" in budget_task.split("\n", 1)[0]
    assert "ok: [pool-fsn-1]" in budget_task
    setup_task = out.split("TASK [fediops.mastodon.redis : Read the distribution release for the flavour check]", 1)[1].split("TASK [", 1)[0]
    assert "ok:" not in setup_task and "changed:" not in setup_task


def test_example_production_budget_figures(inventory):
    """The pooler's derived settings, read through the same variables the pgbouncer role renders."""
    tmp, inv = inventory
    book = tmp / "show_budget.yml"
    book.write_text("""
- hosts: pgbouncer
  gather_facts: false
  roles: [fediops.mastodon.fleet]
  tasks:
    - ansible.builtin.debug:
        var: fleet_db_budget
""")
    result = _run(tmp, ["-i", str(inv / "hosts.yml"), str(book), "-e", "ansible_connection=local"], ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    document = re.search(r"^\{$.*^\}$", result.stdout, re.S | re.M).group(0)     # without profile_tasks' lines
    budget = json.loads(document)["plays"][0]["tasks"][-1]["hosts"]["pool-fsn-1"]["fleet_db_budget"]
    assert (budget["web"], budget["streaming"], budget["sidekiq"], budget["reserve"], budget["total"]) == (40, 40, 80, 10, 170)
    assert budget["sidekiq_by_pool"] == {"default": 25, "ingress": 25, "push-pull": 25, "scheduler": 5}
    assert budget["pgbouncer"] == {"hosts": 1, "pools": 1, "max_client_conn": 213, "default_pool_size": 168,
                                   "reserve_pool_size": 19, "server_connections": 187}
    assert budget["postgres"] == {"max_connections": 200, "superuser_reserved_connections": 3, "reserved_connections": 10,
                                  "available": 187}


def test_example_production_override_below_the_budget_is_refused(inventory):
    tmp, inv = inventory
    result = _preflight(tmp, inv, "-e", "pgbouncer_max_client_conn=100")
    assert result.returncode != 0
    message = " ".join(result.stdout.split())
    assert ("the application fleet can open 170 client connections (web 40 + streaming 40 + sidekiq 80 (default 25, ingress 25, "
            "push-pull 25, scheduler 5) + reserve 10 = 170) but PgBouncer accepts 100 (pgbouncer_max_client_conn 100 x 1 pooler(s)); "
            "raise pgbouncer_max_client_conn to at least 170 (derived: 213)") in message, message[-3000:]


def test_mastodon_secrets_playbook_values_have_no_trailing_newline(tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret
    password = tmp_path / "vault-password"
    password.write_text(secrets.token_hex(16) + "\n")
    target = tmp_path / "vault.yml"
    target.write_text("---\n")
    result = _run(tmp_path, ["-i", "localhost,", os.path.join(REPO, "playbooks", "mastodon_secrets.yml"),
                             "-e", "mastodon_secrets_file=%s" % target, "-e", "mastodon_secrets_version=4.5.3",
                             "-e", "mastodon_secrets_vault_password_file=%s" % password,
                             "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python")])
    assert result.returncode == 0, result.stdout + result.stderr
    vault = VaultLib([("default", VaultSecret(password.read_text().strip().encode()))])
    blobs = re.findall(r"!vault \|\n((?:[ ]+\S+\n)+)", target.read_text())
    assert len(blobs) == 6
    for blob in blobs:
        value = vault.decrypt("\n".join(line.strip() for line in blob.splitlines())).decode()
        assert not value.endswith("\n")
