# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release directories and the atomic ``current`` symlink.

Layout under ``base``::

    releases/<version>/                 one unpacked artifact each (+ .fediops-release.json)
    current  -> <base>/releases/<version>   what the services run
    previous -> <base>/releases/<version>   what ``current`` pointed at before the last switch

Every symlink change writes a temporary link and renames it over the old one, so a reader
sees either the old or the new target, never a missing link.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import time

MARKER = '.fediops-release.json'
VERSION_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]*$')


class ReleaseError(Exception):
    """A release operation that cannot be done safely."""


def check_version_name(version):
    if not version or not VERSION_RE.match(version) or '..' in version:
        raise ReleaseError('version %r is not a safe directory name (letters, digits, ".", "_", "+", "-")' % (version,))


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1024 * 1024), b''):
            digest.update(block)
    return digest.hexdigest()


def normalize_checksum(checksum):
    value = checksum.strip().lower()
    if value.startswith('sha256:'):
        value = value[len('sha256:'):]
    if not re.match(r'^[0-9a-f]{64}$', value):
        raise ReleaseError('checksum must be a sha256 hex digest (optionally prefixed "sha256:"), got %r' % (checksum,))
    return value


class Layout(object):
    def __init__(self, base, current_link=None):
        self.base = base
        self.releases = os.path.join(base, 'releases')
        self.current = current_link or os.path.join(base, 'current')
        self.previous = os.path.join(base, 'previous')

    def path(self, version):
        check_version_name(version)
        return os.path.join(self.releases, version)

    def _link_version(self, link):
        if not os.path.islink(link):
            if os.path.exists(link):
                raise ReleaseError('%s exists and is not a symlink; refusing to manage it' % link)
            return None
        target = os.readlink(link)
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(link), target)
        target = os.path.normpath(target)
        if os.path.dirname(target) != os.path.normpath(self.releases):
            raise ReleaseError('%s points at %s, outside %s' % (link, target, self.releases))
        return os.path.basename(target)

    def installed(self):
        if not os.path.isdir(self.releases):
            return []
        found = []
        for name in os.listdir(self.releases):
            full = os.path.join(self.releases, name)
            if name.startswith('.') or not os.path.isdir(full) or os.path.islink(full):
                continue
            found.append((self.installed_at(name), name))
        return [name for _t, name in sorted(found)]

    def marker(self, version):
        try:
            with open(os.path.join(self.path(version), MARKER)) as f:
                return json.load(f)
        except (IOError, OSError, ValueError):
            return {}

    def installed_at(self, version):
        stamp = self.marker(version).get('installed_at')
        if stamp is None:
            stamp = os.stat(self.path(version)).st_mtime
        return float(stamp)

    def state(self):
        return {'current': self._link_version(self.current),
                'previous': self._link_version(self.previous),
                'releases': self.installed()}


def _atomic_symlink(target, link):
    tmp = '%s.tmp-%d-%d' % (link, os.getpid(), int(time.time() * 1000000))
    os.symlink(target, tmp)
    try:
        os.rename(tmp, link)
    except OSError:
        os.unlink(tmp)
        raise


def _strip(name, count):
    parts = [p for p in name.split('/') if p not in ('', '.')]
    return '/'.join(parts[count:])


def _safe_members(tar, dest, strip_components):
    """Yield (member, new_name) after refusing anything that could escape ``dest``."""
    dest = os.path.realpath(dest)
    for member in tar.getmembers():
        if member.name.startswith('/') or '..' in member.name.split('/'):
            raise ReleaseError('archive member %r has an absolute or parent path' % member.name)
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise ReleaseError('archive member %r is a device, fifo or other special file' % member.name)
        name = _strip(member.name, strip_components)
        if not name:
            continue
        target = os.path.realpath(os.path.join(dest, name))
        if not (target == dest or target.startswith(dest + os.sep)):
            raise ReleaseError('archive member %r would be written outside the release directory' % member.name)
        if member.issym():
            link_target = os.path.normpath(os.path.join(os.path.dirname(os.path.join(dest, name)), member.linkname))
            if os.path.isabs(member.linkname) or not (link_target == dest or link_target.startswith(dest + os.sep)):
                raise ReleaseError('archive symlink %r -> %r points outside the release' % (member.name, member.linkname))
        if member.islnk():
            linkname = _strip(member.linkname, strip_components)
            if not linkname or member.linkname.startswith('/') or '..' in member.linkname.split('/'):
                raise ReleaseError('archive hard link %r -> %r points outside the release' % (member.name, member.linkname))
            member.linkname = linkname
        yield member, name


