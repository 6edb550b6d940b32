# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Mirrors redis_common_argument_spec() in plugins/module_utils/mastodon_common.py.
    DOCUMENTATION = r'''
options:
  redis_host:
    description:
      - Host of the Redis instance Sidekiq uses (C(SIDEKIQ_REDIS_URL), else C(REDIS_URL)).
    type: str
    default: localhost
  redis_port:
    description:
      - Redis TCP port.
    type: int
    default: 6379
  redis_unix_socket:
    description:
      - Path of a Redis Unix socket; overrides O(redis_host) and O(redis_port).
    type: path
  redis_username:
    description:
      - ACL user name (Redis 6+).
    type: str
  redis_password:
    description:
      - Redis password.
    type: str
  redis_db:
    description:
      - Redis database number.
    type: int
    default: 0
  redis_tls:
    description:
      - Connect with TLS.
    type: bool
    default: false
  redis_namespace:
    description:
      - Key prefix Sidekiq used, i.e. C(REDIS_NAMESPACE) on Mastodon 4.3 and older. Empty for 4.4 and later.
    type: str
    default: ''
  redis_timeout:
    description:
      - Socket and connect timeout in seconds.
    type: float
    default: 5.0
requirements:
  - redis-py 4.3 or later (Debian package C(python3-redis)) on the host the module runs on.
'''
