"""Issue 14's bad input: an autoscale block the preflight refuses, naming the pool, before any change.

Runs playbooks/preflight.yml against the lab inventory with a local connection, like test_preflight.py.
The lab's budget: web 6 + streaming 40 + sidekiq 11 + reserve 10 = 67 client connections, PgBouncer's
derived max_client_conn ceil(67 x 1.25) = 84, so autoscaled processes share 17 connections.
"""
import os
import subprocess

import pytest

from .test_preflight import REPO, _pools, run_preflight


@pytest.fixture(scope="module", autouse=True)
def fixture_artifacts():
    # The lab inventory points mastodon_release_artifact_src at the fixture's artifacts, whose checksums the
    # preflight verifies (build.sh is deterministic, < 1 s).
    subprocess.run(["bash", os.path.join(REPO, "lab", "fixture", "build.sh")], check=True, capture_output=True)


INGRESS_AUTOSCALED = {"autoscale": {"min": 1, "max": 9, "target_latency": 10, "scale_out_after": 20,
                                    "scale_in_after": 30, "step": 1, "cooldown": 60, "max_per_host": 9}}


def test_lab_with_an_autoscaled_ingress_that_fits_passes(tmp_path):
    # 8 processes above the converged one x db_pool 2 = 16 <= 17.
    result = run_preflight(tmp_path, limit="sidekiq1,pgbouncer1", mastodon_sidekiq_pools=_pools(ingress=INGRESS_AUTOSCALED))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize("pools, message", [
    (_pools(scheduler={"autoscale": {"min": 1, "max": 2, "target_latency": 10}}),
     "mastodon_sidekiq_pools entry scheduler serves the scheduler queue and has an autoscale block: scheduler must run "
     "in exactly one Sidekiq process, so pool scheduler cannot be autoscaled"),
    (_pools(ingress={"autoscale": {"min": 3, "max": 2, "target_latency": 10}}),
     "mastodon_sidekiq_pools entry ingress: autoscale.min 3 is greater than autoscale.max 2"),
    (_pools(ingress={"autoscale": {"min": 1, "max": 12, "target_latency": 10, "max_per_host": 12}}),
     "mastodon_sidekiq_pools entry ingress: autoscale.max 12 needs 11 process(es) above the 1 converged, 22 client "
     "connections (x db_pool 2), but the connection budget leaves 17 (PgBouncer accepts 84 = pgbouncer_max_client_conn 84 "
     "x 1 pooler(s); the fleet counts 67); autoscale.max can be at most 9"),
], ids=["autoscaled scheduler", "min above max", "max never fits the budget"])
def test_bad_autoscale_is_refused_naming_the_pool(tmp_path, pools, message):
    result = run_preflight(tmp_path, limit="sidekiq1", mastodon_sidekiq_pools=pools)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-3000:]


def test_a_larger_max_client_conn_on_the_pooler_makes_room(tmp_path):
    pools = _pools(ingress={"autoscale": {"min": 1, "max": 12, "target_latency": 10, "max_per_host": 12}})
    result = run_preflight(tmp_path, limit="sidekiq1", mastodon_sidekiq_pools=pools, pgbouncer_max_client_conn=90)
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_malformed_autoscale_block_is_refused_by_the_spec(tmp_path):
    pools = _pools(ingress={"autoscale": {"min": 1, "max": 3, "target_latency": 10, "cooldwn": 5}})
    result = run_preflight(tmp_path, limit="sidekiq1", mastodon_sidekiq_pools=pools)
    assert result.returncode != 0
    assert "cooldwn" in result.stdout


def test_an_autoscaler_room_above_what_the_budget_leaves_is_refused_naming_it(tmp_path):
    result = run_preflight(tmp_path, limit="mon1", sidekiq_autoscaler_room=18)
    assert result.returncode != 0
    assert ("sidekiq_autoscaler_room 18 must be a whole number no greater than the 17 client connections the connection "
            "budget leaves") in " ".join(result.stdout.split()), result.stdout[-3000:]
    result = run_preflight(tmp_path, limit="mon1", sidekiq_autoscaler_room=4)
    assert result.returncode == 0, result.stdout[-3000:]
