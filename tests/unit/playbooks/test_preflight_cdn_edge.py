"""Issue 7's bad input: the cdn_edge preflight refuses it naming the variable, before any change.

Runs playbooks/preflight.yml against the lab inventory with a local connection, like test_preflight.py.
"""
import pytest

from .test_preflight import run_preflight

EDGES = "edge-eu,edge-us"


def test_lab_edge_variables_pass(tmp_path):
    result = run_preflight(tmp_path, limit=EDGES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_edge_without_a_web_upstream_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="edge-eu", cdn_edge_web_group="no_such_group")
    assert result.returncode != 0
    assert "edge-eu would have no web upstream: cdn_edge_web_group 'no_such_group'" in result.stdout


def test_draining_every_web_host_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="edge-eu", cdn_edge_web_drained=["web1", "web2"])
    assert result.returncode != 0
    assert "edge-eu would have no web upstream" in result.stdout
    assert "cdn_edge_web_drained is ['web1', 'web2']" in result.stdout


def test_draining_an_unknown_host_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="edge-eu", cdn_edge_web_drained=["web9"])
    assert result.returncode != 0
    assert "cdn_edge_web_drained on edge-eu names ['web9']" in result.stdout


def test_cache_larger_than_its_disk_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="edge-eu", cdn_edge_media_cache_max_size_mb=8192)
    assert result.returncode != 0
    assert "cdn_edge_media_cache_max_size_mb (8192)" in result.stdout
    assert "is larger than cdn_edge_cache_disk_limit_mb (4096 MiB)" in result.stdout


@pytest.mark.parametrize("overrides,message", [
    ({"cdn_edge_purge_secret": ""}, "cdn_edge_purge_secret is missing or shorter than 16 characters"),
    ({"cdn_edge_purge_header": ""}, "cdn_edge_purge_header is empty or not a header name"),
    ({"cdn_edge_purge_secret": "has a \"quote\" in it"}, "cdn_edge_purge_secret has characters other than"),
])
def test_purge_without_a_secret_is_refused(tmp_path, overrides, message):
    result = run_preflight(tmp_path, limit="edge-eu", **overrides)
    assert result.returncode != 0
    assert "cdn_edge_purge_enabled is true on edge-eu but " + message in result.stdout
    assert "has a" not in result.stdout.replace("has characters", "")  # the secret's value is never printed


def test_purge_secret_different_from_mastodons_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="edge-eu", cdn_edge_purge_secret="another-long-enough-secret")
    assert result.returncode != 0
    assert "Mastodon's cache buster (mastodon_config_extra CACHE_BUSTER_* on web1) does not match" in result.stdout
    assert "another-long-enough-secret" not in result.stdout


def test_media_hostname_not_mastodons_is_refused(tmp_path):
    result = run_preflight(tmp_path, limit="edge-eu", cdn_edge_media_hostname="files.lab.fediops.example")
    assert result.returncode != 0
    assert ("cdn_edge_media_hostname on edge-eu is 'files.lab.fediops.example' but Mastodon's "
            "mastodon_config_s3_alias_host (S3_ALIAS_HOST, on web1) is 'media.lab.fediops.example'") in result.stdout


def test_purge_method_nginx_cannot_store_is_refused_by_the_spec(tmp_path):
    result = run_preflight(tmp_path, limit="edge-eu", cdn_edge_purge_method="PURGE")
    assert result.returncode != 0
    assert "cdn_edge_purge_method" in result.stdout
