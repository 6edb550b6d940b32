# -*- coding: utf-8 -*-
"""The autoscaling decision (module_utils/sidekiq_autoscale.py) driven with series of observations, no server."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq_autoscale as sa

POLICY = {'min': 1, 'max': 4, 'target_latency': 10, 'scale_out_after': 30, 'scale_in_after': 60,
          'step': 1, 'cooldown': 120}
POLL = 5


def simulate(policy, latency_at, until, processes=1, budget=None, start=0):
    """Poll every POLL seconds from ``start`` to ``until``; apply every decision at once.

    ``latency_at(t, processes)`` gives the observed latency; ``budget(processes)`` the budget dict.
    Returns [(t, decision)] of every poll.
    """
    state = None
    log = []
    t = start
    while t <= until:
        decision = sa.decide(policy, state, {'now': t, 'latency': latency_at(t, processes), 'processes': processes},
                             budget(processes) if budget else None)
        state = decision['state']
        processes = decision['target']
        log.append((t, decision))
        t += POLL
    return log


def actions(log, *kinds):
    kinds = kinds or (sa.SCALE_OUT, sa.SCALE_IN, sa.REFUSED_BUDGET)
    return [(t, d['action'], d['count'], d['target']) for t, d in log if d['action'] in kinds]


def test_burst_scales_out_only_after_the_delay_then_step_by_step_to_max():
    log = simulate(POLICY, lambda t, n: 60.0 if t >= 100 else 0.0, until=400)
    outs = actions(log, sa.SCALE_OUT)
    # latency went above at t=100; the first scale-out is the first poll 30 s later, then one step per 30 s.
    assert outs == [(130, 'scale_out', 1, 2), (160, 'scale_out', 1, 3), (190, 'scale_out', 1, 4)]
    assert not actions(log, sa.SCALE_IN, sa.REFUSED_BUDGET)
    held = [d for t, d in log if t == 125][0]
    assert held['action'] == 'hold' and 'latency 60.0 s > target 10.0 s for 25 s of the 30 s before scaling out' in held['reason']
    at_max = [d for t, d in log if t == 400][0]
    assert at_max['action'] == 'hold' and 'already at autoscale.max 4' in at_max['reason']


def test_short_spike_below_the_delay_does_nothing():
    log = simulate(POLICY, lambda t, n: 60.0 if 100 <= t < 125 else 0.0, until=600)
    assert actions(log) == []


def test_back_under_target_scales_in_after_cooldown_down_to_min_and_never_below():
    # A burst from 0 to 200 s that more processes clear; then quiet for a long time.
    log = simulate(POLICY, lambda t, n: 60.0 if t < 200 else 0.0, until=2000)
    moves = actions(log)
    outs = [m for m in moves if m[1] == 'scale_out']
    ins = [m for m in moves if m[1] == 'scale_in']
    assert [m[3] for m in outs] == [2, 3, 4]
    assert [m[3] for m in ins] == [3, 2, 1]          # one step at a time, down to min 1
    last_out = outs[-1][0]
    # The first scale-in waits both scale_in_after (below since t=200) and the cooldown after the last scale-out.
    assert ins[0][0] >= max(200 + POLICY['scale_in_after'], last_out + POLICY['cooldown'])
    for (t1, _a, _c, _n), (t2, _b, _d, _m) in zip(ins, ins[1:]):
        assert t2 - t1 >= POLICY['cooldown']
    assert log[-1][1]['target'] == 1 and log[-1][1]['action'] == 'hold'
    assert 'at autoscale.min 1' in log[-1][1]['reason']
    assert min(d['target'] for _t, d in log) == 1


def test_scale_in_reason_names_latency_and_processes():
    log = simulate(dict(POLICY, cooldown=0), lambda t, n: 0.0, until=100, processes=2)
    (t, action, count, target), = actions(log)
    decision = dict(log)[t]
    assert (t, action, count, target) == (60, 'scale_in', 1, 1)
    assert decision['reason'] == 'latency 0.0 s <= target 10.0 s for 60 s: removing 1 process(es), 2 -> 1'


def test_budget_caps_the_scale_out_and_reports_the_refusal():
    # Each process holds 5 connections; 12 are free beyond the converged single process.
    policy = dict(POLICY, max=6, step=3)

    def budget(n):
        return {'connections_per_process': 5, 'free_connections': sa.free_connections(
            12, [{'converged': 1, 'processes': n, 'db_pool': 5}])}

    log = simulate(policy, lambda t, n: 60.0, until=400, budget=budget)
    moves = actions(log)
    first = moves[0]
    assert first == (30, 'scale_out', 2, 3)            # 3 wanted, 2 fit (10 of 12 connections)
    decision = dict(log)[30]
    assert decision['refused'] == 1
    assert 'fits 2 of the 3 process(es) wanted' in decision['reason']
    assert '12 connection(s) free, 5 per process' in decision['reason']
    # Never beyond the budget: 3 processes is the most that fits.
    assert max(d['target'] for _t, d in log) == 3
    refusals = actions(log, sa.REFUSED_BUDGET)
    assert refusals, moves
    # The partial scale-out at 30 s was itself a refusal: the next one is reported a cooldown later.
    assert refusals[0][0] == 30 + policy['cooldown']
    assert dict(log)[refusals[0][0]]['reason'] == (
        'latency 60.0 s > target 10.0 s for 120 s: refused, the connection budget (2 connection(s) free, 5 per process) '
        'fits 0 of the 3 process(es) wanted')
    # A refusal is reported once per cooldown, held in between (one log line and one count per cooldown).
    times = [refusal[0] for refusal in refusals]
    assert all(b - a >= policy['cooldown'] for a, b in zip(times, times[1:]))
    held = [d for t, d in log if d['action'] == 'hold' and 'still refused for budget' in d['reason']]
    assert held


def test_nothing_fits_is_refused_budget_with_count_zero():
    decision = sa.decide(POLICY, {'above_since': 0}, {'now': 100, 'latency': 50, 'processes': 1},
                         {'connections_per_process': 25, 'free_connections': 24})
    assert (decision['action'], decision['count'], decision['target'], decision['refused']) == ('refused_budget', 0, 1, 1)
    assert 'the connection budget (24 connection(s) free, 25 per process) fits 0 of the 1 process(es) wanted' in decision['reason']


def test_sawtooth_gives_at_most_one_out_in_pair_per_cooldown():
    # 90 s above target, 90 s under, for two hours: longer than both delays, shorter than the cooldown.
    def saw(t, n):
        return 40.0 if (t // 90) % 2 == 0 else 2.0
    log = simulate(POLICY, saw, until=7200)
    moves = [(t, a) for t, a, _c, _n in actions(log)]
    assert {'scale_out', 'scale_in'} <= set(a for _t, a in moves), moves
    # Two opposite actions are always at least a cooldown apart ...
    for (t1, a1), (t2, a2) in zip(moves, moves[1:]):
        if a1 != a2:
            assert t2 - t1 >= POLICY['cooldown'], moves
    # ... so no window of one cooldown holds more than one scale-in, nor a scale-in and a following scale-out.
    for t0, _a in moves:
        window = [a for t, a in moves if t0 <= t < t0 + POLICY['cooldown']]
        assert window.count('scale_in') <= 1, window
        if 'scale_in' in window:
            assert 'scale_out' not in window[window.index('scale_in') + 1:], window


@pytest.mark.parametrize('period', [10, 20, 45, 60, 150, 300])
def test_sawtooth_of_any_period_never_flaps(period):
    log = simulate(POLICY, lambda t, n: 40.0 if (t // period) % 2 == 0 else 0.0, until=3600)
    moves = [(t, a) for t, a, _c, _n in actions(log)]
    for (t1, a1), (t2, a2) in zip(moves, moves[1:]):
        if a1 != a2:
            assert t2 - t1 >= POLICY['cooldown'], (period, moves)
    assert all(POLICY['min'] <= d['target'] <= POLICY['max'] for _t, d in log)


def test_bounds_below_min_and_above_max_are_corrected_at_once():
    policy = dict(POLICY, min=2, max=3)
    below = sa.decide(policy, None, {'now': 0, 'latency': 0, 'processes': 0})
    assert (below['action'], below['count'], below['target']) == ('scale_out', 2, 2)
    assert below['reason'].startswith('0 process(es), below autoscale.min 2')
    # ... within the budget
    capped = sa.decide(policy, None, {'now': 0, 'latency': 0, 'processes': 0}, {'connections_per_process': 5, 'free_connections': 7})
    assert (capped['action'], capped['count'], capped['refused']) == ('scale_out', 1, 1)
    above = sa.decide(policy, None, {'now': 0, 'latency': 99, 'processes': 5})
    assert (above['action'], above['count'], above['target']) == ('scale_in', 2, 3)
    at_max = sa.decide(policy, {'above_since': -1000}, {'now': 0, 'latency': 99, 'processes': 3})
    assert at_max['action'] == 'hold'
    at_min = sa.decide(policy, {'below_since': -1000}, {'now': 0, 'latency': 0, 'processes': 2})
    assert at_min['action'] == 'hold'
    # A step larger than the distance to a bound stops at the bound.
    big = dict(policy, step=5, min=1, max=4)
    out = sa.decide(big, {'above_since': -1000}, {'now': 0, 'latency': 99, 'processes': 2})
    assert (out['action'], out['target']) == ('scale_out', 4)
    inn = sa.decide(big, {'below_since': -1000}, {'now': 0, 'latency': 0, 'processes': 3})
    assert (inn['action'], inn['target']) == ('scale_in', 1)


def test_decide_is_pure():
    state = {'above_since': 10.0, 'below_since': None, 'last_action': None, 'last_action_at': None, 'last_refusal_at': None}
    before = dict(state)
    one = sa.decide(POLICY, state, {'now': 50, 'latency': 30, 'processes': 1})
    two = sa.decide(POLICY, state, {'now': 50, 'latency': 30, 'processes': 1})
    assert state == before and one == two and one['action'] == 'scale_out'


@pytest.mark.parametrize('policy, message', [
    ({'min': 3, 'max': 2, 'target_latency': 5}, 'autoscale.min 3 is greater than autoscale.max 2'),
    ({'min': 0, 'max': 2, 'target_latency': 5}, 'autoscale.min 0 must be at least 1'),
    ({'max': 2, 'target_latency': 5}, 'autoscale.min is required'),
    ({'min': 1, 'max': 2, 'target_latency': 0}, 'autoscale.target_latency 0 must be above 0 seconds'),
    ({'min': 1, 'max': 2, 'target_latency': 5, 'step': 0}, 'autoscale.step 0 must be at least 1'),
    ({'min': 1, 'max': 2.5, 'target_latency': 5}, 'autoscale.max must be a whole number'),
    ({'min': 1, 'max': 'many', 'target_latency': 5}, "autoscale.max must be a number, not 'many'"),
    ({'min': 1, 'max': 2, 'target_latency': 5, 'cooldwn': 5}, 'autoscale has unknown key(s) cooldwn'),
])
def test_bad_policies_are_named(policy, message):
    with pytest.raises(sa.AutoscaleError) as e:
        sa.normalize_policy(policy)
    assert message in str(e.value)


def test_policy_defaults():
    assert sa.normalize_policy({'min': 1, 'max': 2, 'target_latency': 5}) == {
        'min': 1, 'max': 2, 'target_latency': 5.0, 'scale_out_after': 60.0, 'scale_in_after': 300.0, 'step': 1, 'cooldown': 300.0,
        'max_per_host': 4}


# ---- The budget and the preflight's refusals, at the lab's sizing ----

def lab_sizing(**pool_changes):
    pools = [
        {'name': 'default', 'hosts': ['sidekiq1'], 'concurrency': 3, 'queues': ['default']},
        {'name': 'ingress', 'hosts': ['sidekiq1'], 'concurrency': 2, 'queues': ['ingress']},
        {'name': 'scheduler', 'hosts': ['sidekiq1'], 'concurrency': 1, 'queues': ['scheduler']},
        {'name': 'push', 'hosts': ['sidekiq2'], 'concurrency': 2, 'queues': ['push']},
        {'name': 'pull', 'hosts': ['sidekiq2'], 'concurrency': 2, 'queues': ['pull,2', 'fasp,1']},
        {'name': 'mailers', 'hosts': ['sidekiq2'], 'concurrency': 1, 'queues': ['mailers']},
    ]
    pools = [dict(p, **pool_changes.get(p['name'], {})) for p in pools]
    return {
        'web': [{'host': 'web1', 'workers': 1, 'threads': 3}, {'host': 'web2', 'workers': 1, 'threads': 3}],
        'streaming': [{'host': 'web1', 'ports': [4000, 4001], 'db_pool': 10}, {'host': 'web2', 'ports': [4000, 4001], 'db_pool': 10}],
        'sidekiq': pools, 'sidekiq_default_hosts': ['sidekiq1', 'sidekiq2'], 'reserve': 10, 'headroom_percent': 25,
        'pgbouncer': {'hosts': 1, 'pools': 1}, 'postgres': {'max_connections': 200},
    }


def test_lab_room_is_max_client_conn_minus_the_budget():
    room = sa.budget_room(lab_sizing())
    # web 6 + streaming 40 + sidekiq 11 + reserve 10 = 67; max_client_conn ceil(67 x 1.25) = 84
    assert (room['counted'], room['max_client_conn'], room['accepted'], room['room']) == (67, 84, 84, 17)
    assert sa.budget_room(lab_sizing(), {'max_client_conn': 100})['room'] == 33


def test_free_connections_counts_processes_above_the_converged_size_only():
    pools = [{'converged': 1, 'processes': 3, 'db_pool': 2}, {'converged': 2, 'processes': 1, 'db_pool': 25}]
    assert sa.free_connections(17, pools) == 13


def test_no_autoscale_block_no_errors():
    assert sa.autoscale_errors(lab_sizing()) == []


def test_lab_ingress_autoscaled_within_the_room_passes():
    # 8 processes above the converged one x 2 connections = 16 <= 17.
    policy = {'min': 1, 'max': 9, 'target_latency': 10, 'max_per_host': 9}
    assert sa.autoscale_errors(lab_sizing(ingress={'autoscale': policy})) == []


def test_a_max_that_never_fits_is_refused_naming_the_pool_and_numbers():
    errors = sa.autoscale_errors(lab_sizing(ingress={'autoscale': {'min': 1, 'max': 12, 'target_latency': 10, 'max_per_host': 12}}))
    assert errors == [
        'mastodon_sidekiq_pools entry ingress: autoscale.max 12 needs 11 process(es) above the 1 converged, 22 client '
        'connections (x db_pool 2), but the connection budget leaves 17 (PgBouncer accepts 84 = pgbouncer_max_client_conn 84 '
        'x 1 pooler(s); the fleet counts 67); autoscale.max can be at most 9 - or raise fleet_db_headroom_percent or set '
        'pgbouncer_max_client_conn']
    # A larger max_client_conn makes it fit.
    assert sa.autoscale_errors(lab_sizing(ingress={'autoscale': {'min': 1, 'max': 12, 'target_latency': 10, 'max_per_host': 12}}),
                               {'max_client_conn': 90}) == []


def test_autoscaled_scheduler_is_refused_naming_the_pool():
    errors = sa.autoscale_errors(lab_sizing(scheduler={'autoscale': {'min': 1, 'max': 2, 'target_latency': 10}}))
    assert len(errors) == 1
    assert errors[0].startswith('mastodon_sidekiq_pools entry scheduler serves the scheduler queue and has an autoscale block')
    # whatever the pool is called
    errors = sa.autoscale_errors(lab_sizing(default={'queues': ['default', 'scheduler,1'],
                                                     'autoscale': {'min': 1, 'max': 2, 'target_latency': 10}}))
    assert errors[0].startswith('mastodon_sidekiq_pools entry default serves the scheduler queue')


def test_min_above_max_and_converged_outside_the_bounds_are_refused():
    errors = sa.autoscale_errors(lab_sizing(ingress={'autoscale': {'min': 3, 'max': 2, 'target_latency': 10}}))
    assert errors == ['mastodon_sidekiq_pools entry ingress: autoscale.min 3 is greater than autoscale.max 2']
    errors = sa.autoscale_errors(lab_sizing(ingress={'processes': 3, 'autoscale': {'min': 1, 'max': 2, 'target_latency': 10}}))
    assert errors == ['mastodon_sidekiq_pools entry ingress: converge runs 3 process(es) of it (hosts x processes), outside '
                      'autoscale.min 1 .. autoscale.max 2; make min <= hosts x processes <= max']


# ---- Placement of added processes (sidekiq_scale.yml) ----

def test_place_fills_the_own_hosts_up_to_max_per_host_then_the_burst_hosts():
    plan = sa.place('ingress', 6, ['sidekiq1'], 1, ['burst1', 'burst2'], {}, 4)
    assert plan['wanted'] == {'sidekiq1': ['ingress-x1', 'ingress-x2', 'ingress-x3'], 'burst1': ['ingress-x1', 'ingress-x2'],
                              'burst2': []}
    assert plan['add'] == {'sidekiq1': ['ingress-x1', 'ingress-x2', 'ingress-x3'], 'burst1': ['ingress-x1', 'ingress-x2']}
    assert plan['remove'] == {}
    assert (plan['converged'], plan['placed'], plan['unplaced']) == (1, 6, 0)
    assert plan['reason'] == 'pool ingress: 1 -> 6 process(es) (converged 1, added 5)'


def test_place_is_a_no_op_when_the_hosts_already_run_the_plan():
    current = {'sidekiq1': [1, 2, 3], 'burst1': [1]}
    plan = sa.place('ingress', 5, ['sidekiq1'], 1, ['burst1'], current, 4)
    assert plan['add'] == {} and plan['remove'] == {}
    assert plan['reason'] == 'pool ingress: 5 -> 5 process(es) (converged 1, added 4)'


def test_scale_in_removes_the_burst_hosts_processes_first_and_the_highest_numbers():
    current = {'sidekiq1': [1, 2, 3], 'burst1': [1, 2]}
    plan = sa.place('ingress', 3, ['sidekiq1'], 1, ['burst1'], current, 4)
    assert plan['remove'] == {'burst1': ['ingress-x1', 'ingress-x2'], 'sidekiq1': ['ingress-x3']}
    assert plan['wanted'] == {'sidekiq1': ['ingress-x1', 'ingress-x2'], 'burst1': []}
    assert plan['placed'] == 3


def test_scale_in_never_touches_the_converged_processes():
    plan = sa.place('ingress', 1, ['sidekiq1', 'sidekiq2'], 1, [], {'sidekiq1': [1]}, 4)
    assert plan['remove'] == {'sidekiq1': ['ingress-x1']}
    assert plan['placed'] == 2
    assert 'never goes below the converged size' in plan['reason']


def test_a_gap_in_the_numbers_is_filled_first():
    plan = sa.place('pull', 4, ['sidekiq2'], 1, [], {'sidekiq2': [2]}, 4)
    assert plan['add'] == {'sidekiq2': ['pull-x1', 'pull-x3']}
    assert plan['wanted'] == {'sidekiq2': ['pull-x1', 'pull-x2', 'pull-x3']}


def test_more_than_the_capacity_places_what_fits_and_says_so():
    plan = sa.place('ingress', 9, ['sidekiq1'], 1, [], {}, 4)
    assert (plan['placed'], plan['unplaced']) == (4, 5)
    assert 'every host is at autoscale.max_per_host 4 (own hosts sidekiq1, burst hosts -)' in plan['reason']


def test_a_host_no_longer_in_the_pool_gives_its_added_processes_up():
    plan = sa.place('ingress', 2, ['sidekiq1'], 1, [], {'old1': [1]}, 4)
    assert plan['remove'] == {'old1': ['ingress-x1']}
    assert plan['add'] == {'sidekiq1': ['ingress-x1']}


def test_added_numbers_reads_only_the_pools_added_instances():
    names = ['ingress', 'ingress-2', 'ingress-x1', 'ingress-x10', 'ingress-xa', 'ingress-x0', 'pull-x1', 'ingressx-x1']
    assert sa.added_numbers('ingress', names) == [1, 10]


def test_preflight_refuses_a_max_no_host_can_hold():
    sizing = lab_sizing(ingress={'autoscale': {'min': 1, 'max': 5, 'target_latency': 10}})
    errors = sa.autoscale_errors(sizing)
    assert errors == [
        'mastodon_sidekiq_pools entry ingress: autoscale.max 5 cannot be placed: 1 own host(s) and 0 burst host(s) (group '
        'mastodon_sidekiq_burst_group) at autoscale.max_per_host 4 hold 4 process(es) of it; lower autoscale.max, raise '
        'autoscale.max_per_host or add burst hosts']
    sizing['sidekiq_burst_hosts'] = ['burst1']
    assert sa.autoscale_errors(sizing) == []


def test_scale_plan_places_within_min_max_and_the_budget():
    sizing = lab_sizing(ingress={'autoscale': {'min': 1, 'max': 4, 'target_latency': 10}})
    plan = sa.scale_plan(sizing, 'ingress', 3, {'sidekiq1': ['default', 'ingress', 'ingress-x1']})
    assert plan['add'] == {'sidekiq1': ['ingress-x2']} and plan['remove'] == {}
    assert (plan['placed'], plan['refused'], plan['room'], plan['free']) == (3, 0, 17, 17)


def test_scale_plan_shares_the_room_with_the_other_autoscaled_pools_and_refuses_what_does_not_fit():
    sizing = lab_sizing(ingress={'autoscale': {'min': 1, 'max': 4, 'target_latency': 10}},
                        pull={'autoscale': {'min': 1, 'max': 4, 'target_latency': 10}})
    current = {'sidekiq2': ['pull', 'pull-x1', 'pull-x2', 'pull-x3']}   # 3 added x db_pool 2 = 6 of the room
    # PgBouncer accepts 75: the fleet counts 67, room 8, 2 left for ingress - one process of db_pool 2.
    plan = sa.scale_plan(sizing, 'ingress', 4, current, pgbouncer={'max_client_conn': 75})
    assert (plan['room'], plan['free'], plan['placed'], plan['refused']) == (8, 2, 2, 2)
    assert plan['add'] == {'sidekiq1': ['ingress-x1']}
    assert plan['reason'] == ('pool ingress: 1 -> 2 process(es) (converged 1, added 1); 2 process(es) refused for the '
                              'connection budget (2 connection(s) free for added processes, 2 per process)')


@pytest.mark.parametrize('pool,processes,message', [
    ('nope', 2, 'sidekiq_scale_pool nope is not a pool of mastodon_sidekiq_pools'),
    ('default', 2, 'pool default has no autoscale block'),
    ('ingress', 5, 'sidekiq_scale_processes 5 is outside pool ingress autoscale.min 1 .. autoscale.max 4'),
    ('ingress', 'many', "sidekiq_scale_processes must be a whole number, not 'many'"),
])
def test_scale_plan_refuses_bad_requests_naming_them(pool, processes, message):
    sizing = lab_sizing(ingress={'autoscale': {'min': 1, 'max': 4, 'target_latency': 10}})
    with pytest.raises(sa.AutoscaleError) as e:
        sa.scale_plan(sizing, pool, processes, {})
    assert message in str(e.value)


def test_source_pools_are_the_autoscaled_pools_with_their_converged_size():
    sizing = {'sidekiq_default_hosts': ['s1', 's2'], 'sidekiq': [
        {'name': 'default', 'concurrency': 3, 'queues': ['default']},
        {'name': 'ingress', 'hosts': ['s1'], 'processes': 2, 'concurrency': 2, 'db_pool': 3,
         'queues': ['ingress,2', ['fasp', 1], {'name': 'pull', 'weight': 1}],
         'autoscale': {'min': 2, 'max': 4, 'target_latency': 10}},
        {'name': 'push', 'concurrency': 4, 'queues': ['push'], 'autoscale': {'min': 1, 'max': 3}}]}
    assert sa.source_pools(sizing) == [
        {'name': 'ingress', 'queues': ['ingress', 'fasp', 'pull'], 'converged': 2, 'db_pool': 3,
         'autoscale': {'min': 2, 'max': 4, 'target_latency': 10}},
        {'name': 'push', 'queues': ['push'], 'converged': 2, 'db_pool': 4, 'autoscale': {'min': 1, 'max': 3}}]
