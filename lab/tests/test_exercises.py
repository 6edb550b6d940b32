"""Every exercise of docs/lab.md, end to end, against a running lab (`make lab`; `make lab-exercises`).

Each test runs the exercise's own commands in the order a volunteer would: `check` (HEALTHY), `break`,
`check` (BROKEN, except where the point is that nothing breaks), `repair`, `check` (HEALTHY). The
order of the tests matters (failover last: it leaves the lab's roles as the inventory names them only
after its repair). The verdict tests stop one unit and expect `make lab-health` to FAIL naming it.
"""
import os
import re
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.environ.get('LAB_NAME', 'lab')


def exercise(name, step):
    result = subprocess.run([sys.executable, os.path.join(REPO, 'lab', 'exercise.py'), name, step],
                            capture_output=True, text=True, check=False, cwd=REPO)
    print(result.stdout[-3000:], result.stderr[-2000:])
    return result


def healthy(name):
    result = exercise(name, 'check')
    assert result.returncode == 0 and 'HEALTHY' in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]


def broken(name, says):
    result = exercise(name, 'check')
    assert result.returncode == 1 and 'BROKEN' in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    assert says in result.stdout, result.stdout[-3000:]


def step(name, what):
    result = exercise(name, what)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def verdict():
    env = dict(os.environ, PATH=os.path.join(REPO, '.venv', 'bin') + os.pathsep + os.environ.get('PATH', ''))
    return subprocess.run(['make', '--no-print-directory', 'lab-health'], capture_output=True, text=True, check=False,
                          cwd=REPO, env=env)


def podman_exec(host, *argv):
    subprocess.run(['podman', 'exec', '%s-%s' % (LAB, host)] + list(argv), check=True)


def test_the_verdict_passes_on_the_lab():
    result = verdict()
    assert result.returncode == 0 and 'PASS:' in result.stdout, result.stdout[-5000:]


def test_one_unit_stopped_is_a_fail_naming_the_host_and_the_check_then_a_pass_again():
    podman_exec('redis-cache', 'systemctl', 'stop', 'redis-server@cache.service')
    try:
        result = verdict()
        assert result.returncode != 0, result.stdout[-5000:]
        assert 'FAIL:' in result.stdout and 'redis-cache: host running, every enabled service running' in result.stdout
        assert 'enabled but not running: redis-server@cache.service' in result.stdout, result.stdout[-5000:]
    finally:
        podman_exec('redis-cache', 'systemctl', 'start', 'redis-server@cache.service')
    result = verdict()
    assert result.returncode == 0 and 'PASS:' in result.stdout, result.stdout[-5000:]


def test_forbidden_port():
    healthy('forbidden-port')


def test_bad_input_is_refused_and_the_lab_is_unchanged():
    healthy('bad-input')
    assert 'refused before any change' in step('bad-input', 'break')
    healthy('bad-input')


@pytest.mark.parametrize('name, says', [
    ('firewall-lost', 'the fediops nftables table is gone'),
    ('firewall-unit-stopped', 'nftables inactive'),
])
def test_firewall_exercises(name, says):
    healthy(name)
    step(name, 'break')
    broken(name, says)
    step(name, 'repair')
    healthy(name)


def test_gate_refusal():
    healthy('gate-refusal')
    assert 'refused naming replica_replay' in step('gate-refusal', 'break')
    broken('gate-refusal', 'WAL replay is paused')
    step('gate-refusal', 'repair')
    healthy('gate-refusal')


def test_sidekiq_backlog():
    healthy('sidekiq-backlog')
    step('sidekiq-backlog', 'break')
    broken('sidekiq-backlog', 'queue push: 50 jobs waiting')
    step('sidekiq-backlog', 'repair')
    healthy('sidekiq-backlog')


def test_ingress_burst_is_worked_off_by_the_autoscaler():
    healthy('ingress-burst')
    step('ingress-burst', 'break')
    time.sleep(20)  # past the 10 s hold above target and a poll: it has scaled out
    broken('ingress-burst', 'ingress: latency')
    step('ingress-burst', 'repair')
    assert re.search(r"decided so far: [1-9][0-9]* out, [1-9][0-9]* in", exercise('ingress-burst', 'check').stdout)


def test_upgrade_under_load_and_rollback():
    healthy('upgrade-under-load')
    out = step('upgrade-under-load', 'break')
    assert 'every web host answers v2.0.0' in exercise('upgrade-under-load', 'check').stdout, out
    step('upgrade-under-load', 'repair')
    assert 'every web host answers v1.0.0' in exercise('upgrade-under-load', 'check').stdout


def test_switchover_and_back():
    healthy('switchover')
    assert 'is now db2' in step('switchover', 'break')
    healthy('switchover')
    step('switchover', 'repair')
    healthy('switchover')


def test_failover_rebuild_and_switch_back():
    healthy('failover')
    step('failover', 'break')
    healthy('failover')          # writes work on the promoted replica
    step('failover', 'repair')   # the lost host rebuilt as a replica, then a switchover back
    healthy('failover')
    result = verdict()
    assert result.returncode == 0 and 'PASS:' in result.stdout, result.stdout[-5000:]
