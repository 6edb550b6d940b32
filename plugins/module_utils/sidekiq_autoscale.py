# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sidekiq autoscaling on queue latency, inside the fleet's database connection budget.

``decide`` is the one decision: given a pool's policy (the ``autoscale`` block of a
``mastodon_sidekiq_pools`` entry), what was observed (latency, processes, the time) and the
connections still free, it returns scale_out N / scale_in N / hold / refused_budget with a reason
a person can read, and the state to pass to the next call. It is pure (no clock, no I/O), so the
event source, a service or a test can drive it with any series of observations.

The rules:

- latency above ``target_latency`` for ``scale_out_after`` seconds -> add ``step`` processes (never
  past ``max``); while it stays above, another step every ``scale_out_after`` seconds;
- latency at or below the target for ``scale_in_after`` seconds, and ``cooldown`` seconds since
  the last action -> remove ``step`` processes (never below ``min``);
- a scale-out within ``cooldown`` of a scale-in is held: with the rule above, two opposite actions
  are always at least ``cooldown`` apart, so a sawtooth load gives at most one scale-out/scale-in
  pair per cooldown;
- a scale-out needs ``connections_per_process`` (the pool's DB_POOL) for each process; what does not
  fit the connections still free is not started: the decision scales out by what fits and reports
  the rest as refused (``refused_budget`` when nothing fits, at most once per cooldown);
- fewer processes than ``min`` (or more than ``max``) are corrected at once, within the budget.

The budget (see ``pools.connection_budget``): PgBouncer accepts ``max_client_conn`` x poolers client
connections; the budget's total counts every pool at its converged size (hosts x processes x
DB_POOL) plus the reserve. What is left is the room autoscaled processes may use, shared by all
autoscaled pools: ``free_connections`` subtracts the processes already added above each pool's
converged size. The preflight refuses an ``autoscale.max`` that would not fit even with the whole
room to itself (``autoscale_errors``).

This file imports nothing from Ansible at module level, so the EDA event source can load it
(and module_utils/sidekiq.py) by path outside a collection tree.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

SCALE_OUT = 'scale_out'
SCALE_IN = 'scale_in'
HOLD = 'hold'
REFUSED_BUDGET = 'refused_budget'
ACTIONS = (SCALE_OUT, SCALE_IN, HOLD, REFUSED_BUDGET)

# Defaults of the optional keys of an autoscale block (documented in roles/fleet/meta/argument_specs.yml).
POLICY_DEFAULTS = {'scale_out_after': 60, 'scale_in_after': 300, 'step': 1, 'cooldown': 300, 'max_per_host': 4}
POLICY_KEYS = ('min', 'max', 'target_latency', 'scale_out_after', 'scale_in_after', 'step', 'cooldown', 'max_per_host')


class AutoscaleError(ValueError):
    """An autoscale policy that cannot be decided with."""


def _number(policy, key, kind, minimum):
    value = policy.get(key)
    if value is None or value == '':
        if key not in POLICY_DEFAULTS:
            raise AutoscaleError('autoscale.%s is required' % key)
        value = POLICY_DEFAULTS[key]
    if isinstance(value, bool):
        raise AutoscaleError('autoscale.%s must be a number, not %r' % (key, value))
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise AutoscaleError('autoscale.%s must be a number, not %r' % (key, value))
    if kind is int and isinstance(value, float) and value != number:
        raise AutoscaleError('autoscale.%s must be a whole number, not %r' % (key, value))
    if number < minimum:
        raise AutoscaleError('autoscale.%s %s must be at least %s' % (key, value, minimum))
    return number


