# -*- coding: utf-8 -*-
"""The probe of fediops.mastodon.files (plugins/module_utils/file_probe.py): its script run for real on a temporary
directory, the parsing of its answer (tty line ends, noise, short answers) and what counts as a difference."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import grp
import os
import pwd
import subprocess

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import file_probe as P

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def run_probe(items):
    script = P.probe_command([(item['kind'], item['path']) for item in items])
    done = subprocess.run(['/bin/sh', '-c', script], capture_output=True, text=True, check=False)
    return P.parse_probe(done.returncode, done.stdout, len(items))


def answer(*lines):
    return '\r\n'.join(('junk before', P.BEGIN) + lines + (P.END, '')) + '\n'


@pytest.fixture
def tree(tmp_path):
    (tmp_path / 'conf.d').mkdir(mode=0o750)
    os.chmod(tmp_path / 'conf.d', 0o750)
    (tmp_path / 'a.conf').write_text('a = 1\n')
    os.chmod(tmp_path / 'a.conf', 0o640)
    (tmp_path / 'empty').write_text('')
    os.chmod(tmp_path / 'empty', 0o644)
    os.symlink('/usr/share/zoneinfo/UTC', str(tmp_path / 'localtime'))
    os.symlink('odd | target', str(tmp_path / 'odd'))
    return tmp_path


def test_the_script_reads_kinds_modes_owners_digests_and_targets(tree):
    items = [dict(kind='directory', path=str(tree / 'conf.d')),
             dict(kind='file', path=str(tree / 'a.conf')),
             dict(kind='file', path=str(tree / 'empty')),
             dict(kind='link', path=str(tree / 'localtime')),
             dict(kind='link', path=str(tree / 'odd')),
             dict(kind='file', path=str(tree / "it's missing")),
             dict(kind='file', path=str(tree / 'localtime'))]
    held = run_probe(items)
    assert held[0]['kind'] == 'directory' and held[0]['mode'] == 0o750
    assert held[0]['owner'] == ME and held[0]['uid'] == os.getuid() and held[0]['gid'] == os.getgid()
    assert held[1]['kind'] == 'file' and held[1]['mode'] == 0o640 and held[1]['extra'] == P.digest('a = 1\n')
    assert held[2]['kind'] == 'file' and held[2]['extra'] == P.digest('')
    assert held[3]['kind'] == 'link' and held[3]['extra'] == '/usr/share/zoneinfo/UTC'
    assert held[4]['extra'] == 'odd | target'
    assert held[5] is None
    # A link where a file belongs: no digest of what it points at, and the kind says link.
    assert held[6]['kind'] == 'link' and held[6]['extra'] == ''


def test_a_converged_tree_has_nothing_pending_and_changes_are_named(tree):
    items = P.wanted_items(
        [dict(path=str(tree / 'conf.d'), mode='750', owner=ME, group=str(os.getgid()))],
        [dict(dest=str(tree / 'a.conf'), content='a = 1\n', mode='0640', owner=str(os.getuid()), group=MY_GROUP)],
        [dict(path=str(tree / 'localtime'), src='/usr/share/zoneinfo/UTC')])
    assert P.pending(items, run_probe(items)) == {}
    items = P.wanted_items(
        [dict(path=str(tree / 'conf.d'), mode='0755')],
        [dict(dest=str(tree / 'a.conf'), content='a = 2\n', mode='0640'),
         dict(dest=str(tree / 'new.conf'), content='x\n')],
        [dict(path=str(tree / 'localtime'), src='/usr/share/zoneinfo/Europe/Berlin'),
         dict(path=str(tree / 'a.conf'), src='/elsewhere')])
    assert P.pending(items, run_probe(items)) == {
        str(tree / 'conf.d'): ['mode'], str(tree / 'a.conf'): ['type'], str(tree / 'new.conf'): ['created'],
        str(tree / 'localtime'): ['src']}


def test_parsing_takes_tty_line_ends_and_noise_around_the_markers():
    held = P.parse_probe(0, answer('0|directory|755|root|root|0|0|', '1|missing|'), 2)
    assert held == [dict(kind='directory', mode=0o755, owner='root', group='root', uid=0, gid=0, extra=''), None]


@pytest.mark.parametrize('rc, stdout, count, why', [
    (1, answer('0|missing|'), 1, 'exited'),
    (0, 'sudo: a password is required\n', 1, 'no complete answer'),
    (0, '%s\n0|missing|\n' % P.BEGIN, 1, 'no complete answer'),
    (0, answer('0|missing|'), 2, '1 lines for 2 paths'),
    (0, answer('1|missing|'), 1, 'out of order'),
    (0, answer('0|directory|755|root|root|0'), 1, 'unexpected line'),
    (0, answer('0|directory|rwxr-xr-x|root|root|0|0|'), 1, 'not octal'),
    (0, answer('0|directory|755|root|root|x|0|'), 1, 'not a number'),
    (0, answer('stat: cannot stat'), 1, 'unexpected line'),
    (None, None, 1, 'exited'),
])
def test_an_answer_that_cannot_be_trusted_is_a_probe_error(rc, stdout, count, why):
    with pytest.raises(P.ProbeError, match=why):
        P.parse_probe(rc, stdout, count)


def held(kind='file', mode=0o644, owner='root', group='adm', uid=0, gid=4, extra=''):
    return dict(kind=kind, mode=mode, owner=owner, group=group, uid=uid, gid=gid, extra=extra)


@pytest.mark.parametrize('wanted, found, changes', [
    (dict(mode='0644'), held(), []),
    (dict(mode='644'), held(), []),
    (dict(mode='0600'), held(), ['mode']),
    (dict(mode='4755'), held(mode=0o4755), []),
    (dict(mode=None), held(mode=0o777), []),
    (dict(owner='root', group='adm'), held(), []),
    (dict(owner='0', group='4'), held(), []),
    (dict(owner='mastodon', group='5'), held(), ['owner', 'group']),
    (dict(owner='1000'), held(owner='UNKNOWN', uid=1000), []),
])
def test_modes_and_owners_by_name_or_number(wanted, found, changes):
    item = dict(kind='file', path='/etc/x', sha256=P.digest('x'), **wanted)
    found['extra'] = P.digest('x')
    assert P.differences(item, found) == changes


def test_content_type_and_link_differences():
    item = dict(kind='file', path='/etc/x', sha256=P.digest('new\n'), mode='0644', owner=None, group=None)
    assert P.differences(item, None) == ['created']
    assert P.differences(item, held(extra=P.digest('old\n'), mode=0o600)) == ['content', 'mode']
    # An unreadable file gives no digest: a difference, so the module looks.
    assert P.differences(item, held(extra='')) == ['content']
    assert P.differences(item, held(kind='directory')) == ['type']
    assert P.differences(item, held(kind='link')) == ['type']
    directory = dict(kind='directory', path='/d', mode=None, owner=None, group=None)
    assert P.differences(directory, held(kind='other')) == ['type']
    link = dict(kind='link', path='/etc/localtime', src='/usr/share/zoneinfo/UTC')
    assert P.differences(link, held(kind='link', extra='/usr/share/zoneinfo/UTC')) == []
    assert P.differences(link, held(kind='link', extra='../usr/share/zoneinfo/UTC')) == ['src']
    assert P.differences(link, held(kind='file')) == ['type']
    assert P.differences(link, None) == ['created']


def test_wanted_items_digest_the_content_and_refuse_what_the_probe_cannot_judge():
    [item] = P.wanted_items([], [dict(dest='/etc/timezone', content='Europe/Berlin\n', mode='0644')], [])
    assert item == dict(kind='file', path='/etc/timezone', mode='0644', owner=None, group=None,
                        sha256=P.digest(b'Europe/Berlin\n'))
    for directories, files, links in (
            ([dict(path='relative/dir')], [], []),
            ([dict(path='~/dir')], [], []),
            ([dict(path='$HOME/dir')], [], []),
            ([], [dict(dest='/etc/x', content='x', mode='u+rw')], []),
            ([], [dict(dest='/etc/x', content='x', mode='00644')], []),
            ([], [dict(dest='/etc/x')], []),
            ([], [], [dict(path='/etc/localtime')]),
            ([], [], [dict(path='/etc/localtime', src='')]),
            (['/etc/x'], [], []),
            ('/etc/x', [], [])):
        with pytest.raises(P.ProbeError):
            P.wanted_items(directories, files, links)


def test_the_digest_is_of_the_utf8_text():
    assert P.digest('é\n') == P.digest('é\n'.encode('utf-8'))
    assert P.digest('') == 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'


def test_paths_are_quoted_for_the_shell():
    script = P.probe_command([('file', "/etc/it's; rm -rf /")])
    assert "f 0 '/etc/it'\"'\"'s; rm -rf /'" in script
