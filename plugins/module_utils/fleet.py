# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One picture of the fleet: what runs, compared with what the inventory says.

Pure logic, no I/O. ``fediops.mastodon.fleet_state`` (a module run on each host) reads what one host
runs and returns an *observation*; ``fediops.mastodon.fleet_picture`` (a filter over
:func:`picture`) puts every host's observation beside the inventory and decides whether a playbook
may change anything.

Observation of one host (every key optional)::

    {'unreachable': bool, 'msg': str,
     'postgres': {'installed', 'running', 'unit_state', 'in_recovery', 'timeline', 'system_identifier',
                  'upstream', 'receiver'},
     'pgbouncer': {'installed', 'running', 'database', 'target_host', 'target_port', 'source'},
     'processes': [{'unit', 'kind', 'active', 'pid', 'release'}],
     'web_version': str,
     'edge': {'drained': [inventory names]},
     'probes': {name: {'answered': bool, 'error': str}}}   # TCP to other Postgres hosts' port (failover)

Inventory (what the playbook was given)::

    {'primary': [names], 'replicas': [names], 'pgbouncer': [names], 'addresses': {name: address},
     'release': 'v4.5.3', 'rebuild': [names with postgresql_replica_rebuild], 'drained': [names]}

Modes: ``site`` (site.yml, mastodon.yml), ``upgrade``, ``rollback``, ``switchover``, ``failover``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.fediops.mastodon.plugins.module_utils import running as running_mod

MODES = ('site', 'upgrade', 'rollback', 'switchover', 'failover')

_DB_LINE = re.compile(r'^\s*([A-Za-z0-9_.\-"]+)\s*=\s*(.*)$')
_KV = re.compile(r'(\w+)\s*=\s*(\'[^\']*\'|\S+)')
_UPSTREAM = re.compile(r'^\s*upstream\s+(\S+)\s*\{')
_SERVER = re.compile(r'^\s*server\s+(\S+)([^;]*);\s*(?:#\s*(\S+))?')


def parse_pgbouncer_databases(text, database):
    """The host and port PgBouncer's ``[databases]`` entry for ``database`` connects to, or None."""
    for line in (text or '').splitlines():
        if line.strip().startswith((';', '#', '[')):
            continue
        m = _DB_LINE.match(line)
        if not m or m.group(1).strip('"') != database:
            continue
        fields = dict((k, v.strip("'")) for k, v in _KV.findall(m.group(2)))
        port = fields.get('port')
        return {'host': fields.get('host'), 'port': int(port) if port and port.isdigit() else None,
                'dbname': fields.get('dbname', database)}
    return None


def parse_edge_drained(text, upstream='fediops_web'):
    """Inventory names marked ``down`` in an edge's web upstream (the comment after each server names it)."""
    drained, current = [], None
    for line in (text or '').splitlines():
        m = _UPSTREAM.match(line)
        if m:
            current = m.group(1)
            continue
        if line.strip() == '}':
            current = None
            continue
        m = _SERVER.match(line)
        if m and current == upstream and re.search(r'\bdown\b', m.group(2)):
            drained.append(m.group(3) or m.group(1))
    return drained


def release_of_path(path):
    """``/home/mastodon/releases/v4.5.3`` -> ``v4.5.3``; None for a path outside a releases/ directory."""
    if not path:
        return None
    parts = path.rstrip('/').split('/')
    if len(parts) >= 2 and parts[-2] == 'releases' and parts[-1]:
        return parts[-1]
    return None


def same_release(a, b):
    """Release names compare without a leading ``v`` (Mastodon reports 4.5.3, releases are named v4.5.3)."""
    if a is None or b is None:
        return False
    return str(a).lstrip('v') == str(b).lstrip('v')


def timeline_from_walfile(name):
    """The timeline in a WAL file name (its first 8 hex digits)."""
    return int(name[:8], 16)


def _name_of(address, addresses):
    for name, addr in (addresses or {}).items():
        if addr == address:
            return name
    return address


