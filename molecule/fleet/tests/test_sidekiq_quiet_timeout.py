"""A Sidekiq roll whose quiet times out (side_effect_sidekiq_quiet_timeout.yml): it fails naming the busy job,
and the pools it quieted run again, not quiet, on the release they ran. A missing evidence file fails."""
import json
import os
import re

import pytest

EVIDENCE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fediops-mol-fleet-sidekiq-quiet-timeout.json")


@pytest.fixture(scope="module")
def evidence():
    assert os.path.exists(EVIDENCE), "%s not found: the quiet-timeout side effect did not run or did not finish" % EVIDENCE
    with open(EVIDENCE) as handle:
        return json.load(handle)


def test_the_roll_failed_naming_the_busy_job(evidence):
    out = evidence["stdout"]
    assert evidence["rc"] != 0, out[-3000:]
    jids = re.search(r"long jobs jids=([\w,]+)", out)
    assert jids, out[-3000:]
    named = re.search(r"sidekiq2: Sidekiq was still busy after the quiet timeout \(fediops_upgrade_sidekiq_quiet_timeout = 3 s\), "
                      r"running: Fixture::Jobs::PushQueueWorker on queue push \(jid (\w+)\) running for \d+ s on sidekiq2:\d+:\w+", out)
    assert named, out[-3000:]
    assert named.group(1) in jids.group(1).split(","), (named.group(0), jids.group(0))
    assert "pool processes were restarted on the release they ran" in out, out[-3000:]
    # It stopped before switching anything.
    assert "Switch current to the release" not in out, out[-3000:]


def test_the_pools_run_again_not_quiet_on_the_release_they_ran(evidence):
    live = [p for p in evidence["processes"] if not p["stale"]]
    assert sorted(p["tag"] for p in live) == ["mailers", "pull", "push"], evidence["processes"]
    assert [p["identity"] for p in live if p["quiet"]] == [], live
    assert evidence["current"] == "/home/mastodon/releases/v1.0.0"
    assert evidence["units"].count("ActiveState=active") == 3, evidence["units"]
