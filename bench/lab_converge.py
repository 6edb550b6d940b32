#!/usr/bin/env python3
"""Time standing up the lab and re-running playbooks/site.yml on it.

Prints, for a full 13-host lab of its own (lab_name "bench", 10.89.49.0/24, so a running
`make lab` is left alone):
  - cold: lab/playbooks/create.yml + fixture_release.yml + playbooks/site.yml from an existing base
    image (what `make lab` does after bootstrap);
  - no-op re-runs of site.yml with the default linear strategy over SSH, and with mitogen's
    mitogen_linear strategy (opt-in accelerator), each with its `changed` total (must be 0);
  - for the last linear no-op run, a table per role: tasks (task headers), host results (one per
    task and host: what each role costs on a converged fleet) and seconds (ansible.posix.profile_roles),
    so the next regression is visible.

Usage: .venv/bin/python bench/lab_converge.py [--runs N] [--cold-mitogen] [--keep] [--existing] [--no-mitogen]
`--existing` uses the running `make lab` lab instead (no cold run, nothing created or removed).
Run `make bootstrap` first (the base image must exist).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
OVERLAY = """---
all:
  vars:
    lab_name: bench
    lab_subnet_prefix: 10.89.49
"""


def mitogen_strategy_dir():
    import ansible_mitogen  # noqa: F401  (from the project venv)

    return os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy")


def per_role(output):
    """{role: [task headers, host results, seconds]} from a run's default-callback output with profile_roles."""
    table = {}
    current = None
    for line in output.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\]", line)
        if header:
            name = header.group(1)
            current = name.split(" : ")[0].replace("fediops.mastodon.", "") if " : " in name else "(playbook tasks)"
            table.setdefault(current, [0, 0, 0.0])[0] += 1
            continue
        if current and re.match(r"^(ok|changed|skipping|failed|fatal): \[", line):
            table[current][1] += 1
    recap = output.split("ROLES RECAP", 1)[-1] if "ROLES RECAP" in output else ""
    for role, seconds in re.findall(r"^(\S+) -+ ([0-9.]+)s$", recap, re.M):
        # profile_roles names a role by its short name, and a task outside any role by its action.
        key = role if role in table else ("(playbook tasks)" if role != "total" else None)
        if key:
            table.setdefault(key, [0, 0, 0.0])[2] += float(seconds)
    return table


def print_per_role(table):
    print("per role, last linear no-op run (tasks = task headers; results = one per task and host):")
    print("  %-34s %6s %8s %9s" % ("role", "tasks", "results", "seconds"))
    for role, (tasks, results, seconds) in sorted(table.items(), key=lambda kv: -kv[1][2]):
        print("  %-34s %6d %8d %9.1f" % (role.replace("fediops.mastodon.", ""), tasks, results, seconds))
    print("  %-34s %6d %8d %9.1f" % ("total", sum(v[0] for v in table.values()), sum(v[1] for v in table.values()),
                                     sum(v[2] for v in table.values())))


def run_playbook(playbook, overlay, mitogen=False, profile=False):
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    if profile:
        env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks,ansible.posix.profile_roles"
    if mitogen:
        env["ANSIBLE_STRATEGY_PLUGINS"] = mitogen_strategy_dir()
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    cmd = ["ansible-playbook", "-i", os.path.join(REPO, "inventories", "lab")] + (["-i", overlay] if overlay else []) + [
        os.path.join(REPO, playbook)]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit("%s failed (rc=%d)" % (playbook, proc.returncode))
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", proc.stdout))
    hosts = len(re.findall(r"^\S+\s+: ok=", proc.stdout, re.M))
    if profile:
        # The whole output stays for reading (which tasks cost what, which changed).
        os.makedirs(os.path.join(REPO, ".cache", "bench"), exist_ok=True)
        with open(os.path.join(REPO, ".cache", "bench", "lab_converge-noop.log"), "w") as handle:
            handle.write(proc.stdout)
        return elapsed, changed, hosts, per_role(proc.stdout)
    return elapsed, changed, hosts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="no-op runs per strategy (the median is printed)")
    parser.add_argument("--cold-mitogen", action="store_true", help="also time a cold converge with mitogen")
    parser.add_argument("--keep", action="store_true", help="leave the bench lab running")
    parser.add_argument("--existing", action="store_true", help="no-op runs on the running `make lab` lab only")
    parser.add_argument("--no-mitogen", action="store_true", help="skip the mitogen no-op runs")
    args = parser.parse_args()
    if args.existing:
        print("nproc=%d  load(1m)=%.2f  (the running lab)" % (os.cpu_count(), os.getloadavg()[0]))
        noop_runs(None, args)
        return

    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="fediops-bench-") as handle:
        handle.write(OVERLAY)
        handle.flush()
        overlay = handle.name
        print("nproc=%d  load(1m)=%.2f" % (os.cpu_count(), os.getloadavg()[0]))
        colds = [("linear", False)] + ([("mitogen_linear", True)] if args.cold_mitogen else [])
        try:
            for label, mitogen in colds:
                run_playbook("lab/playbooks/destroy.yml", overlay)
                create_s, _, hosts = run_playbook("lab/playbooks/create.yml", overlay)
                fixture_s, _, _ = run_playbook("lab/playbooks/fixture_release.yml", overlay)
                site_s, changed, _ = run_playbook("playbooks/site.yml", overlay, mitogen=mitogen)
                print("cold make lab, %s: %.1f s (create %.1f s + fixture artifacts %.1f s + site.yml %.1f s, %d hosts, %d changed)"
                      % (label, create_s + fixture_s + site_s, create_s, fixture_s, site_s, hosts, changed))
            noop_runs(overlay, args)
        finally:
            if not args.keep:
                run_playbook("lab/playbooks/destroy.yml", overlay)


def noop_runs(overlay, args):
    strategies = [("linear over SSH", False)] + ([] if args.no_mitogen else [("mitogen_linear over SSH", True)])
    table = None
    for label, mitogen in strategies:
        times, changes = [], []
        for _ in range(args.runs):
            if mitogen:
                elapsed, changed, hosts = run_playbook("playbooks/site.yml", overlay, mitogen=True)
            else:
                elapsed, changed, hosts, table = run_playbook("playbooks/site.yml", overlay, profile=True)
            times.append(elapsed)
            changes.append(changed)
        times.sort()
        print("no-op site.yml, %s: %.1f s median of %d (min %.1f, max %.1f), changed=%d, %d hosts"
              % (label, times[len(times) // 2], len(times), times[0], times[-1], max(changes), hosts))
    print_per_role(table)


if __name__ == "__main__":
    main()
