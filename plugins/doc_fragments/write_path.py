# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Mirrors write_path_argument_spec() in plugins/module_utils/mastodon_common.py.
    DOCUMENTATION = r'''
options:
  write_host:
    description:
      - Address the application writes through (PgBouncer), as in Mastodon's C(DB_HOST).
      - Defaults to C(DB_HOST) of O(env_file) when that is set.
    type: str
  write_port:
    description:
      - Port of O(write_host), as in C(DB_PORT). Defaults to C(DB_PORT) of O(env_file), then 6432.
    type: int
  write_user:
    description:
      - The application's database role (C(DB_USER)). Defaults to C(DB_USER) of O(env_file).
    type: str
  write_password:
    description:
      - Password of O(write_user) (C(DB_PASS)). Defaults to C(DB_PASS) of O(env_file).
    type: str
  write_db:
    description:
      - Database name as PgBouncer knows it (C(DB_NAME)). Defaults to C(DB_NAME) of O(env_file), then O(db).
    type: str
'''
