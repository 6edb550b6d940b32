# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of fediops.mastodon.units: read systemd units' state from one ``systemctl show``, decide what to do.

Shared by the action plugin (plugins/action/units.py), which probes and skips the module when nothing differs,
and the module (plugins/modules/units.py), which reads again and acts. Decisions mirror
ansible.builtin.systemd_service so that converted roles keep their behaviour, with one deliberate difference:
``daemon-reload`` runs only when a listed unit needs it. Tested in tests/unit/plugins/module_utils/test_units.py.
"""

from __future__ import annotations

import shlex

from ansible.module_utils.parsing.convert_bool import boolean

PROPERTIES = ('Id', 'LoadState', 'ActiveState', 'SubState', 'UnitFileState', 'NeedDaemonReload', 'DropInPaths')
# Where the roles write drop-ins. systemd before 257 (bookworm has 252) keeps a cache of the unit directories'
# entries from the last daemon-reload and does not report NeedDaemonReload for a drop-in in a *new* ``<unit>.d``
# directory (systemd/systemd#31752), so drop-ins on disk are compared with the DropInPaths systemd loaded.
UNIT_TYPES = frozenset(('service', 'socket', 'timer', 'target', 'path', 'mount', 'automount', 'swap', 'slice',
                        'scope', 'device'))
DROPIN_DIRECTORIES = ('/etc/systemd/system', '/run/systemd/system')
# The line between systemctl's output and the drop-in listing in the action's probe.
DROPIN_MARKER = '@@fediops-units-dropins@@'
# The properties the diff shows: what the options change.
DIFF_PROPERTIES = ('LoadState', 'ActiveState', 'UnitFileState')

# ActiveState values of a unit that is up or on its way up: state=started holds, state=stopped needs a stop.
# (refreshing: systemd 256+, a running unit refreshing its mount namespace.)
RUNNING_STATES = frozenset(('active', 'activating', 'reloading', 'refreshing'))
# UnitFileState values that count as enabled, as ansible.builtin.systemd_service counts them: ``is-enabled`` exits 0
# for enabled-runtime, indirect and alias too, but those are not enabled for good and get ``systemctl enable``.
# This matters: Debian's generator makes postgresql@15-main enabled-runtime (wanted by postgresql.service only), and
# only the enable makes it start at boot on its own.
ENABLED_STATES = frozenset(('enabled', 'static', 'generated', 'transient'))
MASKED_STATES = frozenset(('masked', 'masked-runtime'))

STATE_CHOICES = ('started', 'stopped')
UNIT_KEYS = ('name', 'enabled', 'state', 'masked', 'restart_if_running')
# systemctl expands these against loaded units (show, start, ...): the blocks would no longer match the names asked.
GLOB_CHARACTERS = '*?['


def units_argument_spec():
    """The module's argument_spec; the action plugin checks the same with check_args()."""
    return dict(
        daemon_reload=dict(type='bool', default=False),
        units=dict(type='list', elements='dict', required=True, options=dict(
            name=dict(type='str', required=True),
            enabled=dict(type='bool'),
            state=dict(type='str', choices=list(STATE_CHOICES)),
            masked=dict(type='bool'),
            restart_if_running=dict(type='bool'),
        )),
    )


def _optional_bool(value, where):
    if value is None:
        return None
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise ValueError('%s must be a boolean, got %r' % (where, value))


def check_name(name, where='name'):
    if not isinstance(name, str) or not name.strip():
        raise ValueError('%s must be a non-empty string, got %r' % (where, name))
    if name != name.strip() or any(char in name for char in GLOB_CHARACTERS):
        raise ValueError('%s: %r is not a unit name (no surrounding spaces, no glob patterns)' % (where, name))
    return name


def check_args(args):
    """The task's arguments, checked and normalised (booleans as bool, unset options as None).

    Raises ValueError with a message naming the offending option, as the module's argument_spec would.
    """
    unknown = sorted(set(args) - {'daemon_reload', 'units'})
    if unknown:
        raise ValueError('unsupported option(s): %s (supported: daemon_reload, units)' % ', '.join(unknown))
    daemon_reload = _optional_bool(args.get('daemon_reload'), 'daemon_reload')
    units = args.get('units')
    if units is None:
        raise ValueError('units is required (a list, which may be empty)')
    if not isinstance(units, list):
        raise ValueError('units must be a list of dicts, got %s' % type(units).__name__)
    checked = []
    for index, entry in enumerate(units):
        where = 'units[%d]' % index
        if not isinstance(entry, dict):
            raise ValueError('%s must be a dict with name (and enabled, state, masked, restart_if_running), got %r' % (where, entry))
        unknown = sorted(set(entry) - set(UNIT_KEYS))
        if unknown:
            raise ValueError('%s: unsupported option(s) %s (supported: %s)' % (where, ', '.join(unknown),
                                                                               ', '.join(UNIT_KEYS)))
        if entry.get('name') is None:
            raise ValueError('%s.name is required' % where)
        state = entry.get('state')
        if state is not None and state not in STATE_CHOICES:
            raise ValueError('%s.state must be one of %s, got %r' % (where, ', '.join(STATE_CHOICES), state))
        restart = _optional_bool(entry.get('restart_if_running'), '%s.restart_if_running' % where)
        if restart and state == 'stopped':
            raise ValueError('%s: restart_if_running and state=stopped contradict each other' % where)
        checked.append(dict(
            name=check_name(entry['name'], '%s.name' % where),
            enabled=_optional_bool(entry.get('enabled'), '%s.enabled' % where),
            state=state,
            masked=_optional_bool(entry.get('masked'), '%s.masked' % where),
            restart_if_running=restart,
        ))
    return dict(daemon_reload=bool(daemon_reload), units=checked)


