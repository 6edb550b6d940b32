# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of fediops.mastodon.packages: which of the wanted Debian packages dpkg does not hold installed.

The action (plugins/action/packages.py) runs probe_command() on the host, feeds what came back to
parse_probe(), and asks missing_packages() which names still need ansible.builtin.apt. Anything the probe cannot
answer for sure counts as missing, so the worst a surprise costs is one apt run, never a wrong "ok".
"""

from __future__ import annotations

import re
import shlex

# A plain Debian package name, optionally arch-qualified (libc6:amd64). Anything else (pkg=1.2, pkg*,
# pkg/bookworm-backports, ./x.deb, upper case...) means something apt resolves that dpkg-query cannot judge.
PLAIN_NAME = re.compile(r'^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$')
# What the probe prints for a package: ${Package} never carries the arch qualifier.
PROBE_NAME = re.compile(r'^[a-z0-9][a-z0-9+.-]+$')
# ${db:Status-Abbrev}: wanted state, current state, then an error flag (R = reinstallation required) or a space.
STATUS = re.compile(r'^[uihrp][ncHUFWti]R?$')
# Desired install (i) or hold (h), and fully installed; a held package is still there, so apt has nothing to do.
INSTALLED = frozenset(('ii', 'hi'))
# dpkg-query -W exits 1 and says this (LC_ALL=C) for each name dpkg has never heard of: those are missing.
UNKNOWN = re.compile(r'^dpkg-query: no packages found matching (\S+)$')

PROBE_FORMAT = r'${Package}\t${db:Status-Abbrev}\n'

# ansible.builtin.apt's options the task may set; each is passed on only when the task sets it, so apt keeps its own
# defaults for the rest.
APT_OPTIONS = ('update_cache', 'cache_valid_time', 'install_recommends', 'default_release')
# update_cache_when_missing refreshes the lists whenever apt runs at all: these would only second-guess it
# (cache_valid_time would let apt skip the refresh of lists that look fresh, which is what the option is for).
UPDATE_WHEN_MISSING_EXCLUDES = ('update_cache', 'cache_valid_time')


class ProbeError(Exception):
    """The probe's answer cannot be trusted: the caller runs the module instead."""


def decidable(name):
    """True when dpkg-query can tell whether ``name`` is installed (a plain package name, maybe arch-qualified)."""
    return isinstance(name, str) and bool(PLAIN_NAME.match(name)) and not name.endswith('.deb')


def base_name(name):
    """The name as ${Package} prints it: without an arch qualifier."""
    return name.split(':', 1)[0]


def unique(names):
    """The names in their first order, each once."""
    seen = set()
    return [name for name in names if not (name in seen or seen.add(name))]


def probe_command(names):
    """The read-only shell command that lists each name's dpkg status (names must all be decidable)."""
    undecidable = [name for name in names if not decidable(name)]
    if undecidable:
        raise ValueError('not plain package names: %s' % ', '.join(map(str, undecidable)))
    if not names:
        raise ValueError('no package names to probe')
    return 'LC_ALL=C dpkg-query -W -f=%s -- %s' % (shlex.quote(PROBE_FORMAT),
                                                   ' '.join(shlex.quote(name) for name in unique(names)))


def parse_probe(rc, stdout, stderr):
    """The probe's answer as {package: set of status abbreviations}; raises ProbeError when it cannot be trusted.

    A package can be listed more than once (one line per architecture dpkg knows it for), hence a set. Names dpkg
    does not know are simply absent. A tty merges stderr into stdout, so the "no packages found" lines are accepted
    in either stream.
    """
    if rc not in (0, 1):
        raise ProbeError('dpkg-query exited with %s: %s' % (rc, (stderr or stdout or '').strip()[:300]))
    states = {}
    unknown = 0
    for line in (stdout or '').splitlines():
        line = line.rstrip('\r')
        if not line.strip():
            continue
        if UNKNOWN.match(line.strip()):
            unknown += 1
            continue
        if '\t' not in line:
            raise ProbeError('unexpected line from dpkg-query: %r' % line[:200])
        package, status = line.split('\t', 1)
        package, status = package.strip(), status.rstrip()
        if not PROBE_NAME.match(package) or not STATUS.match(status):
            raise ProbeError('unexpected line from dpkg-query: %r' % line[:200])
        states.setdefault(package, set()).add(status)
    unknown += sum(1 for line in (stderr or '').splitlines() if UNKNOWN.match(line.strip()))
    # rc 1 is only "some name is unknown" when dpkg-query said so; otherwise something else went wrong.
    if rc == 1 and not unknown:
        raise ProbeError('dpkg-query exited with 1 without naming an unknown package: %s'
                         % (stderr or stdout or '').strip()[:300])
    return states


def is_installed(statuses):
    """Installed only when every line dpkg printed for the name says so (conservative with several architectures)."""
    return bool(statuses) and all(status in INSTALLED for status in statuses)


def apt_arguments(names, options):
    """ansible.builtin.apt's arguments for the names, from the options the task set (unset ones are absent or None).

    apt runs only when a package is missing (or the probe cannot tell), so update_cache_when_missing is simply
    update_cache=true without cache_valid_time.
    """
    args = dict(name=list(names), state='present')
    for option in APT_OPTIONS:
        if options.get(option) is not None:
            args[option] = options[option]
    if options.get('update_cache_when_missing'):
        args['update_cache'] = True
    return args


def option_conflicts(options):
    """The options set together with update_cache_when_missing=true that it excludes, sorted; [] when none."""
    if not options.get('update_cache_when_missing'):
        return []
    return sorted(option for option in UPDATE_WHEN_MISSING_EXCLUDES if options.get(option) is not None)


def missing_packages(names, states):
    """The names (first order, each once) that are not installed per ``states``, or that the probe cannot judge."""
    return [name for name in unique(names)
            if not decidable(name) or not is_installed(states.get(base_name(name), ()))]
