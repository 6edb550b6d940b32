"""The Sidekiq autoscaler end to end (side_effect_sidekiq_autoscale.yml; issue 14's "Done when"): the service on mon1
(ansible-rulebook, roles/sidekiq_autoscaler) scales the lab's ingress pool on its latency through
playbooks/sidekiq_scale.yml, inside the connection budget, without flapping, losing no job. The load and the
timeline come from bench/autoscale.py (samples of the Sidekiq exporter every 2 s, the service's announced decisions
from its journal, the jobs from fixture_jobs). A missing evidence file fails."""
import json
import os
import re

import pytest

BASE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-mol-fleet-sidekiq-autoscale")
# bench/autoscale.py samples every 2 s; a sample and a journal line may each be that late.
SAMPLE = 2.0


def load(suffix):
    path = BASE + suffix
    assert os.path.exists(path), "%s not found: the autoscaler side effect did not run or did not finish" % path
    with open(path) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def service():
    return load("-service.json")


@pytest.fixture(scope="module")
def runs(service):
    assert service["burst"]["rc"] == 0, service["burst"]["stdout"][-3000:] + service["burst"]["stderr"][-2000:]
    return dict((r["run"], r) for r in load(".json")["runs"])


@pytest.fixture(scope="module")
def budget(service):
    assert service["budget"]["rc"] == 0, service["budget"]["stdout"][-3000:] + service["budget"]["stderr"][-2000:]
    return load("-budget.json")["runs"][0]


def section(service, n):
    return service["service"].split("=====")[n]


def every_job_ran_once(run):
    assert run["errors"] == {}, run["errors"]
    assert run["jobs_enqueued"] > 0 and run["jobs_run"] == run["jobs_enqueued"] and run["job_runs"] == run["jobs_run"], run


def test_a_burst_scales_out_within_the_delay_plus_one_poll(runs, service):
    run = runs["autoscaled"]
    policy = run["policy"]
    above = [t for t, latency, _p in run["samples"] if latency > policy["target_latency"]]
    assert above, run["samples"]
    first_out = run["first_scale_out"]
    assert first_out is not None, run["decisions"]
    # Latency crossed the target between the sample before `above[0]` and it; the decision is due scale_out_after
    # later, at the next poll.
    assert first_out <= above[0] + policy["scale_out_after"] + service["interval"] + SAMPLE, (above[0], first_out)
    assert first_out >= above[0] - SAMPLE + policy["scale_out_after"] - SAMPLE, (above[0], first_out)
    assert run["max_processes"] > policy["min"], run["samples"]


def test_latency_goes_back_under_target_and_the_pool_back_to_min(runs):
    run = runs["autoscaled"]
    policy = run["policy"]
    assert run["back_under_target"] is not None, run["samples"]
    assert run["back_at_min"] is not None and run["back_at_min"] > run["back_under_target"], run["samples"]
    assert run["samples"][-1][1] <= policy["target_latency"] and run["samples"][-1][2] == policy["min"], run["samples"][-3:]
    ins = [t for t, kind, _text in run["decisions"] if kind == "scale_in"]
    outs = [t for t, kind, _text in run["decisions"] if kind == "scale_out"]
    assert ins and outs, run["decisions"]
    # Each step in waits for the hold below target and a cooldown after the last action.
    assert ins[0] >= outs[-1] + policy["cooldown"] - SAMPLE, run["decisions"]
    assert all(b - a >= policy["cooldown"] - SAMPLE for a, b in zip(ins, ins[1:])), ins
    assert len(ins) == run["max_processes"] - policy["min"], run["decisions"]


def test_every_job_of_the_burst_ran_once_and_on_added_processes(runs):
    run = runs["autoscaled"]
    every_job_ran_once(run)
    assert run["processes_used"] > 1, run


def test_a_sawtooth_makes_at_most_one_scale_out_scale_in_pair_per_cooldown(runs):
    run = runs["sawtooth"]
    every_job_ran_once(run)
    cooldown = run["policy"]["cooldown"]
    actions = [(t, kind) for t, kind, _text in run["decisions"] if kind in ("scale_out", "scale_in")]
    assert actions, run["samples"]
    # Opposite actions are at least a cooldown apart, so no window of one cooldown holds more than one pair.
    for (t1, k1), (t2, k2) in zip(actions, actions[1:]):
        if k1 != k2:
            assert t2 - t1 >= cooldown - SAMPLE, actions
    for start, _kind in actions:
        window = [k for t, k in actions if start <= t < start + cooldown]
        assert sum(1 for a, b in zip(window, window[1:]) if a != b) <= 1, actions


def test_a_burst_the_room_does_not_fit_stops_at_the_budget_and_the_refusal_is_logged_counted_and_posted(budget, service):
    every_job_ran_once(budget)
    # Room 4 connections, DB_POOL 2: two processes above the converged one.
    assert budget["max_processes"] == 3, budget["samples"]
    refused = [text for _t, kind, text in budget["decisions"] if kind == "refused"]
    assert refused and "for the connection budget" in refused[0], budget["decisions"]
    assert "4 connection(s) free" in " ".join(refused) or "connection(s) free" in refused[0], refused
    metrics = section(service, 0)
    count = re.search(r'^fediops_sidekiq_autoscale_decisions_total\{pool="ingress",action="refused_budget"\} (\d+)', metrics, re.M)
    processes = re.search(r'^fediops_sidekiq_autoscale_refused_processes_total\{pool="ingress"\} (\d+)', metrics, re.M)
    assert count and int(count.group(1)) >= 1, metrics
    assert processes and int(processes.group(1)) >= 1, metrics
    posts = section(service, 3)
    assert "refused" in posts and "for the connection budget" in posts, posts[-2000:]


def test_every_decision_is_posted_with_its_reason(runs, service):
    posts = [json.loads(line) for line in section(service, 3).strip().splitlines() if line.strip()]
    texts = " ".join(json.dumps(p) for p in posts)
    assert "pool ingress scaling out to 2 process(es): latency" in texts, texts[-2000:]
    assert "pool ingress scaling in to 1 process(es)" in texts, texts[-2000:]
    assert "webhook" not in texts.lower()


def test_prometheus_scrapes_the_autoscaler(service):
    result = service["prometheus"]["data"]["result"]
    actions = {r["metric"]["action"] for r in result if r["metric"].get("job") == "sidekiq_autoscaler"}
    assert actions == {"scale_out", "scale_in", "refused_budget"}, result


def test_the_service_runs_sandboxed_and_its_secrets_are_not_world_readable(service):
    unit = dict(line.split("=", 1) for line in section(service, 1).strip().splitlines())
    assert unit["User"] == "fediops-autoscaler" and unit["ActiveState"] == "active", unit
    assert unit["NoNewPrivileges"] == "yes" and unit["ProtectSystem"] == "strict" and unit["PrivateTmp"] == "yes", unit
    assert unit["CapabilityBoundingSet"] == "", unit
    for line in section(service, 2).strip().splitlines():
        _path, mode, owner, group = line.split()
        assert (mode, owner, group) == ("640", "root", "fediops-autoscaler"), line


def test_the_autoscaler_logs_in_to_the_sidekiq_hosts_only_from_mon1(lab_host):
    keys = lab_host("sidekiq1").check_output("cat /var/lib/fediops-autoscaler/.ssh/authorized_keys")
    lines = [line for line in keys.splitlines() if line.strip()]
    assert len(lines) == 1 and re.match(r'^from="10\.89\.50\.71",restrict ssh-ed25519 ', lines[0]), keys
    rules = lab_host("sidekiq1").check_output("nft list ruleset")
    assert "10.89.50.71" in rules, rules
