# -*- coding: utf-8 -*-
"""Domain-block subscriptions (plugins/module_utils/domain_blocks.py): CSV, merge, plan, marker, cap. No server."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import domain_blocks as D

EXPORT = """#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate
spam.example,suspend,false,false,spam,false
loud.example,silence,true,false,,false
hidden.example,suspend,true,true,harassment,true
"""


class FakeApi(object):
    """The admin API's behaviour in memory: what Client.list/create/update/delete do against Mastodon."""

    def __init__(self, blocks=()):
        self.blocks = {}
        self.next_id = 1
        self.calls = []
        for item in blocks:
            self._add(item)

    def _add(self, item, comment=None):
        row = dict(D.block(**dict((k, item[k]) for k in ('domain',) + D.FIELDS if k in item)))
        row['private_comment'] = comment if comment is not None else item.get('private_comment', '')
        row['id'] = str(self.next_id)
        self.next_id += 1
        self.blocks[row['id']] = row
        return row

    def list(self):
        self.calls.append(('list',))
        return [dict(b) for b in self.blocks.values()]

    def create(self, item, comment):
        self.calls.append(('create', item['domain']))
        return self._add(item, comment)

    def update(self, block_id, item, comment):
        self.calls.append(('update', item['domain']))
        self.blocks[block_id].update(dict((k, item[k]) for k in D.FIELDS), private_comment=comment)

    def delete(self, block_id):
        self.calls.append(('delete', self.blocks[block_id]['domain']))
        del self.blocks[block_id]

    def domains(self):
        return sorted(b['domain'] for b in self.blocks.values())


def test_parse_the_export_format():
    blocks = D.parse_csv(EXPORT, 'list')
    assert [b['domain'] for b in blocks] == ['spam.example', 'loud.example', 'hidden.example']
    assert blocks[1] == {'domain': 'loud.example', 'severity': 'silence', 'reject_media': True, 'reject_reports': False,
                         'public_comment': '', 'obfuscate': False}
    assert blocks[2]['obfuscate'] is True and blocks[2]['public_comment'] == 'harassment'


def test_headerless_file_is_domains_only_and_suspend():
    blocks = D.parse_csv("One.Example\n\ntwo.example.\n", 'plain')
    assert [(b['domain'], b['severity']) for b in blocks] == [('one.example', 'suspend'), ('two.example', 'suspend')]


def test_round_trip_through_to_csv():
    blocks = D.parse_csv(EXPORT)
    assert D.parse_csv(D.to_csv(blocks)) == sorted(blocks, key=lambda b: b['domain'])


@pytest.mark.parametrize('text, message', [
    ("#domain,#severity\nspam.example,ban\n", "list line 2: severity 'ban' is not one of noop, silence, suspend"),
    ("#domain,#severity\nhttps://spam.example/,suspend\n", "list line 2: 'https://spam.example/' is not a domain name"),
    ("#domain,#color\nspam.example,red\n", "list line 1: unknown column(s) #color"),
    ("#domain,#reject_media\nspam.example,maybe\n", "list line 2 reject_media: 'maybe' is not a boolean"),
    ("a.example\nb.example\na.example\n", "list line 3: a.example is listed twice (first on line 1)"),
])
def test_bad_rows_are_refused_naming_source_and_line(text, message):
    with pytest.raises(D.DomainBlockError) as err:
        D.parse_csv(text, 'list')
    assert message in str(err.value)


def test_merge_stricter_wins_additions_win_allow_removes():
    first = D.parse_csv("#domain,#severity,#reject_media\nboth.example,silence,true\nfriend.example,suspend,false\n", 'a')
    second = D.parse_csv("#domain,#severity,#reject_reports\nboth.example,suspend,true\nlocal.example,silence,false\n", 'b')
    desired = D.desired_blocks([('a', first), ('b', second)],
                               additions=[{'domain': 'local.example', 'severity': 'noop', 'public_comment': 'ours'},
                                          {'domain': 'extra.example'}],
                               allow=['Friend.Example'])
    assert sorted(desired) == ['both.example', 'extra.example', 'local.example']
    assert desired['both.example']['severity'] == 'suspend'
    assert desired['both.example']['reject_media'] and desired['both.example']['reject_reports']
    assert desired['local.example']['severity'] == 'noop' and desired['local.example']['public_comment'] == 'ours'
    assert desired['extra.example']['severity'] == 'suspend'


def test_an_addition_that_is_also_allowed_is_a_contradiction():
    with pytest.raises(D.DomainBlockError, match='additions\\[0\\]: x.example is both a local addition and an allow-override'):
        D.desired_blocks([], additions=[{'domain': 'x.example'}], allow=['x.example'])


def test_an_addition_with_an_unknown_key_is_refused():
    with pytest.raises(D.DomainBlockError, match='additions\\[0\\]: unknown key\\(s\\) sevurity'):
        D.desired_blocks([], additions=[{'domain': 'x.example', 'sevurity': 'silence'}])


