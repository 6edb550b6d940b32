"""Shared values are defined once, and playbooks reach roles only through declared entry points.

- No playbook retypes a role default (the fleet role defines the Postgres port and version,
  PgBouncer's paths and the rest; every playbook loads it).
- Every `tasks_from:` names an entry point declared in that role's meta/argument_specs.yml.
- No playbook renders a role's template or file by path.
"""
import glob
import os
import re

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RETYPED = re.compile(r"default\(5432\)|default\(15\)|/etc/pgbouncer")


def _files(*patterns):
    found = []
    for pattern in patterns:
        found.extend(glob.glob(os.path.join(REPO, pattern), recursive=True))
    return sorted(found)


def test_playbooks_retype_no_role_default():
    hits = []
    for path in _files("playbooks/**/*.yml"):
        for number, line in enumerate(open(path), 1):
            if RETYPED.search(line):
                hits.append("%s:%d: %s" % (os.path.relpath(path, REPO), number, line.strip()))
    assert hits == []


def test_playbooks_render_no_role_file_by_path():
    hits = []
    for path in _files("playbooks/**/*.yml"):
        for number, line in enumerate(open(path), 1):
            # Reading a role's declared argument specs (preflight.yml validates against them) is allowed;
            # rendering its templates or files, or running its task files, is not.
            if re.search(r"roles/[^/\s]+/(templates|files|tasks|handlers|defaults|vars)/", line):
                hits.append("%s:%d: %s" % (os.path.relpath(path, REPO), number, line.strip()))
    assert hits == []


def _tasks_from_calls():
    calls = []
    for path in _files("playbooks/**/*.yml", "roles/**/*.yml", "molecule/**/*.yml", "lab/**/*.yml"):
        try:
            docs = list(yaml.safe_load_all(open(path)))
        except yaml.YAMLError:
            continue

        def walk(node):
            if isinstance(node, dict):
                for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
                    spec = node.get(key)
                    if isinstance(spec, dict) and "tasks_from" in spec:
                        calls.append((os.path.relpath(path, REPO), spec["name"].split(".")[-1], spec["tasks_from"]))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)
        for doc in docs:
            walk(doc)
    return calls


def test_every_tasks_from_is_a_declared_entry_point():
    calls = _tasks_from_calls()
    assert len(calls) > 10, calls  # the walk found the playbooks' calls
    missing = []
    for where, role, entry in calls:
        specs = yaml.safe_load(open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml")))["argument_specs"]
        if entry not in specs:
            missing.append("%s: %s tasks_from=%s" % (where, role, entry))
    assert missing == []


def test_every_role_loads_the_fleet_values():
    for meta in _files("roles/*/meta/main.yml"):
        role = meta.split(os.sep)[-3]
        if role == "fleet":
            continue
        deps = yaml.safe_load(open(meta)).get("dependencies") or []
        assert {"role": "fediops.mastodon.fleet"} in deps, role
