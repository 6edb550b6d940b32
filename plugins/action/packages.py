# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediops.mastodon.packages: ask dpkg first, run ansible.builtin.apt only when something is missing.

On a converged host every apt task is a module run (AnsiballZ, python-apt, the cache) that finds nothing to do.
One dpkg-query over a plain shell answers the same question for next to nothing; apt runs, with every name the
task gave, only when a package is missing or the probe cannot tell (see plugins/module_utils/packages.py).
"""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.fediops.mastodon.plugins.module_utils.packages import (
    ProbeError, apt_arguments, decidable, missing_packages, option_conflicts, parse_probe, probe_command, unique,
)

display = Display()

ARGUMENT_SPEC = dict(
    name=dict(type='list', elements='str', required=True),
    update_cache=dict(type='bool'),
    cache_valid_time=dict(type='int'),
    install_recommends=dict(type='bool'),
    default_release=dict(type='str'),
    update_cache_when_missing=dict(type='bool'),
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def _probe(self, names):
        """{package: statuses} from the host, or None when the probe's answer cannot be trusted."""
        command = '/bin/sh -c %s' % shlex.quote(probe_command(names))
        res = self._low_level_execute_command(command, sudoable=True)
        try:
            return parse_probe(res.get('rc'), res.get('stdout', ''), res.get('stderr', ''))
        except ProbeError as exc:
            display.vvv('fediops.mastodon.packages: probe not usable, running apt: %s' % exc)
            return None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        unsupported = sorted(set(self._task.args) - set(ARGUMENT_SPEC))
        if unsupported:
            # Say it here: the generic message names the Python path of this file, and state is the likely slip.
            raise AnsibleActionFail('unsupported option%s %s: this only installs (as apt state=present) and takes %s;'
                                    ' use ansible.builtin.apt for anything else'
                                    % ('s' if len(unsupported) > 1 else '', ', '.join(unsupported),
                                       ', '.join(sorted(ARGUMENT_SPEC))))
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        names = args['name']
        if not names:
            raise AnsibleActionFail('name: give at least one package')
        if any(not name.strip() for name in names):
            raise AnsibleActionFail('name: an entry is empty (%s)' % ', '.join(repr(name) for name in names))

        conflicts = option_conflicts(args)
        if conflicts:
            raise AnsibleActionFail('update_cache_when_missing refreshes the lists whenever apt runs; do not set %s'
                                    ' with it' % ' or '.join(conflicts))
        module_args = apt_arguments(names, args)

        # A name dpkg-query cannot judge (pin, release, wildcard, .deb) needs apt anyway: skip the probe then.
        if all(decidable(name) for name in names):
            states = self._probe(names)
            if states is not None:
                missing = missing_packages(names, states)
                packages = dict(installed=[name for name in unique(names) if name not in missing], missing=missing)
                if not missing:
                    result.update(changed=False, packages=packages)
                    return result
                result['packages'] = packages

        result.update(self._execute_module(module_name='ansible.builtin.apt', module_args=module_args,
                                           task_vars=task_vars))
        return result
