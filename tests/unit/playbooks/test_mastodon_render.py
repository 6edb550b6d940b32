"""Render the Mastodon units with the production defaults (source upstream, bundle exec, vendored
Ruby and Node) on the controller: the upstream path is not run in the lab, so this is its test."""
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {repo}/roles/fleet/defaults/main.yml
    - {repo}/roles/fleet/vars/main.yml
    - {repo}/roles/mastodon_web/defaults/main.yml
    - {repo}/roles/mastodon_streaming/defaults/main.yml
    - {repo}/roles/mastodon_sidekiq/defaults/main.yml
  vars:
    ansible_host: localhost
    fediops_private_address: 10.0.0.31
    item: {{name: default, instance: default, concurrency: 25, db_pool: 25, timeout: 25, queues: ["default,8", "push,6", "pull"]}}
  tasks:
    - ansible.builtin.template:
        src: "{repo}/roles/{{{{ t.role }}}}/templates/{{{{ t.src }}}}"
        dest: "{out}/{{{{ t.src | regex_replace('\\\\.j2$', '') }}}}"
        mode: "0644"
      loop:
        - {{role: mastodon_web, src: mastodon-web.service.j2}}
        - {{role: mastodon_streaming, src: mastodon-streaming@.service.j2}}
        - {{role: mastodon_sidekiq, src: mastodon-sidekiq@.service.j2}}
        - {{role: mastodon_sidekiq, src: pool.conf.j2}}
      loop_control:
        loop_var: t
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("units")
    book = out / "render.yml"
    book.write_text(PLAYBOOK.format(repo=REPO, out=out))
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_CACHE_PLUGIN_CONNECTION=str(out / "facts"))
    result = subprocess.run(["ansible-playbook", "-i", "localhost,", str(book),
                             "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python")],
                            cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return {p.name: p.read_text() for p in out.iterdir() if p.suffix in (".service", ".conf")}


def test_upstream_web_runs_bundle_exec_from_the_release(rendered):
    unit = rendered["mastodon-web.service"]
    assert "ExecStart=/home/mastodon/current/vendor/ruby/bin/bundle exec puma -C config/puma.rb" in unit
    assert 'Environment="LD_PRELOAD=libjemalloc.so.2"' in unit
    assert 'Environment="PWD=/home/mastodon/current"' in unit and 'Environment="BIND=10.0.0.31"' in unit
    # sizing from roles/fleet (the values the connection budget counts)
    assert 'Environment="WEB_CONCURRENCY=2"' in unit and 'Environment="MAX_THREADS=5"' in unit
    assert "\nSystemCallArchitectures=native\nSystemCallFilter=~@cpu-emulation" in unit   # directives on their own lines


def test_upstream_streaming_uses_the_vendored_node(rendered):
    unit = rendered["mastodon-streaming@.service"]
    assert "ExecStart=/home/mastodon/current/vendor/node/bin/node ./streaming" in unit
    assert 'Environment="PORT=%i"' in unit and "LimitNOFILE=65536" in unit
    assert 'Environment="DB_POOL=10"' in unit


def test_upstream_sidekiq_pool(rendered):
    dropin = rendered["pool.conf"]
    assert ("ExecStart=/home/mastodon/current/vendor/ruby/bin/bundle exec sidekiq -c 25 -t 25 -g default "
            "-q default,8 -q push,6 -q pull") in dropin
    assert 'Environment="DB_POOL=25"' in dropin and "TimeoutStopSec=40" in dropin


def test_site_playbook_syntax_including_the_upstream_build():
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    result = subprocess.run(["ansible-playbook", "--syntax-check", "-i", os.path.join(REPO, "inventories", "lab"),
                             os.path.join(REPO, "playbooks", "site.yml")], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_burst_host_provider_hook_syntax_and_its_refusal_without_input():
    # The Linode hook cannot run here (no cloud): syntax-checked, and its input check runs before any API call.
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    env.pop("LINODE_ACCESS_TOKEN", None)
    hook = os.path.join(REPO, "playbooks", "sidekiq_burst_host.yml")
    result = subprocess.run(["ansible-playbook", "--syntax-check", "-i", os.path.join(REPO, "inventories", "lab"), hook],
                            cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(["ansible-playbook", "-i", "localhost,", hook, "-e", "sidekiq_burst_label=burst1"],
                            cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "LINODE_ACCESS_TOKEN must be set" in " ".join(result.stdout.split()), result.stdout[-2000:]
    assert "changed=0" in result.stdout and "Create or delete the Linode" not in result.stdout
