"""Mastodon's own telemetry (issue 13): typed OpenTelemetry variables rendered into .env.production only when set;
StatsD (deprecated in 4.2, gone in 4.3) is accepted with a preflight warning, not refused.

Renders the env file on the controller: the mastodon_config preflight (public, so the role's rendered
environment is visible) and the role's env.production.j2 template, against the lab inventory, no host touched.
"""
import json
import os
import subprocess

import pytest

from .test_preflight import REPO, VENV_BIN, run_preflight

PLAYBOOK = """
- hosts: web1
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: fediops.mastodon.mastodon_config
        tasks_from: preflight
        public: true
    - ansible.builtin.template:
        src: "{repo}/roles/mastodon_config/templates/env.production.j2"
        dest: "{out}/env.production"
        mode: "0600"
"""

OTEL = {
    "mastodon_config_otel_exporter_otlp_endpoint": "https://api.honeycomb.io",
    "mastodon_config_otel_service_name_prefix": "hachyderm",
    "mastodon_config_otel_service_name_separator": "-",
}


def _render(tmp_path, **extra_vars):
    book = tmp_path / "render.yml"
    book.write_text(PLAYBOOK.format(repo=REPO, out=tmp_path))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(extra_vars))
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    result = subprocess.run(["ansible-playbook", "-i", os.path.join(REPO, "inventories", "lab"), str(book),
                             "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python"), "-e", "@%s" % extra],
                            cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    lines = (tmp_path / "env.production").read_text().splitlines()
    return " ".join(result.stdout.split()), [line for line in lines if line.startswith(("OTEL_", "STATSD_"))]


def test_otel_settings_are_written_when_set_and_statsd_only_warns(tmp_path):
    output, lines = _render(tmp_path, mastodon_config_extra={"STATSD_ADDR": "127.0.0.1:8125"}, **OTEL)
    assert lines == ["OTEL_EXPORTER_OTLP_ENDPOINT=https://api.honeycomb.io", "OTEL_SERVICE_NAME_PREFIX=hachyderm",
                     "OTEL_SERVICE_NAME_SEPARATOR=-", "STATSD_ADDR=127.0.0.1:8125"]
    assert ("WARNING: mastodon_config_extra on web1 sets STATSD_ADDR: StatsD is deprecated since Mastodon 4.2 and removed "
            "in 4.3 - Mastodon 4.5.0 ignores it.") in output
    assert "sends OpenTelemetry traces only from 4.3 on" not in output       # the lab runs 4.5.0


def test_nothing_is_written_and_nothing_warned_by_default(tmp_path):
    output, lines = _render(tmp_path)
    assert lines == []
    assert "WARNING:" not in output


def test_an_endpoint_for_a_mastodon_before_4_3_is_warned_about(tmp_path):
    # A 4.2 release in the inventory is refused later by the release preflight, not by this one.
    output, lines = _render(tmp_path, mastodon_config_mastodon_version="4.2.10", mastodon_config_otp_secret="9f" * 64,
                            mastodon_config_otel_exporter_otlp_endpoint="http://collector:4318",
                            mastodon_config_extra={"STATSD_ADDR": "127.0.0.1:8125"})
    assert lines == ["OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318", "STATSD_ADDR=127.0.0.1:8125"]
    assert "but Mastodon 4.2.10 sends OpenTelemetry traces only from 4.3 on" in output
    assert "StatsD is deprecated since Mastodon 4.2 and removed in 4.3. Use" in output


@pytest.mark.parametrize("extra, message", [
    ({"mastodon_config_otel_exporter_otlp_endpoint": "collector:4318"},
     "mastodon_config_otel_exporter_otlp_endpoint ('collector:4318') on web1 is not an http:// or https:// URL"),
    ({"mastodon_config_otel_service_name_prefix": "hachyderm"},
     "On web1: mastodon_config_otel_service_name_prefix set but mastodon_config_otel_exporter_otlp_endpoint is empty"),
    ({"mastodon_config_extra": {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://api.honeycomb.io"}},
     "sets OTEL_EXPORTER_OTLP_ENDPOINT, which is set from mastodon_config_otel_exporter_otlp_endpoint"),
])
def test_bad_telemetry_input_is_refused_naming_the_variable(tmp_path, extra, message):
    result = run_preflight(tmp_path, limit="web1", **extra)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-3000:]
