# -*- coding: utf-8 -*-
"""The read_command helpers: the script they build, run by a real /bin/sh, and how output is cleaned."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils.read_command import (
    CHDIR_FAILED_RC, ReadCommandError, bad_env_names, build_script, failure_message, normalise_output, shell_argv,
    wrap,
)


def sh(line, stdin=b''):
    """Run ``line`` as the connection would (under /bin/sh -c): (rc, stdout, stderr)."""
    done = subprocess.run(['/bin/sh', '-c', line], input=stdin, capture_output=True, check=False,
                          env={'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'LC_ALL': 'de_DE.UTF-8'})
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_script_text():
    assert build_script(['readlink', '-f', '/opt/x y']) == (
        "LC_ALL=C; export LC_ALL; exec readlink -f '/opt/x y' </dev/null")
    assert build_script(['pwd'], chdir='/a b', env={'PGPORT': 5433}) == (
        "LC_ALL=C; export LC_ALL; PGPORT=5433; export PGPORT; cd -- '/a b' || exit 125; exec pwd </dev/null")


@pytest.mark.parametrize('arg', ['$(touch /tmp/read-command-injected)', '`id`', "it's", '"; reboot; "', 'a\nb',
                                 '*', '-n', '', ' spaced  out ', '\\'])
def test_each_argument_arrives_verbatim(arg):
    rc, out, err = sh(wrap(build_script(['printf', '%s|', arg, 'next'])))
    assert (rc, out, err) == (0, arg + '|next|', '')
    assert not os.path.exists('/tmp/read-command-injected')


def test_locale_env_and_chdir(tmp_path):
    (tmp_path / 'dir with space').mkdir()
    script = build_script(['/bin/sh', '-c', 'echo "$LC_ALL $PGPORT $QUOTED"; pwd'],
                          chdir=str(tmp_path / 'dir with space'), env={'PGPORT': 5433, 'QUOTED': "it's $HOME"})
    rc, out, err = sh(wrap(script))
    assert (rc, err) == (0, '')
    assert out.splitlines() == ["C 5433 it's $HOME", str(tmp_path / 'dir with space')]


def test_env_lc_all_wins():
    rc, out, dummy = sh(wrap(build_script(shell_argv('echo $LC_ALL'), env={'LC_ALL': 'C.UTF-8'})))
    assert (rc, out) == (0, 'C.UTF-8\n')


def test_shell_string_keeps_pipes_and_redirections():
    rc, out, err = sh(wrap(build_script(shell_argv('echo kept; echo dropped >&2 2>/dev/null; echo gone 2>/dev/null >&2;'
                                                   ' printf "a\\nb\\n" | wc -l; exit 3'))))
    assert rc == 3
    assert out.split() == ['kept', '2']
    assert err == 'dropped\n'


def test_stdin_is_never_read():
    rc, out, dummy = sh(wrap(build_script(['cat'])), stdin=b'from the connection\n')
    assert (rc, out) == (0, '')


def test_missing_chdir_does_not_run_the_command(tmp_path):
    marker = tmp_path / 'ran'
    rc, out, err = sh(wrap(build_script(['touch', str(marker)], chdir=str(tmp_path / 'missing'))))
    assert rc == CHDIR_FAILED_RC
    assert out == '' and 'missing' in err
    assert not marker.exists()


def test_exit_status_and_not_found():
    assert sh(wrap(build_script(['sh', '-c', 'exit 7'])))[0] == 7
    assert sh(wrap(build_script(['no-such-program-here'])))[0] == 127


@pytest.mark.parametrize('env', [{'BAD-NAME': 'x'}, {'1ST': 'x'}, {'A B': 'x'}, {'X;reboot': 'x'}, {'': 'x'}])
def test_bad_env_names_refused(env):
    assert bad_env_names(env) == list(env)
    with pytest.raises(ReadCommandError, match='env'):
        build_script(['true'], env=env)


def test_empty_command_refused():
    with pytest.raises(ReadCommandError):
        build_script([])


@pytest.mark.parametrize('raw, clean', [
    ('', ''),
    (None, ''),
    ('one\r\ntwo\r\n', 'one\ntwo'),
    ('one\r\r\ntwo\r\n\r\n', 'one\ntwo'),
    ('no end', 'no end'),
    ('plain\nlines\n\n', 'plain\nlines'),
    ('progress 10%\rprogress 100%\r\n', 'progress 10%\rprogress 100%'),
    ('\r\nafter a blank line\r\n', '\nafter a blank line'),
])
def test_normalise_output(raw, clean):
    assert normalise_output(raw) == clean


def test_failure_message():
    assert failure_message(0, [0]) is None
    assert failure_message(1, [0, 1]) is None
    assert failure_message(2, [0, 1]) == 'rc 2, which is not one of ok_rcs (0, 1)'
    assert 'could not be entered' in failure_message(CHDIR_FAILED_RC, [0], chdir='/srv/x')
    assert 'could not be entered' not in failure_message(CHDIR_FAILED_RC, [0])
