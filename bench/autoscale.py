#!/usr/bin/env python3
"""Sidekiq autoscaling in the lab: a burst of slow jobs on `ingress` through the app, with and without the autoscaler.

Each run enqueues --jobs jobs of --sleep seconds on the pool's queue through web1's Puma (the fixture's
POST /fixture/enqueue, sent from edge-eu, which the firewall lets in), then samples every --sample seconds
until every job ran and the pool is back at its policy's `min` (or --timeout):
  - the pool's latency and live processes from the Sidekiq exporter on mon1 (it runs whether or not the
    autoscaler does),
  - the autoscaler's decisions from its journal (scaled out, scaled in, refused for the budget, with times).
Prints per run: peak latency, seconds above target, time to the first scale-out, time back under target
(for good), time back at `min` (scale-in done), jobs enqueued and run (each once: fixture_jobs on the
primary), the most processes seen; and the ratio of seconds above target, autoscaled / fixed.

Runs (--runs, in order): `fixed` (the autoscaler stopped, the pool at its converged size), `autoscaled`
(the autoscaler running), `budget` (autoscaled, for a lab whose autoscaler room was lowered: it reports the
refusals), `sawtooth` (--teeth bursts of --tooth-jobs, one every --period seconds, autoscaled: counts
scale-out/scale-in pairs per cooldown). The autoscaler is left running after an autoscaled run and started
again after `fixed` if it ran before.

Every error counts: a failed enqueue, a job that never ran or ran twice, a sample that could not be read;
nothing is retried. Exit status 1 when any run has one.

    .venv/bin/python bench/autoscale.py                       # fixed, then autoscaled, on `make lab`
    .venv/bin/python bench/autoscale.py --runs autoscaled,sawtooth --json /tmp/autoscale.json
Molecule's fleet scenario runs it with --lab-name and --json and checks the evidence (tests/test_sidekiq_autoscale.py).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import uuid

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICE = "fediops-sidekiq-autoscaler.service"


def lab_policy(pool):
    """The pool's autoscale block and the fixture's domain from the lab inventory (defined once, read here)."""
    with open(os.path.join(REPO, "inventories", "lab", "group_vars", "all", "mastodon.yml")) as handle:
        data = yaml.safe_load(handle)
    for entry in data["mastodon_sidekiq_pools"]:
        if entry["name"] == pool:
            return entry["autoscale"], data["mastodon_config_local_domain"]
    raise SystemExit("pool %s has no autoscale block in inventories/lab" % pool)


class Lab:
    def __init__(self, name, prefix):
        self.name = name
        self.prefix = prefix

    def addr(self, number):
        return "%s.%d" % (self.prefix, number)

    def run(self, host, argv, check=True, timeout=60):
        proc = subprocess.run(["podman", "exec", "%s-%s" % (self.name, host)] + argv, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError("%s %s: rc %d %s" % (host, " ".join(argv), proc.returncode, proc.stderr.strip()[-300:]))
        return proc

    def sql(self, query):
        out = self.run("db1", ["sudo", "-u", "postgres", "psql", "-d", "mastodon_production", "-AtF", "|", "-c", query]).stdout
        return [line.split("|") for line in out.splitlines() if line]


def metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def decisions(lab, since):
    """The autoscaler's announced decisions since `since` (epoch): [(time, kind, text)]."""
    out = lab.run("mon1", ["journalctl", "-u", SERVICE, "-o", "short-unix", "--no-pager", "--since", "@%d" % int(since)],
                  check=False).stdout
    found = []
    for line in out.splitlines():
        m = re.match(r"^([0-9.]+) \S+ \S+: (sidekiq autoscale: pool (\S+) (scaling out|scaling in|refused) .*)$", line)
        if m:
            kind = {"scaling out": "scale_out", "scaling in": "scale_in", "refused": "refused"}[m.group(4)]
            found.append((float(m.group(1)), kind, m.group(2)))
    return found


def enqueue(lab, domain, queue, n, sleep, note):
    proc = lab.run("edge-eu", ["curl", "-s", "-m", "20", "-X", "POST", "-H", "Host: " + domain, "-o", "-", "-w", "\n%{http_code}",
                               "http://%s:3000/fixture/enqueue?queue=%s&n=%d&sleep=%s&note=%s" % (lab.addr(31), queue, n, sleep, note)],
                   check=False)
    body, _, code = proc.stdout.rpartition("\n")
    if code != "202":
        return None, "enqueue answered %r: %s" % (code, body[-200:])
    return len(json.loads(body)["jids"]), None


def sample(lab, pool, queue):
    text = lab.run("mon1", ["curl", "-s", "-m", "5", "http://%s:9808/metrics" % lab.addr(71)]).stdout
    latency = metric(text, "fediops_sidekiq_queue_latency_seconds", {"queue": queue})
    processes = metric(text, "fediops_sidekiq_pool_processes", {"pool": pool})
    if latency is None or processes is None:
        raise RuntimeError("the Sidekiq exporter on mon1 has no latency for %s or processes for %s" % (queue, pool))
    return latency, int(processes)


def service_active(lab):
    return lab.run("mon1", ["systemctl", "is-active", SERVICE], check=False).stdout.strip() == "active"


