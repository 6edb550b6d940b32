# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host's release directory holds, read with one shell command, and what the role still has to do there.

The role's steps (copy the artifact, unpack it, link its .env.production, switch ``current``, prune, delete old
artifacts) each cost a module run per host even when the release is in place. One read of the layout (the
``current`` and ``previous`` links, each release's recorded artifact sha256, the release's .env.production link and
the artifacts) tells which of them can change anything; the others are skipped. Anything the read cannot vouch for
(no marker, a link outside ``releases/``, another checksum) leaves the step to the module, which decides and
explains, as before.

Only the standard library, and light: the filter plugin that exposes this is imported by every worker resolving a
fediops filter.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import posixpath
import re

MARKER = '.fediops-release.json'
_SHA256_RE = re.compile(r'"sha256":\s*"([0-9a-f]{64})"')
_VERSION_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]*$')


class ReleaseProbeError(Exception):
    """An argument the probe cannot be built from."""


def _quote(value):
    return "'" + value.replace("'", "'\"'\"'") + "'"


def probe_command(base_path, version):
    """A POSIX shell script printing one tab-separated line per fact; prints nothing when base_path is missing."""
    if not base_path or not posixpath.isabs(base_path):
        raise ReleaseProbeError('base_path must be an absolute path, got %r' % (base_path,))
    if not version or not _VERSION_RE.match(version) or '..' in version:
        raise ReleaseProbeError('version %r is not a safe directory name' % (version,))
    return '\n'.join([
        'cd -- %s 2>/dev/null || exit 0' % _quote(base_path),
        'for l in current previous; do printf "link\\t%s\\t%s\\n" "$l" "$(readlink -- "$l" 2>/dev/null)"; done',
        'for d in releases/*/; do',
        '  [ -d "$d" ] && [ ! -L "${d%/}" ] || continue',
        '  n=${d#releases/}; n=${n%/}',
        '  printf "release\\t%s\\t%s\\n" "$n" "$(tr -d "\\n" < "$d' + MARKER + '" 2>/dev/null)"',
        'done',
        'printf "env\\t%s\\n" "$(readlink -- releases/' + _quote(version) + '/.env.production 2>/dev/null)"',
        'for a in artifacts/*.tar.gz; do [ -f "$a" ] && printf "artifact\\t%s\\n" "${a#artifacts/}"; done',
        'exit 0',
    ])


def parse_probe(stdout, base_path):
    """The layout as {current, previous, releases: {name: sha256 or None}, env_link, artifacts: [names]}.

    A link that is not a symlink into ``<base_path>/releases`` reads as ``'?'`` (never equal to a version)."""
    releases_dir = posixpath.join(base_path, 'releases')
    found = dict(current=None, previous=None, releases={}, env_link=None, artifacts=[])
    for line in (stdout or '').splitlines():
        fields = line.split('\t')
        kind = fields[0]
        if kind == 'link' and len(fields) == 3 and fields[1] in ('current', 'previous'):
            target = fields[2]
            if target:
                if not posixpath.isabs(target):
                    target = posixpath.join(base_path, target)
                target = posixpath.normpath(target)
                found[fields[1]] = (posixpath.basename(target) if posixpath.dirname(target) == releases_dir
                                    else '?')
        elif kind == 'release' and len(fields) == 3:
            match = _SHA256_RE.search(fields[2])
            found['releases'][fields[1]] = match.group(1) if match else None
        elif kind == 'env' and len(fields) == 2:
            found['env_link'] = fields[1] or None
        elif kind == 'artifact' and len(fields) == 2 and fields[1].endswith('.tar.gz'):
            found['artifacts'].append(fields[1][:-len('.tar.gz')])
    found['artifacts'].sort()
    return found


def _sha256(checksum):
    value = (checksum or '').strip().lower()
    return value[len('sha256:'):] if value.startswith('sha256:') else value


def release_plan(stdout, base_path, version, checksum, env_file, keep):
    """Which of the role's steps can change anything on this host.

    installed: the release is unpacked from the artifact with this checksum (copy and unpack can be skipped);
    env_linked: its .env.production already points at env_file; active: ``current`` is this release;
    prune: more releases than ``keep`` will be there, so the module must choose what goes;
    releases: the release names after this run's install (before any prune); artifacts: the artifacts held."""
    found = parse_probe(stdout, base_path)
    installed = found['releases'].get(version) == _sha256(checksum) and bool(_sha256(checksum))
    releases = sorted(set(found['releases']) | {version})
    return dict(
        installed=installed,
        env_linked=installed and found['env_link'] == env_file,
        active=found['current'] == version,
        prune=len(releases) > int(keep),
        releases=releases,
        artifacts=found['artifacts'],
        current=found['current'],
        previous=found['previous'],
    )
