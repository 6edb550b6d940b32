#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: fleet_state
short_description: Read what one host of the fleet runs (Postgres role, PgBouncer target, releases, drained hosts)
version_added: 0.2.0
description:
  - Reads live state only, and changes nothing. Every orchestration playbook runs it on every
    data-tier, pooler, application and edge host before its first change (C(playbooks/live_state.yml)),
    and P(fediops.mastodon.fleet_picture#filter) compares the observations with the inventory.
  - O(postgres) - whether a cluster exists and runs, whether it is in recovery, its timeline and system
    identifier, and whom a standby streams from (asked of the running server as the C(postgres) OS user
    through the local socket; C(pg_controldata) when it is stopped).
  - O(pgbouncer) - where PgBouncer sends the database's connections, from C(SHOW DATABASES) on the admin console
    when O(pgbouncer.admin_password) is given, else from the C([databases]) file.
  - O(mastodon) - the release each running Mastodon unit runs, read from the process itself (the kernel's
    view of its working directory), and what Puma answers at C(/api/v1/instance).
  - O(edge) - which web hosts an edge has marked C(down) in its web upstream.
  - O(peers) - whether each Postgres server answers, over the network, as a primary or a standby.
  - O(probe) - whether anything accepts TCP connections on each host's Postgres port, without logging in;
    C(playbooks/failover.yml) treats a Postgres host as lost only when neither its SSH nor its Postgres port answers.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  postgres:
    description: Read the local Postgres cluster.
    type: dict
    suboptions:
      version:
        description: Major version.
        type: int
        required: true
      cluster:
        description: Debian cluster name.
        type: str
        required: true
      port:
        description: Port.
        type: int
        required: true
  pgbouncer:
    description: Read the local PgBouncer.
    type: dict
    suboptions:
      config_dir:
        description: Directory of C(databases.ini).
        type: path
        required: true
      database:
        description: The database whose target is read.
        type: str
        required: true
      port:
        description: PgBouncer's port on 127.0.0.1.
        type: int
        default: 6432
      admin_user:
        description: An C(admin_users) or C(stats_users) user.
        type: str
      admin_password:
        description: Its password; without it the file is read instead of the live console.
        type: str
  mastodon:
    description: Read the Mastodon units (C(mastodon-*.service)) on this host.
    type: dict
    suboptions:
      base_path:
        description: Home of the releases (C(releases/<version>)).
        type: path
        default: /home/mastodon
      web_url:
        description: Puma's base URL on this host; empty for a host without Puma.
        type: str
        default: ''
      web_host_header:
        description: The C(Host) header Puma is asked with (Mastodon answers its own domains only).
        type: str
        default: ''
  peers:
    description:
      - Ask these Postgres servers (inventory name to address) over the network, as a client would, whether they
        accept connections and are in recovery. The pgbouncer role asks every Postgres host this way from the
        PgBouncer host before it points the pools at one, so the answer comes along the very path PgBouncer will
        use, and a server that does not answer costs only O(peer_connect_timeout).
    type: dict
  peer_port:
    description: Port of O(peers).
    type: int
    default: 5432
  peer_user:
    description: Role to log in as for O(peers).
    type: str
  peer_password:
    description: Its password.
    type: str
  peer_database:
    description: Database for O(peers).
    type: str
    default: postgres
  peer_connect_timeout:
    description: Seconds to wait for each peer.
    type: int
    default: 3
  probe:
    description:
      - Open a TCP connection to these hosts' Postgres port (inventory name to address), from this host, and close it
        again without logging in. A host whose SSH did not answer but whose Postgres port does may still run a primary.
    type: dict
  probe_port:
    description: Port of O(probe).
    type: int
    default: 5432
  probe_timeout:
    description: Seconds to wait for each O(probe) connection.
    type: float
    default: 2
  edge:
    description: Read an edge's web upstream.
    type: dict
    suboptions:
      upstreams_file:
        description: The rendered upstreams file.
        type: path
        required: true
author:
  - fediops contributors (@fediops)
'''

EXAMPLES = r'''
- name: Read db1
  fediops.mastodon.fleet_state:
    postgres: {version: 15, cluster: main, port: 5432}
  delegate_to: db1
'''

RETURN = r'''
postgres:
  description: C(installed), C(running), C(unit_state), C(in_recovery), C(timeline), C(system_identifier), C(upstream), C(receiver).
  returned: when O(postgres) was given
  type: dict
pgbouncer:
  description: C(installed), C(running), C(database), C(target_host), C(target_port), C(source).
  returned: when O(pgbouncer) was given
  type: dict
processes:
  description: Every Mastodon unit with C(unit), C(kind), C(active), C(pid) and C(release).
  returned: when O(mastodon) was given
  type: list
  elements: dict
web_version:
  description: The C(version) Puma reports at C(/api/v1/instance).
  returned: when O(mastodon.web_url) was given
  type: str
peers:
  description: Per peer name, C(reachable), C(in_recovery) and C(error).
  returned: when O(peers) was given
  type: dict
probes:
  description: Per O(probe) name, C(answered) (a TCP connection was accepted), C(error) and C(seconds).
  returned: when O(probe) was given
  type: dict
edge:
  description: C(drained), the inventory names marked down.
  returned: when O(edge) was given
  type: dict
commands:
  description: What was run to read the state.
  returned: always
  type: list
  elements: str
'''

import os
import socket
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils import fleet, running
from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_common import HAS_PSYCOPG2, psycopg2

PG_QUERY = (
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() "
    "THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint())) "
    "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, "
    "(SELECT system_identifier FROM pg_control_system()), "
    "(SELECT sender_host FROM pg_stat_wal_receiver), (SELECT status FROM pg_stat_wal_receiver)"
)


class Reader(object):
    def __init__(self, module):
        self.module = module
        self.commands = []

    def run(self, argv):
        self.commands.append(' '.join(argv))
        rc, out, err = self.module.run_command(argv, environ_update={'LC_ALL': 'C'})
        return rc, out, err

    def unit(self, name):
        rc, out, err = self.run(['systemctl', 'show', '--property=LoadState,ActiveState,MainPID', name])
        props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
        return props

    def postgres(self, p):
        data_dir = '/var/lib/postgresql/%s/%s' % (p['version'], p['cluster'])
        unit = 'postgresql@%s-%s.service' % (p['version'], p['cluster'])
        state = {'installed': os.path.exists(os.path.join(data_dir, 'PG_VERSION')), 'running': False,
                 'unit': unit, 'unit_state': self.unit(unit).get('ActiveState'), 'in_recovery': None,
                 'timeline': None, 'system_identifier': None, 'upstream': None, 'receiver': None}
        if not state['installed']:
            return state
        rc, out, err = self.run(['runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-F', '|', '-h', '/var/run/postgresql',
                                 '-p', str(p['port']), '-d', 'postgres', '-c', PG_QUERY])
        if rc == 0 and out.strip():
            recovery, timeline, sysid, sender, status = (out.strip().splitlines()[0].split('|') + [''] * 5)[:5]
            state.update(running=True, in_recovery=recovery == 't', timeline=int(timeline) if timeline else None,
                         system_identifier=sysid or None, upstream=sender or None, receiver=status or None)
            return state
        state['error'] = err.strip()[-300:]
        controldata = '/usr/lib/postgresql/%s/bin/pg_controldata' % p['version']
        rc, out, err = self.run([controldata, data_dir])
        if rc == 0:
            fields = dict(line.split(':', 1) for line in out.splitlines() if ':' in line)
            fields = dict((k.strip(), v.strip()) for k, v in fields.items())
            state['cluster_state'] = fields.get('Database cluster state')
            state['system_identifier'] = fields.get('Database system identifier')
            tli = fields.get("Latest checkpoint's TimeLineID")
            state['timeline'] = int(tli) if tli and tli.isdigit() else None
        return state

    def pgbouncer(self, p):
        path = os.path.join(p['config_dir'], 'databases.ini')
        state = {'installed': os.path.exists(os.path.join(p['config_dir'], 'pgbouncer.ini')),
                 'running': self.unit('pgbouncer.service').get('ActiveState') == 'active',
                 'database': p['database'], 'target_host': None, 'target_port': None, 'source': None}
        if state['running'] and p.get('admin_password') and HAS_PSYCOPG2:
            try:
                self.commands.append('SHOW DATABASES (127.0.0.1:%s)' % p['port'])
                conn = psycopg2.connect(host='127.0.0.1', port=p['port'], user=p['admin_user'], password=p['admin_password'],
                                        dbname='pgbouncer', connect_timeout=5)
                conn.autocommit = True
                cur = conn.cursor()
                cur.execute('SHOW DATABASES')
                cols = [d[0] for d in cur.description]
                for row in cur.fetchall():
                    row = dict(zip(cols, row))
                    if row.get('name') == p['database']:
                        state.update(target_host=row.get('host'), target_port=row.get('port'), source='SHOW DATABASES')
                conn.close()
                return state
            except Exception as e:  # read the file instead, and say why
                state['console_error'] = str(e).strip()
        if os.path.exists(path):
            with open(path) as handle:
                entry = fleet.parse_pgbouncer_databases(handle.read(), p['database'])
            if entry:
                state.update(target_host=entry['host'], target_port=entry['port'], source=path)
        return state

    def mastodon(self, p):
        """Each Mastodon unit's release from the process itself: the kernel's view of its working directory
        (systemd started it in <base>/current, resolved then), and what Puma answers at /api/v1/instance.
        Puma's master keeps the directory it started in across a phased restart, so for web the answer counts."""
        rc, out, err = self.run(['systemctl', 'list-units', '--all', '--plain', '--no-legend', '--type=service', 'mastodon-*'])
        processes = []
        for unit in running.parse_list_units(out):
            kind = running.unit_kind(unit)
            if kind == 'other':
                continue
            props = self.unit(unit)
            pid = int(props.get('MainPID') or 0)
            cwd = None
            if pid:
                try:
                    cwd = os.readlink('/proc/%d/cwd' % pid)
                except OSError:
                    cwd = None
            processes.append({'unit': unit, 'kind': kind, 'active': props.get('ActiveState') == 'active', 'pid': pid or None,
                              'release': running.release_from_cwd(cwd, p['base_path'])})
        result = {'processes': processes}
        if p.get('web_url') and any(x['kind'] == 'web' and x['active'] for x in processes):
            version, error, asked = running.ask_web_version(p['web_url'], p.get('web_host_header'), timeout=5)
            self.commands.append(asked)
            result['web_version'] = version
            if error:
                result['web_error'] = error
        return result

    def peers(self, peers, port, user, password, database, timeout):
        found = {}
        for name, host in sorted(peers.items()):
            state = {'host': host, 'port': port, 'reachable': False, 'in_recovery': None, 'error': None}
            self.commands.append('SELECT pg_is_in_recovery() (%s:%s)' % (host, port))
            if not HAS_PSYCOPG2:
                state['error'] = 'psycopg2 is not installed'
            else:
                try:
                    conn = psycopg2.connect(host=host, port=port, user=user, password=password, dbname=database,
                                            connect_timeout=timeout)
                    try:
                        cur = conn.cursor()
                        cur.execute('SELECT pg_is_in_recovery()')
                        state.update(reachable=True, in_recovery=bool(cur.fetchone()[0]))
                    finally:
                        conn.close()
                except Exception as e:
                    state['error'] = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            found[name] = state
        return found

    def probe(self, hosts, port, timeout):
        found = {}
        for name, host in sorted(hosts.items()):
            self.commands.append('TCP connect %s:%s' % (host, port))
            started = time.time()
            state = {'host': host, 'port': port, 'answered': False, 'error': None}
            try:
                sock = socket.create_connection((host, port), timeout=timeout)
                sock.close()
                state['answered'] = True
            except (OSError, socket.error) as e:
                state['error'] = str(e) or type(e).__name__
            state['seconds'] = round(time.time() - started, 3)
            found[name] = state
        return found

    def edge(self, p):
        if not os.path.exists(p['upstreams_file']):
            return {'drained': [], 'configured': False}
        with open(p['upstreams_file']) as handle:
            return {'drained': fleet.parse_edge_drained(handle.read()), 'configured': True}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            postgres=dict(type='dict', options=dict(version=dict(type='int', required=True), cluster=dict(type='str', required=True),
                                                    port=dict(type='int', required=True))),
            pgbouncer=dict(type='dict', options=dict(config_dir=dict(type='path', required=True), database=dict(type='str', required=True),
                                                     port=dict(type='int', default=6432), admin_user=dict(type='str'),
                                                     admin_password=dict(type='str', no_log=True))),
            mastodon=dict(type='dict', options=dict(base_path=dict(type='path', default='/home/mastodon'), web_url=dict(type='str', default=''),
                                                    web_host_header=dict(type='str', default=''))),
            edge=dict(type='dict', options=dict(upstreams_file=dict(type='path', required=True))),
            peers=dict(type='dict'),
            peer_port=dict(type='int', default=5432),
            peer_user=dict(type='str'),
            peer_password=dict(type='str', no_log=True),
            peer_database=dict(type='str', default='postgres'),
            peer_connect_timeout=dict(type='int', default=3),
            probe=dict(type='dict'),
            probe_port=dict(type='int', default=5432),
            probe_timeout=dict(type='float', default=2),
        ),
        supports_check_mode=True,
    )
    reader = Reader(module)
    result = {'changed': False}
    # The probes wait on hosts that may be gone: they run beside the local reads, not after them.
    probes = {}
    prober = None
    if module.params['probe']:
        prober = threading.Thread(target=lambda: probes.update(reader.probe(module.params['probe'], module.params['probe_port'],
                                                                            module.params['probe_timeout'])))
        prober.start()
    if module.params['postgres']:
        result['postgres'] = reader.postgres(module.params['postgres'])
    if module.params['pgbouncer']:
        result['pgbouncer'] = reader.pgbouncer(module.params['pgbouncer'])
    if module.params['mastodon']:
        result.update(reader.mastodon(module.params['mastodon']))
    if module.params['edge']:
        result['edge'] = reader.edge(module.params['edge'])
    if module.params['peers']:
        result['peers'] = reader.peers(module.params['peers'], module.params['peer_port'], module.params['peer_user'], module.params['peer_password'],
                                       module.params['peer_database'], module.params['peer_connect_timeout'])
    if prober is not None:
        prober.join()
        result['probes'] = probes
    result['commands'] = reader.commands
    module.exit_json(**result)


if __name__ == '__main__':
    main()
