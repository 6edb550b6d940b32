# -*- coding: utf-8 -*-
"""The release layout probe: its shell script run for real on layouts the module itself made, and the plan."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import releases as r
from ansible_collections.fediops.mastodon.plugins.module_utils.release_probe import (
    ReleaseProbeError, parse_probe, probe_command, release_plan,
)

from .test_releases import make_artifact

ENV = '/etc/mastodon/env.production'


def probe(base, version):
    out = subprocess.run(['/bin/sh', '-c', probe_command(base, version)], check=True, capture_output=True, text=True)
    return out.stdout


@pytest.fixture
def layout(tmp_path):
    """Two releases installed and activated by module_utils/releases.py, v2 current, artifacts kept as the role does."""
    base = str(tmp_path / 'mastodon')
    lay = r.Layout(base)
    os.makedirs(os.path.join(base, 'artifacts'))
    digests = {}
    for version in ('v1', 'v2'):
        art = os.path.join(base, 'artifacts', '%s.tar.gz' % version)
        digests[version] = make_artifact(art, files={'bin/rails': version.encode()})
        r.install(lay, version, art, digests[version], strip_components=1)
        r.activate(lay, version)
        os.symlink(ENV, os.path.join(lay.path(version), '.env.production'))
    return base, lay, digests


def test_converged_release_needs_nothing(layout):
    base, _lay, digests = layout
    plan = release_plan(probe(base, 'v2'), base, 'v2', 'sha256:' + digests['v2'].upper(), ENV, 3)
    assert plan == dict(installed=True, env_linked=True, active=True, prune=False, releases=['v1', 'v2'],
                        artifacts=['v1', 'v2'], current='v2', previous='v1')


def test_new_release_needs_copy_unpack_link_and_switch(layout):
    base, _lay, _digests = layout
    plan = release_plan(probe(base, 'v3'), base, 'v3', 'a' * 64, ENV, 3)
    assert (plan['installed'], plan['env_linked'], plan['active'], plan['prune']) == (False, False, False, False)
    assert plan['releases'] == ['v1', 'v2', 'v3']
    assert release_plan(probe(base, 'v3'), base, 'v3', 'a' * 64, ENV, 2)['prune'] is True


def test_other_checksum_env_link_or_current_is_left_to_the_module(layout):
    base, lay, digests = layout
    # Installed from another artifact: the module must run (and refuse).
    assert release_plan(probe(base, 'v2'), base, 'v2', 'b' * 64, ENV, 3)['installed'] is False
    # Environment linked elsewhere.
    assert release_plan(probe(base, 'v2'), base, 'v2', digests['v2'], '/elsewhere', 3)['env_linked'] is False
    # Older release installed but not current.
    assert release_plan(probe(base, 'v1'), base, 'v1', digests['v1'], ENV, 3)['active'] is False
    # A marker without a checksum proves nothing.
    with open(os.path.join(lay.path('v1'), r.MARKER), 'w') as f:
        f.write('{}')
    assert release_plan(probe(base, 'v1'), base, 'v1', digests['v1'], ENV, 3)['installed'] is False


def test_hidden_and_symlinked_entries_are_not_releases(layout):
    base, lay, _digests = layout
    os.makedirs(os.path.join(lay.releases, '.v3.tmp-1'))
    os.symlink(lay.path('v1'), os.path.join(lay.releases, 'alias'))
    assert sorted(parse_probe(probe(base, 'v2'), base)['releases']) == ['v1', 'v2']


def test_links_outside_releases_never_match():
    text = 'link\tcurrent\t/srv/elsewhere/v2\nlink\tprevious\treleases/v1\n'
    found = parse_probe(text, '/opt/mastodon')
    assert (found['current'], found['previous']) == ('?', 'v1')


def test_missing_base_reads_as_empty(tmp_path):
    base = str(tmp_path / 'absent')
    assert probe(base, 'v1') == ''
    plan = release_plan('', base, 'v1', 'a' * 64, ENV, 3)
    assert plan['installed'] is False and plan['releases'] == ['v1'] and plan['artifacts'] == []


@pytest.mark.parametrize('base, version', [('relative', 'v1'), ('/opt/m', '../x'), ('/opt/m', ''), ('/opt/m', 'a b')])
def test_unsafe_arguments_are_refused(base, version):
    with pytest.raises(ReleaseProbeError):
        probe_command(base, version)


def test_quotes_in_base_path_stay_one_word(tmp_path):
    base = str(tmp_path / "it's here")
    os.makedirs(os.path.join(base, 'artifacts'))
    open(os.path.join(base, 'artifacts', 'v1.tar.gz'), 'w').close()
    assert parse_probe(probe(base, 'v1'), base)['artifacts'] == ['v1']
