"""tests/stages.sh with a stand-in Makefile (no lab): a background lane runs beside the foreground stages at the
lowest priority, its stages and its failure are reported, and the run waits for it."""
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MAKEFILE = """\
fast:
\t@echo "fast ran"; date +%s.%N > fast.at
slow:
\t@sleep 1; echo "slow ran at nice $$(nice), $$(chrt -p $$$$ | head -1)"; date +%s.%N > slow.at
broken:
\t@echo "broken says why"; exit 3
"""


def run_stages(tmp_path, *stages):
    (tmp_path / 'Makefile').write_text(MAKEFILE)
    env = dict(os.environ, FEDIOPS_STAGE_LOGDIR=str(tmp_path / 'logs'))
    return subprocess.run(['bash', os.path.join(REPO, 'tests', 'stages.sh')] + list(stages),
                          capture_output=True, text=True, cwd=str(tmp_path), env=env, check=False)


def test_the_background_lane_runs_beside_the_foreground_at_nice_19_and_is_waited_for(tmp_path):
    result = run_stages(tmp_path, 'background:slow', 'fast')
    assert result.returncode == 0, result.stdout + result.stderr
    # The foreground stage did not wait for the background one, and the run waited for both.
    assert float((tmp_path / 'fast.at').read_text()) < float((tmp_path / 'slow.at').read_text())
    assert 'slow ran at nice 19' in result.stdout
    assert 'scheduling policy: SCHED_IDLE' in result.stdout
    table = result.stdout.split('=== stage times')[1]
    for row in ('fast ', 'slow (background)', 'background lane (its wall)', '(passed)'):
        assert row in table, table


def test_a_failure_in_the_background_lane_fails_the_run_with_its_log(tmp_path):
    result = run_stages(tmp_path, 'background:broken,slow', 'fast')
    assert result.returncode != 0
    assert 'broken says why' in result.stdout
    assert 'FAILED in the background lane' in result.stdout
    # The lane stops at its first failure.
    assert not (tmp_path / 'slow.at').exists()


def test_a_foreground_failure_still_reports_the_background_lane(tmp_path):
    result = run_stages(tmp_path, 'background:slow', 'broken')
    assert result.returncode == 2
    assert 'slow ran at nice 19' in result.stdout
    assert 'FAILED at broken' in result.stdout
