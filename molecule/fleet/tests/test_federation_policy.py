"""Issue 17: domain-block subscriptions and media retention, end to end on the lab's app tier.

playbooks/domain_blocks.yml runs from here (the controller, like an operator) against the scenario's hosts;
the blocks are read back through the fixture's admin API (Mastodon's /api/v1/admin/domain_blocks, Bearer
token, Postgres), the retention jobs from the fixture's record of every tootctl call. Tests run in file order.
"""
import json
import os
import re
import subprocess
import tempfile

import pytest
import yaml

APP = ["web1", "web2", "sidekiq1", "sidekiq2"]
MAINTENANCE = "sidekiq1"  # fleet_maintenance_host: the first host of the pool serving `scheduler`
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
SCENARIO = os.environ.get("MOLECULE_SCENARIO_DIRECTORY") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "fediops-managed"
# lab/files/domain_blocks.csv + inventories/lab/group_vars/all/maintenance.yml: the list, the local addition
# (local.lab.example) and the allow-override (friendly.lab.example, listed but never blocked).
EXPECTED = {
    "spam.lab.example": ("suspend", False, False, "Spam", False),
    "harass.lab.example": ("suspend", True, True, "Harassment", True),
    "loud.lab.example": ("silence", True, False, None, False),
    "local.lab.example": ("silence", False, False, "Local decision", False),
}
RETENTION = {  # inventories/lab/group_vars/all/maintenance.yml (media, preview cards) and the role's defaults
    "media-remove": ("media remove", {"days": 4, "concurrency": "5", "prune-profiles": True}),
    "preview-cards-remove": ("preview_cards remove", {"days": 21}),
}


def _token():
    with open(os.path.join(PROJECT, "inventories", "lab", "group_vars", "all", "secrets.yml")) as handle:
        return yaml.safe_load(handle)["mastodon_domain_blocks_api_token"]


def api(lab_host, lab_addresses, method, path, **params):
    """(status, body) of an admin API call made on web1 (loopback to Puma) with the lab's admin token."""
    script = (
        "import json,sys,urllib.parse,urllib.request,urllib.error\n"
        "data=urllib.parse.urlencode(json.loads(sys.argv[4])).encode() if sys.argv[2] in ('POST','PUT') else None\n"
        "r=urllib.request.Request(sys.argv[1],method=sys.argv[2],data=data)\n"
        "r.add_header('Authorization','Bearer '+sys.argv[3])\n"
        "try:\n    resp=urllib.request.urlopen(r,timeout=10)\nexcept urllib.error.HTTPError as e:\n    resp=e\n"
        "print(json.dumps([resp.status,json.loads(resp.read() or b'null')]))\n"
    )
    url = "http://%s:3000%s" % (lab_addresses["web1"], path)
    return json.loads(lab_host("web1").check_output("python3 -c %s %s %s %s %s", script, url, method, _token(),
                                                    json.dumps(params)))


def blocks(lab_host, lab_addresses):
    status, body = api(lab_host, lab_addresses, "GET", "/api/v1/admin/domain_blocks?limit=200")
    assert status == 200, body
    return {b["domain"]: b for b in body}


def summary(found):
    return {d: (b["severity"], b["reject_media"], b["reject_reports"], b["public_comment"], b["obfuscate"])
            for d, b in found.items()}


def run_domain_blocks(*extra, **extra_vars):
    """ansible-playbook playbooks/domain_blocks.yml on the scenario's app hosts; returns (rc, output, recap)."""
    argv = ["ansible-playbook", os.path.join(PROJECT, "playbooks", "domain_blocks.yml"),
            "--inventory=%s" % os.path.join(PROJECT, "inventories", "lab"),
            "--inventory=%s" % os.path.join(SCENARIO, "inventory.yml"),
            "--limit=%s" % ",".join(APP)] + list(extra)
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=PROJECT, timeout=600)
    out = res.stdout + res.stderr
    assert _token() not in out, "the admin token was printed"
    recap = {m.group(1): dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2)))
             for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", res.stdout, re.M)}
    return res.returncode, out, recap


def csv_source(tmp, text):
    path = os.path.join(tmp, "list-%d.csv" % len(os.listdir(tmp)))
    with open(path, "w") as handle:
        handle.write(text)
    return [{"name": "lab-list", "path": path}]


@pytest.fixture(scope="module")
def tmp():
    with tempfile.TemporaryDirectory(prefix="fediops-domain-blocks-") as path:
        yield path


def test_check_mode_shows_the_diff_and_changes_nothing(lab_host, lab_addresses):
    assert blocks(lab_host, lab_addresses) == {}
    rc, out, recap = run_domain_blocks("--check", "--diff")
    assert rc == 0, out[-3000:]
    assert "+spam.lab.example,suspend,false,false,Spam,false" in out and "+local.lab.example,silence" in out
    assert "+friendly.lab.example" not in out                           # the allow-override wins over the list
    assert recap[MAINTENANCE]["changed"] >= 1
    assert blocks(lab_host, lab_addresses) == {}


def test_first_run_creates_exactly_the_expected_blocks_on_one_host(lab_host, lab_addresses):
    rc, out, recap = run_domain_blocks()
    assert rc == 0, out[-3000:]
    found = blocks(lab_host, lab_addresses)
    assert summary(found) == EXPECTED
    assert all(b["private_comment"].startswith(MARKER) for b in found.values())
    for name in APP:
        present = lab_host(name).file("/etc/systemd/system/fediops-domain-blocks.timer").exists
        assert present == (name == MAINTENANCE), name
    assert lab_host(MAINTENANCE).service("fediops-domain-blocks.timer").is_enabled
    assert lab_host(MAINTENANCE).file("/etc/fediops/domain-blocks/token").mode == 0o600


