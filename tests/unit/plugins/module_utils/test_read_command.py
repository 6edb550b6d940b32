# -*- coding: utf-8 -*-
"""The read_command helpers: the script they build, run by a real /bin/sh (on pipes and on a terminal), and how
its output is read back."""

from __future__ import annotations

import os
import pty
import subprocess

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils.read_command import (
    CHDIR_FAILED_RC, ReadCommandError, bad_env_names, build_script, failure_message, normalise_output, shell_argv,
    split_output, wrap,
)

TAG = 'tag-0123456789abcdef'
ENV = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'LC_ALL': 'de_DE.UTF-8'}


def sh(line, stdin=b''):
    """Run ``line`` as a connection with pipes would (under /bin/sh -c): (rc, stdout, stderr) as returned."""
    done = subprocess.run(['/bin/sh', '-c', line], input=stdin, capture_output=True, check=False, env=ENV)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def sh_on_tty(line):
    """Run ``line`` as ssh -tt would: stdin, stdout and stderr all on one terminal. (rc, what the terminal showed)."""
    primary, secondary = pty.openpty()
    with subprocess.Popen(['/bin/sh', '-c', line], stdin=secondary, stdout=secondary, stderr=secondary,
                          env=ENV) as proc:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the terminal closed with the last process on it
                break
            if not chunk:
                break
            chunks.append(chunk)
        rc = proc.wait()
    os.close(primary)
    return rc, b''.join(chunks).decode()


def run(argv, **kwargs):
    """(rc, stdout, stderr) of ``argv`` through the script, read back as the action does."""
    rc, out, err = sh(wrap(build_script(argv, TAG, **kwargs)))
    return (rc,) + split_output(out, err, TAG)


def test_script_text():
    assert build_script(['readlink', '-f', '/opt/x y'], TAG) == (
        "LC_ALL=C; export LC_ALL; exec 3>&1; err=$(exec 2>&1 >&3 3>&-; exec readlink -f '/opt/x y' </dev/null);"
        " rc=$?; printf '\\n%s\\n%s\\n' tag-0123456789abcdef \"$err\"; exit $rc")
    assert build_script(['pwd'], TAG, chdir='/a b', env={'PGPORT': 5433}).startswith(
        "LC_ALL=C; export LC_ALL; PGPORT=5433; export PGPORT; exec 3>&1; err=$(exec 2>&1 >&3 3>&-;"
        " cd -- '/a b' || exit 125; exec pwd </dev/null);")


@pytest.mark.parametrize('arg', ['$(touch /tmp/read-command-injected)', '`id`', "it's", '"; reboot; "', 'a\nb',
                                 '*', '-n', '', ' spaced  out ', '\\', '%s %d'])
def test_each_argument_arrives_verbatim(arg):
    assert run(['printf', '%s|', arg, 'next']) == (0, arg + '|next|', '')
    assert not os.path.exists('/tmp/read-command-injected')


def test_locale_env_and_chdir(tmp_path):
    (tmp_path / 'dir with space').mkdir()
    rc, out, err = run(['/bin/sh', '-c', 'echo "$LC_ALL $PGPORT $QUOTED"; pwd'], chdir=str(tmp_path / 'dir with space'),
                       env={'PGPORT': 5433, 'QUOTED': "it's $HOME"})
    assert (rc, err) == (0, '')
    assert out.splitlines() == ["C 5433 it's $HOME", str(tmp_path / 'dir with space')]


def test_env_lc_all_wins():
    assert run(shell_argv('echo $LC_ALL'), env={'LC_ALL': 'C.UTF-8'}) == (0, 'C.UTF-8', '')


def test_shell_string_keeps_pipes_and_redirections():
    rc, out, err = run(shell_argv('echo kept; echo dropped >&2; echo gone 2>/dev/null >&2; printf "a\\nb\\n" | wc -l;'
                                  ' exit 3'))
    assert rc == 3
    assert out.split() == ['kept', '2']
    assert err == 'dropped'


def test_stderr_apart_on_pipes():
    rc, out, err = sh(wrap(build_script(shell_argv('echo out1; echo err1 >&2; echo out2; echo err2 >&2'), TAG)))
    assert rc == 0 and err == ''  # the command's stderr travels on stdout, after the tag
    assert split_output(out, err, TAG) == ('out1\nout2', 'err1\nerr2')


def test_stderr_apart_on_a_terminal():
    line = wrap(build_script(shell_argv('echo out1; echo err1 >&2; printf "no end"; echo err2 >&2; exit 2'), TAG))
    rc, shown = sh_on_tty(line)
    assert rc == 2
    assert '\r\n' in shown
    assert split_output(shown, '', TAG) == ('out1\nno end', 'err1\nerr2')


def test_connection_stderr_comes_after_the_commands():
    assert split_output('out\n\n%s\ncommand says\n' % TAG, 'ssh says\n', TAG) == ('out', 'command says\nssh says')
    assert split_output('\n%s\n\n' % TAG, 'ssh says\n', TAG) == ('', 'ssh says')


def test_without_the_tag_everything_is_stdout():
    assert split_output('[sudo] password for x:\r\nsomething\r\n', 'Shared connection closed.\r\n', TAG) == (
        '[sudo] password for x:\nsomething', 'Shared connection closed.')


def test_a_command_printing_the_tag_text_cannot_hide_its_output():
    out = 'looks like\n%s\nbut is output\n\n%s\nreal err\n' % (TAG, TAG)
    assert split_output(out, '', TAG) == ('looks like\n%s\nbut is output' % TAG, 'real err')


def test_stdin_is_never_read():
    assert run(['cat'])[:2] == (0, '')
    rc, out, err = sh(wrap(build_script(['cat'], TAG)), stdin=b'from the connection\n')
    assert rc == 0 and split_output(out, err, TAG) == ('', '')


def test_missing_chdir_does_not_run_the_command(tmp_path):
    marker = tmp_path / 'ran'
    rc, out, err = run(['touch', str(marker)], chdir=str(tmp_path / 'missing'))
    assert rc == CHDIR_FAILED_RC
    assert out == '' and 'missing' in err
    assert not marker.exists()


def test_exit_status_and_not_found():
    assert run(['sh', '-c', 'exit 7'])[0] == 7
    rc, out, err = run(['no-such-program-here'])
    assert (rc, out) == (127, '') and 'no-such-program-here' in err


@pytest.mark.parametrize('env', [{'BAD-NAME': 'x'}, {'1ST': 'x'}, {'A B': 'x'}, {'X;reboot': 'x'}, {'': 'x'}])
def test_bad_env_names_refused(env):
    assert bad_env_names(env) == list(env)
    with pytest.raises(ReadCommandError, match='env'):
        build_script(['true'], TAG, env=env)


def test_empty_command_refused():
    with pytest.raises(ReadCommandError):
        build_script([], TAG)


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
