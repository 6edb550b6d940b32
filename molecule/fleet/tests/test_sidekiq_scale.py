"""The autoscaler's scaling playbook (side_effect_sidekiq_scale.yml, playbooks/sidekiq_scale.yml) on the lab's
autoscaled ingress pool: out to 3 adds two processes on sidekiq1, the same again and a converge change nothing and
keep them, back to 1 under running jobs stops them only after their jobs ran, and requests outside the policy are
refused naming it. A missing evidence file fails."""
import json
import os
import re

import pytest

EVIDENCE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-mol-fleet-sidekiq-scale.json")


@pytest.fixture(scope="module")
def evidence():
    assert os.path.exists(EVIDENCE), "%s not found: the scaling side effect did not run or did not finish" % EVIDENCE
    with open(EVIDENCE) as handle:
        return json.load(handle)


def recap(run):
    return dict((m.group(1), dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))))
                for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", run["stdout"], re.M))


def said(run):
    """The run's output with whitespace collapsed (the YAML callback folds long messages)."""
    return " ".join((run["stdout"] + "\n" + run["stderr"]).split())


def units(text):
    """{unit: (ActiveState, MainPID)} and the drop-in directories from the side effect's probe."""
    found, current = {}, {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            current[key] = value
            if {"Id", "ActiveState", "MainPID"} <= set(current):
                found[current["Id"]] = (current["ActiveState"], int(current["MainPID"]))
                current = {}
    dirs = sorted(os.path.basename(line) for line in text.splitlines() if line.startswith("/etc/systemd/system/") and "-x" in line)
    return found, dirs


def sql(lab_host, query):
    out = lab_host("db1").check_output("sudo -u postgres psql -d mastodon_production -AtF '|' -c %s", query)
    return [line.split("|") for line in out.splitlines() if line]


def test_scale_out_adds_two_processes_of_the_pool_on_its_host(evidence):
    run = evidence["out"]
    assert run["rc"] == 0, run["stdout"][-3000:] + run["stderr"][-2000:]
    assert "sidekiq scale: pool ingress: 1 -> 3 process(es) (converged 1, added 2); asked because: molecule: scale out" in said(run)
    assert recap(run)["sidekiq1"]["changed"] > 0 and recap(run)["sidekiq2"]["changed"] == 0, recap(run)
    found, dirs = units(evidence["units"]["out"])
    assert dirs == ["mastodon-sidekiq@ingress-x1.service.d", "mastodon-sidekiq@ingress-x2.service.d"], dirs
    for unit in ("mastodon-sidekiq@ingress.service", "mastodon-sidekiq@ingress-x1.service", "mastodon-sidekiq@ingress-x2.service"):
        assert found[unit][0] == "active" and found[unit][1] > 0, found


def test_the_same_size_again_changes_nothing(evidence):
    run = evidence["again"]
    assert run["rc"] == 0, run["stdout"][-3000:]
    assert {h: r["changed"] for h, r in recap(run).items()} == {"sidekiq1": 0, "sidekiq2": 0}, run["stdout"][-3000:]
    # The plan read the two added processes back from the host.
    assert "sidekiq scale: pool ingress: 3 -> 3 process(es) (converged 1, added 2)" in said(run), run["stdout"][-3000:]


def test_converge_keeps_the_added_processes_running(evidence):
    run = evidence["converge"]
    assert run["rc"] == 0, run["stdout"][-3000:] + run["stderr"][-2000:]
    assert recap(run)["sidekiq1"]["changed"] == 0, run["stdout"][-3000:]
    before, _ = units(evidence["units"]["out"])
    after, dirs = units(evidence["units"]["converged"])
    assert after == before, (before, after)
    assert len(dirs) == 2, dirs


def test_every_ingress_thread_ran_a_job_when_the_scale_in_began(evidence):
    running = [j for j in evidence["busy"] if j["queue"] == "ingress"]
    assert len(running) == 6, evidence["busy"]


def test_scale_in_waits_for_the_running_jobs_then_stops_the_added_processes(evidence, lab_host):
    run = evidence["in"]
    assert run["rc"] == 0, run["stdout"][-3000:] + run["stderr"][-2000:]
    assert "sidekiq scale: pool ingress: 3 -> 1 process(es) (converged 1, added 0); asked because: molecule: scale in" in said(run)
    assert ("sidekiq scale on sidekiq1: added none; removed ingress-x1, ingress-x2; still running when stopped (back to "
            "their queue): none") in said(run), run["stdout"][-3000:]
    found, dirs = units(evidence["units"]["in"])
    assert dirs == [], dirs
    assert found["mastodon-sidekiq@ingress.service"][0] == "active", found
    assert [u for u, (state, _pid) in found.items() if u != "mastodon-sidekiq@ingress.service" and state == "active"] == [], found
    # Every job ran exactly once, two of them or more on the processes that were then stopped.
    added_pids = {pid for unit, (_s, pid) in units(evidence["units"]["out"])[0].items() if "-x" in unit}
    rows = sql(lab_host, "SELECT jid, runs, pid, hostname FROM fixture_jobs WHERE jid IN (%s)"
               % ",".join("'%s'" % j for j in evidence["jids"]))
    assert sorted(r[0] for r in rows) == sorted(evidence["jids"]), rows
    assert {r[1] for r in rows} == {"1"}, rows
    assert len([r for r in rows if int(r[2]) in added_pids and r[3] == "sidekiq1"]) >= 2, (rows, added_pids)


@pytest.mark.parametrize("index,message", [
    (0, "sidekiq_scale_processes 5 is outside pool ingress autoscale.min 1 .. autoscale.max 4"),
    (1, "pool default has no autoscale block: only an autoscaled pool is scaled"),
])
def test_requests_outside_the_policy_are_refused_naming_it_and_change_nothing(evidence, index, message):
    run = evidence["refused"][index]
    assert run["rc"] != 0, run["stdout"][-3000:]
    assert message in said(run), run["stdout"][-3000:]
    assert "changed=1" not in run["stdout"] and not re.search(r"changed=[1-9]", run["stdout"]), run["stdout"][-3000:]
    assert units(evidence["units"]["refused"]) == units(evidence["units"]["in"])
