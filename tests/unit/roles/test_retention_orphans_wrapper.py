"""The mastodon_retention role's orphan-scan wrapper (roles/mastodon_retention/files/fediops-tootctl-remove-orphans):
an interrupted scan's --start-after hint is kept, the next run resumes from it, a completed run forgets it."""
import os
import subprocess

WRAPPER = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles', 'mastodon_retention', 'files',
                       'fediops-tootctl-remove-orphans')


def fake_tootctl(tmp_path, output, status):
    """A stand-in for `bin/tootctl media remove-orphans` that records its arguments and prints `output`."""
    script = tmp_path / 'tootctl'
    script.write_text('#!/bin/sh\necho "$@" >> %s\nprintf "%%s\\n" "%s"\nexit %d\n' % (tmp_path / 'calls', output, status))
    script.chmod(0o755)
    return str(script)


def run(state, command):
    return subprocess.run(['bash', WRAPPER, str(state), command, 'media', 'remove-orphans'], capture_output=True, text=True, check=False)


def test_an_interrupted_scan_is_resumed_and_a_completed_one_forgotten(tmp_path):
    state = tmp_path / 'orphans.start-after'
    hint = 'If you want to continue from this point, add --start-after=cache/media/000/123.png to your command'
    first = run(state, fake_tootctl(tmp_path, hint, 0))
    assert first.returncode == 1 and state.read_text() == 'cache/media/000/123.png\n'
    second = run(state, fake_tootctl(tmp_path, 'Removed 0 orphans (approx. 0 Bytes)', 0))
    assert second.returncode == 0 and not state.exists()
    calls = (tmp_path / 'calls').read_text().splitlines()
    assert calls == ['media remove-orphans', 'media remove-orphans --start-after cache/media/000/123.png']


def test_a_failed_run_keeps_the_resume_point(tmp_path):
    state = tmp_path / 'orphans.start-after'
    state.write_text('cache/a.png\n')
    result = run(state, fake_tootctl(tmp_path, 'boom', 3))
    assert result.returncode == 3 and state.read_text() == 'cache/a.png\n'
