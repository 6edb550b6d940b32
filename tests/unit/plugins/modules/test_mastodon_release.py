# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

from ansible_collections.fediops.mastodon.plugins.modules import mastodon_release
from ..module_utils.test_releases import make_artifact
from .utils import run_module


def test_install_activate_rollback_with_diff(tmp_path):
    base = str(tmp_path / 'home')
    art = str(tmp_path / 'm.tar.gz')
    digest = make_artifact(art)
    args = dict(base_path=base, version='4.5.2', src=art, checksum=digest, strip_components=1)

    res = run_module(mastodon_release, args, check_mode=True)
    assert res['changed'] and res['current'] == '4.5.2'
    assert res['diff']['before'] == {'current': None, 'previous': None, 'releases': []}
    assert res['diff']['after'] == {'current': '4.5.2', 'previous': None, 'releases': ['4.5.2']}
    assert not os.path.exists(base)

    res = run_module(mastodon_release, args)
    assert res['changed'] and res['release_path'] == os.path.join(base, 'releases', '4.5.2')
    assert res['actions'][-1] == 'symlink %s -> %s' % (os.path.join(base, 'current'), res['release_path'])
    assert run_module(mastodon_release, args)['changed'] is False

    time.sleep(0.01)
    digest2 = make_artifact(str(tmp_path / 'n.tar.gz'), files={'bin/rails': b'v2'})
    res = run_module(mastodon_release, dict(args, version='4.5.3', src=str(tmp_path / 'n.tar.gz'), checksum=digest2))
    assert (res['current'], res['previous']) == ('4.5.3', '4.5.2')

    res = run_module(mastodon_release, dict(base_path=base, state='rollback'), check_mode=True)
    assert res['diff']['after']['current'] == '4.5.2' and os.path.basename(os.readlink(os.path.join(base, 'current'))) == '4.5.3'
    res = run_module(mastodon_release, dict(base_path=base, state='rollback'))
    assert (res['current'], res['previous']) == ('4.5.2', '4.5.3')

    res = run_module(mastodon_release, dict(base_path=base, state='pruned', keep=1))
    assert res['changed'] is False and res['releases'] == ['4.5.2', '4.5.3']   # both protected


def test_failures_name_the_problem(tmp_path):
    base = str(tmp_path / 'home')
    res = run_module(mastodon_release, dict(base_path=base, version='4.5.2'), expect_fail=True)
    assert res['msg'] == 'release 4.5.2 is not installed under %s and no src artifact was given' % os.path.join(base, 'releases')
    res = run_module(mastodon_release, dict(base_path=base, version='4.5.2', src='/x.tar.gz'), expect_fail=True)
    assert 'parameters are required together: src, checksum' in res['msg']
    res = run_module(mastodon_release, dict(base_path=base, state='present'), expect_fail=True)
    assert 'state is present but all of the following are missing: version' in res['msg']
    res = run_module(mastodon_release, dict(base_path=base, version='../etc'), expect_fail=True)
    assert 'not a safe directory name' in res['msg']
    art = str(tmp_path / 'm.tar.gz')
    make_artifact(art)
    res = run_module(mastodon_release, dict(base_path=base, version='4.5.2', src=art, checksum='a' * 64), expect_fail=True)
    assert 'refusing to install it' in res['msg']
    res = run_module(mastodon_release, dict(base_path=base, state='rollback'), expect_fail=True)
    assert 'nothing to roll back to' in res['msg']
