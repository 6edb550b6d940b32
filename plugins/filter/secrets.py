# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which application secrets a Mastodon release needs: thin wrappers over module_utils/versions.py.

Examples::

    {{ '4.5.0' | fediops.mastodon.mastodon_required_secrets }}
    {{ env_dict | fediops.mastodon.mastodon_missing_secrets('4.3.2') }}     -> names only, never values

Whether a secret is real: thin wrappers over module_utils/secret_rules.py (the rules, defined once)::

    {{ {'redis_app_password': redis_app_password} | fediops.mastodon.secret_problems(fleet_secret_kinds) }}
        -> ['redis_app_password is shorter than 24 characters (...)']   (names and rules, never values)
    {{ {'vault_x': 'CHANGE-ME', 'vault_y': none} | fediops.mastodon.secret_unset }}   -> ['vault_x'] (empty or placeholder)
    {{ {'vault_x': 'secret_key_base'} | fediops.mastodon.secret_values_generated }}   -> fresh values (no_log!)
    {{ file_text | fediops.mastodon.secret_file_values }}       -> top-level name -> value (None when !vault)
    {{ file_text | fediops.mastodon.secret_file_without(['vault_x']) }}   -> the text without those entries
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils import secret_rules, versions


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


def secret_problems(values, kinds):
    if not isinstance(values, dict):
        raise AnsibleFilterError('secret_problems: expected a dict of variable name -> value, got %s' % type(values).__name__)
    try:
        return secret_rules.problems(dict((str(k), v) for k, v in values.items()), kinds)
    except ValueError as e:
        raise AnsibleFilterError('secret_problems: %s' % e)


def secret_unset(values):
    """The names whose value is empty or a placeholder (a value nobody filled in); None (encrypted) counts as set."""
    if not isinstance(values, dict):
        raise AnsibleFilterError('secret_unset: expected a dict of variable name -> value')
    return sorted(name for name, value in values.items()
                  if value is not None and (str(value) == '' or secret_rules.placeholder_in(str(value))))


def secret_values_generated(kinds):
    """name -> kind to name -> fresh value; a vapid_private_key name also yields its public key (private -> public)."""
    if not isinstance(kinds, dict):
        raise AnsibleFilterError('secret_values_generated: expected a dict of variable name -> kind')
    out = {}
    try:
        for name, kind in kinds.items():
            if kind == 'vapid_public_key':
                continue
            if kind == 'vapid_private_key':
                pair = secret_rules.generate(kind)
                out[name] = pair['private']
                out[name.replace('private', 'public')] = pair['public']
            else:
                out[name] = secret_rules.generate(kind)
    except ValueError as e:
        raise AnsibleFilterError('secret_values_generated: %s' % e)
    return out


def secret_file_values(text):
    try:
        return secret_rules.file_values(text or '')
    except ValueError as e:
        raise AnsibleFilterError('secret_file_values: %s' % e)


def secret_file_without(text, names):
    return secret_rules.file_without(text or '', list(names))


class FilterModule(object):
    def filters(self):
        return {
            'mastodon_required_secrets': mastodon_required_secrets,
            'mastodon_missing_secrets': mastodon_missing_secrets,
            'secret_problems': secret_problems,
            'secret_unset': secret_unset,
            'secret_values_generated': secret_values_generated,
            'secret_file_values': secret_file_values,
            'secret_file_without': secret_file_without,
        }
