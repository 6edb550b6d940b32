# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which application secrets a Mastodon release needs: thin wrappers over module_utils/versions.py.

Examples::

    {{ '4.5.0' | fediops.mastodon.mastodon_required_secrets }}
    {{ env_dict | fediops.mastodon.mastodon_missing_secrets('4.3.2') }}     -> names only, never values
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils import versions


def mastodon_required_secrets(version, pending_versions=None):
    try:
        return versions.required_secrets(str(version), pending_versions)
    except ValueError as e:
        raise AnsibleFilterError('mastodon_required_secrets: %s' % e)


def mastodon_missing_secrets(environment, version, pending_versions=None):
    if not isinstance(environment, dict):
        raise AnsibleFilterError('mastodon_missing_secrets: expected the environment as a dict, got %s' % type(environment).__name__)
    try:
        return versions.missing_secrets(str(version), environment, pending_versions)
    except ValueError as e:
        raise AnsibleFilterError('mastodon_missing_secrets: %s' % e)


class FilterModule(object):
    def filters(self):
        return {
            'mastodon_required_secrets': mastodon_required_secrets,
            'mastodon_missing_secrets': mastodon_missing_secrets,
        }
