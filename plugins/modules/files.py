#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: files
short_description: Several files, directories and links of one role in one task, rendered on the controller
version_added: 0.2.0
description:
  - Brings a set of directories, small text files and symbolic links to their wanted content, mode, owner, group
    and target in one call on the host, where one C(ansible.builtin.template) or C(ansible.builtin.file) task per
    path costs one or two module runs each. On a converged fleet a role's files then cost one task, not ten.
  - Its action plugin renders O(files[].template) (from the role's C(templates/)) and reads O(files[].src) on the
    controller, as C(ansible.builtin.template) and C(ansible.builtin.copy) do, and sends the contents.
  - The action then reads the host with one shell command (C(stat), C(sha256sum) and C(readlink) of every
    path) and compares type, content, mode, owner, group and link target on the controller. When all are as wanted
    it returns unchanged without running this module at all; otherwise, or when that answer is not clear, the
    module runs, reads again and acts.
  - Directories are handled first (created with their parents when missing), then files, then links, each in the
    order given.
  - A file's new content is written to a temporary file beside it, checked with O(files[].validate) when given,
    and renamed into place, so a reader never sees half a file.
  - Returns which paths changed (RV(changed_files)), so one task can feed a handler, and with C(--diff) one diff per
    changed path.
author:
  - fediops maintainers (@fediops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  directories:
    description: Directories that must exist, with their attributes.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      mode:
        description: Octal mode such as C("0755"); unchanged when omitted.
        type: str
      owner:
        description: User name or uid; unchanged when omitted.
        type: str
      group:
        description: Group name or gid; unchanged when omitted.
        type: str
  files:
    description: Files with their content and attributes. Each has exactly one of O(files[].content),
      O(files[].template) and O(files[].src).
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: The file on the host.
        type: path
        required: true
      content:
        description: The content, as text.
        type: str
      template:
        description: A Jinja2 template of the role's C(templates/), rendered on the controller with the task's variables.
        type: str
      template_vars:
        description:
          - Variables for this file's O(files[].template) alone, on top of the task's (they win over a variable of
            the same name). One template then serves several files of one task, as C(item) does in a loop of
            C(ansible.builtin.template) tasks.
          - Only with O(files[].template).
        type: dict
      src:
        description: A text file on the controller (the role's C(files/), or an absolute path), sent as it is.
        type: str
      mode:
        description: Octal mode such as C("0644"); a new file without one gets C(0644).
        type: str
      owner:
        description: User name or uid; unchanged (root for a new file) when omitted.
        type: str
      group:
        description: Group name or gid; unchanged (root for a new file) when omitted.
        type: str
      validate:
        description: Command that checks the new content before it replaces the file; C(%s) is the temporary file.
        type: str
      sensitive:
        description: Never show this file's content in a diff (keys, passwords); say only that it changed.
        type: bool
        default: false
  links:
    description:
      - Symbolic links that must exist and point at their target, as C(ansible.builtin.file) with C(state=link)
        makes them.
      - A missing link is created; a link to another target, or (with O(links[].force)) a file or other non-directory
        in its place, is replaced at once by renaming a new link over it. A directory in its place is never replaced.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The link on the host.
        type: path
        required: true
      src:
        description: The target the link points at, stored as given (a relative target is relative to the link's
          directory).
        type: str
        required: true
      force:
        description:
          - Replace a file or other non-directory found at O(links[].path), and create the link even when its
            target does not exist.
          - When false, either case fails the task instead.
        type: bool
        default: true
notes:
  - Contents travel as module arguments. Keep files small (configuration, units, scripts), and set C(no_log) on the
    task when any content is secret, as for any task.
"""

EXAMPLES = r"""
- name: The firewall state exporter (script, service and timer)
  fediops.mastodon.files:
    files:
      - {dest: /usr/local/sbin/fediops-firewall-check, template: fediops-firewall-check.sh.j2, mode: "0755"}
      - {dest: /etc/systemd/system/fediops-firewall-check.service, template: fediops-firewall-check.service.j2, mode: "0644"}
      - {dest: /etc/systemd/system/fediops-firewall-check.timer, template: fediops-firewall-check.timer.j2, mode: "0644"}
  notify: Reload systemd units

- name: Journal limits
  fediops.mastodon.files:
    directories:
      - {path: /etc/systemd/journald.conf.d, mode: "0755"}
    files:
      - {dest: /etc/systemd/journald.conf.d/fediops.conf, template: journald.conf.j2, mode: "0644"}
  notify: Restart journald

- name: The time zone
  fediops.mastodon.files:
    links:
      - {path: /etc/localtime, src: /usr/share/zoneinfo/Europe/Berlin}
    files:
      - {dest: /etc/timezone, content: "Europe/Berlin\n", mode: "0644"}

- name: One drop-in per Sidekiq process, from one template (item as a loop would set it)
  fediops.mastodon.files:
    directories: "{{ processes | map('regex_replace', '^(.*)$', '/etc/systemd/system/sidekiq@\\1.service.d') | map('community.general.dict_kv', 'path') }}"
    files: >-
      {%- set out = [] -%}
      {%- for process in processes -%}
      {%-   set _ = out.append({'dest': '/etc/systemd/system/sidekiq@' ~ process ~ '.service.d/pool.conf',
                                'template': 'pool.conf.j2', 'template_vars': {'item': process}, 'mode': '0644'}) -%}
      {%- endfor -%}
      {{ out }}
"""

RETURN = r"""
changed_files:
  description: Paths (directories, files and links) created or changed, in the order given.
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/journald.conf.d/fediops.conf]
paths:
  description:
    - For every path, what differed (C(created), C(content), C(mode), C(owner), C(group)); empty when none.
    - For a link, C(created), C(src) (it pointed elsewhere) or C(type) (something else was there).
  returned: always
  type: dict
  sample: {/etc/systemd/journald.conf.d/fediops.conf: [content]}
"""

import binascii
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.fediops.mastodon.plugins.module_utils.file_set import (
    current, current_link, diff_entry, differences, files_argument_spec, gid_of, link_diff_entry, link_differences,
    parse_mode, uid_of,
)


def wanted(module, entry, kind):
    """The entry's wanted state; in check mode an owner or group an earlier task would create is reported, not refused."""
    name = entry.get('dest') or entry.get('path')
    try:
        want = dict(mode=parse_mode(entry.get('mode')), unknown=[])
    except ValueError as exc:
        module.fail_json(msg='%s: %s' % (name, to_native(exc)))
    for key, field, lookup in (('uid', 'owner', uid_of), ('gid', 'group', gid_of)):
        try:
            want[key] = lookup(entry.get(field))
        except KeyError:
            if not module.check_mode:
                module.fail_json(msg='%s: no such %s %s' % (name, 'user' if field == 'owner' else 'group', entry[field]))
            want[key] = None
            want['unknown'].append(field)
    if kind == 'file':
        if entry.get('template') is not None or entry.get('src') is not None:
            module.fail_json(msg='%s: template and src are rendered by the action plugin on the controller; '
                                 'the module takes content' % entry['dest'])
        if entry.get('content') is None:
            module.fail_json(msg='%s: content is required' % entry['dest'])
        want['content'] = to_bytes(entry['content'], errors='surrogate_or_strict')
    return want


def apply_attributes(path, want):
    if want['uid'] is not None or want['gid'] is not None:
        os.lchown(path, -1 if want['uid'] is None else want['uid'], -1 if want['gid'] is None else want['gid'])
    if want['mode'] is not None:
        os.chmod(path, want['mode'])


def write_file(module, entry, want, held):
    directory = os.path.dirname(entry['dest'])
    handle, temporary = tempfile.mkstemp(prefix='.fediops-files-', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(want['content'])
        new = dict(want)
        if held is not None:
            # A changed file keeps the attributes it had where none is asked for.
            new['mode'] = held['mode'] if want['mode'] is None else want['mode']
            new['uid'] = held['uid'] if want['uid'] is None else want['uid']
            new['gid'] = held['gid'] if want['gid'] is None else want['gid']
        elif new['mode'] is None:
            new['mode'] = 0o644
        apply_attributes(temporary, new)
        if entry.get('validate'):
            if '%s' not in entry['validate']:
                module.fail_json(msg='%s: validate must contain %%s (the file to check)' % entry['dest'])
            rc, out, err = module.run_command(entry['validate'] % temporary)
            if rc != 0:
                module.fail_json(msg='%s: validation failed (%s): %s' % (entry['dest'], entry['validate'] % temporary,
                                                                         (err or out).strip()))
        os.rename(temporary, entry['dest'])
        temporary = None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)


def place_link(path, src):
    """Point path at src in one step: a new link made beside it is renamed over whatever is there."""
    directory = os.path.dirname(path)
    while True:
        temporary = os.path.join(directory, '.fediops-link-%s' % binascii.hexlify(os.urandom(6)).decode('ascii'))
        try:
            os.symlink(src, temporary)
            break
        except FileExistsError:
            continue
    try:
        os.rename(temporary, path)
    except OSError:
        os.unlink(temporary)
        raise


def manage_links(module, result, diffs):
    for entry in module.params['links']:
        path, src = entry['path'], entry['src']
        if not src:
            module.fail_json(msg='%s: src must not be empty' % path, **result)
        held = current_link(path)
        if held is not None and held['kind'] == 'directory':
            module.fail_json(msg='%s is a directory: a link does not replace one' % path, **result)
        changes = link_differences(src, held)
        result['paths'][path] = changes
        if not changes:
            continue
        if not entry['force']:
            if held is not None and held['kind'] != 'link':
                module.fail_json(msg='%s exists and is not a link (force: true replaces it)' % path, **result)
            # As ansible.builtin.file: without force, no link to nothing. A target an earlier task would create
            # is missing in check mode: reported, not refused.
            if not module.check_mode and not os.path.exists(os.path.join(os.path.dirname(path), src)):
                module.fail_json(msg='%s: its target %s does not exist (force: true links anyway)' % (path, src),
                                 **result)
        if held is None and not os.path.isdir(os.path.dirname(path)) and not module.check_mode:
            module.fail_json(msg='%s: its directory does not exist (list it under directories)' % path, **result)
        result['changed_files'].append(path)
        diffs.append(link_diff_entry(path, src, held))
        if not module.check_mode:
            place_link(path, src)


def main():
    module = AnsibleModule(argument_spec=files_argument_spec(), supports_check_mode=True)
    result = dict(changed=False, changed_files=[], paths={})
    diffs = []

    for entry in module.params['directories']:
        path = entry['path']
        want = wanted(module, entry, 'directory')
        held = current(path)
        if held is not None and held['kind'] != 'directory':
            module.fail_json(msg='%s exists and is not a directory' % path, **result)
        changes = differences(want, held, 'directory') or list(want['unknown'])
        result['paths'][path] = changes
        if changes:
            result['changed_files'].append(path)
            diffs.append(diff_entry(path, 'directory', want, held, changes))
            if not module.check_mode:
                if held is None:
                    os.makedirs(path, exist_ok=True)
                    if want['mode'] is None:
                        want['mode'] = 0o755
                apply_attributes(path, want)

    for entry in module.params['files']:
        path = entry['dest']
        want = wanted(module, entry, 'file')
        held = current(path)
        if held is not None and held['kind'] != 'file':
            module.fail_json(msg='%s exists and is not a regular file' % path, **result)
        # In check mode a directory an earlier task would create is missing: the file is reported as created.
        if held is None and not os.path.isdir(os.path.dirname(path)) and not module.check_mode:
            module.fail_json(msg='%s: its directory does not exist (list it under directories)' % path, **result)
        changes = differences(want, held, 'file') or list(want['unknown'])
        result['paths'][path] = changes
        if changes:
            result['changed_files'].append(path)
            diffs.append(diff_entry(path, 'file', want, held, changes, entry['sensitive']))
            if not module.check_mode:
                if 'content' in changes or 'created' in changes:
                    write_file(module, entry, want, held)
                else:
                    apply_attributes(path, want)

    manage_links(module, result, diffs)

    result['changed'] = bool(result['changed_files'])
    if module._diff and diffs:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
