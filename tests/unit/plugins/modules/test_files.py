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


def test_links_are_created_then_left_alone_then_repointed(tmp_path):
    link = tmp_path / 'localtime'
    args = dict(links=[dict(path=str(link), src='/usr/share/zoneinfo/UTC')])
    first = run_module(files, args)
    assert first['changed'] is True and first['changed_files'] == [str(link)]
    assert first['paths'] == {str(link): ['created']}
    assert os.readlink(link) == '/usr/share/zoneinfo/UTC'
    assert first['diff'] == [dict(before_header='%s (absent)' % link, after_header=str(link), before='',
                                  after='symlink to /usr/share/zoneinfo/UTC\n')]
    second = run_module(files, args)
    assert second['changed'] is False and second['paths'] == {str(link): []} and 'diff' not in second
    moved = dict(links=[dict(path=str(link), src='/usr/share/zoneinfo/Europe/Berlin')])
    checked = run_module(files, moved, check_mode=True)
    assert checked['paths'] == {str(link): ['src']} and os.readlink(link) == '/usr/share/zoneinfo/UTC'
    assert checked['diff'][0]['before'] == 'symlink to /usr/share/zoneinfo/UTC\n'
    run_module(files, moved)
    assert os.readlink(link) == '/usr/share/zoneinfo/Europe/Berlin'
    assert sorted(os.listdir(tmp_path)) == ['localtime']


def test_a_file_in_the_links_place_is_replaced_only_with_force(tmp_path):
    link = tmp_path / 'localtime'
    link.write_text('TZif...')
    refused = run_module(files, dict(links=[dict(path=str(link), src='/usr/share/zoneinfo/UTC', force=False)]),
                         expect_fail=True)
    assert 'is not a link' in refused['msg'] and link.read_text() == 'TZif...'
    replaced = run_module(files, dict(links=[dict(path=str(link), src='/usr/share/zoneinfo/UTC')]))
    assert replaced['paths'] == {str(link): ['type']}
    assert replaced['diff'][0]['before'] == '(regular file, replaced by the link)\n'
    assert os.readlink(link) == '/usr/share/zoneinfo/UTC'


def test_a_directory_is_never_replaced_and_force_false_wants_a_target(tmp_path):
    (tmp_path / 'dir').mkdir()
    refused = run_module(files, dict(links=[dict(path=str(tmp_path / 'dir'), src='/tmp')]), expect_fail=True)
    assert 'is a directory' in refused['msg'] and (tmp_path / 'dir').is_dir()
    dangling = dict(links=[dict(path=str(tmp_path / 'l'), src='no-such-target', force=False)])
    assert 'does not exist' in run_module(files, dangling, expect_fail=True)['msg']
    assert run_module(files, dangling, check_mode=True)['changed'] is True
    (tmp_path / 'no-such-target').write_text('now there\n')
    run_module(files, dangling)
    assert os.readlink(tmp_path / 'l') == 'no-such-target' and (tmp_path / 'l').read_text() == 'now there\n'
    forced = run_module(files, dict(links=[dict(path=str(tmp_path / 'l2'), src='/nowhere')]))
    assert forced['changed'] is True and os.readlink(tmp_path / 'l2') == '/nowhere'
    missing_dir = run_module(files, dict(links=[dict(path=str(tmp_path / 'no' / 'l'), src='/tmp')]), expect_fail=True)
    assert 'its directory does not exist' in missing_dir['msg']


def test_links_come_after_files_in_the_changed_list(tmp_path):
    args = dict(files=[dict(dest=str(tmp_path / 'timezone'), content='UTC\n', mode='0644')],
                links=[dict(path=str(tmp_path / 'localtime'), src='/usr/share/zoneinfo/UTC')])
    result = run_module(files, args)
    assert result['changed_files'] == [str(tmp_path / 'timezone'), str(tmp_path / 'localtime')]
    assert run_module(files, args)['changed'] is False