def unique_names(units):
    """Each unit name once, in the order first given (systemctl is asked once per name)."""
    names = []
    for unit in units:
        if unit['name'] not in names:
            names.append(unit['name'])
    return names


def probe_argv(names, systemctl='systemctl'):
    return [systemctl, 'show', '--no-pager', '-p', ','.join(PROPERTIES), '--'] + list(names)


def dropin_directories(name):
    """The ``.d`` directories whose ``*.conf`` apply to a unit: its own, and its template's for an instance."""
    full = name if name.rpartition('.')[2] in UNIT_TYPES else name + '.service'
    names = [full]
    prefix, at, rest = full.partition('@')
    if at and rest.partition('.')[0]:
        names.append('%s@.%s' % (prefix, rest.rpartition('.')[2]))
    return ['%s/%s.d' % (directory, unit) for directory in DROPIN_DIRECTORIES for unit in names]


def probe_command(names):
    """The probe as one shell command line: systemctl show, a marker, then every drop-in file on disk.

    LC_ALL=C keeps systemctl's output unlocalised; the exit code is systemctl's.
    """
    show = 'LC_ALL=C ' + ' '.join(shlex.quote(part) for part in probe_argv(names))
    globs = ' '.join('%s/*.conf' % shlex.quote(directory) for name in names for directory in dropin_directories(name))
    return ('%s; rc=$?; echo %s; for f in %s; do [ -e "$f" ] && echo "$f"; done; exit $rc'
            % (show, DROPIN_MARKER, globs))


def split_probe(output):
    """The action's probe output -> (systemctl show output, set of drop-in files on disk)."""
    lines = output.splitlines()
    marker = [index for index, line in enumerate(lines) if line.strip() == DROPIN_MARKER]
    if len(marker) != 1:
        raise ValueError('the probe printed no drop-in marker')
    return '\n'.join(lines[:marker[0]]), set(line.strip() for line in lines[marker[0] + 1:] if line.strip())


def mark_unloaded_dropins(states, names, on_disk):
    """Set NeedDaemonReload=yes on a loaded unit with a drop-in file on disk that systemd has not loaded."""
    for name in names:
        state = states[name]
        if state.get('LoadState') != 'loaded':
            continue
        loaded = set(state.get('DropInPaths', '').split())
        mine = set(path for path in on_disk
                   if any(path.startswith(directory + '/') for directory in dropin_directories(name)))
        if mine - loaded:
            state['NeedDaemonReload'] = 'yes'
    return states


def parse_show(output, names):
    """``systemctl show`` output -> {name: {property: value}} for the names asked, in that order.

    systemctl prints one block of KEY=VALUE lines per unit asked, in the order asked, separated by blank lines.
    Blocks are matched to names by position: Id is the unit's real name, which differs for an alias
    (sshd -> ssh.service). Raises ValueError when the output does not have that shape (a tty may have mixed in
    messages): the caller must then not decide from it.
    """
    blocks, current = [], None
    for line in output.splitlines():
        if not line.strip():
            if current is not None:
                blocks.append(current)
            current = None
            continue
        key, sep, value = line.partition('=')
        if not sep or key not in PROPERTIES:
            raise ValueError('unexpected line in systemctl show output: %r' % line)
        if current is None:
            current = {}
        if key in current:
            raise ValueError('property %s twice in one block of systemctl show output' % key)
        current[key] = value.strip()
    if current is not None:
        blocks.append(current)
    if len(blocks) != len(names):
        raise ValueError('systemctl show printed %d block(s) for %d unit(s)' % (len(blocks), len(names)))
    states = {}
    for name, block in zip(names, blocks):
        for key in ('LoadState', 'ActiveState'):
            if not block.get(key):
                raise ValueError('systemctl show printed no %s for %s' % (key, name))
        state = dict((key, '') for key in PROPERTIES)
        state['NeedDaemonReload'] = 'no'
        state.update(block)
        states[name] = state
    return states


