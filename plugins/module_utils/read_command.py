# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers of the fediops.mastodon.read_command action: the shell line it runs and how its output is read.

Nothing here talks to a host, so the quoting and the output clean-up are tested without one.
"""

from __future__ import annotations

import re
import shlex

# The exit status of the script when chdir cannot be entered: the command did not run at all. Shells use 126 and 127
# for "cannot execute" and "not found"; 125 is the next free one below them.
CHDIR_FAILED_RC = 125

# What the shell accepts as a variable name in `export NAME=value`.
_ENV_NAME = re.compile(r'\A[A-Za-z_][A-Za-z0-9_]*\Z')
# A terminal turns each "\n" into "\r\n" (and a program's own "\r\n" into "\r\r\n").
_TTY_LINE_END = re.compile(r'\r+\n')


class ReadCommandError(ValueError):
    """The task's options cannot make a command (the message says which option and why)."""


def bad_env_names(env):
    """The names in ``env`` a POSIX shell cannot export, sorted."""
    return sorted(str(name) for name in env if not _ENV_NAME.match(str(name)))


def build_script(argv, tag, chdir=None, env=None):
    """The shell script that runs ``argv`` in the C locale, with ``env`` exported, from ``chdir``.

    LC_ALL=C comes first so callers parse untranslated messages; an LC_ALL in ``env`` is exported after it and wins.
    The command reads /dev/null, never the connection's stdin. Its stdout goes out as it comes; its stderr is held
    and printed after a line holding ``tag`` (see split_output), because a connection that runs the script on a
    terminal merges the two streams there. The script exits with the command's status, or with CHDIR_FAILED_RC
    when ``chdir`` cannot be entered (then the command does not run).
    """
    if not argv:
        raise ReadCommandError('the command is empty')
    env = env or {}
    bad = bad_env_names(env)
    if bad:
        raise ReadCommandError('env: not a shell variable name: %s' % ', '.join(repr(name) for name in bad))
    steps = ['LC_ALL=C', 'export LC_ALL']
    for name, value in env.items():
        steps.append('%s=%s' % (name, shlex.quote(str(value))))
        steps.append('export %s' % name)
    # Inside the command substitution stderr is the capture and stdout the script's own (kept on fd 3 for this).
    # A variable assignment takes the status of its command substitution, the command's own status.
    inner = ['exec 2>&1 >&3 3>&-']
    if chdir:
        inner.append('cd -- %s || exit %d' % (shlex.quote(chdir), CHDIR_FAILED_RC))
    inner.append('exec %s </dev/null' % ' '.join(shlex.quote(str(arg)) for arg in argv))
    steps.append('exec 3>&1')
    steps.append('err=$(%s)' % '; '.join(inner))
    steps.append('rc=$?')
    steps.append("printf '\\n%%s\\n%%s\\n' %s \"$err\"" % shlex.quote(tag))
    steps.append('exit $rc')
    return '; '.join(steps)


def split_output(stdout, stderr, tag):
    """(stdout, stderr) of the command, from what the connection returned for a build_script script.

    The command's stderr follows the last line holding ``tag``; what the connection itself wrote to stderr (ssh,
    sudo) is added after it. Without the tag line (the script was cut short) all of stdout is the command's.
    Both come back through normalise_output.
    """
    stdout = _TTY_LINE_END.sub('\n', stdout or '')
    head, marker, tail = stdout.rpartition('\n%s\n' % tag)
    if marker:
        out, err = head, tail
    else:
        out, err = stdout, ''
    err = '\n'.join(part for part in (normalise_output(err), normalise_output(stderr)) if part)
    return normalise_output(out), err


def shell_argv(cmd):
    """The argv that runs the shell string ``cmd`` (the caller's pipes, redirections and variables work)."""
    return ['/bin/sh', '-c', cmd]


def wrap(script):
    """The line handed to the connection: ``script`` under /bin/sh, whatever the login shell of the user is."""
    return '/bin/sh -c %s' % shlex.quote(script)


def normalise_output(text):
    """``text`` without the carriage returns a terminal adds at line ends, and without trailing line ends.

    A carriage return inside a line (a progress meter's) stays. The trailing line ends go as
    ansible.builtin.command drops them, so ``stdout`` compares equal to what that module returned.
    """
    return _TTY_LINE_END.sub('\n', text or '').rstrip('\r\n')


def failure_message(rc, ok_rcs, chdir=None):
    """Why the result counts as failed, or None when ``rc`` is one of ``ok_rcs``."""
    if rc in ok_rcs:
        return None
    if chdir and rc == CHDIR_FAILED_RC:
        return ('rc %d: the command exited so, or the directory %s could not be entered (then it did not run);'
                ' see stderr' % (rc, chdir))
    return 'rc %d, which is not one of ok_rcs (%s)' % (rc, ', '.join(str(code) for code in ok_rcs))