def normalize_policy(policy):
    """The policy with defaults filled in and types checked; raises AutoscaleError naming the key."""
    if not isinstance(policy, dict):
        raise AutoscaleError('autoscale must be a mapping of %s, not %r' % (', '.join(POLICY_KEYS), policy))
    unknown = sorted(set(policy) - set(POLICY_KEYS))
    if unknown:
        raise AutoscaleError('autoscale has unknown key(s) %s (known: %s)' % (', '.join(unknown), ', '.join(POLICY_KEYS)))
    out = {
        'min': _number(policy, 'min', int, 1),
        'max': _number(policy, 'max', int, 1),
        'target_latency': _number(policy, 'target_latency', float, 0),
        'scale_out_after': _number(policy, 'scale_out_after', float, 0),
        'scale_in_after': _number(policy, 'scale_in_after', float, 0),
        'step': _number(policy, 'step', int, 1),
        'cooldown': _number(policy, 'cooldown', float, 0),
        'max_per_host': _number(policy, 'max_per_host', int, 1),
    }
    if out['target_latency'] <= 0:
        raise AutoscaleError('autoscale.target_latency %s must be above 0 seconds' % policy.get('target_latency'))
    if out['min'] > out['max']:
        raise AutoscaleError('autoscale.min %d is greater than autoscale.max %d' % (out['min'], out['max']))
    return out


def initial_state():
    return {'above_since': None, 'below_since': None, 'last_action': None, 'last_action_at': None,
            'last_refusal_at': None}


