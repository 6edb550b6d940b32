# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Mirrors postgres_common_argument_spec() in plugins/module_utils/mastodon_common.py.
    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host running PostgreSQL (or PgBouncer, for M(fediops.mastodon.pgbouncer_admin)).
    type: str
    default: localhost
    aliases: [ db_host ]
  login_port:
    description:
      - TCP port to connect to.
    type: int
    default: 5432
    aliases: [ db_port ]
  login_unix_socket:
    description:
      - Directory of the Unix socket to connect through instead of TCP. Overrides O(login_host).
    type: str
    default: ''
  login_user:
    description:
      - Role to authenticate as.
    type: str
    default: mastodon
    aliases: [ db_user ]
  login_password:
    description:
      - Password for O(login_user). Leave unset to rely on C(~/.pgpass), peer or trust authentication.
    type: str
    aliases: [ db_password ]
  db:
    description:
      - Database to connect to.
    type: str
    default: mastodon_production
    aliases: [ db_name ]
  ssl_mode:
    description:
      - libpq C(sslmode) for TCP connections.
    type: str
    default: prefer
    choices: [ disable, allow, prefer, require, verify-ca, verify-full ]
  ca_cert:
    description:
      - CA certificate file used to verify the server with O(ssl_mode=verify-ca) or O(ssl_mode=verify-full).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established.
    type: int
    default: 10
requirements:
  - psycopg2 (Debian package C(python3-psycopg2)) on the host the module runs on.
'''
