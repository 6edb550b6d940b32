"""playbooks/controller_downloads.yml (entry point wheels of the sidekiq_autoscaler role) touches no host and downloads
once per set of pins.

Runs against the lab inventory with no lab host existing: a task that reached mon1 would fail as unreachable. The
download itself needs the package index, so these tests stop short of it: with the marker of the current pins in the
wheel directory the download is skipped, and with nothing to download for (no directory, no autoscaled pool) the
whole block is.
"""
import hashlib
import json
import os
import re
import subprocess

from .test_preflight import REPO, VENV_BIN

PINS = os.path.join(REPO, "roles", "sidekiq_autoscaler", "files", "requirements.txt")


def run_downloads(tmp_path, **extra_vars):
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(tmp_path / "facts")
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(extra_vars))
    cmd = ["ansible-playbook", os.path.join(REPO, "playbooks", "controller_downloads.yml"),
           "-i", os.path.join(REPO, "inventories", "lab"), "-e", "@%s" % extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)


def recap(stdout):
    match = re.search(r"^mon1\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)",
                      stdout, re.M)
    assert match, stdout[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed", "skipped"), map(int, match.groups())))


def marker(directory):
    # What the role names its marker: the sha1 of requirements.txt as the file lookup reads it (no final newline).
    with open(PINS, encoding="utf-8") as handle:
        text = handle.read().rstrip("\n")
    return directory / (".requirements-" + hashlib.sha1(text.encode()).hexdigest())


def test_pins_already_downloaded_are_not_downloaded_again(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    marker(wheels).write_text("")
    result = run_downloads(tmp_path, sidekiq_autoscaler_wheel_dir=str(wheels))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    counts = recap(result.stdout)
    assert counts["changed"] == 0 and counts["unreachable"] == 0 and counts["failed"] == 0, counts
    assert "Download the wheels on the controller" in result.stdout
    assert sorted(path.name for path in wheels.iterdir()) == [marker(wheels).name]


def test_nothing_is_downloaded_without_a_wheel_directory(tmp_path):
    result = run_downloads(tmp_path, sidekiq_autoscaler_wheel_dir="")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    counts = recap(result.stdout)
    assert counts["changed"] == 0 and counts["skipped"] >= 2, counts


def test_nothing_is_downloaded_while_no_pool_autoscales(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    pools = [{"name": "default", "hosts": ["sidekiq1"], "concurrency": 3,
              "queues": ["default", "ingress", "scheduler", "push", "pull", "mailers", "fasp"]}]
    result = run_downloads(tmp_path, sidekiq_autoscaler_wheel_dir=str(wheels), mastodon_sidekiq_pools=pools)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    counts = recap(result.stdout)
    assert counts["changed"] == 0 and counts["skipped"] >= 2, counts
    assert list(wheels.iterdir()) == []
