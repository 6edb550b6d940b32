#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mastodon_domain_blocks
short_description: Keep a Mastodon instance's domain blocks in line with subscribed block lists
version_added: 0.1.0
description:
  - Desired state is one or more block lists in Mastodon's own domain-block CSV export format
    (C(#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate); a headerless
    file is domains only, severity C(suspend)), plus local additions and allow-overrides.
  - Reads the live blocks through Mastodon's admin API (C(/api/v1/admin/domain_blocks), following
    the C(Link) header's pages) and applies the difference with C(POST), C(PUT) and C(DELETE).
  - Blocks it creates carry O(marker) in their C(private_comment). Only those are ever changed or
    removed; a block a moderator made by hand (no marker) is left as it is, even when a list names its domain.
  - Refuses, before any change, a run that would add or remove more than O(max_changes) blocks,
    naming both counts, so a corrupt or emptied list cannot unblock (or block) the fediverse.
  - When several sources list one domain, the stricter block wins (severity C(suspend) > C(silence) >
    C(noop), any reject flag). A local addition replaces what the sources say about its domain; an
    allow-override removes its domain from the desired state (and our block of it, if any).
  - The token needs the scopes C(admin:read:domain_blocks) and C(admin:write:domain_blocks) of a user
    with the Manage Federation permission.
extends_documentation_fragment:
  - fediops.mastodon.mastodon_api
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  sources:
    description:
      - Block lists in Mastodon's CSV export format.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Name of the list (in errors and in the blocks' C(private_comment)). Defaults to O(sources[].url).
        type: str
      content:
        description:
          - The CSV text, e.g. C(lookup('ansible.builtin.file', 'files/blocklist.csv')) of a file in the inventory repository.
        type: str
      url:
        description:
          - An C(https://) URL fetched on each run (the list is followed), unless pinned by O(sources[].sha256).
        type: str
      sha256:
        description:
          - The SHA-256 of the reviewed content. A source whose content differs is refused (nothing changes).
        type: str
  additions:
    description:
      - Local blocks, with the same keys as the CSV columns (C(domain), C(severity) default C(suspend),
        C(reject_media), C(reject_reports), C(public_comment), C(obfuscate)).
    type: list
    elements: dict
    default: []
  allow:
    description:
      - Domains never blocked by this module, even when a source lists them (allow-overrides).
    type: list
    elements: str
    default: []
  marker:
    description:
      - Text in C(private_comment) that marks a block as this module's. Keep it stable.
    type: str
    default: fediops-managed
  lock_file:
    description:
      - Take an exclusive C(flock) on this file for the run (the host's timer takes the same one), and fail when another
        run holds it.
    type: path
  max_changes:
    description:
      - Refuse a run that would add more than this many blocks, or remove more than this many. C(-1) disables the cap
        (only for a reviewed first import).
    type: int
    default: 100
author:
  - fediops contributors (@fediops)
'''

EXAMPLES = r'''
- name: Follow a shared block list, pinned to the reviewed version, plus local decisions
  fediops.mastodon.mastodon_domain_blocks:
    api_url: https://hachyderm.io
    api_token: "{{ vault_mastodon_admin_token }}"
    sources:
      - name: local-list
        content: "{{ lookup('ansible.builtin.file', 'files/domain_blocks.csv') }}"
      - name: shared-list
        url: https://example.org/blocklist.csv
        sha256: 5f0c0e4bf1e0a9c3f3e6d7a2f0a3d19c04d52a4a7f36de7e2c2c5b3c1a9b1c2d
    additions:
      - {domain: spam.example, severity: suspend, public_comment: spam}
    allow: [friendly.example]
    max_changes: 50
'''

RETURN = r'''
created:
  description: Domains blocked by this run (or that would be, in check mode).
  returned: always
  type: list
  elements: str
updated:
  description: Domains whose managed block changed (severity, flags or public comment).
  returned: always
  type: list
  elements: str
deleted:
  description: Domains whose managed block was removed (no longer listed, or allowed).
  returned: always
  type: list
  elements: str
unmanaged:
  description: Desired domains already blocked by hand (no marker); left as they are.
  returned: always
  type: list
  elements: str
desired_count:
  description: Number of domains in the desired state.
  returned: always
  type: int
live_count:
  description: Number of blocks the instance had before this run.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_common import mastodon_api_argument_spec
from ansible_collections.fediops.mastodon.plugins.module_utils import domain_blocks as DB


def main():
    argument_spec = mastodon_api_argument_spec()
    argument_spec.update(
        sources=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str'),
            content=dict(type='str'),
            url=dict(type='str'),
            sha256=dict(type='str'),
        )),
        additions=dict(type='list', elements='dict', default=[]),
        allow=dict(type='list', elements='str', default=[]),
        marker=dict(type='str', default=DB.DEFAULT_MARKER),
        max_changes=dict(type='int', default=100),
        lock_file=dict(type='path'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    client = DB.Client(p['api_url'], p['api_token'], ca_path=p['ca_path'], validate_certs=p['validate_certs'],
                       timeout=p['api_timeout'])
    lock = None
    try:
        lock = DB.acquire_lock(p['lock_file']) if p['lock_file'] else None
        result = DB.sync(client, p['sources'], p['additions'], p['allow'], marker=p['marker'],
                         max_changes=p['max_changes'], check=module.check_mode, ca_path=p['ca_path'])
    except (DB.DomainBlockError, DB.ApiError) as exc:
        module.fail_json(msg=str(exc))
    if lock:
        lock.close()
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
