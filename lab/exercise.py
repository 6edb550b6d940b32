#!/usr/bin/env python3
"""Break-it exercises for the lab, each with a command that says whether the lab is broken.

    lab/exercise.py list
    lab/exercise.py <exercise> break    # set the exercise up (break something, or try to)
    lab/exercise.py <exercise> check    # HEALTHY (exit 0) or BROKEN: what is wrong (exit 1)
    lab/exercise.py <exercise> repair   # the repair docs/lab.md teaches, run for you

Every step prints the commands it runs, so a volunteer can type them by hand instead. The `check`
of each exercise looks only at what that exercise breaks; `make lab-health` is the whole verdict.
Hosts are the containers <LAB_NAME>-<host> (LAB_NAME defaults to `lab`, the `make lab` lab);
FEDIOPS_INVENTORY adds an inventory layered over inventories/lab (molecule scenarios use it).
"""
import json
import os
import shlex
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = os.environ.get('LAB_NAME', 'lab')
OVERLAY = os.environ.get('FEDIOPS_INVENTORY')
VENV_BIN = os.path.join(REPO, '.venv', 'bin')
PG_SERVICE = 'postgresql@15-main'
DATABASE = 'mastodon_production'


class Broken(Exception):
    """The lab is in the exercise's broken state; the message says how."""


def say(text):
    print(text, flush=True)


def run(argv, check=True, quiet=False, **kwargs):
    if not quiet:
        say('$ ' + ' '.join(shlex.quote(a) for a in argv))
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise SystemExit('command failed (rc %d): %s\n%s%s' % (result.returncode, ' '.join(argv),
                                                               result.stdout[-3000:], result.stderr[-2000:]))
    return result


def on(host, script, check=True, quiet=False):
    """Run a bash script inside the host's container; return the CompletedProcess."""
    return run(['podman', 'exec', '%s-%s' % (LAB, host), 'bash', '-c', script], check=check, quiet=quiet)


def playbook(*args, check=True):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
               PATH=VENV_BIN + os.pathsep + os.environ.get('PATH', ''))
    inventories = ['-i', os.path.join(REPO, 'inventories', 'lab')] + (['-i', OVERLAY] if OVERLAY else [])
    argv = ['ansible-playbook'] + inventories + list(args)
    result = run(argv, check=False, cwd=REPO, env=env)
    if check and result.returncode != 0:
        raise SystemExit('ansible-playbook failed (rc %d):\n%s' % (result.returncode, result.stdout[-4000:]))
    return result


def address(host):
    return on(host, "hostname -I | awk '{print $1}'", quiet=True).stdout.strip()


def psql(host, sql, database='postgres', check=True):
    return on(host, 'runuser -u postgres -- psql -X -At -d %s -c %s' % (database, shlex.quote(sql)), check=check, quiet=True)


def roles():
    """{'db1': 'primary'|'standby'|'down'} asked from each Postgres server."""
    found = {}
    for host in ('db1', 'db2'):
        if run(['podman', 'container', 'exists', '%s-%s' % (LAB, host)], check=False, quiet=True).returncode != 0:
            found[host] = 'down'
            continue
        alive = run(['podman', 'inspect', '-f', '{{.State.Running}}', '%s-%s' % (LAB, host)], check=False, quiet=True)
        if alive.stdout.strip() != 'true':
            found[host] = 'down'
            continue
        answer = psql(host, 'SELECT pg_is_in_recovery()', check=False)
        found[host] = {'t': 'standby', 'f': 'primary'}.get(answer.stdout.strip(), 'down')
    return found


def primary():
    live = [h for h, r in roles().items() if r == 'primary']
    if len(live) != 1:
        raise Broken('expected one running primary, found %s' % (live or 'none'))
    return live[0]


