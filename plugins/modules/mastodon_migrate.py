#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mastodon_migrate
short_description: Run a Mastodon release's pre- or post-deployment database migrations
version_added: 0.1.0
description:
  - Runs C(bin/rails db:migrate) from a release directory with C(RAILS_ENV=production) and
    C(DB_HOST)/C(DB_PORT) pointing at PostgreSQL itself, never at PgBouncer.
  - O(phase=pre) sets C(SKIP_POST_DEPLOYMENT_MIGRATIONS=true) so only C(db/migrate) runs.
    O(phase=post) removes the variable from the environment (Mastodon skips post-deployment
    migrations whenever it is set, even to C(false)) so C(db/post_migrate) runs as well.
  - Reads C(schema_migrations) before and after and reports the versions it applied. Does
    nothing when no migration of the phase is pending.
  - In check mode, lists the migrations that would run.
  - Run it as the user that owns the release (for example with C(become_user=mastodon)).
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
  release_path:
    description:
      - Mastodon release directory (containing C(bin/rails) and C(db/migrate)).
    type: path
    required: true
  phase:
    description:
      - V(pre) runs pre-deployment migrations only; V(post) runs everything still pending.
    type: str
    required: true
    choices: [ pre, post ]
  target_version:
    description:
      - Mastodon version of the release, used to refuse pre-deployment mode on a schema too old for it.
      - Read from C(lib/mastodon/version.rb) in O(release_path) when omitted.
    type: str
  rails_env:
    description:
      - Value of C(RAILS_ENV).
    type: str
    default: production
  environment:
    description:
      - Extra environment variables for the migration (for example C(OTP_SECRET) or C(PATH)).
      - Must not contain C(SKIP_POST_DEPLOYMENT_MIGRATIONS) or C(DATABASE_URL).
    type: dict
    default: {}
  rails_command:
    description:
      - Command that runs Rails, relative to O(release_path) unless absolute, as a list.
    type: list
    elements: str
    default: [ bin/rails ]
author:
  - fediops contributors (@fediops)
'''

EXAMPLES = r'''
- name: Pre-deployment migrations, straight to the primary
  fediops.mastodon.mastodon_migrate:
    release_path: /home/mastodon/releases/4.5.2
    phase: pre
    login_host: 10.0.0.10
    login_port: 5432
    login_password: "{{ mastodon_db_password }}"
  become: true
  become_user: mastodon

- name: Post-deployment migrations once every host runs the new code
  fediops.mastodon.mastodon_migrate:
    release_path: /home/mastodon/releases/4.5.2
    phase: post
    login_host: 10.0.0.10
    login_password: "{{ mastodon_db_password }}"
  become: true
  become_user: mastodon
'''

RETURN = r'''
phase:
  description: The phase that ran.
  returned: always
  type: str
pending:
  description: Versions of the phase that were pending before the run.
  returned: always
  type: list
  elements: str
  sample: ["20250101000000"]
pending_names:
  description: File names of the pending migrations.
  returned: always
  type: list
  elements: str
applied:
  description: Versions that appear in schema_migrations after the run and did not before.
  returned: always
  type: list
  elements: str
schema_version_before:
  description: Highest applied version before the run.
  returned: always
  type: str
schema_version_after:
  description: Highest applied version after the run (same as before in check mode).
  returned: always
  type: str
cmd:
  description: The command that was run (or would be, in check mode).
  returned: always
  type: list
  elements: str
env:
  description: Environment variables set for the command (values of secrets hidden), and removed ones.
  returned: always
  type: dict
  sample: {"set": {"RAILS_ENV": "production", "DB_HOST": "10.0.0.10", "DB_PORT": "5432", "SKIP_POST_DEPLOYMENT_MIGRATIONS": "true"}, "removed": []}
queries:
  description: SQL the module ran.
  returned: always
  type: list
  elements: str
stdout:
  description: Output of the migration.
  returned: when the migration ran
  type: str
stderr:
  description: Error output of the migration.
  returned: when the migration ran
  type: str
rc:
  description: Exit status of the migration.
  returned: when the migration ran
  type: int
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_common import (
    postgres_common_argument_spec, postgres_connect, ensure_direct_postgres, direct_postgres_problem)
from ansible_collections.fediops.mastodon.plugins.module_utils import migrations
from ansible_collections.fediops.mastodon.plugins.module_utils.versions import parse_version

VISIBLE_ENV = ('RAILS_ENV', 'DB_HOST', 'DB_PORT', 'DB_NAME', 'DB_USER', migrations.SKIP_VAR)


def read_applied(module, conn, queries):
    cur = conn.cursor()
    try:
        applied = migrations.fetch_applied(cur, queries)
    finally:
        cur.close()
    if applied is None:
        module.fail_json(msg='Database %s has no schema_migrations table; load the schema first '
                             '(rails db:setup), this module only migrates' % module.params['db'], queries=queries)
    return applied