def test_second_run_changes_nothing(lab_host, lab_addresses):
    rc, out, recap = run_domain_blocks()
    assert rc == 0, out[-3000:]
    assert {h: r["changed"] for h, r in recap.items()} == {h: 0 for h in APP}, out[-3000:]


def test_a_moderators_block_survives_and_dropping_a_domain_removes_only_that_block(lab_host, lab_addresses, tmp):
    status, manual = api(lab_host, lab_addresses, "POST", "/api/v1/admin/domain_blocks", domain="manual.lab.example",
                         severity="silence", private_comment="moderator decision")
    assert status == 200, manual
    with open(os.path.join(PROJECT, "lab", "files", "domain_blocks.csv")) as handle:
        text = handle.read()
    dropped = "".join(line for line in text.splitlines(True) if not line.startswith("loud.lab.example,"))
    rc, out, _recap = run_domain_blocks(mastodon_domain_blocks_sources=csv_source(tmp, dropped))
    assert rc == 0, out[-3000:]
    found = blocks(lab_host, lab_addresses)
    expected = dict(EXPECTED)
    del expected["loud.lab.example"]
    expected["manual.lab.example"] = ("silence", False, False, None, False)
    assert summary(found) == expected
    assert found["manual.lab.example"]["id"] == manual["id"]
    assert found["manual.lab.example"]["private_comment"] == "moderator decision"


def test_the_timer_applies_the_same_state_with_the_same_code(lab_host, lab_addresses):
    host = lab_host(MAINTENANCE)
    before = blocks(lab_host, lab_addresses)
    host.check_output("systemctl start fediops-domain-blocks.service")
    assert host.check_output("systemctl show -p Result --value fediops-domain-blocks.service") == "success"
    journal = host.check_output("journalctl -u fediops-domain-blocks.service -n 20 --no-pager -o cat")
    assert '"changed": false' in journal and '"created": []' in journal
    assert blocks(lab_host, lab_addresses) == before


def test_a_list_removing_more_than_the_cap_is_refused_with_nothing_changed(lab_host, lab_addresses, tmp):
    before = blocks(lab_host, lab_addresses)
    rc, out, _recap = run_domain_blocks(mastodon_domain_blocks_sources=csv_source(tmp, "spam.lab.example\n"),
                                        mastodon_domain_blocks_additions=[], mastodon_domain_blocks_max_changes=1)
    assert rc != 0
    text = " ".join(out.split())
    assert "would add 0 and remove 2 domain blocks, more than max_changes=1" in text, text[-3000:]
    assert "nothing was changed" in text
    assert blocks(lab_host, lab_addresses) == before
    # The refused list never reached the timer's desired state either.
    config = json.loads(lab_host(MAINTENANCE).check_output("cat /etc/fediops/domain-blocks/config.json"))
    assert "harass.lab.example" in config["sources"][0]["content"]


def test_retention_timers_exist_on_the_maintenance_host_only(lab_host):
    for name in APP:
        for job in ("media-remove", "preview-cards-remove", "media-remove-orphans"):
            present = lab_host(name).file("/etc/systemd/system/fediops-tootctl-%s.timer" % job).exists
            assert present == (name == MAINTENANCE), (name, job)
            if present:
                assert lab_host(name).service("fediops-tootctl-%s.timer" % job).is_enabled


def _calls(lab_host, after_id):
    out = lab_host("db1").check_output(
        "sudo -u postgres psql -d mastodon_production -At -c %s",
        "SELECT json_agg(json_build_object('id', id, 'hostname', hostname, 'command', command, 'args', args) ORDER BY id) "
        "FROM fixture_tootctl_calls WHERE id > %d" % after_id)
    return json.loads(out or "null") or []


def _last_id(lab_host):
    out = lab_host("db1").check_output("sudo -u postgres psql -d mastodon_production -At -c %s",
                                       "SELECT coalesce(max(id), 0) FROM fixture_tootctl_calls")
    return int(out)


def test_each_retention_job_ran_with_the_configured_days_read_back_from_the_fixture(lab_host):
    host = lab_host(MAINTENANCE)
    start = _last_id(lab_host)
    for job in RETENTION:
        host.check_output("systemctl start fediops-tootctl-%s.service" % job)
        assert host.check_output("systemctl show -p Result --value fediops-tootctl-%s.service" % job) == "success"
    calls = _calls(lab_host, start)
    assert [(c["hostname"], c["command"], c["args"]) for c in calls] == [
        (MAINTENANCE, command, args) for command, args in RETENTION.values()]


def test_orphan_scan_resumes_from_its_state_file_and_then_forgets_it(lab_host):
    host = lab_host(MAINTENANCE)
    state = "/var/lib/fediops-retention/media-remove-orphans.start-after"
    host.check_output("install -d -o mastodon /var/lib/fediops-retention && echo cache/media_attachments/000/042.png > %s && "
                      "chown mastodon %s", state, state)
    start = _last_id(lab_host)
    host.check_output("systemctl start fediops-tootctl-media-remove-orphans.service")
    calls = _calls(lab_host, start)
    assert [(c["hostname"], c["command"], c["args"]) for c in calls] == [
        (MAINTENANCE, "media remove-orphans", {"start-after": "cache/media_attachments/000/042.png"})]
    assert not host.file(state).exists


def test_a_run_finding_the_lock_taken_is_skipped_not_overlapped(lab_host):
    host = lab_host(MAINTENANCE)
    start = _last_id(lab_host)
    # Hold the job's lock (as a long manual run would) while the timer's service starts.
    host.check_output("flock /var/lib/fediops-retention/media-remove.lock systemctl start fediops-tootctl-media-remove.service")
    assert host.check_output("systemctl show -p Result --value fediops-tootctl-media-remove.service") == "success"
    assert _calls(lab_host, start) == []
