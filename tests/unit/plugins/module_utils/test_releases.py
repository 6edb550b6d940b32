# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import io
import os
import tarfile
import time

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import releases as r


def make_artifact(path, top='mastodon', files=None, extra=None):
    files = files or {'bin/rails': b'#!/bin/sh\n', 'db/migrate/20240101000001_x.rb': b''}
    with tarfile.open(path, 'w:gz') as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo('%s/%s' % (top, name) if top else name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b''))
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def base(tmp_path):
    return str(tmp_path / 'mastodon')


def install(layout, tmp_path, version, **kw):
    art = str(tmp_path / ('%s.tar.gz' % version))
    digest = make_artifact(art, **kw)
    return r.install(layout, version, art, 'sha256:' + digest, strip_components=1)


def test_install_activate_rollback_prune(base, tmp_path):
    layout = r.Layout(base)
    assert layout.state() == {'current': None, 'previous': None, 'releases': []}
    changed, actions = install(layout, tmp_path, '4.4.8')
    assert changed and actions[0].startswith('verify sha256')
    assert os.path.isfile(os.path.join(base, 'releases', '4.4.8', 'bin', 'rails'))
    assert os.access(os.path.join(base, 'releases', '4.4.8', 'bin', 'rails'), os.X_OK)
    assert install(layout, tmp_path, '4.4.8') == (False, [])             # idempotent
    assert r.activate(layout, '4.4.8')[0]
    assert layout.state() == {'current': '4.4.8', 'previous': None, 'releases': ['4.4.8']}
    assert r.activate(layout, '4.4.8') == (False, [])

    time.sleep(0.01)
    install(layout, tmp_path, '4.5.2')
    r.activate(layout, '4.5.2')
    assert os.readlink(os.path.join(base, 'current')) == os.path.join(base, 'releases', '4.5.2')
    assert layout.state()['previous'] == '4.4.8'

    changed, _actions = r.rollback(layout)
    assert changed and layout.state()['current'] == '4.4.8' and layout.state()['previous'] == '4.5.2'
    r.rollback(layout)                       # and forward again
    assert layout.state()['current'] == '4.5.2'

    for v in ('4.5.3', '4.5.4'):
        time.sleep(0.01)
        install(layout, tmp_path, v)
    # keep 1: the newest stays, current and previous are protected
    changed, actions, removed = r.prune(layout, 1, check_mode=True)
    assert removed == ['4.5.3'] and os.path.isdir(os.path.join(base, 'releases', '4.5.3'))
    changed, actions, removed = r.prune(layout, 1)
    assert removed == ['4.5.3']
    assert layout.state()['releases'] == ['4.4.8', '4.5.2', '4.5.4']
    assert not [n for n in os.listdir(os.path.join(base, 'releases')) if n.startswith('.')]

    with pytest.raises(r.ReleaseError, match='is current'):
        r.remove(layout, '4.5.2')
    assert r.remove(layout, '4.4.8')[0]                          # previous: link goes too
    assert layout.state() == {'current': '4.5.2', 'previous': None, 'releases': ['4.5.2', '4.5.4']}
    with pytest.raises(r.ReleaseError, match='no previous release'):
        r.rollback(layout)


def test_checksum_mismatch_and_conflicts(base, tmp_path):
    layout = r.Layout(base)
    art = str(tmp_path / 'a.tar.gz')
    make_artifact(art)
    with pytest.raises(r.ReleaseError, match='expected'):
        r.install(layout, '4.5.2', art, '0' * 64)
    assert not os.path.exists(os.path.join(base, 'releases', '4.5.2'))
    with pytest.raises(r.ReleaseError, match='sha256 hex digest'):
        r.install(layout, '4.5.2', art, 'md5:abc')
    install(layout, tmp_path, '4.5.2')
    other = str(tmp_path / 'b.tar.gz')
    digest = make_artifact(other, files={'x': b'different'})
    with pytest.raises(r.ReleaseError, match='already installed from an artifact'):
        r.install(layout, '4.5.2', other, digest)
    with pytest.raises(r.ReleaseError, match='does not exist'):
        r.install(layout, '4.5.3', str(tmp_path / 'missing.tar.gz'), digest)


@pytest.mark.parametrize('version', ['../x', '', '.hidden', 'a/b', '4.5..2'])
def test_unsafe_version_names(base, version):
    with pytest.raises(r.ReleaseError):
        r.Layout(base).path(version)


def _member(name, kind=tarfile.REGTYPE, linkname=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize('member, match', [
    (_member('mastodon/../../evil'), 'parent path'),
    (_member('/etc/passwd'), 'absolute'),
    (_member('mastodon/dev', tarfile.CHRTYPE), 'special file'),
    (_member('mastodon/link', tarfile.SYMTYPE, '/etc'), 'outside'),
    (_member('mastodon/link', tarfile.SYMTYPE, '../../etc'), 'outside'),
    (_member('mastodon/hard', tarfile.LNKTYPE, '/etc/shadow'), 'outside'),
])
def test_unsafe_archives_refused(base, tmp_path, member, match):
    layout = r.Layout(base)
    art = str(tmp_path / 'evil.tar.gz')
    digest = make_artifact(art, extra=[member])
    with pytest.raises(r.ReleaseError, match=match):
        r.install(layout, '6.6.6', art, digest, strip_components=1)
    assert os.listdir(os.path.join(base, 'releases')) == []       # temp dir cleaned up


def test_symlink_inside_release_kept(base, tmp_path):
    layout = r.Layout(base)
    art = str(tmp_path / 'ok.tar.gz')
    digest = make_artifact(art, extra=[_member('mastodon/public/system', tarfile.SYMTYPE, '../shared')])
    assert r.install(layout, '4.5.2', art, digest, strip_components=1)[0]
    assert os.readlink(os.path.join(base, 'releases', '4.5.2', 'public', 'system')) == '../shared'


def test_foreign_current_refused(base):
    os.makedirs(os.path.join(base, 'current'))
    with pytest.raises(r.ReleaseError, match='not a symlink'):
        r.Layout(base).state()