def test_first_run_creates_then_second_run_changes_nothing():
    api = FakeApi()
    source = [{'name': 'list', 'content': EXPORT}]
    result = D.sync(api, source, additions=[{'domain': 'local.example'}], allow=['loud.example'])
    assert result['changed'] and result['created'] == ['hidden.example', 'local.example', 'spam.example']
    assert api.domains() == ['hidden.example', 'local.example', 'spam.example']
    assert all(b['private_comment'].startswith('fediops-managed') for b in api.blocks.values())
    api.calls = []
    again = D.sync(api, source, additions=[{'domain': 'local.example'}], allow=['loud.example'])
    assert not again['changed'] and api.calls == [('list',)]


def test_hand_made_blocks_are_never_changed_or_removed():
    api = FakeApi([{'domain': 'spam.example', 'severity': 'silence', 'private_comment': 'moderator decision'},
                   {'domain': 'manual.example', 'severity': 'suspend', 'private_comment': ''}])
    result = D.sync(api, [{'name': 'list', 'content': EXPORT}])
    assert result['unmanaged'] == ['spam.example'] and result['deleted'] == []
    assert ('update', 'spam.example') not in api.calls
    kept = dict((b['domain'], b) for b in api.blocks.values())
    assert kept['spam.example']['severity'] == 'silence' and 'manual.example' in kept


def test_dropping_a_domain_removes_only_that_block_and_a_change_updates():
    api = FakeApi([{'domain': 'manual.example'}])
    D.sync(api, [{'name': 'list', 'content': EXPORT}])
    changed = EXPORT.replace('spam.example,suspend,false,false,spam,false\n', '').replace('loud.example,silence', 'loud.example,suspend')
    api.calls = []
    result = D.sync(api, [{'name': 'list', 'content': changed}])
    assert result['deleted'] == ['spam.example'] and result['updated'] == ['loud.example'] and result['created'] == []
    assert api.domains() == ['hidden.example', 'loud.example', 'manual.example']


def test_cap_refuses_naming_the_counts_and_changes_nothing():
    api = FakeApi()
    many = "\n".join("d%d.example" % n for n in range(6))
    D.sync(api, [{'name': 'list', 'content': many}], max_changes=10)
    api.calls = []
    with pytest.raises(D.DomainBlockError) as err:
        D.sync(api, [{'name': 'list', 'content': "d0.example\n"}], max_changes=3)
    assert 'would add 0 and remove 5 domain blocks, more than max_changes=3' in str(err.value)
    assert api.calls == [('list',)] and len(api.domains()) == 6
    with pytest.raises(D.DomainBlockError, match='would add 6 and remove 0'):
        D.sync(FakeApi(), [{'name': 'list', 'content': many}], max_changes=5)


def test_check_mode_reports_and_diffs_without_changing():
    api = FakeApi([{'domain': 'old.example', 'private_comment': 'fediops-managed (list)'}])
    result = D.sync(api, [{'name': 'list', 'content': EXPORT}], check=True)
    assert result['created'] == ['hidden.example', 'loud.example', 'spam.example'] and result['deleted'] == ['old.example']
    assert api.calls == [('list',)] and api.domains() == ['old.example']
    assert 'old.example' in result['diff']['before'] and 'old.example' not in result['diff']['after']
    assert 'spam.example,suspend' in result['diff']['after']


def test_url_sources_are_fetched_and_pins_checked():
    fetched = []

    def fetch(url):
        fetched.append(url)
        return EXPORT.encode()
    pin = D.sha256_hex(EXPORT)
    loaded = D.load_sources([{'url': 'https://lists.example/b.csv', 'sha256': pin}], fetch=fetch)
    assert fetched == ['https://lists.example/b.csv'] and len(loaded[0][1]) == 3
    with pytest.raises(D.DomainBlockError, match='pinned 00'):
        D.load_sources([{'url': 'https://lists.example/b.csv', 'sha256': '00' * 32}], fetch=fetch)
    with pytest.raises(D.DomainBlockError, match='not an https:// URL'):
        D.load_sources([{'url': 'http://lists.example/b.csv'}], fetch=fetch)
    with pytest.raises(D.DomainBlockError, match='exactly one of content'):
        D.load_sources([{'name': 'x', 'content': 'a.example', 'url': 'https://lists.example/b.csv'}], fetch=fetch)


def test_next_link_follows_mastodon_pagination_header():
    header = ('<https://m.example/api/v1/admin/domain_blocks?limit=2&max_id=7>; rel="next", '
              '<https://m.example/api/v1/admin/domain_blocks?limit=2&min_id=9>; rel="prev"')
    assert D.next_link(header) == 'https://m.example/api/v1/admin/domain_blocks?limit=2&max_id=7'
    assert D.next_link('<https://m.example/x?min_id=9>; rel="prev"') is None and D.next_link(None) is None
