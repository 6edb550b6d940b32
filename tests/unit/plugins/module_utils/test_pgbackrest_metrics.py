# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json

from ansible_collections.fediops.mastodon.plugins.module_utils import pgbackrest_metrics


def _backup(label, kind, start, stop, prior=None):
    return {
        "archive": {"start": "000000010000000000000004", "stop": "000000010000000000000004"},
        "backrest": {"format": 5, "version": "2.45"},
        "database": {"id": 1, "repo-key": 1},
        "error": False,
        "info": {"delta": 31302834, "repository": {"delta": 4006429, "delta-map": None, "size": 4006429, "size-map": None},
                 "size": 31302834},
        "label": label,
        "link": None,
        "lsn": {"start": "0/4000028", "stop": "0/4000100"},
        "prior": prior,
        "reference": [prior] if prior else None,
        "tablespace": None,
        "timestamp": {"start": start, "stop": stop},
        "type": kind,
    }


# The shape pgBackRest 2.45 (Debian bookworm) prints for `pgbackrest --stanza=mastodon --output=json info`.
INFO = [{
    "archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
                 "max": "000000010000000000000009", "min": "000000010000000000000001"}],
    "backup": [
        _backup("20261101-020003F", "full", 1793412003, 1793412061),
        _backup("20261101-020003F_20261102-020002I", "incr", 1793498402, 1793498420, "20261101-020003F"),
        _backup("20261108-020001F", "full", 1794016801, 1794016870),
        _backup("20261108-020001F_20261109-020004D", "diff", 1794103204, 1794103230, "20261108-020001F"),
        _backup("20261108-020001F_20261110-020003I", "incr", 1794189603, 1794189640, "20261108-020001F_20261109-020004D"),
    ],
    "cipher": "aes-256-cbc",
    "db": [{"id": 1, "repo-key": 1, "system-id": 7440000000000000000, "version": "15"}],
    "name": "mastodon",
    "repo": [{"cipher": "aes-256-cbc", "key": 1, "status": {"code": 0, "message": "ok"}}],
    "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"},
}]


def _lines(text):
    return [line for line in text.splitlines() if not line.startswith('#')]


def test_newest_completed_backup_of_each_type():
    text, reason = pgbackrest_metrics.textfile('mastodon', json.dumps(INFO))
    assert reason is None
    assert _lines(text) == [
        'fediops_pgbackrest_info_success{stanza="mastodon"} 1',
        'fediops_pgbackrest_last_backup_completion_seconds{stanza="mastodon",type="full"} 1794016870',
        'fediops_pgbackrest_last_backup_completion_seconds{stanza="mastodon",type="diff"} 1794103230',
        'fediops_pgbackrest_last_backup_completion_seconds{stanza="mastodon",type="incr"} 1794189640',
    ]
    assert '# TYPE fediops_pgbackrest_last_backup_completion_seconds gauge' in text
    assert text.endswith('\n')


def test_a_type_never_taken_is_absent():
    info = copy.deepcopy(INFO)
    info[0]['backup'] = [b for b in info[0]['backup'] if b['type'] == 'full']
    text, _reason = pgbackrest_metrics.textfile('mastodon', json.dumps(info))
    assert 'type="full"} 1794016870' in text
    assert 'type="diff"' not in text and 'type="incr"' not in text


def test_stanza_without_backups_answered_but_has_no_timestamps():
    info = copy.deepcopy(INFO)
    info[0]['backup'] = []
    info[0]['status'] = {"code": 2, "lock": {"backup": {"held": False}}, "message": "no valid backups"}
    text, reason = pgbackrest_metrics.textfile('mastodon', json.dumps(info))
    assert reason is None
    assert _lines(text) == ['fediops_pgbackrest_info_success{stanza="mastodon"} 1']


def test_repository_errors_give_success_zero():
    info = copy.deepcopy(INFO)
    info[0].update(backup=[], status={"code": 99, "message": "other", "lock": {"backup": {"held": False}}},
                   repo=[{"cipher": "none", "key": 1, "status": {
                       "code": 99, "message": "[HostConnectError] unable to connect to 'storage:443'"}}])
    text, reason = pgbackrest_metrics.textfile('mastodon', json.dumps(info))
    assert _lines(text) == ['fediops_pgbackrest_info_success{stanza="mastodon"} 0']
    assert 'status 99' in reason
    # The command failed outright, printed garbage, or knows no such stanza.
    for output, returncode, why in (('', 56, 'exited 56'), ('ERROR: [031]', 0, 'not JSON'),
                                    (json.dumps(INFO), 0, 'stanza other is not')):
        text, reason = pgbackrest_metrics.textfile('other' if 'stanza' in why else 'mastodon', output, returncode)
        assert _lines(text)[0].endswith('} 0') and len(_lines(text)) == 1, text
        assert why in reason


def test_stanza_label_is_escaped():
    text, _reason = pgbackrest_metrics.textfile('a"b', '[]')
    assert 'fediops_pgbackrest_info_success{stanza="a\\"b"} 0' in text