def replication_streaming(where):
    count = psql(where, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").stdout.strip()
    if count != '1':
        raise Broken('%s: %s standbys streaming, 1 expected' % (where, count))


def write_through_pgbouncer():
    """One insert as the application, through PgBouncer, from web1."""
    secrets = lab_secrets()
    script = ("PGPASSWORD=%s psql -X -At 'host=%s port=6432 dbname=%s user=mastodon connect_timeout=5' "
              "-c 'CREATE TABLE IF NOT EXISTS fediops_exercise (at timestamptz); INSERT INTO fediops_exercise VALUES (now())'"
              % (shlex.quote(secrets['fediops_lab_db_app_password']), address('pgbouncer1'), DATABASE))
    result = on('web1', script, check=False, quiet=True)
    if result.returncode != 0:
        raise Broken('a write through PgBouncer failed: %s' % (result.stderr.strip() or result.stdout.strip()))


def lab_vars(name):
    """One file of the lab inventory's group_vars/all (plain values; the lab's secrets are plaintext on purpose)."""
    import yaml  # the venv's
    with open(os.path.join(REPO, 'inventories', 'lab', 'group_vars', 'all', name)) as handle:
        return yaml.safe_load(handle)


def lab_secrets():
    return lab_vars('secrets.yml')


# ---- exercises -------------------------------------------------------------------------------------

def firewall_lost_break():
    on('db1', 'nft flush ruleset')


def firewall_lost_check():
    if on('db1', 'nft list table inet fediops', check=False, quiet=True).returncode != 0:
        raise Broken('db1: the fediops nftables table is gone (fediops_firewall_loaded turns 0 within a minute)')
    metric = on('db1', 'systemctl start fediops-firewall-check.service && '
                'cat /var/lib/prometheus/node-exporter/fediops_firewall.prom', check=False, quiet=True).stdout
    if 'fediops_firewall_loaded 1' not in metric:
        raise Broken('db1: the ruleset is back but fediops_firewall_loaded is not 1:\n' + metric)


def firewall_lost_repair():
    playbook('playbooks/site.yml', '--limit', 'db1')


def firewall_unit_break():
    on('db1', 'systemctl stop nftables')


def firewall_unit_check():
    states = on('db1', 'systemctl is-active nftables %s' % PG_SERVICE, check=False, quiet=True).stdout.split()
    if states != ['active', 'active']:
        listening = on('db1', "ss -Hltn 'sport = :5432' | wc -l", quiet=True).stdout.strip()
        raise Broken('db1: nftables %s, Postgres %s (guarded by the firewall unit); sockets listening on 5432: %s'
                     % (states[0], states[1] if len(states) > 1 else '?', listening))


def bad_input_break():
    """Try to converge with the SSH allow-list emptied: the preflight must refuse on every host, naming it."""
    result = playbook('playbooks/site.yml', '-e', '{"common_firewall_ssh_sources": []}', check=False)
    recap = [line for line in result.stdout.splitlines() if ' : ok=' in line]
    changed = [line for line in recap if 'changed=0' not in line]
    if result.returncode == 0 or 'common_firewall_ssh_sources' not in result.stdout or changed:
        raise SystemExit('the bad input was NOT refused cleanly (rc %d; hosts that changed: %s)' % (result.returncode, changed))
    say('refused before any change, naming common_firewall_ssh_sources (rc %d, changed=0 on %d hosts)'
        % (result.returncode, len(recap)))


def bad_input_check():
    firewall_lost_check()
    firewall_unit_check()


def forbidden_port_check():
    target = address('db1')
    denied = on('web1', 'curl -sS --max-time 5 -o /dev/null http://%s:9100/metrics' % target, check=False, quiet=True)
    allowed = on('mon1', 'curl -sS --max-time 5 -o /dev/null -w %%{http_code} http://%s:9100/metrics' % target,
                 check=False, quiet=True)
    if denied.returncode == 0:
        raise Broken('web1 reached db1:9100 (the node exporter): the firewall let it through')
    if allowed.stdout.strip() != '200':
        raise Broken('mon1 could not read db1:9100 (%s)' % (allowed.stderr.strip() or allowed.stdout.strip()))
    say('web1 -> db1:9100 refused (%s); mon1 -> db1:9100 HTTP 200' % denied.stderr.strip().splitlines()[-1])


def gate_break():
    standby = [h for h, r in roles().items() if r == 'standby'][0]
    psql(standby, 'SELECT pg_wal_replay_pause()')
    say('replay paused on %s; now run the upgrade: the gate refuses and names replica_replay' % standby)
    result = playbook('playbooks/upgrade.yml', '-e', 'mastodon_release_version=v2.0.0', check=False)
    if result.returncode == 0 or 'replica_replay' not in result.stdout:
        raise SystemExit('the upgrade was NOT refused naming replica_replay (rc %d)' % result.returncode)
    say('the upgrade was refused naming replica_replay (rc %d)' % result.returncode)


def gate_check():
    for host, role in roles().items():
        if role == 'standby' and psql(host, 'SELECT pg_is_wal_replay_paused()').stdout.strip() == 't':
            raise Broken('%s: WAL replay is paused; the gate refuses every upgrade (replica_replay)' % host)


def gate_repair():
    for host, role in roles().items():
        if role == 'standby':
            psql(host, 'SELECT pg_wal_replay_resume()')


def switchover_break():
    before = primary()
    playbook('playbooks/switchover.yml')
    say('primary was %s, is now %s' % (before, primary()))


def data_tier_check():
    replication_streaming(primary())
    write_through_pgbouncer()


def failover_check():
    """Writes work through PgBouncer on the one running primary; replication is checked once no host is down
    (right after the failover the lost host is down until the repair rebuilds it)."""
    where = primary()
    down = [h for h, r in roles().items() if r == 'down']
    if not down:
        replication_streaming(where)
    write_through_pgbouncer()
    if down:
        say('%s is the primary and takes writes; %s down (rebuilt by the repair)' % (where, ', '.join(down)))


def switchover_repair():
    """Switch back, so the running primary is the inventory's again."""
    if primary() != 'db1':
        playbook('playbooks/switchover.yml')


def failover_break():
    """Lose the primary's host, then promote the replica (playbooks/failover.yml)."""
    lost = primary()
    run(['podman', 'kill', '%s-%s' % (LAB, lost)])
    started = time.monotonic()
    # The lost host cannot be fenced (it answers nothing), so failover.yml stops unless told it stays down:
    # here the container is killed and stays so until the repair, which is what the flag promises.
    playbook('playbooks/failover.yml', '-e', 'failover_unfenced_ok=true')
    say('failover.yml done %.1f s after %s was lost; its container stays down until the repair' % (time.monotonic() - started, lost))


def failover_repair():
    """Bring the lost host back (its start guard keeps Postgres down), rebuild it as a replica from an inventory
    with the roles swapped (docs/data-tier.md), then switch back so the running roles match the inventory."""
    import yaml
    lost = [h for h, r in roles().items() if r == 'down']
    if not lost:
        say('no Postgres host is down')
    for host in lost:
        run(['podman', 'start', '%s-%s' % (LAB, host)])
        for _ in range(60):
            if on(host, 'systemctl is-system-running', check=False, quiet=True).stdout.strip() in ('running', 'degraded'):
                break
            time.sleep(1)
        swapped = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'fediops-%s-inventory-after-failover' % LAB)
        os.makedirs(swapped, exist_ok=True)
        with open(os.path.join(REPO, 'inventories', 'lab', 'hosts.yml')) as handle:
            inventory = yaml.safe_load(handle)
        pg = inventory['all']['children']['postgres']['children']
        pg['postgres_primary']['hosts'], pg['postgres_replica']['hosts'] = pg['postgres_replica']['hosts'], pg['postgres_primary']['hosts']
        with open(os.path.join(swapped, 'hosts.yml'), 'w') as handle:
            yaml.safe_dump(inventory, handle, sort_keys=False)
        link = os.path.join(swapped, 'group_vars')
        if not os.path.islink(link):
            os.symlink(os.path.join(REPO, 'inventories', 'lab', 'group_vars'), link)
        say('inventory with the Postgres roles swapped (what you would edit in inventories/lab/hosts.yml): %s' % swapped)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
                   PATH=VENV_BIN + os.pathsep + os.environ.get('PATH', ''))
        argv = ['ansible-playbook', '-i', swapped] + (['-i', OVERLAY] if OVERLAY else []) + [
            'playbooks/site.yml', '--limit', host, '-e', 'postgresql_replica_rebuild=true']
        result = run(argv, check=False, cwd=REPO, env=env)
        if result.returncode != 0:
            raise SystemExit('the rebuild failed (rc %d):\n%s' % (result.returncode, result.stdout[-4000:]))
    switchover_repair()


