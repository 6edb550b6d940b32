# -*- coding: utf-8 -*-
"""A small stand-in for systemctl, for the tests of fediops.mastodon.units (module and action).

It answers ``systemctl show -p ... -- NAME...`` the way systemd does (one block per name asked, blank line between,
not-found units included, an alias shown under its real Id) and applies daemon-reload, mask, unmask, enable,
disable, start and stop to its units, refusing what systemctl refuses (starting a masked or unknown unit).

Drop-ins are modelled as systemd before 257 handles them: files on disk (``disk``) and, per unit, the drop-ins
systemd loaded at the last daemon-reload (its DropInPaths). Writing a drop-in does not set NeedDaemonReload
(systemd/systemd#31752: a new ``<unit>.d`` directory goes unnoticed); only a daemon-reload loads it.

The fake works out a unit's drop-in directories on its own (not with the plugin's dropin_directories), so that
the tests check the plugin against an independent idea of where systemd looks.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex

SUFFIXES = ('.service', '.socket', '.timer', '.target', '.path', '.mount', '.automount', '.swap', '.slice',
            '.scope', '.device')
PROPS = 'Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload,DropInPaths'
MARKER = '@@fediops-units-dropins@@'
# Where systemd reads drop-ins; /usr/lib is loaded (so in DropInPaths) but the plugin does not look there.
SEARCH_PATH = ('/etc/systemd/system', '/run/systemd/system', '/usr/lib/systemd/system')
# The action's probe, as the shell would see it: systemctl show, then the drop-in listing, systemctl's exit code.
PROBE = re.compile(r'(?P<show>.+?); rc=\$\?; echo (?P<marker>\S+); '
                   r'for f in (?P<globs>.+); do \[ -e "\$f" \] && echo "\$f"; done; exit \$rc')


def unit_id(name):
    return name if name.endswith(SUFFIXES) else name + '.service'


def template_of(uid):
    """postgresql@15-main.service -> postgresql@.service; None for a unit that is no instance."""
    prefix, at, rest = uid.partition('@')
    instance, dot, suffix = rest.rpartition('.')
    return '%s@.%s' % (prefix, suffix) if at and dot and instance else None


def shell_glob(pattern, files):
    """The files a shell glob matches: ``*`` stays within one directory and skips dot files. Sorted, as sh does."""
    directory, base = posixpath.split(pattern)
    return sorted(path for path in files
                  if posixpath.dirname(path) == directory and not posixpath.basename(path).startswith('.')
                  and fnmatch.fnmatchcase(posixpath.basename(path), base))


class FakeSystemd:

    def __init__(self, crlf=False):
        self.units = {}
        self.aliases = {}
        self.calls = []
        self.crlf = crlf
        self.fail_verbs = {}
        self.disk = set()
        self.globs = []

    def add(self, name, active='inactive', file_state='disabled', load='loaded', need_reload='no', sub=None,
            after_reload=None, unmasked_file_state='disabled', dropins=()):
        """A unit; after_reload: properties it takes at the next daemon-reload (a unit file written since);
        dropins: drop-in files on disk that systemd has loaded."""
        self.disk.update(dropins)
        self.units[unit_id(name)] = dict(
            LoadState=load, ActiveState=active, SubState=sub or ('running' if active == 'active' else 'dead'),
            UnitFileState=file_state, NeedDaemonReload=need_reload, after_reload=dict(after_reload or {}),
            unmasked_file_state=unmasked_file_state, DropInPaths=sorted(dropins))
        return self

    def alias(self, name, target):
        self.aliases[unit_id(name)] = unit_id(target)
        return self

    def write_dropin(self, path):
        """A drop-in written since the last daemon-reload: on disk, not loaded, and (systemd < 257) unnoticed."""
        self.disk.add(path)
        return self

    def _lookup(self, name):
        uid = self.aliases.get(unit_id(name), unit_id(name))
        return uid, self.units.get(uid)

    def dropin_directories(self, uid):
        """Where systemd looks for a unit's drop-ins: under each of its names, and its template's for an instance."""
        names = [uid] + sorted(alias for alias, target in self.aliases.items() if target == uid)
        names += [template for template in map(template_of, list(names)) if template]
        return ['%s/%s.d' % (directory, name) for directory in SEARCH_PATH for name in names]

    def _load_dropins(self, uid):
        directories = set(self.dropin_directories(uid))
        return sorted(path for path in self.disk if posixpath.dirname(path) in directories and path.endswith('.conf'))

    def show(self, names):
        blocks = []
        for name in names:
            uid, unit = self._lookup(name)
            if unit is None:
                unit = dict(LoadState='not-found', ActiveState='inactive', SubState='dead', UnitFileState='',
                            NeedDaemonReload='no', DropInPaths=[])
            blocks.append('Id=%s\nNeedDaemonReload=%s\nLoadState=%s\nActiveState=%s\nSubState=%s\nDropInPaths=%s\n'
                          'UnitFileState=%s\n'
                          % (uid, unit['NeedDaemonReload'], unit['LoadState'], unit['ActiveState'], unit['SubState'],
                             ' '.join(unit['DropInPaths']), unit['UnitFileState']))
        return self._newlines('\n'.join(blocks))

    def _newlines(self, text):
        return text.replace('\n', '\r\n') if self.crlf else text

    def glob(self, pattern):
        """A replacement for glob.glob over the fake's disk (the module lists drop-ins with it)."""
        self.globs.append(pattern)
        return shell_glob(pattern, self.disk)

    def verb(self, verb, name=None):
        """(rc, stdout, stderr) of ``systemctl VERB [NAME]``, applied to the units."""
        if verb in self.fail_verbs:
            return 1, '', self.fail_verbs[verb]
        if verb == 'daemon-reload':
            for uid, unit in self.units.items():
                unit.update(unit.pop('after_reload', {}))
                unit['after_reload'] = {}
                unit['NeedDaemonReload'] = 'no'
                unit['DropInPaths'] = self._load_dropins(uid) if unit['LoadState'] == 'loaded' else []
            return 0, '', ''
        uid, unit = self._lookup(name)
        if verb == 'mask':
            if unit is None:
                unit = self.units[uid] = dict(LoadState='masked', ActiveState='inactive', SubState='dead',
                                              UnitFileState='masked', NeedDaemonReload='no', after_reload={},
                                              unmasked_file_state=None, DropInPaths=[])
            unit['unmasked_file_state'] = unit['UnitFileState'] if unit['UnitFileState'] != 'masked' else 'disabled'
            unit.update(LoadState='masked', UnitFileState='masked')
            return 0, '', 'Created symlink /etc/systemd/system/%s -> /dev/null.\n' % uid
        if unit is None or unit['LoadState'] == 'not-found':
            return (5, '', 'Unit %s not found.\n' % uid) if verb in ('start', 'stop') else \
                (1, '', 'Failed to %s unit: Unit file %s does not exist.\n' % (verb, uid))
        if verb == 'unmask':
            unit.update(LoadState='loaded', UnitFileState=unit['unmasked_file_state'] or 'disabled')
        elif verb in ('enable', 'start', 'restart') and unit['LoadState'] == 'masked':
            return 1, '', 'Failed to %s unit: Unit file %s is masked.\n' % (verb, uid)
        elif verb == 'enable':
            if unit['UnitFileState'] != 'static':
                unit['UnitFileState'] = 'enabled'
        elif verb == 'disable':
            if unit['UnitFileState'] in ('enabled', 'enabled-runtime', 'indirect', 'alias'):
                unit['UnitFileState'] = 'disabled'
        elif verb == 'start':
            unit.update(ActiveState='active', SubState='running')
        elif verb == 'stop':
            unit.update(ActiveState='inactive', SubState='dead')
        elif verb == 'restart':
            unit.update(ActiveState='active', SubState='running', restarts=unit.get('restarts', 0) + 1)
        else:
            raise AssertionError('unexpected verb %r' % verb)
        return 0, '', ''

    def run_argv(self, argv, environ_update=None):
        """What AnsibleModule.run_command would return for argv (a list whose first element is systemctl)."""
        self.calls.append(list(argv))
        assert argv[0].endswith('systemctl'), argv
        if argv[1] == 'show':
            assert (environ_update or {}).get('LC_ALL') == 'C', 'systemctl show without LC_ALL=C'
            assert argv[2:6] == ['--no-pager', '-p', PROPS, '--'], argv
            return 0, self.show(argv[6:]), ''
        rest = [part for part in argv[2:] if part != '--']
        return self.verb(argv[1], rest[0] if rest else None)

    def run_command(self, args, **kwargs):
        """A replacement for AnsibleModule.run_command (patched onto the class: args after self)."""
        assert isinstance(args, list), 'the module runs argv lists, not shell strings: %r' % (args,)
        return self.run_argv(args, kwargs.get('environ_update'))

    def run_shell(self, cmd):
        """Run the action's probe, ``/bin/sh -c '<LC_ALL=C systemctl show ...; ...drop-in listing...>'``.

        The command must have the probe's exact shape; systemctl's part goes to run_argv, each glob is expanded
        over the fake's disk (one that matches nothing prints nothing: ``[ -e "$f" ]``), and the exit code is
        systemctl's.
        """
        outer = shlex.split(cmd)
        assert outer[:2] == ['/bin/sh', '-c'] and len(outer) == 3, cmd
        match = PROBE.fullmatch(outer[2])
        assert match, 'not the probe command: %r' % outer[2]
        assert match.group('marker') == MARKER, match.group('marker')
        inner = shlex.split(match.group('show'))
        assert inner[0] == 'LC_ALL=C', inner
        rc, out, err = self.run_argv(inner[1:], dict(LC_ALL='C'))
        listed = []
        for pattern in shlex.split(match.group('globs')):
            self.globs.append(pattern)
            listed.extend(shell_glob(pattern, self.disk))
        out = out + ('' if not out or out.endswith('\n') else '\n') + self._newlines(
            ''.join(line + '\n' for line in [MARKER] + listed))
        return rc, out, err
