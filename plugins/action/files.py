# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediops.mastodon.files: render every template and read every src on the controller, probe, and run the
module only when something differs.

A role's files used to cost one template (or copy) task each, and each is one or two module runs per host even when
nothing changes. Here the controller does the rendering (as ansible.builtin.template does), then reads the host with
one shell command (stat, sha256sum and readlink of every path, plugins/module_utils/file_probe.py): a module run
costs far more than that, so it happens only when a path differs or the probe's answer is not clear, and then the
host gets all of them in one call (plugins/modules/files.py).
"""

from __future__ import annotations

import os
import shlex

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

from ansible_collections.fediops.mastodon.plugins.module_utils.file_probe import (
    ProbeError, parse_probe, pending, probe_command, wanted_items,
)

try:  # ansible_managed and template_* variables, as ansible.builtin.template sets them
    from ansible._internal._templating._template_vars import generate_ansible_template_vars
except ImportError:  # pragma: no cover - older or newer layouts; the variables are a convenience
    generate_ansible_template_vars = None


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def _render(self, name, dest, task_vars, template_vars=None):
        try:
            source = self._find_needle('templates', name)
        except AnsibleError as exc:
            raise AnsibleActionFail(to_text(exc))
        data = trust_as_template(self._loader.get_text_file_contents(source))
        searchpath = list(task_vars.get('ansible_search_path', [])) + [self._loader._basedir, os.path.dirname(source)]
        searchpath = [entry for path in searchpath for entry in (os.path.join(path, 'templates'), path)]
        variables = task_vars.copy()
        variables.update(template_vars or {})
        if generate_ansible_template_vars is not None:
            variables.update(generate_ansible_template_vars(path=name, fullpath=source, dest_path=dest,
                                                            include_ansible_managed='ansible_managed' not in variables))
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
        rendered = templar.template(data, escape_backslashes=False,
                                    overrides=dict(trim_blocks=True, lstrip_blocks=False, newline_sequence='\n'))
        return '' if rendered is None else to_text(rendered)

    def _read(self, name):
        try:
            source = self._find_needle('files', name)
        except AnsibleError as exc:
            raise AnsibleActionFail(to_text(exc))
        return self._loader.get_text_file_contents(source)

    def _converged(self, directories, files, links):
        """The paths probed when the host already holds every one as wanted; None when any differs or the probe is
        unsure (the module then decides)."""
        try:
            items = wanted_items(directories, files, links)
            res = self._low_level_execute_command('/bin/sh -c %s' % shlex.quote(probe_command(
                [(item['kind'], item['path']) for item in items])), sudoable=True)
            held = parse_probe(res.get('rc'), res.get('stdout', ''), len(items))
            differing = pending(items, held)
        except ProbeError as exc:
            self._display.vvv('fediops.mastodon.files: probe not usable, running the module: %s' % exc)
            return None
        if differing:
            self._display.vvv('fediops.mastodon.files: differs, running the module: %s' % ', '.join(
                '%s (%s)' % (path, ', '.join(changes)) for path, changes in differing.items()))
            return None
        return [item['path'] for item in items]

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        files = []
        for entry in self._task.args.get('files') or []:
            if not isinstance(entry, dict) or not entry.get('dest'):
                raise AnsibleActionFail('every entry of files needs a dest')
            given = [key for key in ('content', 'template', 'src') if entry.get(key) is not None]
            if len(given) != 1:
                raise AnsibleActionFail('%s: give exactly one of content, template and src (got %s)'
                                        % (entry['dest'], ', '.join(given) or 'none'))
            entry = dict(entry)
            template_vars = entry.pop('template_vars', None)
            if template_vars is not None and 'template' not in given:
                raise AnsibleActionFail('%s: template_vars is only for a template' % entry['dest'])
            if template_vars is not None and not isinstance(template_vars, dict):
                raise AnsibleActionFail('%s: template_vars must be a dictionary' % entry['dest'])
            if 'template' in given:
                entry['content'] = self._render(entry.pop('template'), entry['dest'], task_vars, template_vars)
            elif 'src' in given:
                entry['content'] = self._read(entry.pop('src'))
            files.append(entry)

        directories = self._task.args.get('directories') or []
        links = self._task.args.get('links') or []
        if not files and not directories and not links:
            result.update(changed=False, changed_files=[], paths={})
            return result

        # The keys the module returns when nothing changed, so register and notify work the same either way.
        converged = self._converged(directories, files, links)
        if converged is not None:
            result.update(changed=False, changed_files=[], paths=dict((path, []) for path in converged))
            return result

        args = dict(self._task.args)
        args['files'] = files
        result.update(self._execute_module(module_name='fediops.mastodon.files', module_args=args, task_vars=task_vars))
        # The contents are module arguments: never echo them back (a -v run would print them).
        result.pop('invocation', None)
        return result
