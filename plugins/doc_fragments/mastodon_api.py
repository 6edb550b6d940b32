# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Mirrors mastodon_api_argument_spec() in plugins/module_utils/mastodon_common.py.
    DOCUMENTATION = r'''
options:
  api_url:
    description:
      - Base URL of the Mastodon instance's API, e.g. C(https://hachyderm.io), or a web host's Puma
        (C(http://10.0.0.31:3000)) from a host its firewall lets in.
    type: str
    required: true
  api_token:
    description:
      - An access token of a user with the needed admin scopes (see the module). Never logged.
    type: str
    required: true
  ca_path:
    description:
      - CA bundle that verifies O(api_url) (and HTTPS sources); the system bundle by default.
    type: path
  validate_certs:
    description:
      - Verify the server certificate of O(api_url). Only for a lab.
    type: bool
    default: true
  api_timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: int
    default: 30
'''