def one_run(lab, args, kind, policy, domain, bursts):
    """bursts: [(offset seconds, jobs)]. Returns the run's record."""
    target, lowest = float(policy["target_latency"]), int(policy["min"])
    note = "autoscale-%s-%s" % (kind, uuid.uuid4().hex[:8])
    errors = {}

    def count(kind_of_error, text):
        errors.setdefault(kind_of_error, []).append(text)

    start = time.time()
    samples, enqueued, sent = [], 0, 0
    deadline = start + args.timeout
    while time.time() < deadline:
        now = time.time()
        while sent < len(bursts) and now - start >= bursts[sent][0]:
            n, problem = enqueue(lab, domain, args.queue, bursts[sent][1], args.sleep, note)
            sent += 1
            if problem:
                count("enqueue failed", problem)
            else:
                enqueued += n
        try:
            latency, processes = sample(lab, args.pool, args.queue)
            samples.append((round(time.time() - start, 1), latency, processes))
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            count("sample failed", str(e))
        done = sent == len(bursts)
        if done and samples and samples[-1][1] <= target and samples[-1][2] <= lowest:
            ran = int(lab.sql("SELECT count(*) FROM fixture_jobs WHERE note = '%s'" % note)[0][0])
            if ran >= enqueued:
                break
        time.sleep(args.sample)
    else:
        count("timeout", "not back at min %d with every job run within %d s" % (lowest, args.timeout))
    rows = lab.sql("SELECT count(*), coalesce(sum(runs), 0), count(DISTINCT process_identity) FROM fixture_jobs WHERE note = '%s'" % note)[0]
    ran, runs, processes_used = int(rows[0]), int(rows[1]), int(rows[2])
    if ran != enqueued:
        count("jobs not run", "%d enqueued, %d ran" % (enqueued, ran))
    if runs != ran:
        count("jobs run twice", "%d jobs, %d runs" % (ran, runs))
    said = [(round(t - start, 1), k, text) for t, k, text in decisions(lab, start)]
    above = [s for s in samples if s[1] > target]
    peak = max([s[1] for s in samples] or [0.0])
    first_out = next((t for t, k, _ in said if k == "scale_out"), None)
    last_above = above[-1][0] if above else None
    back_under = next((s[0] for s in samples if last_above is not None and s[0] > last_above), None)
    rose = next((s[0] for s in samples if s[2] > lowest), None)
    back_at_min = next((s[0] for s in samples if rose is not None and s[0] > rose and s[2] <= lowest), None)
    return {
        "run": kind, "note": note, "policy": policy, "interval_sample": args.sample,
        "jobs_enqueued": enqueued, "jobs_run": ran, "job_runs": runs, "processes_used": processes_used,
        "peak_latency": round(peak, 1),
        # A sample above target stands for the time to the next sample.
        "seconds_above_target": round(sum(nxt[0] - cur[0] for cur, nxt in zip(samples, samples[1:]) if cur[1] > target), 1),
        "first_scale_out": first_out, "back_under_target": back_under, "back_at_min": back_at_min,
        "max_processes": max([s[2] for s in samples] or [0]),
        "decisions": said, "samples": samples, "errors": errors, "seconds": round(time.time() - start, 1),
    }


def print_run(r):
    print("%-10s jobs %d enqueued / %d run (%d runs); peak latency %.1f s; %.0f s above target; first scale-out %s; "
          "back under target %s; back at min %s; most processes %d; %d decision(s); %.0f s; errors: %s" % (
              r["run"], r["jobs_enqueued"], r["jobs_run"], r["job_runs"], r["peak_latency"], r["seconds_above_target"],
              "%s s" % r["first_scale_out"] if r["first_scale_out"] is not None else "none",
              "%s s" % r["back_under_target"] if r["back_under_target"] is not None else "-",
              "%s s" % r["back_at_min"] if r["back_at_min"] is not None else "-",
              r["max_processes"], len(r["decisions"]), r["seconds"],
              ", ".join("%s x%d" % (k, len(v)) for k, v in r["errors"].items()) or "none"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lab-name", default="lab")
    p.add_argument("--subnet-prefix", default="10.89.40")
    p.add_argument("--runs", default="fixed,autoscaled")
    p.add_argument("--pool", default="ingress")
    p.add_argument("--queue", default="ingress")
    p.add_argument("--jobs", type=int, default=240)
    p.add_argument("--sleep", type=float, default=1.0)
    p.add_argument("--sample", type=float, default=2.0)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--teeth", type=int, default=4)
    p.add_argument("--tooth-jobs", type=int, default=40)
    p.add_argument("--period", type=int, default=20)
    p.add_argument("--json")
    args = p.parse_args()
    policy, domain = lab_policy(args.pool)
    lab = Lab(args.lab_name, args.subnet_prefix)
    was_running = service_active(lab)
    results = []
    for kind in [k for k in args.runs.split(",") if k]:
        if kind == "fixed":
            lab.run("mon1", ["systemctl", "stop", SERVICE])
        else:
            lab.run("mon1", ["systemctl", "start", SERVICE])
        bursts = ([(i * args.period, args.tooth_jobs) for i in range(args.teeth)] if kind == "sawtooth"
                  else [(0, args.jobs)])
        result = one_run(lab, args, kind, policy, domain, bursts)
        results.append(result)
        print_run(result)
        if kind == "fixed" and was_running:
            lab.run("mon1", ["systemctl", "start", SERVICE])
    by = dict((r["run"], r) for r in results)
    if "fixed" in by and "autoscaled" in by and by["fixed"]["seconds_above_target"]:
        ratio = by["autoscaled"]["seconds_above_target"] / by["fixed"]["seconds_above_target"]
        print("seconds above target, autoscaled / fixed: %.0f / %.0f = %.2f" % (
            by["autoscaled"]["seconds_above_target"], by["fixed"]["seconds_above_target"], ratio))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"runs": results}, handle, indent=1)
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
