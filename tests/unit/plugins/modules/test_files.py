# -*- coding: utf-8 -*-
"""fediops.mastodon.files on a temporary directory: create, no-op, content and mode changes, check mode, diff,
validation that refuses, sensitive contents kept out of diffs."""

from __future__ import annotations

import os
import stat

from ansible_collections.fediops.mastodon.plugins.modules import files

from .utils import run_module


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_then_changes_nothing(tmp_path):
    conf = tmp_path / 'conf.d'
    args = dict(directories=[dict(path=str(conf), mode='0750')],
                files=[dict(dest=str(conf / 'a.conf'), content='a = 1\n', mode='0640'),
                       dict(dest=str(tmp_path / 'b.sh'), content='#!/bin/sh\n', mode='0755')])
    first = run_module(files, args)
    assert first['changed'] is True
    assert first['changed_files'] == [str(conf), str(conf / 'a.conf'), str(tmp_path / 'b.sh')]
    assert (conf / 'a.conf').read_text() == 'a = 1\n'
    assert mode_of(conf) == 0o750 and mode_of(conf / 'a.conf') == 0o640 and mode_of(tmp_path / 'b.sh') == 0o755
    second = run_module(files, args)
    assert second['changed'] is False and second['changed_files'] == []
    assert 'diff' not in second


def test_reports_what_differs_and_check_mode_writes_nothing(tmp_path):
    dest = tmp_path / 'x.conf'
    dest.write_text('old\n')
    os.chmod(dest, 0o600)
    args = dict(files=[dict(dest=str(dest), content='new\n', mode='0644')])
    checked = run_module(files, args, check_mode=True)
    assert checked['changed'] is True and checked['paths'][str(dest)] == ['content', 'mode']
    assert dest.read_text() == 'old\n' and mode_of(dest) == 0o600
    [diff] = checked['diff']
    assert diff['before'].startswith('old\n') and diff['after'].startswith('new\n')
    assert 'mode: 0600' in diff['before'] and 'mode: 0644' in diff['after']
    applied = run_module(files, args)
    assert applied['changed'] is True and dest.read_text() == 'new\n' and mode_of(dest) == 0o644


def test_only_the_mode_changes_without_rewriting(tmp_path):
    dest = tmp_path / 'y.conf'
    dest.write_text('same\n')
    os.chmod(dest, 0o666)
    inode = os.stat(dest).st_ino
    result = run_module(files, dict(files=[dict(dest=str(dest), content='same\n', mode='0644')]))
    assert result['paths'][str(dest)] == ['mode']
    assert os.stat(dest).st_ino == inode and mode_of(dest) == 0o644


def test_a_change_keeps_the_attributes_not_asked_for(tmp_path):
    dest = tmp_path / 'z.conf'
    dest.write_text('one\n')
    os.chmod(dest, 0o640)
    run_module(files, dict(files=[dict(dest=str(dest), content='two\n')]))
    assert dest.read_text() == 'two\n' and mode_of(dest) == 0o640


def test_validation_refuses_and_leaves_the_file_and_no_temporary(tmp_path):
    dest = tmp_path / 'rules.conf'
    dest.write_text('good\n')
    result = run_module(files, dict(files=[dict(dest=str(dest), content='bad\n', validate='grep -q good %s')]),
                        expect_fail=True)
    assert 'validation failed' in result['msg'] and str(dest) in result['msg']
    assert dest.read_text() == 'good\n'
    assert sorted(os.listdir(tmp_path)) == ['rules.conf']


def test_sensitive_content_is_not_in_the_diff(tmp_path):
    dest = tmp_path / 'key.pem'
    result = run_module(files, dict(files=[dict(dest=str(dest), content='SECRET-KEY\n', mode='0600', sensitive=True)]))
    assert result['changed'] is True
    assert 'SECRET-KEY' not in repr(result['diff'])


def test_a_missing_directory_and_a_template_are_refused(tmp_path):
    missing = run_module(files, dict(files=[dict(dest=str(tmp_path / 'no' / 'f'), content='x')]), expect_fail=True)
    assert 'its directory does not exist' in missing['msg']
    template = run_module(files, dict(files=[dict(dest=str(tmp_path / 'f'), template='f.j2')]), expect_fail=True)
    assert 'rendered by the action plugin' in template['msg']
    bad_mode = run_module(files, dict(files=[dict(dest=str(tmp_path / 'f'), content='x', mode='u+rw')]), expect_fail=True)
    assert 'not an octal mode' in bad_mode['msg']


def test_check_mode_reports_what_earlier_tasks_would_create(tmp_path):
    """Before a first converge the directory and the owner may not exist yet: check mode reports, it does not refuse."""
    args = dict(files=[dict(dest=str(tmp_path / 'later' / 'f.conf'), content='x\n', owner='fediops-no-such-user')])
    checked = run_module(files, args, check_mode=True)
    assert checked['changed'] is True and checked['changed_files'] == [str(tmp_path / 'later' / 'f.conf')]
    refused = run_module(files, dict(files=[dict(dest=str(tmp_path / 'f.conf'), content='x\n', owner='fediops-no-such-user')]),
                         expect_fail=True)
    assert 'no such user fediops-no-such-user' in refused['msg']
