# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediops.mastodon.units: one ``systemctl show`` on the host; the module runs only when something differs.

A module run costs far more than a short shell command, and on a converged fleet every unit already is as wanted.
The decision is the module's own (plugins/module_utils/units.py); when the probe cannot be read the module runs,
so the task never reports ok from a guess.
"""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.fediops.mastodon.plugins.module_utils.units import (
    check_args, mark_unloaded_dropins, parse_show, plan, probe_command, report, split_probe, unique_names,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        try:
            args = check_args(dict(self._task.args))
        except ValueError as exc:
            raise AnsibleActionFail('fediops.mastodon.units: %s' % exc)
        if not args['units']:
            result.update(changed=False, units=[], commands=[])
            return result

        names = unique_names(args['units'])
        probe = self._low_level_execute_command('/bin/sh -c %s' % shlex.quote(probe_command(names)), sudoable=True)
        states = None
        if probe.get('rc') == 0:
            try:
                shown, on_disk = split_probe(probe.get('stdout', ''))
                states = mark_unloaded_dropins(parse_show(shown, names), names, on_disk)
            except ValueError:
                states = None  # the module reads again and says what is wrong
        if states is not None:
            decided = plan(args['units'], states, args['daemon_reload'])
            if decided['converged']:
                result.update(changed=False, commands=[],
                              units=[report(unit['name'], [], states[unit['name']], states[unit['name']])
                                     for unit in args['units']])
                return result

        # Options left unset are left out: the module's spec refuses None for state's choices.
        module_args = dict(daemon_reload=args['daemon_reload'],
                           units=[dict((key, value) for key, value in unit.items() if value is not None)
                                  for unit in args['units']])
        result.update(self._execute_module(module_name='fediops.mastodon.units', module_args=module_args,
                                           task_vars=task_vars))
        return result