def dotenv_conflicts(release_path, phase):
    """Settings in the release's .env.production that would defeat the phase or the direct connection."""
    path = os.path.join(release_path, '.env.production')
    if not os.path.isfile(path):
        return []
    try:
        env = migrations.read_dotenv(path)
    except (IOError, OSError):
        return []
    problems = []
    if phase == 'post' and migrations.SKIP_VAR in env:
        problems.append('%s sets %s, which would skip post-deployment migrations whatever its value' % (path, migrations.SKIP_VAR))
    if 'DATABASE_URL' in env:
        problems.append('%s sets DATABASE_URL, which overrides DB_HOST/DB_PORT (it may point at PgBouncer)' % path)
    return problems


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        release_path=dict(type='path', required=True),
        phase=dict(type='str', required=True, choices=['pre', 'post']),
        target_version=dict(type='str'),
        rails_env=dict(type='str', default='production'),
        # Extra variables may be secrets (OTP_SECRET): masked in every output like login_password.
        environment=dict(type='dict', default={}, no_log=True),
        rails_command=dict(type='list', elements='str', default=['bin/rails']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    phase = p['phase']
    release = p['release_path']
    queries = []

    problem = direct_postgres_problem(p)
    if problem:
        module.fail_json(msg=problem)
    try:
        discovered = migrations.discover_migrations(release)
    except migrations.MigrationError as e:
        module.fail_json(msg=str(e))
    if migrations.SKIP_VAR in p['environment'] or 'DATABASE_URL' in p['environment']:
        module.fail_json(msg='environment must not contain %s or DATABASE_URL: the phase and the connection '
                             'options decide them' % migrations.SKIP_VAR)
    conflicts = dotenv_conflicts(release, phase)
    if conflicts:
        module.fail_json(msg='; '.join(conflicts))

    target = p['target_version'] or migrations.read_release_version(release)
    if target:
        try:
            parse_version(target)
        except ValueError:
            module.fail_json(msg='target_version %r is not a version' % target)

    cmd = list(p['rails_command'])
    if not os.path.isabs(cmd[0]):
        cmd[0] = os.path.join(release, cmd[0])
    cmd.append('db:migrate')

    conn = postgres_connect(module)
    ensure_direct_postgres(module, conn)
    before = read_applied(module, conn, queries)
    status = migrations.pending_migrations(discovered, before)
    pending = status['pending_pre'] if phase == 'pre' else sorted(status['pending_pre'] + status['pending_post'])

    if phase == 'pre' and target and status['pending_pre']:
        refused = migrations.zero_downtime_problem(parse_version(target), before)
        if refused:
            module.fail_json(msg=refused, pending=pending, queries=queries)

    env = migrations.migrate_environment(
        {}, phase, db_host=p['login_unix_socket'] or p['login_host'], db_port=p['login_port'], db_name=p['db'],
        db_user=p['login_user'], db_password=p['login_password'], rails_env=p['rails_env'], extra=p['environment'])
    shown_env = {'set': dict((k, env[k]) for k in VISIBLE_ENV if k in env),
                 'removed': [k for k in (migrations.SKIP_VAR, 'DATABASE_URL') if k not in env]}
    before_version = migrations.schema_version(before)
    result = dict(changed=bool(pending), phase=phase, pending=pending,
                  pending_names=migrations.migration_names(discovered, pending), applied=[],
                  schema_version_before=before_version, schema_version_after=before_version,
                  cmd=cmd, env=shown_env, queries=queries)
    result['diff'] = dict(before={'schema_version': before_version, 'pending': pending},
                          after={'schema_version': max(pending + [before_version], key=int), 'pending': []})
    if not pending or module.check_mode:
        if not pending:
            result['diff']['after'] = result['diff']['before']
        module.exit_json(**result)

    if not os.access(cmd[0], os.X_OK):
        module.fail_json(msg='%s is not an executable file' % cmd[0], **result)
    # run_command merges environ_update into os.environ: drop what must not be inherited.
    for name in ('DATABASE_URL', migrations.SKIP_VAR):
        if name not in env:
            os.environ.pop(name, None)
    rc, out, err = module.run_command(cmd, cwd=release, environ_update=env)
    result.update(rc=rc, stdout=out, stderr=err)

    after = read_applied(module, conn, queries)
    applied = sorted(after - before)
    result['applied'] = applied
    result['schema_version_after'] = migrations.schema_version(after)
    result['changed'] = bool(applied) or rc != 0
    result['diff']['after'] = {'schema_version': result['schema_version_after'],
                               'pending': sorted(set(pending) - after)}
    if rc != 0:
        module.fail_json(msg='bin/rails db:migrate (%s phase) failed with rc %d; applied before failing: %s'
                             % (phase, rc, ', '.join(applied) or 'none'), **result)
    leaked = sorted(set(applied) & set(discovered['post'])) if phase == 'pre' else []
    if leaked:
        module.fail_json(msg='pre-deployment phase applied post-deployment migrations %s: %s was not honoured'
                             % (', '.join(leaked), migrations.SKIP_VAR), **result)
    missing = sorted(set(pending) - after)
    if missing:
        module.fail_json(msg='db:migrate exited 0 but these %s-phase migrations are still pending: %s'
                             % (phase, ', '.join(missing)), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
