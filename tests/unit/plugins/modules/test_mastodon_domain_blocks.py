# -*- coding: utf-8 -*-
"""The module over HTTP: an in-process stand-in for /api/v1/admin/domain_blocks (Bearer token, Link pagination of 2
per page), so the real client, check mode, diff, the cap and the lock are exercised without a Mastodon."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import domain_blocks as D
from ansible_collections.fediops.mastodon.plugins.modules import mastodon_domain_blocks
from .utils import run_module

TOKEN = 'unit-test-admin-token-0123456789abcdef'
CSV = "#domain,#severity,#reject_media\na.example,suspend,false\nb.example,silence,true\nc.example,suspend,false\n"


class Api(object):
    def __init__(self):
        self.blocks = {}
        self.next_id = 1
        self.writes = []


def handler_for(api):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, body, headers=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self):
            length = int(self.headers.get('Content-Length') or 0)
            return dict((k, v[0]) for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items())

        def _auth(self):
            if self.headers.get('Authorization') != 'Bearer ' + TOKEN:
                self._send(401, {'error': 'The access token is invalid'})
                return False
            return True

        def do_GET(self):
            if not self._auth():
                return
            url = urlparse(self.path)
            query = dict((k, v[0]) for k, v in parse_qs(url.query).items())
            ids = sorted((int(i) for i in api.blocks), reverse=True)
            if 'max_id' in query:
                ids = [i for i in ids if i < int(query['max_id'])]
            page = ids[:2]
            headers = {}
            if len(page) == 2:
                headers['Link'] = '<http://%s/api/v1/admin/domain_blocks?limit=2&max_id=%d>; rel="next"' % (
                    self.headers['Host'], page[-1])
            self._send(200, [api.blocks[str(i)] for i in page], headers)

        def do_POST(self):
            if not self._auth():
                return
            form = self._form()
            row = dict(id=str(api.next_id), domain=form['domain'], severity=form['severity'],
                       reject_media=form['reject_media'] == 'true', reject_reports=form['reject_reports'] == 'true',
                       obfuscate=form['obfuscate'] == 'true', public_comment=form['public_comment'] or None,
                       private_comment=form['private_comment'])
            api.next_id += 1
            api.blocks[row['id']] = row
            api.writes.append(('POST', row['domain']))
            self._send(200, row)

        def do_PUT(self):
            if not self._auth():
                return
            block_id = self.path.rsplit('/', 1)[1]
            form = self._form()
            row = api.blocks[block_id]
            row.update(severity=form['severity'], reject_media=form['reject_media'] == 'true')
            api.writes.append(('PUT', row['domain']))
            self._send(200, row)

        def do_DELETE(self):
            if not self._auth():
                return
            row = api.blocks.pop(self.path.rsplit('/', 1)[1])
            api.writes.append(('DELETE', row['domain']))
            self._send(200, {})
    return Handler


@pytest.fixture
def api():
    state = Api()
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler_for(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = 'http://127.0.0.1:%d' % server.server_address[1]
    yield state
    server.shutdown()


def args(api, **extra):
    base = dict(api_url=api.url, api_token=TOKEN, sources=[{'name': 'list', 'content': CSV}],
                additions=[{'domain': 'local.example', 'severity': 'noop'}], allow=['c.example'], max_changes=10)
    base.update(extra)
    return base


def test_check_mode_diffs_then_apply_then_nothing_to_do(api):
    res = run_module(mastodon_domain_blocks, args(api), check_mode=True)
    assert res['changed'] and res['created'] == ['a.example', 'b.example', 'local.example'] and api.writes == []
    assert 'b.example' not in res['diff']['before']
    assert 'b.example,silence,true,false,,false' in res['diff']['after']
    res = run_module(mastodon_domain_blocks, args(api))
    assert res['changed'] and sorted(b['domain'] for b in api.blocks.values()) == ['a.example', 'b.example', 'local.example']
    assert all(b['private_comment'] == 'fediops-managed (list)' for b in api.blocks.values())
    # Two per page: the second run must follow the Link header to see all three.
    api.writes = []
    res = run_module(mastodon_domain_blocks, args(api))
    assert not res['changed'] and api.writes == [] and res['live_count'] == 3


def test_a_moderators_block_is_kept_and_the_cap_refuses(api):
    api.blocks['99'] = dict(id='99', domain='a.example', severity='silence', reject_media=False, reject_reports=False,
                            obfuscate=False, public_comment=None, private_comment='by hand')
    api.next_id = 100
    res = run_module(mastodon_domain_blocks, args(api))
    assert res['unmanaged'] == ['a.example'] and api.blocks['99']['severity'] == 'silence'
    api.writes = []
    res = run_module(mastodon_domain_blocks, args(api, sources=[], additions=[], max_changes=1), expect_fail=True)
    assert 'would add 0 and remove 2 domain blocks, more than max_changes=1' in res['msg'] and api.writes == []


def test_a_bad_token_fails_without_printing_it(api):
    res = run_module(mastodon_domain_blocks, args(api, api_token='wrong-token-value'), expect_fail=True)
    assert 'HTTP 401' in res['msg'] and 'wrong-token-value' not in json.dumps(res)


def test_the_lock_refuses_a_second_run(api, tmp_path):
    lock = D.acquire_lock(str(tmp_path / 'lock'))
    try:
        res = run_module(mastodon_domain_blocks, args(api, lock_file=str(tmp_path / 'lock')), expect_fail=True)
        assert 'another domain-block run holds' in res['msg']
    finally:
        lock.close()
    assert run_module(mastodon_domain_blocks, args(api, lock_file=str(tmp_path / 'lock')))['changed']
