# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.fediops.mastodon.plugins.module_utils import running


def test_parse_systemctl_show_and_list_units():
    text = 'Id=mastodon-web.service\nMainPID=812\nActiveState=active\n\nId=mastodon-sidekiq@default.service\nMainPID=0\nActiveState=inactive\n'
    assert running.parse_systemctl_show(text) == [
        {'Id': 'mastodon-web.service', 'MainPID': '812', 'ActiveState': 'active'},
        {'Id': 'mastodon-sidekiq@default.service', 'MainPID': '0', 'ActiveState': 'inactive'}]
    listed = ('mastodon-sidekiq@default.service loaded active running mastodon-sidekiq pool default\n'
              'mastodon-sidekiq@ingress.service loaded active running mastodon-sidekiq pool ingress\n')
    assert running.parse_list_units(listed) == ['mastodon-sidekiq@default.service', 'mastodon-sidekiq@ingress.service']
    assert running.parse_list_units('') == []


def test_release_from_cwd():
    assert running.release_from_cwd('/home/mastodon/releases/v2.0.0', '/home/mastodon') == 'v2.0.0'
    assert running.release_from_cwd('/home/mastodon/releases/v2.0.0/streaming', '/home/mastodon/') == 'v2.0.0'
    # a process that kept the unresolved link, or runs elsewhere, names no release
    assert running.release_from_cwd('/home/mastodon/current', '/home/mastodon') is None
    assert running.release_from_cwd('/home/mastodon/releases', '/home/mastodon') is None
    assert running.release_from_cwd(None, '/home/mastodon') is None
    assert running.unit_kind('mastodon-streaming@4000.service') == 'streaming'
    assert running.unit_kind('mastodon-sidekiq@ingress.service') == 'sidekiq'
    assert running.unit_kind('mastodon-web.service') == 'web'


def test_normalize_version():
    assert running.normalize_version('v2.0.0') == running.normalize_version('2.0.0') == '2.0.0'
    assert running.normalize_version('4.5.2+hachyderm') == '4.5.2'
    assert running.normalize_version(None) is None


def test_judge():
    procs = [
        {'unit': 'mastodon-web.service', 'pid': 10, 'release': 'v2.0.0', 'version': 'v2.0.0'},
        {'unit': 'mastodon-sidekiq@default.service', 'pid': 11, 'release': 'v2.0.0', 'version': None},
    ]
    out, summary = running.judge(procs, 'v2.0.0')
    assert [p['on_target'] for p in out] == [True, True] and summary['on_target'] is True
    assert summary['releases'] == ['v2.0.0'] and summary['versions'] == ['2.0.0']
    # Puma answers the old version although its directory is new (or the reverse): off target
    out, summary = running.judge([dict(procs[0], version='1.0.0'), procs[1]], 'v2.0.0')
    assert summary['off_target'] == ['mastodon-web.service'] and summary['on_target'] is False
    out, summary = running.judge([dict(procs[0], version=None, version_error='refused')], 'v2.0.0')
    assert summary['on_target'] is False
    # a real Mastodon answers "4.5.3" for the release directory "v4.5.3"; expected_version overrides
    out, summary = running.judge([dict(procs[0], release='v4.5.3', version='4.5.3+hachyderm')], 'v4.5.3')
    assert summary['on_target'] is True
    out, summary = running.judge([dict(procs[0], release='r42', version='4.5.3')], 'r42', '4.5.3')
    assert summary['on_target'] is True
    # the lab fixture answers its release name while the inventory's Mastodon version is another
    assert running.judge([procs[0]], 'v2.0.0', '4.5.0')[1]['on_target'] is True
    assert running.judge([dict(procs[0], version='v1.0.0')], 'v2.0.0', '4.5.0')[1]['on_target'] is False
    # not running, or nothing at all: never on target
    out, summary = running.judge([dict(procs[1], pid=0, release=None)], 'v2.0.0')
    assert summary['on_target'] is False
    assert running.judge([], 'v2.0.0')[1]['on_target'] is False
    assert running.judge(procs)[1]['on_target'] is None
    assert running.describe(out[0]) == 'mastodon-sidekiq@default.service (pid -) runs nothing (not running)'


def test_web_url_from_environment():
    env = 'RAILS_ENV=production "PATH=/a b:/usr/bin" BIND=10.89.40.21 PORT=3000'
    assert running.web_url_from_environment(env) == 'http://10.89.40.21:3000'
    assert running.web_url_from_environment('BIND=0.0.0.0') == 'http://127.0.0.1:3000'
    assert running.web_url_from_environment('BIND=fd00::1 PORT=3001') == 'http://[fd00::1]:3001'
