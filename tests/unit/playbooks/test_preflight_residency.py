"""Issue 17: the residency preflight (fleet entry point `residency`, run by playbooks/preflight.yml) refuses a host
holding a data class outside fediops_residency_policy, naming the host, the class and the rule, and accepts the
lab's own declarations (core DE, edges DE/US, S3 DE; user data and backups EU-only, caches EU or US).
"""
import json
import os
import subprocess

import pytest

from .test_preflight import REPO, VENV_BIN, run_preflight


@pytest.fixture(scope="module", autouse=True)
def fixture_artifacts():
    subprocess.run(["bash", os.path.join(REPO, "lab", "fixture", "build.sh")], check=True, capture_output=True)


def _preflight_with_overlay(tmp_path, overlay, limit="db1,web1"):
    """The preflight over the lab inventory plus an inventory overlay (host variables of single hosts)."""
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    path = tmp_path / "overlay.json"
    path.write_text(json.dumps(overlay))
    cmd = ["ansible-playbook", os.path.join(REPO, "playbooks", "preflight.yml"),
           "-i", os.path.join(REPO, "inventories", "lab"), "-i", str(path), "--limit", limit,
           "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python")]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)


def test_the_lab_declarations_pass(tmp_path):
    result = run_preflight(tmp_path, limit="db1,web1,edge-us")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Refuse a host or bucket holding a data class outside the residency policy" in result.stdout


def test_a_database_host_in_the_us_under_an_eu_only_user_data_policy_is_refused(tmp_path):
    overlay = {"all": {"hosts": {"db1": {"fediops_jurisdiction": "US"}}}}
    result = _preflight_with_overlay(tmp_path, overlay)
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert ("host db1 holds user_data (group postgres_primary) in US; the policy allows user_data only in EU "
            "(fediops_residency_policy.user_data)") in text, text[-4000:]
    assert "failed=1" in result.stdout


def test_a_backups_bucket_outside_the_policy_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="db1", fediops_s3_backups_jurisdiction="US")
    assert result.returncode != 0
    assert ("bucket fediops-pgbackrest holds backups (backups bucket at https://storage:8333) in US; the policy allows "
            "backups only in EU (fediops_residency_policy.backups)") in " ".join(result.stdout.split())