def backlog_break():
    """Stop the push pool and enqueue 50 push jobs through the web tier: they wait."""
    on('sidekiq2', 'systemctl stop mastodon-sidekiq@push.service')
    domain = lab_vars('mastodon.yml')['mastodon_config_local_domain']
    ca = os.path.join(os.environ.get('FEDIOPS_LAB_HOME', os.path.expanduser('~/.fediops-lab')), 'ca', 'ca.crt')
    result = run(['curl', '-sS', '--max-time', '10', '--cacert', ca, '--resolve', '%s:443:%s' % (domain, address('edge-eu')),
                  '-X', 'POST', 'https://%s/fixture/enqueue?queue=push&n=50&note=exercise-backlog' % domain])
    say('enqueued: %d push jobs' % len(json.loads(result.stdout)['jids']))


def backlog_check():
    secrets = lab_secrets()
    cli = 'redis-cli --no-auth-warning -h %s --user mastodon --pass %s' % (
        address('redis-persistent'), shlex.quote(secrets['redis_app_password']))
    depth = on('redis-persistent', cli + ' LLEN queue:push', quiet=True).stdout.strip()
    if depth != '0':
        oldest = on('redis-persistent', cli + ' LINDEX queue:push -1', quiet=True).stdout.strip()
        enqueued = json.loads(oldest).get('enqueued_at') if oldest.startswith('{') else None
        # Sidekiq 8 writes milliseconds, older Sidekiq seconds.
        age = None if enqueued is None else time.time() - (enqueued / 1000.0 if enqueued > 1e11 else enqueued)
        raise Broken('queue push: %s jobs waiting%s' % (depth, '' if age is None else ', the oldest for %.0f s' % age))


