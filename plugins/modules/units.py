#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: units
short_description: Several systemd units enabled, started, stopped or masked in one task, cheaply when nothing changes
version_added: 0.2.0
description:
  - Brings a list of systemd units to the wanted enablement, run state and masking, as one
    C(ansible.builtin.systemd_service) task per unit would, and with the same decisions, so roles convert to it
    without a change of behaviour.
  - Its action plugin first reads all the units' state with one C(systemctl show) command and returns without
    running this module when every unit already is as wanted. A converged host then costs one short command per
    task, not one module run per unit.
  - Per unit, in the order given and each unit complete before the next, as C(ansible.builtin.systemd_service)
    does it, masking comes first (O(units[].masked)), then enablement (O(units[].enabled)), then the run state
    (O(units[].state), or O(units[].restart_if_running)).
  - With O(daemon_reload=true), C(systemctl daemon-reload) runs first, but only when some listed unit needs it,
    that is when systemd reports C(NeedDaemonReload=yes) (its unit file or a drop-in changed) or C(LoadState=not-found)
    (systemd looked for it before its file existed). C(ansible.builtin.systemd_service) reloads on every run.
  - A reload alone is not a change, as with C(ansible.builtin.systemd_service).
author:
  - fediops maintainers (@fediops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports the C(systemctl) commands it would run in RV(commands) and as changes. A unit systemd does not know
        is reported as a change with a warning, not a failure, since an earlier task that did not run in check mode
        may install it.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  daemon_reload:
    description:
      - Run C(systemctl daemon-reload) before anything else when a listed unit needs it (see above), and read the
        units' state again afterwards.
      - Set it in the task that follows a change of unit files or drop-ins.
    type: bool
    default: false
  units:
    description:
      - The units, handled in this order. An empty list does nothing.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the unit, such as V(nginx.service), V(postgresql@15-main) or V(fediops-backup.timer).
          - As with C(systemctl), a name without a unit type suffix means a C(.service).
          - Glob patterns are not supported.
        type: str
        required: true
      enabled:
        description:
          - Whether the unit starts at boot. Left as it is when unset.
          - V(true) holds when the unit file state is C(enabled), C(static), C(generated) or C(transient), otherwise
            C(systemctl enable) runs; V(false) holds for any other state, otherwise C(systemctl disable) runs. As in
            M(ansible.builtin.systemd_service), C(enabled-runtime), C(indirect) and C(alias) do not count as enabled.
          - Ignored for a unit that is masked and stays so, or that O(units[].masked) masks.
        type: bool
      state:
        description:
          - V(started) holds when the unit is C(active), C(activating) or C(reloading), otherwise C(systemctl start)
            runs. V(stopped) holds in any other state (C(inactive), C(failed), C(deactivating)), otherwise
            C(systemctl stop) runs. Left as it is when unset.
          - To restart a running unit, see O(units[].restart_if_running); to reload, use
            C(ansible.builtin.systemd_service) (typically in a handler).
        type: str
        choices: [started, stopped]
      restart_if_running:
        description:
          - Restart the unit when it is running (C(active), C(activating) or C(reloading)), and leave it alone when
            it is not, as C(systemctl try-restart) does. Always a change when it restarts.
          - Meant for a handler whose role starts the unit after the handlers ran (a unit started there starts with
            the files as they are now). On a new host such a handler then costs one short command, not a module
            run that starts the unit a task later finds started.
          - Not with O(units[].state=stopped). With O(units[].state=started), a unit that is not running is
            started, not restarted.
        type: bool
      masked:
        description:
          - Whether the unit is masked (C(systemctl mask)), so nothing can start it. Left as it is when unset.
          - A unit that does not exist yet can be masked, for instance before installing a package that would start
            it.
        type: bool
notes:
  - A unit that systemd does not know (C(LoadState=not-found), after the reload O(daemon_reload) may run) fails the
    task when O(units[].enabled) or O(units[].state) is set, unless O(units[].masked=true) (then
    O(units[].state=stopped) holds and O(units[].enabled) is ignored).
  - Only the system manager is handled (no C(--user)).
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Run PostgreSQL
  fediops.mastodon.units:
    daemon_reload: true
    units:
      - name: postgresql@15-main
        enabled: true
        state: started

- name: The exporter and its timer
  fediops.mastodon.units:
    units:
      - {name: prometheus-node-exporter, enabled: true, state: started}
      - {name: fediops-firewall-check.timer, enabled: true, state: started}

- name: Restart node exporter (a handler; on a new host the role's next task starts it)
  fediops.mastodon.units:
    daemon_reload: true
    units:
      - {name: prometheus-node-exporter, restart_if_running: true}

- name: Keep the packaged Redis unit from ever running (instances run as redis-server@<port>)
  fediops.mastodon.units:
    units:
      - {name: redis-server.service, masked: true, state: stopped}
"""

RETURN = r"""
units:
  description:
    - Per unit, in the order given, the C(systemctl) verbs that ran (or would in check mode) and its state before
      and after.
    - The state holds the properties C(Id), C(LoadState), C(ActiveState), C(SubState), C(UnitFileState) and
      C(NeedDaemonReload) as C(systemctl show) reports them; C(before) is read before any reload, C(after) again
      once everything ran. In check mode C(after) is predicted, without C(SubState).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The unit, as given.
      type: str
      sample: postgresql@15-main
    actions:
      description: Verbs among C(mask), C(unmask), C(enable), C(disable), C(start), C(stop), C(restart), in the order run.
      type: list
      elements: str
      sample: [enable, start]
    before:
      description: The unit's state before the task.
      type: dict
      sample: {Id: postgresql@15-main.service, LoadState: loaded, ActiveState: inactive, SubState: dead,
               UnitFileState: disabled, NeedDaemonReload: "no"}
    after:
      description: The unit's state after the task.
      type: dict
      sample: {Id: postgresql@15-main.service, LoadState: loaded, ActiveState: active, SubState: running,
               UnitFileState: enabled, NeedDaemonReload: "no"}
  sample:
    - name: postgresql@15-main
      actions: [start]
      before: {Id: postgresql@15-main.service, LoadState: loaded, ActiveState: inactive, SubState: dead,
               UnitFileState: enabled, NeedDaemonReload: "no"}
      after: {Id: postgresql@15-main.service, LoadState: loaded, ActiveState: active, SubState: running,
              UnitFileState: enabled, NeedDaemonReload: "no"}
commands:
  description: The C(systemctl) command lines run (in check mode, that would run), in order, reloads included.
  returned: always
  type: list
  elements: str
  sample: [systemctl daemon-reload, systemctl start postgresql@15-main]
"""

import glob

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.fediops.mastodon.plugins.module_utils.units import (
    action_argv, check_args, command_line, dropin_directories, is_missing, mark_unloaded_dropins, missing_message,
    parse_show, plan, predict, probe_argv,
    report, state_text, unique_names, unit_actions, units_argument_spec,
)

# Verbs after which the unit file state is read again rather than predicted: what an unmasked unit's links make it.
REREAD_AFTER = ('mask', 'unmask')
LOCALE = dict(LC_ALL='C')


class Runner:
    """The task's progress, so that a failure part way still reports what ran."""

    def __init__(self, module, systemctl):
        self.module = module
        self.systemctl = systemctl
        self.commands = []
        self.units = []
        self.changed = False

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, changed=self.changed, units=self.units, commands=self.commands, **extra)

    def read(self, names):
        rc, out, err = self.module.run_command(probe_argv(names, self.systemctl), environ_update=LOCALE)
        if rc != 0:
            self.fail('systemctl show failed (rc=%d): %s' % (rc, (err or out).strip()))
        try:
            states = parse_show(out, names)
        except ValueError as exc:
            self.fail('could not read the state of %s: %s' % (', '.join(names), to_native(exc)), stdout=out)
        on_disk = set(path for name in names for directory in dropin_directories(name)
                      for path in glob.glob(directory + '/*.conf'))
        return mark_unloaded_dropins(states, names, on_disk)

    def run(self, action, name=None):
        argv = action_argv(action, name, self.systemctl)
        self.commands.append(command_line(argv))
        if action != 'daemon-reload':
            self.changed = True
        if self.module.check_mode:
            return
        rc, out, err = self.module.run_command(argv, environ_update=LOCALE)
        if rc != 0:
            what = action if name is None else '%s %s' % (action, name)
            self.fail('Unable to %s: %s' % (what, (err or out).strip()), rc=rc)


def converge(runner, want, state):
    """Run one unit's verbs; after a mask or unmask read it again, since its links then decide enable/disable."""
    module = runner.module
    done = []
    while True:
        todo = [action for action in unit_actions(want, state) if action not in done]
        if not todo:
            return done, state
        runner.run(todo[0], want['name'])
        done.append(todo[0])
        if todo[0] in REREAD_AFTER and not module.check_mode:
            state = runner.read([want['name']])[want['name']]
        else:
            state = predict(state, todo[0])


def main():
    module = AnsibleModule(argument_spec=units_argument_spec(), supports_check_mode=True)
    try:
        args = check_args(module.params)
    except ValueError as exc:
        module.fail_json(msg=to_native(exc))
    wants = args['units']
    if not wants:
        module.exit_json(changed=False, units=[], commands=[])

    runner = Runner(module, module.get_bin_path('systemctl', required=True))
    names = unique_names(wants)
    before = runner.read(names)
    states = dict(before)
    if plan(wants, states, args['daemon_reload'])['daemon_reload']:
        runner.run('daemon-reload')
        if not module.check_mode:
            states = runner.read(names)

    for want in wants:
        if is_missing(want, states[want['name']]):
            if not module.check_mode:
                runner.fail(missing_message(want['name']))
            # In check mode the task that would install it did not run: report, do not refuse.
            module.warn('%s; in check mode this is reported as a change, as an earlier task may install it'
                        % missing_message(want['name']))
            runner.changed = True

    done = []
    for want in wants:
        actions, states[want['name']] = converge(runner, want, states[want['name']])
        done.append(actions)
        runner.units.append(report(want['name'], actions, before[want['name']], states[want['name']]))

    if runner.changed and not module.check_mode:
        # What systemd now reports, not what was predicted.
        states = runner.read(names)
        runner.units = [report(want['name'], actions, before[want['name']], states[want['name']])
                        for want, actions in zip(wants, done)]

    result = dict(changed=runner.changed, units=runner.units, commands=runner.commands)
    diffs = [dict(before_header=entry['name'], after_header=entry['name'],
                  before=state_text(entry['before']), after=state_text(entry['after']))
             for entry in runner.units if state_text(entry['before']) != state_text(entry['after'])]
    if module._diff and diffs:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
