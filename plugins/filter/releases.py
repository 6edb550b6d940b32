# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One read of a host's release layout, and which mastodon_release steps it leaves to do: thin wrapper over
module_utils/release_probe.py.

    cmd: "{{ mastodon_release_base_path | fediops.mastodon.release_probe_command(mastodon_release_version) }}"
    {{ probe.stdout | fediops.mastodon.release_plan(base_path, version, checksum, env_file, keep) }}
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.release_probe import (
    ReleaseProbeError, probe_command, release_plan,
)


def release_probe_command(base_path, version):
    try:
        return probe_command(base_path, version)
    except ReleaseProbeError as exc:
        raise AnsibleFilterError('release_probe_command: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'release_plan': release_plan, 'release_probe_command': release_probe_command}