def extract(src, dest, strip_components=0):
    """Extract a tar.gz into ``dest`` (created), refusing unsafe members."""
    with tarfile.open(src, 'r:*') as tar:
        if hasattr(tarfile, 'data_filter'):
            # Python >= 3.11.4 / 3.12: let tarfile re-check every member as well.
            tar.extraction_filter = tarfile.data_filter
        members = []
        for member, name in _safe_members(tar, dest, strip_components):
            member.name = name
            members.append(member)
        if not members:
            raise ReleaseError('%s contains nothing after stripping %d path component(s)' % (src, strip_components))
        for member in members:
            # Ownership from the archive is not restored; the running user owns the release.
            member.uid = os.getuid()
            member.gid = os.getgid()
            member.uname = ''
            member.gname = ''
            tar.extract(member, dest, set_attrs=not member.issym())


def install(layout, version, src, checksum, strip_components=0, check_mode=False):
    """Install ``src`` as ``releases/<version>``; returns (changed, actions). Idempotent by checksum."""
    dest = layout.path(version)
    want = normalize_checksum(checksum)
    if os.path.isdir(dest):
        have = layout.marker(version).get('sha256')
        if have and have != want:
            raise ReleaseError('release %s is already installed from an artifact with sha256 %s, not %s; '
                               'remove it first (state=absent) or use a new version name' % (version, have, want))
        return False, []
    if not os.path.isfile(src):
        raise ReleaseError('artifact %s does not exist on the target' % src)
    got = sha256_file(src)
    if got != want:
        raise ReleaseError('artifact %s has sha256 %s, expected %s; refusing to install it' % (src, got, want))
    actions = ['verify sha256 %s of %s' % (got, src), 'extract %s into %s' % (src, dest)]
    if check_mode:
        return True, actions
    if not os.path.isdir(layout.releases):
        os.makedirs(layout.releases)
    tmp = tempfile.mkdtemp(prefix='.%s.tmp-' % version, dir=layout.releases)
    try:
        extract(src, tmp, strip_components)
        with open(os.path.join(tmp, MARKER), 'w') as f:
            json.dump({'version': version, 'sha256': got, 'src': src, 'installed_at': time.time()}, f)
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True, actions


def activate(layout, version, check_mode=False):
    """Point ``current`` at ``version`` (and ``previous`` at the old current)."""
    dest = layout.path(version)
    state = layout.state()
    if state['current'] == version:
        return False, []
    if not os.path.isdir(dest) and not check_mode:
        raise ReleaseError('release %s is not installed under %s' % (version, layout.releases))
    actions = []
    if state['current']:
        actions.append('symlink %s -> %s' % (layout.previous, layout.path(state['current'])))
    actions.append('symlink %s -> %s' % (layout.current, dest))
    if not check_mode:
        if state['current']:
            _atomic_symlink(layout.path(state['current']), layout.previous)
        _atomic_symlink(dest, layout.current)
    return True, actions


def rollback(layout, check_mode=False):
    """Swap ``current`` and ``previous``."""
    state = layout.state()
    if not state['previous']:
        raise ReleaseError('no previous release recorded at %s; nothing to roll back to' % layout.previous)
    if not os.path.isdir(layout.path(state['previous'])):
        raise ReleaseError('previous release %s is no longer installed' % state['previous'])
    if state['previous'] == state['current']:
        return False, []
    return activate(layout, state['previous'], check_mode=check_mode)


def remove(layout, version, check_mode=False):
    state = layout.state()
    if version == state['current']:
        raise ReleaseError('release %s is current; activate another release before removing it' % version)
    dest = layout.path(version)
    if not os.path.isdir(dest):
        return False, []
    actions = []
    if version == state['previous']:
        actions.append('remove symlink %s' % layout.previous)
    actions.append('remove %s' % dest)
    if not check_mode:
        if version == state['previous']:
            os.unlink(layout.previous)
        _remove_tree(layout, dest)
    return True, actions


def _remove_tree(layout, dest):
    # Rename first so a half-deleted tree never looks like a release.
    doomed = tempfile.mkdtemp(prefix='.removing-', dir=layout.releases)
    os.rename(dest, os.path.join(doomed, 'tree'))
    shutil.rmtree(doomed)


def prune(layout, keep, check_mode=False):
    """Remove the oldest releases (by install time) beyond ``keep``, never current or previous."""
    if keep < 1:
        raise ReleaseError('keep must be at least 1')
    state = layout.state()
    protected = set(v for v in (state['current'], state['previous']) if v)
    ordered = state['releases']
    survivors = set(ordered[-keep:]) | protected
    doomed = [v for v in ordered if v not in survivors]
    actions = []
    for version in doomed:
        actions.append('remove %s' % layout.path(version))
        if not check_mode:
            _remove_tree(layout, layout.path(version))
    return bool(doomed), actions, doomed