def backlog_repair():
    on('sidekiq2', 'systemctl start mastodon-sidekiq@push.service')
    for _ in range(60):
        try:
            backlog_check()
            return
        except Broken:
            time.sleep(1)


def autoscaler_metrics():
    """{series: value} of the autoscaler's ingress metrics, read on mon1 (the service serves them on its private address)."""
    out = on('mon1', 'curl -sS --max-time 5 http://%s:9809/metrics' % address('mon1'), check=False, quiet=True).stdout
    found = {}
    for line in out.splitlines():
        if line.startswith('fediops_sidekiq_autoscale_') and 'pool="ingress"' in line:
            name, value = line.rsplit(' ', 1)
            found[name.split('{')[0].replace('fediops_sidekiq_autoscale_', '') + ('.' + name.split('action="')[1].split('"')[0]
                                                                                  if 'action="' in name else '')] = float(value)
    return found


def burst_break():
    """240 one-second jobs on ingress through the edge: more than its one process works off within its 5 s target."""
    domain = lab_vars('mastodon.yml')['mastodon_config_local_domain']
    ca = os.path.join(os.environ.get('FEDIOPS_LAB_HOME', os.path.expanduser('~/.fediops-lab')), 'ca', 'ca.crt')
    result = run(['curl', '-sS', '--max-time', '20', '--cacert', ca, '--resolve', '%s:443:%s' % (domain, address('edge-eu')),
                  '-X', 'POST', 'https://%s/fixture/enqueue?queue=ingress&n=240&sleep=1&note=exercise-burst' % domain])
    say('enqueued: %d ingress jobs of 1 s; watch: lab/exercise.py ingress-burst check' % len(json.loads(result.stdout)['jids']))
    say('the autoscaler decides in its journal: podman exec lab-mon1 journalctl -fu fediops-sidekiq-autoscaler | grep "sidekiq autoscale"')


def burst_check():
    """BROKEN while ingress is behind its target or runs more processes than its minimum; HEALTHY once both are back."""
    policy = next(p for p in lab_vars('mastodon.yml')['mastodon_sidekiq_pools'] if p['name'] == 'ingress')['autoscale']
    m = autoscaler_metrics()
    if not m:
        raise Broken('the autoscaler on mon1 does not answer (systemctl status fediops-sidekiq-autoscaler on mon1)')
    said = 'latency %.1f s (target %s s), %d process(es) (min %d); decided so far: %d out, %d in, %d refused' % (
        m['latency_seconds'], policy['target_latency'], m['processes'], policy['min'], m.get('decisions_total.scale_out', 0),
        m.get('decisions_total.scale_in', 0), m.get('decisions_total.refused_budget', 0))
    if m['latency_seconds'] > policy['target_latency'] or m['processes'] > policy['min']:
        raise Broken('ingress: ' + said)
    say('ingress: ' + said)


def burst_repair():
    """Nothing to type: the autoscaler works the burst off and scales back in; wait for it."""
    for _ in range(100):
        try:
            burst_check()
            return
        except Broken as broken:
            say('waiting: %s' % broken)
            time.sleep(3)
    burst_check()


def lab_domain():
    return lab_vars('mastodon.yml')['mastodon_config_local_domain']