def _pg_state(obs):
    if obs.get('unreachable'):
        return 'unreachable'
    pg = obs.get('postgres') or {}
    if not pg.get('installed'):
        return 'absent'
    if not pg.get('running'):
        return 'stopped'
    return 'standby' if pg.get('in_recovery') else 'primary'


def _describe(host, pg):
    state = pg['state']
    if state == 'primary':
        return '%s runs as the primary (timeline %s)' % (host, pg.get('timeline'))
    if state == 'standby':
        return '%s runs as a standby (timeline %s, streaming from %s: %s)' % (
            host, pg.get('timeline'), pg.get('upstream') or 'nobody', pg.get('receiver') or 'no WAL receiver')
    if state == 'stopped':
        return '%s has a Postgres cluster that is not running (unit %s)' % (host, pg.get('unit_state') or 'inactive')
    if state == 'unreachable':
        return '%s does not answer' % host
    return '%s has no Postgres cluster yet' % host


def _diff(check, message, fix):
    return {'check': check, 'message': message, 'fix': fix}


def picture(observations, inventory, mode='site'):
    """Compare what runs with the inventory. Returns the fleet's picture with ``differences``:
    every one of them is a reason to change nothing anywhere."""
    if mode not in MODES:
        raise ValueError('mode must be one of %s, not %r' % (', '.join(MODES), mode))
    observations = observations or {}
    addresses = inventory.get('addresses') or {}
    inv_primary = list(inventory.get('primary') or [])
    inv_replicas = list(inventory.get('replicas') or [])
    rebuild = set(inventory.get('rebuild') or [])
    pg_hosts = inv_primary + [h for h in inv_replicas if h not in inv_primary]
    differences, notes = [], []

    postgres = {}
    for host in pg_hosts:
        obs = observations.get(host) or {'unreachable': True, 'msg': 'not read'}
        pg = dict(obs.get('postgres') or {})
        pg['state'] = _pg_state(obs)
        if pg.get('upstream'):
            pg['upstream'] = _name_of(pg['upstream'], addresses)
        postgres[host] = pg
    primaries = sorted((h for h in pg_hosts if postgres[h]['state'] == 'primary'),
                       key=lambda h: -(postgres[h].get('timeline') or 0))
    running_primary = primaries[0] if len(primaries) == 1 else None
    newest = primaries[0] if primaries else None

    # Two writers: the worst state a data tier can be in. Tolerated only while the stale one is the
    # host being rebuilt from the newest (the documented fix being carried out).
    if len(primaries) > 1:
        stale = primaries[1:]
        if not (mode == 'site' and inv_primary == [newest] and all(h in rebuild for h in stale)):
            differences.append(_diff(
                'split_brain',
                'Two Postgres primaries run: %s.' % '; '.join(_describe(h, postgres[h]) for h in primaries),
                'Keep %s (the newest timeline). On %s: systemctl mask --now postgresql@<version>-<cluster>; then put %s in '
                'postgres_primary and %s in postgres_replica and rebuild: ansible-playbook playbooks/site.yml --limit %s '
                '-e postgresql_replica_rebuild=true' % (newest, ', '.join(stale), newest, ', '.join(stale), ','.join(stale))))
        else:
            running_primary = newest
            notes.append('%s still runs as a primary on an older timeline; this run rebuilds it from %s.'
                         % (', '.join(stale), newest))

    # A failover may take a Postgres host as lost only when neither its SSH nor its Postgres port answers:
    # a host whose sshd died (or whose SSH path is cut) may still run a primary that clients reach.
    if mode == 'failover':
        for host in pg_hosts:
            if postgres[host]['state'] != 'unreachable':
                continue
            probes = dict((peer, (obs.get('probes') or {})[host]) for peer, obs in sorted(observations.items())
                          if peer != host and (obs.get('probes') or {}).get(host))
            postgres[host]['port_probes'] = probes
            answered = sorted(peer for peer, probe in probes.items() if probe.get('answered'))
            ssh = (observations.get(host) or {}).get('msg') or 'unreachable'
            if answered:
                differences.append(_diff(
                    'alive',
                    '%s does not answer over SSH (%s), but its Postgres port accepts connections (asked from %s): it may '
                    'still run as a primary.' % (host, ssh, ', '.join(answered)),
                    'If it is the working primary, wait for its SSH or use playbooks/switchover.yml; otherwise stop its '
                    'Postgres (or the host) and run playbooks/failover.yml again.'))
            elif not probes:
                differences.append(_diff(
                    'alive',
                    '%s does not answer over SSH (%s), and no other Postgres host asked its Postgres port: it cannot be '
                    'taken as lost.' % (host, ssh),
                    'Run playbooks/failover.yml with a standby that answers (it asks the port), or bring %s back.' % host))
            else:
                notes.append('%s is taken as lost: no answer over SSH (%s) nor on its Postgres port (from %s: %s).' % (
                    host, ssh, ', '.join(sorted(probes)),
                    '; '.join('%s' % (probes[peer].get('error') or 'no answer') for peer in sorted(probes))))

    inventory_primary = inv_primary[0] if len(inv_primary) == 1 else None
    if mode in ('site', 'upgrade', 'rollback') and inventory_primary:
        ip = postgres[inventory_primary]
        if newest and newest != inventory_primary:
            swap = 'Move %s into postgres_primary and %s into postgres_replica in the inventory' % (newest, inventory_primary)
            if ip['state'] == 'standby' and ip.get('upstream') == newest:
                fix = swap + ' (%s already streams from %s, after a switchover).' % (inventory_primary, newest)
            else:
                fix = (swap + ', then rebuild %s as its replica: ansible-playbook playbooks/site.yml --limit %s '
                       '-e postgresql_replica_rebuild=true' % (inventory_primary, inventory_primary))
            differences.append(_diff(
                'primary',
                'The inventory names %s as postgres_primary, but %s; %s.' % (
                    inventory_primary, _describe(newest, postgres[newest]), _describe(inventory_primary, ip)),
                fix))
        elif ip['state'] == 'unreachable':
            differences.append(_diff(
                'primary',
                'The primary %s (postgres_primary) does not answer: %s.' % (
                    inventory_primary, (observations.get(inventory_primary) or {}).get('msg') or 'unreachable'),
                'If it is gone for good, run playbooks/failover.yml; if it is coming back, wait for it.'))
        elif ip['state'] == 'standby':
            differences.append(_diff(
                'primary',
                'The inventory names %s as postgres_primary, but %s and no primary runs.' % (
                    inventory_primary, _describe(inventory_primary, ip)),
                'Promote it with playbooks/failover.yml, or fix the inventory to name the host that should be primary.'))
        for host in inv_replicas:
            pg = postgres[host]
            if pg['state'] == 'standby' and pg.get('upstream') and running_primary and pg['upstream'] != running_primary:
                notes.append('%s streams from %s, not from the primary %s.' % (host, pg['upstream'], running_primary))
            if pg['state'] == 'unreachable':
                notes.append('The replica %s does not answer; its plays will fail on it alone.' % host)

    # The write path: every PgBouncer must point at the one running primary.
    pgbouncer = {}
    for host in inventory.get('pgbouncer') or []:
        obs = observations.get(host) or {'unreachable': True}
        pb = dict(obs.get('pgbouncer') or {})
        if obs.get('unreachable'):
            pb['state'] = 'unreachable'
        elif not pb.get('installed'):
            pb['state'] = 'absent'
        else:
            pb['state'] = 'running' if pb.get('running') else 'stopped'
        pb['target'] = _name_of(pb.get('target_host'), addresses) if pb.get('target_host') else None
        pgbouncer[host] = pb
        if mode == 'failover' or pb['state'] in ('absent', 'unreachable') or not pb['target']:
            if pb['state'] == 'unreachable' and mode != 'failover':
                differences.append(_diff('write_path', 'PgBouncer %s %s; the write path is unknown.'
                                         % (host, (observations.get(host) or {}).get('msg') or 'does not answer'),
                                         'Bring %s back before changing anything.' % host))
            continue
        target = pb['target']
        if running_primary and target == running_primary:
            continue
        where = _describe(target, postgres[target]) if target in postgres else '%s is not a Postgres host of the inventory' % target
        problem = 'write path: PgBouncer %s points at %s, and %s' % (host, target, where)
        if mode == 'site' and running_primary and running_primary == inventory_primary and len(primaries) == 1:
            notes.append(problem + '; this run points it at %s.' % running_primary)
        elif mode == 'site' and not running_primary and not primaries and target == inventory_primary:
            continue  # a new or stopped data tier: the run starts the primary PgBouncer already names
        else:
            differences.append(_diff(
                'write_path', problem[0].upper() + problem[1:] + '.',
                'Point PgBouncer at the running primary: ansible-playbook playbooks/site.yml (after fixing the inventory, '
                'if it names another primary).' if running_primary else
                'No single primary runs: resolve the data tier first (switchover.yml, failover.yml).'))

    # Releases, read from the running processes. Puma's answer names a Mastodon version: it counts as the
    # inventory's release when it matches that release's name or its Mastodon version.
    wanted_names = set(running_mod.normalize_version(v) for v in (inventory.get('release'), inventory.get('mastodon_version')) if v)
    releases, running_set = {}, set()
    for host, obs in sorted(observations.items()):
        procs = [p for p in (obs.get('processes') or []) if p.get('active') and p.get('kind') != 'web']
        if not procs and not obs.get('web_version'):
            continue
        entry = dict((p['unit'], p.get('release')) for p in procs)
        if obs.get('web_version'):
            entry['mastodon-web.service (/api/v1/instance)'] = obs['web_version']
        releases[host] = entry
        for unit, value in entry.items():
            if not value:
                continue
            value = running_mod.normalize_version(value)
            if unit.startswith('mastodon-web') and value in wanted_names:
                value = running_mod.normalize_version(inventory.get('release'))
            running_set.add(value)
    running = running_set
    wanted = running_mod.normalize_version(inventory.get('release') or '')
    others = sorted(r for r in running if r != wanted)
    if mode == 'site' and others:
        where = '; '.join('%s: %s' % (h, ', '.join('%s=%s' % kv for kv in sorted(e.items()))) for h, e in sorted(releases.items()))
        if len(running) > 1:
            fix = ('An upgrade or rollback stopped half-way: finish it with playbooks/upgrade.yml -e mastodon_release_version=<new> '
                   'or playbooks/rollback.yml -e rollback_to=<old>.')
        else:
            fix = ('If the upgrade to %s finished, set mastodon_release_version to it in the inventory. To change the release, '
                   'use playbooks/upgrade.yml (gated, rolling) or playbooks/rollback.yml -e rollback_to=<release>.' % others[0])
        differences.append(_diff(
            'release', 'The inventory says mastodon_release_version=%s, but the running processes report %s (%s).'
            % (inventory.get('release'), ', '.join(sorted(running)), where), fix))
    if mode in ('upgrade', 'rollback') and len(others) > 1:
        differences.append(_diff(
            'release', 'Processes run %d releases besides %s: %s.' % (len(others), inventory.get('release'), ', '.join(others)),
            'Bring every process to one release first (playbooks/rollback.yml -e rollback_to=<release>).'))

    drained = {}
    for host, obs in sorted(observations.items()):
        if obs.get('edge') is not None:
            drained[host] = list((obs.get('edge') or {}).get('drained') or [])
            extra = sorted(set(drained[host]) - set(inventory.get('drained') or []))
            if extra:
                notes.append('Edge %s has %s drained (an interrupted roll?); the inventory drains %s.'
                             % (host, ', '.join(extra), ', '.join(inventory.get('drained') or []) or 'none'))

    return {
        'mode': mode,
        'postgres': postgres,
        'primaries': primaries,
        'primary': running_primary,
        'pgbouncer': pgbouncer,
        'releases': releases,
        'running_releases': sorted(running),
        'drained': drained,
        'unreachable': sorted(h for h, o in observations.items() if o.get('unreachable')),
        'differences': differences,
        'notes': notes,
    }


def summary(result):
    """The refusal text: every difference with its fix, one per line."""
    lines = []
    for d in result.get('differences') or []:
        lines.append('[%s] %s Fix: %s' % (d['check'], d['message'], d['fix']))
    return lines
