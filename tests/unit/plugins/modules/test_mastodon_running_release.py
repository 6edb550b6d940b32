# -*- coding: utf-8 -*-
"""Real processes started in <base>/current (a link to releases/<version>), as systemd starts them; a stand-in
systemctl reports their MainPIDs. The web process is a real HTTP server answering /api/v1/instance."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.fediops.mastodon.plugins.modules import mastodon_running_release as module
from .utils import run_module


def _free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    base = tmp_path / 'mastodon'
    for version in ('v1.0.0', 'v2.0.0'):
        api = base / 'releases' / version / 'api' / 'v1'
        api.mkdir(parents=True)
        (api / 'instance').write_text(json.dumps({'version': version, 'title': 'test'}))
    os.symlink('releases/v1.0.0', str(base / 'current'))
    procs = {}
    port = _free_port()

    def start(unit, argv):
        procs[unit] = subprocess.Popen(argv, cwd=str(base / 'current'), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    start('mastodon-web.service', [sys.executable, '-m', 'http.server', '--bind', '127.0.0.1', str(port)])
    start('mastodon-sidekiq@default.service', ['sleep', '300'])
    # current switched, as the roll does, then only the second pool restarted: the two pools differ now
    os.unlink(str(base / 'current'))
    os.symlink('releases/v2.0.0', str(base / 'current'))
    start('mastodon-sidekiq@ingress.service', ['sleep', '300'])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), 0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    table = dict((u, p.pid) for u, p in procs.items())
    script = bindir / 'systemctl'
    script.write_text('#!%s\nimport sys\nT = %r\nargs = sys.argv[1:]\n'
                      'if args[0] == "list-units":\n'
                      '    pat = args[-1].split("*")[0]\n'
                      '    for u in sorted(T):\n'
                      '        if u.startswith(pat): print(u + " loaded active running x")\n'
                      'elif args[0] == "show" and args[1] == "--property=Environment":\n'
                      '    print("RAILS_ENV=production BIND=127.0.0.1 PORT=%d")\n'
                      'elif args[0] == "show":\n'
                      '    print("\\n\\n".join("Id=%%s\\nMainPID=%%d\\nActiveState=%%s" %% (u, T.get(u, 0), "active" if u in T else "inactive")'
                      ' for u in args[2:]))\n' % (sys.executable, table, port))
    script.chmod(0o755)
    monkeypatch.setenv('PATH', '%s:%s' % (bindir, os.environ['PATH']))
    yield {'base_path': str(base), 'web_url': 'http://127.0.0.1:%d' % port, 'pids': table}
    for p in procs.values():
        p.kill()
        p.wait()


def test_reports_what_each_process_runs(fleet):
    res = run_module(module, {'base_path': fleet['base_path'], 'web_url': fleet['web_url'], 'expected_release': 'v2.0.0'})
    by_unit = dict((p['unit'], p) for p in res['processes'])
    assert by_unit['mastodon-web.service']['release'] == 'v1.0.0'
    assert by_unit['mastodon-web.service']['version'] == 'v1.0.0'
    assert by_unit['mastodon-web.service']['pid'] == fleet['pids']['mastodon-web.service']
    assert by_unit['mastodon-sidekiq@default.service']['release'] == 'v1.0.0'
    assert by_unit['mastodon-sidekiq@ingress.service']['release'] == 'v2.0.0'
    assert by_unit['mastodon-sidekiq@ingress.service']['on_target'] is True
    # no streaming instance runs on this host: reported, off target
    assert by_unit['mastodon-streaming@*.service']['pid'] == 0
    assert res['on_target'] is False
    assert sorted(res['off_target']) == ['mastodon-sidekiq@default.service', 'mastodon-streaming@*.service', 'mastodon-web.service']
    assert res['releases'] == ['v1.0.0', 'v2.0.0'] and res['changed'] is False
    assert 'GET %s/api/v1/instance' % fleet['web_url'] in res['commands']
    # without web_url: the unit's BIND and PORT
    res = run_module(module, {'base_path': fleet['base_path'], 'kinds': ['web'], 'expected_release': 'v1.0.0'})
    assert res['on_target'] is True and res['processes'][0]['version'] == 'v1.0.0', res
    assert any(c.startswith('GET http://127.0.0.1:') for c in res['commands'])


def test_on_target_and_check_mode(fleet):
    args = {'base_path': fleet['base_path'], 'kinds': ['sidekiq'], 'expected_release': 'v2.0.0'}
    res = run_module(module, args, check_mode=True)
    assert res['on_target'] is False and res['off_target'] == ['mastodon-sidekiq@default.service']
    res = run_module(module, dict(args, kinds=['web'], web_url=fleet['web_url'], expected_release='v1.0.0', expected_version='1.0.0'))
    assert res['on_target'] is True, res['lines']
    # Puma not answering: its version is unknown, so it is not on target
    res = run_module(module, dict(args, kinds=['web'], web_url='http://127.0.0.1:1', expected_release='v1.0.0'))
    assert res['on_target'] is False and res['processes'][0]['version_error']