def web_versions():
    """{'web1': 'v1.0.0' or an error} as each Puma answers /api/v1/instance, asked from edge-eu (allowed to reach it)."""
    import yaml
    with open(os.path.join(REPO, 'inventories', 'lab', 'hosts.yml')) as handle:
        web = list(yaml.safe_load(handle)['all']['children']['mastodon']['children']['web']['hosts'])
    versions = {}
    for host in web:
        answer = on('edge-eu', "curl -sS --max-time 5 -H 'Host: %s' -H 'X-Forwarded-Proto: https' http://%s:3000/api/v1/instance"
                    % (lab_domain(), address(host)), check=False, quiet=True)
        try:
            versions[host] = json.loads(answer.stdout)['version']
        except (ValueError, KeyError):
            versions[host] = 'no answer (%s)' % (answer.stderr.strip() or answer.stdout.strip()[:80])
    return versions


def upgrade_break():
    """Upgrade to the fixture's v2 under HTTP load and a job stream through edge-eu; bench/upgrade.py counts the failures."""
    result = run([sys.executable, os.path.join(REPO, 'bench', 'upgrade.py'), '--edge', address('edge-eu'), '--db', address(primary()),
                  '--', os.path.join(VENV_BIN, 'ansible-playbook'), '-i', os.path.join(REPO, 'inventories', 'lab')]
                 + (['-i', OVERLAY] if OVERLAY else []) + ['playbooks/upgrade.yml', '-e', 'mastodon_release_version=v2.0.0'],
                 check=False, cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
                                                 PATH=VENV_BIN + os.pathsep + os.environ.get('PATH', '')))
    say('\n'.join(result.stdout.splitlines()[-15:]))
    if result.returncode != 0:
        raise SystemExit('the upgrade under load did not come through clean (rc %d):\n%s'
                         % (result.returncode, result.stderr[-3000:]))


def upgrade_check():
    """One release answers on every web host (never a fleet left half-way)."""
    versions = web_versions()
    if len(set(versions.values())) != 1 or not all(v.startswith('v') for v in versions.values()):
        raise Broken('the web tier answers more than one release or none: %s' % versions)
    say('every web host answers %s' % sorted(set(versions.values()))[0])


def upgrade_repair():
    """Back to the inventory's release (the record upgrade.yml wrote names it)."""
    playbook('playbooks/rollback.yml')


EXERCISES = {
    'firewall-lost': ('Lose the firewall (nft flush ruleset on db1)', firewall_lost_break, firewall_lost_check, firewall_lost_repair),
    'firewall-unit-stopped': ('Stop the firewall unit on db1 (every guarded unit stops with it)', firewall_unit_break,
                              firewall_unit_check, firewall_lost_repair),
    'bad-input': ('Converge with an empty SSH allow-list (refused before any change)', bad_input_break, bad_input_check, None),
    'forbidden-port': ('Reach the node exporter from a host that may not (web1) and one that may (mon1)', None,
                       forbidden_port_check, None),
    'gate-refusal': ('Pause WAL replay on the standby, then upgrade: the gate says no', gate_break, gate_check, gate_repair),
    'switchover': ('Switch the primary over (playbooks/switchover.yml) and back', switchover_break, data_tier_check,
                   switchover_repair),
    'failover': ("Lose the primary's host, fail over, rebuild it and switch back", failover_break, failover_check,
                 failover_repair),
    'upgrade-under-load': ('Upgrade to v2 under HTTP load and a job stream (0 failed, 0 lost), then roll back',
                           upgrade_break, upgrade_check, upgrade_repair),
    'sidekiq-backlog': ('Stop the push pool under 50 push jobs; start it and watch the queue drain', backlog_break,
                        backlog_check, backlog_repair),
    'ingress-burst': ('A burst on ingress: the autoscaler adds processes, works it off and scales back in', burst_break,
                      burst_check, burst_repair),
}


def main(argv):
    if len(argv) == 2 and argv[1] == 'list' or len(argv) == 1:
        for name, (title, *_rest) in EXERCISES.items():
            say('%-22s %s' % (name, title))
        return 0
    if len(argv) != 3 or argv[1] not in EXERCISES or argv[2] not in ('break', 'check', 'repair'):
        say(__doc__)
        return 2
    title, do_break, do_check, do_repair = EXERCISES[argv[1]]
    step = {'break': do_break, 'check': do_check, 'repair': do_repair}[argv[2]]
    if step is None:
        say('%s has no %s step (%s); run its check' % (argv[1], argv[2], title))
        return 0
    try:
        step()
    except Broken as broken:
        say('BROKEN: %s' % broken)
        return 1
    if argv[2] == 'check':
        say('HEALTHY: %s' % argv[1])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
