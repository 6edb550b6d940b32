# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediops.mastodon.accounts: read the groups and users with one shell command, and run the module only
when something differs.

Every ansible.builtin.user or group task is a module run per host even when the account is long there. One getent
(and passwd -S) over a plain shell answers the same question for next to nothing; the module runs, for the whole
task, only when an account differs or the probe's answer is not clear (plugins/module_utils/accounts.py).
"""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fediops.mastodon.plugins.module_utils.accounts import (
    ProbeError, action_argument_spec, check_arguments, converged, differences, parse_probe, probe_command, probeable,
    reports,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def _converged(self, groups, users):
        """(groups, users) return values when every account is as wanted; None when something differs or the probe
        cannot tell (the module then decides)."""
        if not probeable(users):
            self._display.vvv('fediops.mastodon.accounts: a home the probe cannot read as given, running the module')
            return None
        res = self._low_level_execute_command('/bin/sh -c %s' % shlex.quote(probe_command(groups, users)),
                                              sudoable=True)
        try:
            state = parse_probe(res.get('rc'), res.get('stdout', ''), groups, users)
        except ProbeError as exc:
            self._display.vvv('fediops.mastodon.accounts: probe not usable, running the module: %s' % exc)
            return None
        group_changes, user_changes = differences(groups, users, state)
        if not converged(group_changes, user_changes):
            self._display.vvv('fediops.mastodon.accounts: differs, running the module: %s' % ', '.join(
                '%s (%s)' % (name, ', '.join(changes))
                for name, changes in list(group_changes.items()) + list(user_changes.items()) if changes))
            return None
        return reports(groups, users, state, group_changes, user_changes)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        args = self.validate_argument_spec(argument_spec=action_argument_spec())[1]
        groups, users = args['groups'], args['users']
        problems = check_arguments(groups, users)
        if problems:
            raise AnsibleActionFail('fediops.mastodon.accounts: %s' % '; '.join(problems))
        if not groups and not users:
            result.update(changed=False, commands=[], groups={}, users={})
            return result

        # The keys the module returns when nothing changed, so register works the same either way.
        found = self._converged(groups, users)
        if found is not None:
            result.update(changed=False, commands=[], groups=found[0], users=found[1])
            return result

        result.update(self._execute_module(module_name='fediops.mastodon.accounts', module_args=dict(self._task.args),
                                           task_vars=task_vars))
        return result
