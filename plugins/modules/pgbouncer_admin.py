#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: pgbouncer_admin
short_description: Run PAUSE, RESUME, RECONNECT, RELOAD and SHOW on PgBouncer's admin console
version_added: 0.1.0
description:
  - Connects to PgBouncer's admin console (the virtual C(pgbouncer) database) as one of its
    C(admin_users) and runs a command.
  - V(pause) waits for the active queries to finish before PgBouncer releases its server
    connections. If that takes longer than O(timeout), the pause is aborted with RESUME and the
    module fails, naming the pools that still had active server connections.
  - V(pause) and V(resume) are idempotent. For a single O(database) the C(paused) column of
    C(SHOW DATABASES) tells the state; for the whole pooler PgBouncer only reveals it by
    answering "already paused" or "not paused", which the module reports as no change.
  - In check mode nothing is sent except C(SHOW) commands.
extends_documentation_fragment:
  - fediops.mastodon.postgres
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  login_port:
    description:
      - PgBouncer's port.
    type: int
    default: 6432
    aliases: [ db_port ]
  login_user:
    description:
      - A user listed in PgBouncer's C(admin_users) (C(stats_users) suffice for O(command=show)).
    type: str
    default: pgbouncer
    aliases: [ db_user ]
  db:
    description:
      - The admin console's database name.
    type: str
    default: pgbouncer
    aliases: [ db_name ]
  command:
    description:
      - V(pause) stops handing out server connections once active transactions end.
      - V(resume) undoes V(pause).
      - V(reconnect) closes each server connection once it is released (after a failover, to
        reach the new primary).
      - V(reload) re-reads the configuration file.
      - V(show) returns the rows of C(SHOW <show>).
    type: str
    required: true
    choices: [ pause, resume, reconnect, reload, show ]
  database:
    description:
      - Restrict V(pause), V(resume) and V(reconnect) to one database of PgBouncer's C([databases]).
    type: str
  show:
    description:
      - What to show with O(command=show).
    type: str
    default: pools
    choices: [ pools, databases, stats, servers, clients, config, lists, users, version, mem, dns_hosts, dns_zones, sockets, active_sockets, totals ]
  timeout:
    description:
      - Seconds V(pause) may wait for active queries to drain before it is aborted.
    type: float
    default: 30
  reload_first:
    description:
      - With O(command=resume), send C(RELOAD) first on the same admin connection, so held transactions go
        to what the new configuration names (a switchover's new primary) in one step.
      - C(RELOAD) returns once PgBouncer has read the files; a C(systemctl reload) signal does not wait.
    type: bool
    default: false
  staged_config:
    description:
      - With O(reload_first), a file renamed onto O(config_path) just before C(RELOAD) (an atomic rename, so
        PgBouncer never reads a half-written file). It must exist; it is rendered, with its owner and mode,
        before the pause.
    type: path
  config_path:
    description:
      - The file O(staged_config) replaces (the one PgBouncer's configuration includes).
    type: path
author:
  - fediops contributors (@fediops)
'''

EXAMPLES = r'''
- name: Hold new transactions while the primary is switched
  fediops.mastodon.pgbouncer_admin:
    login_host: 127.0.0.1
    login_password: "{{ pgbouncer_admin_password }}"
    command: pause
    database: mastodon_production
    timeout: 20

- name: Point the pools at the new primary and let traffic through again
  block:
    - fediops.mastodon.pgbouncer_admin:
        login_host: 127.0.0.1
        login_password: "{{ pgbouncer_admin_password }}"
        command: reload
    - fediops.mastodon.pgbouncer_admin:
        login_host: 127.0.0.1
        login_password: "{{ pgbouncer_admin_password }}"
        command: resume
        database: mastodon_production

- name: Switch the pools to the staged [databases] and let held transactions through, on one admin connection
  fediops.mastodon.pgbouncer_admin:
    login_host: 127.0.0.1
    login_password: "{{ pgbouncer_admin_password }}"
    command: resume
    database: mastodon_production
    reload_first: true
    staged_config: /etc/pgbouncer/databases.ini.switchover
    config_path: /etc/pgbouncer/databases.ini
  become: true

- name: Read the pools
  fediops.mastodon.pgbouncer_admin:
    login_host: 127.0.0.1
    login_user: pgbouncer_stats
    login_password: "{{ pgbouncer_stats_password }}"
    command: show
    show: pools
  register: pools
'''

RETURN = r'''
rows:
  description: Rows of the C(SHOW) command as dicts (for O(command=show)), or C(SHOW POOLS) read before a pause.
  returned: always
  type: list
  elements: dict
  sample: [{"database": "mastodon_production", "user": "mastodon", "cl_active": 3, "sv_active": 1}]
queries:
  description: Admin console commands sent.
  returned: always
  type: list
  elements: str
  sample: ["SHOW DATABASES", "PAUSE mastodon_production"]
paused:
  description: Whether O(database) (or the pooler, when known) is paused afterwards.
  returned: for pause and resume
  type: bool
elapsed:
  description: Seconds the command took (for pause, the time to drain).
  returned: always
  type: float
installed:
  description: The O(staged_config) renamed onto O(config_path) before C(RELOAD) (as C(src -> dest)).
  returned: when O(staged_config) was given
  type: str
'''

import os
import re
import select
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_common import (
    postgres_common_argument_spec, postgres_connect, postgres_connect_kwargs, describe_postgres_target,
    HAS_PSYCOPG2, PSYCOPG2_IMP_ERR, psycopg2)

NAME_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]*$')
ALREADY_PAUSED = 'already suspended/paused'
NOT_PAUSED = 'not paused/suspended'


class Console(object):
    def __init__(self, conn):
        self.conn = conn
        self.queries = []

    def run(self, sql):
        self.queries.append(sql)
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            if cur.description is None:
                return []
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]
        finally:
            cur.close()


def wait_async(conn, deadline):
    """Drive an async psycopg2 connection until its command finished (True) or the deadline (False)."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return True
        remaining = deadline - time.time()
        if remaining <= 0:
            return False
        if state == psycopg2.extensions.POLL_READ:
            select.select([conn.fileno()], [], [], min(remaining, 1.0))
        elif state == psycopg2.extensions.POLL_WRITE:
            select.select([], [conn.fileno()], [], min(remaining, 1.0))


def database_row(module, console, database):
    rows = console.run('SHOW DATABASES')
    for row in rows:
        if row.get('name') == database:
            return row
    module.fail_json(msg='database %r is not configured in PgBouncer (known: %s)'
                         % (database, ', '.join(sorted(r['name'] for r in rows))), queries=console.queries)


def active_servers(pools, database=None):
    return ['%s/%s: %s active' % (r['database'], r['user'], r['sv_active']) for r in pools
            if r.get('sv_active') and r['database'] != 'pgbouncer' and (database is None or r['database'] == database)]


def pause(module, console, database, result):
    sql = 'PAUSE %s' % database if database else 'PAUSE'
    result['rows'] = console.run('SHOW POOLS')
    if module.check_mode:
        result['changed'] = True
        result['queries'].append('(check mode, not sent) ' + sql)
        return
    started = time.time()
    kwargs = postgres_connect_kwargs(module.params)
    try:
        aconn = psycopg2.connect(async_=1, **kwargs)
        if not wait_async(aconn, started + module.params['connect_timeout']):
            module.fail_json(msg='Timed out connecting to %s' % describe_postgres_target(module.params), **result)
        cur = aconn.cursor()
        console.queries.append(sql)
        cur.execute(sql)
        done = wait_async(aconn, started + module.params['timeout'])
    except psycopg2.Error as e:
        if ALREADY_PAUSED in str(e):
            result['changed'] = False
            result['paused'] = True
            return
        module.fail_json(msg='%s failed: %s' % (sql, str(e).strip()), **result)
    result['elapsed'] = round(time.time() - started, 3)
    if not done:
        still = active_servers(console.run('SHOW POOLS'), database)
        abort = 'RESUME %s' % database if database else 'RESUME'
        try:
            console.run(abort)
        except psycopg2.Error as e:
            result['abort_error'] = str(e).strip()
        aconn.close()
        result['paused'] = False
        module.fail_json(msg='%s did not finish within %ss: active queries did not drain (%s); pause aborted with %s'
                             % (sql, module.params['timeout'], ', '.join(still) or 'no active server connection left', abort),
                         **result)
    aconn.close()
    result['changed'] = True
    result['paused'] = True


def resume(module, console, database, result):
    """RESUME; returns whether anything was paused (a RELOAD sent before keeps the result changed either way)."""
    sql = 'RESUME %s' % database if database else 'RESUME'
    result['paused'] = False
    if module.check_mode:
        result['changed'] = True
        result['queries'].append('(check mode, not sent) ' + sql)
        return True
    try:
        console.run(sql)
    except psycopg2.Error as e:
        if NOT_PAUSED not in str(e):
            module.fail_json(msg='%s failed: %s' % (sql, str(e).strip()), **result)
        return False
    result['changed'] = True
    return True


def reload_before_resume(module, console, result):
    """Install the staged configuration (rename) and RELOAD, on the connection the RESUME then uses."""
    p = module.params
    if p['staged_config']:
        result['installed'] = '%s -> %s' % (p['staged_config'], p['config_path'])
        if module.check_mode:
            console.queries.append('(check mode, not done) rename ' + result['installed'])
        else:
            os.rename(p['staged_config'], p['config_path'])
    if module.check_mode:
        console.queries.append('(check mode, not sent) RELOAD')
    else:
        console.run('RELOAD')
    result['changed'] = True


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec['login_port']['default'] = 6432
    argument_spec['login_user']['default'] = 'pgbouncer'
    argument_spec['db']['default'] = 'pgbouncer'
    argument_spec.update(
        command=dict(type='str', required=True, choices=['pause', 'resume', 'reconnect', 'reload', 'show']),
        database=dict(type='str'),
        show=dict(type='str', default='pools',
                  choices=['pools', 'databases', 'stats', 'servers', 'clients', 'config', 'lists', 'users', 'version',
                           'mem', 'dns_hosts', 'dns_zones', 'sockets', 'active_sockets', 'totals']),
        timeout=dict(type='float', default=30),
        reload_first=dict(type='bool', default=False),
        staged_config=dict(type='path'),
        config_path=dict(type='path'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_together=[('staged_config', 'config_path')])
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2 (Debian: python3-psycopg2)'), exception=PSYCOPG2_IMP_ERR)
    p = module.params
    command, database = p['command'], p['database']
    if database is not None and not NAME_RE.match(database):
        module.fail_json(msg='database %r is not a plain PgBouncer database name' % database)
    if database and command in ('reload', 'show'):
        module.fail_json(msg='database applies to pause, resume and reconnect only, not %s' % command)
    if p['timeout'] <= 0:
        module.fail_json(msg='timeout must be positive')
    if p['reload_first'] and command != 'resume':
        module.fail_json(msg='reload_first applies to resume only, not %s' % command)
    if p['staged_config'] and not p['reload_first']:
        module.fail_json(msg='staged_config and config_path need reload_first (the file is read by that RELOAD)')
    if p['staged_config'] and not module.check_mode and not os.path.isfile(p['staged_config']):
        module.fail_json(msg='staged_config %s does not exist: nothing to install, nothing sent' % p['staged_config'])

    conn = postgres_connect(module)
    console = Console(conn)
    result = dict(changed=False, rows=[], queries=console.queries, elapsed=0.0)
    started = time.time()
    try:
        if command == 'show':
            result['rows'] = console.run('SHOW %s' % p['show'].upper())
        elif command in ('pause', 'resume'):
            if p['reload_first']:
                reload_before_resume(module, console, result)
            before = None
            if database:
                before = bool(int(database_row(module, console, database).get('paused') or 0))
                if before == (command == 'pause'):
                    result['paused'] = before
                    result['diff'] = dict(before={'paused': before}, after={'paused': before})
                    module.exit_json(**result)
            if command == 'pause':
                pause(module, console, database, result)
                resumed = None
            else:
                resumed = resume(module, console, database, result)
            if before is None:
                # Global pause state is only revealed by PgBouncer's answer to the command.
                before = (not result['changed']) if command == 'pause' else resumed
            result['diff'] = dict(before={'paused': before}, after={'paused': result.get('paused', command == 'pause')})
        else:
            sql = command.upper() + (' %s' % database if database else '')
            if database:
                database_row(module, console, database)
            if module.check_mode:
                console.queries.append('(check mode, not sent) ' + sql)
            else:
                console.run(sql)
            result['changed'] = True
    except psycopg2.Error as e:
        module.fail_json(msg='PgBouncer admin command failed: %s' % str(e).strip(), **result)
    if not result['elapsed']:
        result['elapsed'] = round(time.time() - started, 3)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