def _fits(count, budget):
    """How many of ``count`` new processes fit the connections still free (all when no budget is given)."""
    if budget is None:
        return count
    per_process = int(budget.get('connections_per_process') or 0)
    if per_process <= 0:
        return count
    free = int(budget.get('free_connections') or 0)
    return max(0, min(count, free // per_process))


def _budget_text(budget):
    if budget is None:
        return 'no budget given'
    return '%d connection(s) free, %d per process' % (int(budget.get('free_connections') or 0),
                                                      int(budget.get('connections_per_process') or 0))


def decide(policy, state, observation, budget=None):
    """One autoscaling decision for one pool.

    ``policy``: the pool's autoscale block (min, max, target_latency, scale_out_after,
    scale_in_after, step, cooldown; seconds). ``state``: what the previous call returned as
    ``state`` (None for the first call). ``observation``: {now (epoch seconds), latency (seconds,
    the pool's worst queue), processes (the pool's running, not quiet, processes)}. ``budget``:
    {connections_per_process, free_connections} or None (no limit).

    Returns {action, count, processes, target, refused, reason, state}: ``count`` processes to
    add or remove, ``target`` the processes after it, ``refused`` the processes the budget refused.
    """
    p = normalize_policy(policy)
    new = dict(initial_state())
    new.update(state or {})
    now = float(observation['now'])
    latency = float(observation.get('latency') or 0.0)
    n = int(observation['processes'])
    target = p['target_latency']

    # The streaks: since when latency has been above (or at/below) the target, uninterrupted.
    if latency > target:
        if new['above_since'] is None:
            new['above_since'] = now
        new['below_since'] = None
    else:
        if new['below_since'] is None:
            new['below_since'] = now
        new['above_since'] = None
    since_action = None if new['last_action_at'] is None else now - new['last_action_at']
    cooling = since_action is not None and since_action < p['cooldown']

    def result(action, count, reason, refused=0):
        out_state = dict(new)
        if action in (SCALE_OUT, SCALE_IN) and count:
            out_state['last_action'], out_state['last_action_at'] = action, now
            # The next step in the same direction waits a whole delay again.
            if action == SCALE_OUT:
                out_state['above_since'] = now if out_state['above_since'] is not None else None
            else:
                out_state['below_since'] = now if out_state['below_since'] is not None else None
        if refused:
            out_state['last_refusal_at'] = now
        delta = count if action == SCALE_OUT else -count if action == SCALE_IN else 0
        return {'action': action, 'count': count, 'processes': n, 'target': n + delta, 'refused': refused,
                'reason': reason, 'state': out_state}

    def scale_out(wanted, why):
        fits = _fits(wanted, budget)
        if fits == wanted:
            return result(SCALE_OUT, wanted, '%s: adding %d process(es), %d -> %d' % (why, wanted, n, n + wanted))
        refused = wanted - fits
        over = 'the connection budget (%s) fits %d of the %d process(es) wanted' % (_budget_text(budget), fits, wanted)
        if fits:
            return result(SCALE_OUT, fits, '%s: adding %d process(es), %d -> %d; %d refused: %s'
                          % (why, fits, n, n + fits, refused, over), refused=refused)
        last_refusal = new['last_refusal_at']
        if last_refusal is not None and now - last_refusal < p['cooldown']:
            return result(HOLD, 0, '%s, still refused for budget since %.0f s ago: %s' % (why, now - last_refusal, over))
        return result(REFUSED_BUDGET, 0, '%s: refused, %s' % (why, over), refused=refused)

    latency_text = 'latency %.1f s %s target %.1f s' % (latency, '>' if latency > target else '<=', target)
    if n < p['min']:
        return scale_out(p['min'] - n, '%d process(es), below autoscale.min %d (%s)' % (n, p['min'], latency_text))
    if n > p['max']:
        return result(SCALE_IN, n - p['max'], '%d process(es), above autoscale.max %d: removing %d, %d -> %d'
                      % (n, p['max'], n - p['max'], n, p['max']))

    if latency > target:
        held = now - new['above_since']
        if n >= p['max']:
            return result(HOLD, 0, '%s for %.0f s, already at autoscale.max %d' % (latency_text, held, p['max']))
        if held < p['scale_out_after']:
            return result(HOLD, 0, '%s for %.0f s of the %.0f s before scaling out'
                          % (latency_text, held, p['scale_out_after']))
        if new['last_action'] == SCALE_IN and cooling:
            return result(HOLD, 0, '%s for %.0f s, but the last scale-in was %.0f s ago (cooldown %.0f s)'
                          % (latency_text, held, since_action, p['cooldown']))
        return scale_out(min(p['step'], p['max'] - n), '%s for %.0f s' % (latency_text, held))

    held = now - new['below_since']
    if n <= p['min']:
        return result(HOLD, 0, '%s, at autoscale.min %d' % (latency_text, p['min']))
    if held < p['scale_in_after']:
        return result(HOLD, 0, '%s for %.0f s of the %.0f s before scaling in' % (latency_text, held, p['scale_in_after']))
    if cooling:
        return result(HOLD, 0, '%s for %.0f s, but the last %s was %.0f s ago (cooldown %.0f s)'
                      % (latency_text, held, new['last_action'].replace('_', '-'), since_action, p['cooldown']))
    count = min(p['step'], n - p['min'])
    return result(SCALE_IN, count, '%s for %.0f s: removing %d process(es), %d -> %d'
                  % (latency_text, held, count, n, n - count))


# ---- The budget: the room autoscaled processes share, and the preflight's refusals ----

def _hosts_count(pool, default_hosts):
    hosts = pool.get('hosts')
    if hosts is None or hosts == '':
        hosts = default_hosts or []
    if isinstance(hosts, (list, tuple, set)):
        return len(hosts)
    return int(hosts)


def converged_processes(pool, default_hosts=None):
    """The processes converge runs for a pool: hosts x processes per host."""
    return _hosts_count(pool, default_hosts) * int(pool.get('processes') if pool.get('processes') not in (None, '') else 1)


def pool_db_pool(pool):
    """Connections one process of the pool holds: its DB_POOL (default its concurrency)."""
    value = pool.get('db_pool')
    return int(value if value not in (None, '') else pool.get('concurrency') or 0)


def free_connections(room, pools_now):
    """Connections still free for scale-outs.

    ``room``: what the budget leaves (``budget_room``). ``pools_now``: [{converged, processes,
    db_pool}] for every autoscaled pool - processes above the converged size use the room; processes
    below it lend nothing (converge or a restart brings them back).
    """
    used = sum(max(0, int(p['processes']) - int(p['converged'])) * int(p['db_pool']) for p in pools_now)
    return room - used


def source_pools(sizing):
    """The event source's ``pools`` argument: every pool with an ``autoscale`` block, as
    [{name, queues (names), converged, db_pool, autoscale}] (what the autoscaler service is given)."""
    out = []
    for pool in sizing.get('sidekiq') or []:
        if not pool.get('autoscale'):
            continue
        names = [_queue_entry_name(q) for q in pool.get('queues') or []]
        out.append({'name': str(pool['name']), 'queues': names,
                    'converged': converged_processes(pool, sizing.get('sidekiq_default_hosts')),
                    'db_pool': pool_db_pool(pool), 'autoscale': dict(pool['autoscale'])})
    return out


def budget_room(sizing, pgbouncer=None):
    """{accepted, counted, room, max_client_conn, poolers, budget}: client connections PgBouncer
    accepts (``max_client_conn`` x poolers; an override in ``pgbouncer`` wins over the derived value),
    the budget's total, and their difference."""
    from ansible_collections.fediops.mastodon.plugins.module_utils import pools
    budget = pools.connection_budget(sizing)
    max_client_conn = budget['pgbouncer']['max_client_conn']
    override = (pgbouncer or {}).get('max_client_conn')
    if override not in (None, ''):
        max_client_conn = int(override)
    poolers = budget['pgbouncer']['hosts']
    accepted = max_client_conn * poolers
    return {'accepted': accepted, 'counted': budget['total'], 'room': accepted - budget['total'],
            'max_client_conn': max_client_conn, 'poolers': poolers, 'budget': budget}


def _queue_entry_name(entry):
    """A queue's name from a pool's queues entry: "name", "name,weight", [name, weight] or {name, weight}."""
    name = entry.get('name') if isinstance(entry, dict) else entry[0] if isinstance(entry, (list, tuple)) else str(entry)
    return str(name).split(',', maxsplit=1)[0].strip()


def _serves_scheduler(pool):
    return any(_queue_entry_name(entry) == 'scheduler' for entry in pool.get('queues') or [])


def autoscale_errors(sizing, pgbouncer=None):
    """Messages for every autoscale block that cannot work; [] when all can (or none is set).

    ``sizing`` is the fleet's sizing (``fleet_db_sizing``: its ``sidekiq`` list is
    ``mastodon_sidekiq_pools``); ``pgbouncer``: {max_client_conn} actually used, when overridden.
    Refuses: an autoscaled pool serving ``scheduler`` (it must run in exactly one process), a
    malformed policy (min > max, ...), a converged size outside min..max, and a ``max`` whose extra
    processes need more connections than the budget leaves even with the whole room to itself.
    """
    sizing = sizing or {}
    pools_ = sizing.get('sidekiq') or []
    default_hosts = sizing.get('sidekiq_default_hosts') or []
    errors = []
    autoscaled = []
    for index, pool in enumerate(pools_):
        if not isinstance(pool, dict) or pool.get('autoscale') in (None, {}, ''):
            continue
        name = str(pool.get('name') or 'sidekiq[%d]' % index)
        what = 'mastodon_sidekiq_pools entry %s' % name
        if _serves_scheduler(pool):
            errors.append('%s serves the scheduler queue and has an autoscale block: scheduler must run in exactly one '
                          'Sidekiq process, so pool %s cannot be autoscaled (remove its autoscale block, or move scheduler '
                          'to a pool of its own)' % (what, name))
            continue
        try:
            policy = normalize_policy(pool['autoscale'])
            converged = converged_processes(pool, default_hosts)
            per_process = pool_db_pool(pool)
        except (AutoscaleError, TypeError, ValueError) as e:
            errors.append('%s: %s' % (what, e))
            continue
        hosts_count = _hosts_count(pool, default_hosts)
        burst_count = len(sizing.get('sidekiq_burst_hosts') or [])
        capacity = (hosts_count + burst_count) * policy['max_per_host']
        if policy['max'] > capacity:
            errors.append('%s: autoscale.max %d cannot be placed: %d own host(s) and %d burst host(s) (group '
                          'mastodon_sidekiq_burst_group) at autoscale.max_per_host %d hold %d process(es) of it; lower '
                          'autoscale.max, raise autoscale.max_per_host or add burst hosts'
                          % (what, policy['max'], hosts_count, burst_count, policy['max_per_host'], capacity))
            continue
        if not policy['min'] <= converged <= policy['max']:
            errors.append('%s: converge runs %d process(es) of it (hosts x processes), outside autoscale.min %d .. '
                          'autoscale.max %d; make min <= hosts x processes <= max'
                          % (what, converged, policy['min'], policy['max']))
            continue
        autoscaled.append((what, name, policy, converged, per_process))
    if not autoscaled:
        return errors
    try:
        room = budget_room(sizing, pgbouncer)
    except (ValueError, TypeError) as e:
        return errors + ['sidekiq autoscaling: connection budget: %s' % e]
    for what, name, policy, converged, per_process in autoscaled:
        extra = policy['max'] - converged
        needed = extra * per_process
        if needed > room['room']:
            fits = max(0, room['room']) // per_process if per_process else extra
            errors.append(
                '%s: autoscale.max %d needs %d process(es) above the %d converged, %d client connections '
                '(x db_pool %d), but the connection budget leaves %d (PgBouncer accepts %d = pgbouncer_max_client_conn %d '
                'x %d pooler(s); the fleet counts %d); autoscale.max can be at most %d - or raise '
                'fleet_db_headroom_percent or set pgbouncer_max_client_conn'
                % (what, policy['max'], extra, converged, needed, per_process, room['room'], room['accepted'],
                   room['max_client_conn'], room['poolers'], room['counted'], converged + fits))
    return errors


# ---- Placement: which host runs which added process ----

ADDED_INFIX = '-x'


def added_instance(pool_name, number):
    """The systemd instance of the pool's added process ``number`` on a host: ``<pool>-x<number>``.

    Converge's own instances are ``<pool>`` or ``<pool>-<n>``; the ``x`` keeps the added ones apart, so
    converge leaves them alone and a scale-in never touches a converged process."""
    return '%s%s%d' % (pool_name, ADDED_INFIX, number)


def added_numbers(pool_name, instances):
    """The numbers of the pool's added processes among systemd instance names (others are ignored)."""
    prefix = pool_name + ADDED_INFIX
    numbers = []
    for name in instances or []:
        rest = str(name)[len(prefix):] if str(name).startswith(prefix) else ''
        if rest.isdigit() and int(rest) > 0:
            numbers.append(int(rest))
    return sorted(numbers)


def place(pool_name, target, own_hosts, converged_per_host, burst_hosts, current, max_per_host):
    """Where the pool's processes above its converged size run, for ``target`` processes fleet-wide.

    Capacity is filled in order: the pool's own hosts (each up to ``max_per_host`` processes of the pool,
    its converged ones included), then the burst hosts (``max_per_host`` each). ``current``: {host: [added
    numbers]} as read from the hosts. A host keeps the added processes it has up to its share; a scale-in
    removes the highest numbers, burst hosts first (they are filled last). Converged processes are never
    removed: a target below the converged size keeps the converged size.

    Returns {wanted: {host: [instances]}, add: {host: [instances]}, remove: {host: [instances]},
    converged, target, placed (processes fleet-wide after the change), unplaced (asked for but no
    capacity), reason}.
    """
    own_hosts = list(own_hosts or [])
    burst_hosts = [h for h in (burst_hosts or []) if h not in own_hosts]
    target = int(target)
    per_host = int(converged_per_host)
    converged = per_host * len(own_hosts)
    extra = max(0, target - converged)
    capacity = [(h, max(0, int(max_per_host) - per_host)) for h in own_hosts] + [(h, int(max_per_host)) for h in burst_hosts]
    share = {}
    left = extra
    for host, room in capacity:
        share[host] = min(room, left)
        left -= share[host]
    wanted, add, remove = {}, {}, {}
    for host in own_hosts + burst_hosts + sorted(h for h in (current or {}) if h not in own_hosts + burst_hosts):
        have = sorted(set(int(n) for n in (current or {}).get(host, [])))
        want = share.get(host, 0)
        keep = have[:want]
        free = (n for n in range(1, want + len(have) + 2) if n not in have)
        new = [next(free) for dummy in range(want - len(keep))]
        wanted[host] = [added_instance(pool_name, n) for n in sorted(keep + new)]
        if new:
            add[host] = [added_instance(pool_name, n) for n in new]
        if have[want:]:
            remove[host] = [added_instance(pool_name, n) for n in have[want:]]
    placed = converged + extra - left
    before = converged + sum(len(v) for v in (current or {}).values())
    reason = 'pool %s: %d -> %d process(es) (converged %d, added %d)' % (pool_name, before, placed, converged, placed - converged)
    if target < converged:
        reason += '; %d asked, but a scale-in never goes below the converged size' % target
    if left:
        reason += ('; %d more asked, but every host is at autoscale.max_per_host %d (own hosts %s, burst hosts %s)'
                   % (left, int(max_per_host), ', '.join(own_hosts) or '-', ', '.join(burst_hosts) or '-'))
    return {'wanted': wanted, 'add': add, 'remove': remove, 'converged': converged, 'target': target,
            'placed': placed, 'unplaced': left, 'reason': reason}


def scale_plan(sizing, pool_name, processes, current, pgbouncer=None):
    """The scaling playbook's plan: the pool ``pool_name`` to ``processes`` processes fleet-wide.

    ``sizing``: the fleet sizing (``fleet_db_sizing``); ``current``: {host: [systemd instance names of added
    processes found on the host, any pool]}. Raises AutoscaleError when the pool is unknown, not autoscaled,
    or ``processes`` lies outside its min..max. The budget is a hard limit here too (the event source
    decided with it, but the playbook may be run by hand): added processes of every autoscaled pool share
    the room; what does not fit is not placed and is reported in ``refused``. Returns ``place``'s result
    with {pool, policy, db_pool, room, free, refused}.
    """
    sizing = sizing or {}
    pools_ = [p for p in sizing.get('sidekiq') or [] if isinstance(p, dict)]
    pool = next((p for p in pools_ if str(p.get('name')) == str(pool_name)), None)
    if pool is None:
        raise AutoscaleError('sidekiq_scale_pool %s is not a pool of mastodon_sidekiq_pools (pools: %s)'
                             % (pool_name, ', '.join(str(p.get('name')) for p in pools_) or 'none'))
    if pool.get('autoscale') in (None, {}, ''):
        raise AutoscaleError('pool %s has no autoscale block: only an autoscaled pool is scaled' % pool_name)
    if _serves_scheduler(pool):
        raise AutoscaleError('pool %s serves the scheduler queue, which must run in exactly one process' % pool_name)
    policy = normalize_policy(pool['autoscale'])
    try:
        wanted = int(processes)
    except (TypeError, ValueError):
        raise AutoscaleError('sidekiq_scale_processes must be a whole number, not %r' % (processes,))
    if not policy['min'] <= wanted <= policy['max']:
        raise AutoscaleError('sidekiq_scale_processes %d is outside pool %s autoscale.min %d .. autoscale.max %d'
                             % (wanted, pool_name, policy['min'], policy['max']))
    default_hosts = sizing.get('sidekiq_default_hosts') or []
    hosts = pool.get('hosts') if pool.get('hosts') not in (None, '') else default_hosts
    per_host = int(pool.get('processes') if pool.get('processes') not in (None, '') else 1)
    db_pool = pool_db_pool(pool)
    current = current or {}
    room = budget_room(sizing, pgbouncer)['room']
    used_by_others = 0
    for other in pools_:
        if other is pool or other.get('autoscale') in (None, {}, ''):
            continue
        count = sum(len(added_numbers(str(other.get('name')), names)) for names in current.values())
        used_by_others += count * pool_db_pool(other)
    free = room - used_by_others
    converged = per_host * len(hosts)
    fits = converged + (max(0, free) // db_pool if db_pool else wanted)
    refused = max(0, wanted - fits)
    mine = dict((h, added_numbers(str(pool_name), names)) for h, names in current.items())
    plan = place(str(pool_name), min(wanted, fits), hosts, per_host, sizing.get('sidekiq_burst_hosts') or [],
                 dict((h, n) for h, n in mine.items() if n), policy['max_per_host'])
    if refused:
        plan['reason'] += ('; %d process(es) refused for the connection budget (%d connection(s) free for added '
                           'processes, %d per process)' % (refused, free, db_pool))
    plan.update({'pool': str(pool_name), 'policy': policy, 'db_pool': db_pool, 'room': room, 'free': free,
                 'refused': refused})
    return plan