def is_masked(state):
    return state.get('UnitFileState') in MASKED_STATES or state.get('LoadState') == 'masked'


def is_enabled(state):
    return state.get('UnitFileState') in ENABLED_STATES


def is_running(state):
    return state.get('ActiveState') in RUNNING_STATES


def is_not_found(state):
    return state.get('LoadState') == 'not-found'


def needs_reload(state):
    """Whether systemd's view of the unit is stale: its files changed, or it was looked up before it existed."""
    return state.get('NeedDaemonReload') == 'yes' or is_not_found(state)


def is_missing(want, state):
    """A unit systemd does not know, asked for something only an existing unit can do.

    Masking works on a unit that does not exist (yet), so masked=true with enabled (which a masked unit skips)
    or state=stopped (which a missing unit is) is not refused.
    """
    if not is_not_found(state):
        return False
    if want.get('state') == 'started':
        return True
    if want.get('masked') is True:
        return False
    return want.get('enabled') is not None or want.get('state') is not None


def missing_message(name):
    return 'Could not find the requested unit %s (systemd reports LoadState=not-found)' % name


def unit_actions(want, state):
    """The systemctl verbs that bring one unit from state to want, in systemd_service's order: mask, enable, state.

    A unit that is masked, and stays so, or that will be masked, gets no enable/disable: systemctl refuses
    to enable a masked unit, and masking is the stronger "never start". After an unmask the unit file state is
    unknown until read again (the module does); here it counts as not enabled.
    """
    actions = []
    masked = is_masked(state)
    if want.get('masked') is not None and want['masked'] != masked:
        actions.append('mask' if want['masked'] else 'unmask')
    will_be_masked = want['masked'] if want.get('masked') is not None else masked
    if want.get('enabled') is not None and not will_be_masked:
        if want['enabled'] != (is_enabled(state) and not masked):
            actions.append('enable' if want['enabled'] else 'disable')
    if want.get('state') == 'started' and not is_running(state):
        actions.append('start')
    elif want.get('state') == 'stopped' and is_running(state):
        actions.append('stop')
    elif want.get('restart_if_running') and is_running(state) and not will_be_masked:
        # systemctl try-restart's rule: a unit that is not running is left alone, since whatever starts it later
        # starts it with the files as they are now.
        actions.append('restart')
    return actions


def plan(units, states, daemon_reload):
    """What a task needs: {'daemon_reload': bool, 'units': [{'name', 'actions', 'missing'}], 'converged': bool}.

    units as check_args() returns them, states as parse_show() does. daemon-reload is needed only when asked
    for and some listed unit's view is stale. converged means nothing at all needs doing: no module run.
    """
    reload_needed = bool(daemon_reload) and any(needs_reload(states[unit['name']]) for unit in units)
    planned = [dict(name=unit['name'], actions=unit_actions(unit, states[unit['name']]),
                    missing=is_missing(unit, states[unit['name']])) for unit in units]
    converged = not reload_needed and not any(entry['actions'] or entry['missing'] for entry in planned)
    return dict(daemon_reload=reload_needed, units=planned, converged=converged)


def predict(state, action):
    """The state after a systemctl verb, for check mode. SubState is left out: it depends on the unit's type."""
    after = dict(state)
    after.pop('SubState', None)
    if action == 'mask':
        after.update(LoadState='masked', UnitFileState='masked')
    elif action == 'unmask':
        after.update(LoadState='not-found' if is_not_found(state) else 'loaded', UnitFileState='disabled')
    elif action == 'enable':
        after['UnitFileState'] = 'enabled'
    elif action == 'disable':
        after['UnitFileState'] = 'disabled'
    elif action in ('start', 'restart'):
        after['ActiveState'] = 'active'
    elif action == 'stop':
        after['ActiveState'] = 'inactive'
    return after


def action_argv(action, name=None, systemctl='systemctl'):
    """argv of one systemctl verb; ``--`` only where a name could read as an option (-.mount, the root mount)."""
    if name is None:
        return [systemctl, action]
    return [systemctl, action] + (['--'] if name.startswith('-') else []) + [name]


def command_line(argv):
    """How a command is reported: with the program's base name, quoted as a shell would need."""
    return ' '.join(shlex.quote(part) for part in ['systemctl'] + list(argv[1:]))


def state_text(state):
    """A unit's state as the diff shows it, one property a line."""
    return ''.join('%s=%s\n' % (key, state.get(key, '')) for key in DIFF_PROPERTIES)


def report(name, actions, before, after):
    return dict(name=name, actions=list(actions), before=dict(before), after=dict(after))
