"""tests/molecule_lanes.sh, with a stand-in `molecule` on PATH (no lab): every scenario runs exactly once,
two at a time, a failure is reported with its log and makes the exit status non-zero."""
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAKE_MOLECULE = """#!/bin/bash
# molecule test -s <scenario>: record start/end, sleep a little, fail for the scenario named in FAIL.
s=$3
echo "start $s $(date +%s.%N)" >> "$RECORD"
sleep 0.3
echo "end $s $(date +%s.%N)" >> "$RECORD"
echo "output of $s"
[ "$s" != "${FAIL:-}" ]
"""


def run_lanes(tmp_path, scenarios, fail=''):
    bindir = tmp_path / 'bin'
    bindir.mkdir(exist_ok=True)
    fake = bindir / 'molecule'
    fake.write_text(FAKE_MOLECULE)
    fake.chmod(0o755)
    record = tmp_path / 'record'
    env = dict(os.environ, PATH='%s:%s' % (bindir, os.environ['PATH']), RECORD=str(record), FAIL=fail,
               FEDIOPS_MOLECULE_LOGDIR=str(tmp_path / 'logs'))
    result = subprocess.run(['bash', os.path.join(REPO, 'tests', 'molecule_lanes.sh'), '2'] + scenarios,
                            capture_output=True, text=True, cwd=str(tmp_path), env=env, check=False)
    return result, record.read_text().splitlines()


def test_every_scenario_runs_once_two_at_a_time(tmp_path):
    scenarios = ['upgrade', 'postgresql', 'common', 'redis', 'backup']
    result, record = run_lanes(tmp_path, scenarios)
    assert result.returncode == 0, result.stdout + result.stderr
    started = sorted(line.split()[1] for line in record if line.startswith('start'))
    assert started == sorted(scenarios)
    # At most two running at any moment, and at some moment two.
    events = sorted((float(t), 1 if kind == 'start' else -1) for kind, _s, t in (line.split() for line in record))
    running, peak = 0, 0
    for _t, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 2
    for s in scenarios:
        assert '%s' % s in result.stdout and 'passed' in result.stdout


def test_a_failed_scenario_prints_its_log_and_fails_the_run(tmp_path):
    result, record = run_lanes(tmp_path, ['upgrade', 'common', 'redis'], fail='common')
    assert result.returncode != 0
    assert 'common FAILED' in result.stdout and 'output of common' in result.stdout
    # The other scenarios still ran in full.
    assert sorted(line.split()[1] for line in record if line.startswith('end')) == ['common', 'redis', 'upgrade']
