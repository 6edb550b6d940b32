# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shlex
import subprocess
import shutil

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils import packages
from ansible_collections.fediops.mastodon.plugins.module_utils.packages import ProbeError


def missing(names, rc, stdout, stderr=''):
    return packages.missing_packages(names, packages.parse_probe(rc, stdout, stderr))


def test_probe_command_quotes_format_and_names():
    cmd = packages.probe_command(['postgresql-15', 'g++', 'libc6:amd64', 'postgresql-15'])
    assert cmd == ("LC_ALL=C dpkg-query -W -f='${Package}\\t${db:Status-Abbrev}\\n' -- "
                   "postgresql-15 g++ libc6:amd64")
    # the shell hands dpkg-query the format untouched (no $ expansion) and each name as one word
    assert shlex.split(cmd) == ['LC_ALL=C', 'dpkg-query', '-W', '-f=${Package}\\t${db:Status-Abbrev}\\n', '--',
                                'postgresql-15', 'g++', 'libc6:amd64']


@pytest.mark.parametrize('names', [[], ['nginx', 'nginx=1.22*'], ['$(reboot)']])
def test_probe_command_refuses_what_it_cannot_probe(names):
    with pytest.raises(ValueError):
        packages.probe_command(names)


@pytest.mark.parametrize('name', ['nginx', 'postgresql-15', 'libc6:amd64', 'g++', 'libstdc++6', 'python3.11',
                                  'linux-image-6.1.0-13-amd64', '0ad'])
def test_decidable(name):
    assert packages.decidable(name)


@pytest.mark.parametrize('name', ['nginx=1.22.1-9', 'nginx=1.22*', 'postgresql-*', 'nginx/bookworm-backports',
                                  '/tmp/x.deb', './x.deb', 'x.deb', 'Nginx', 'a', '-nginx', 'nginx ', '', None,
                                  'libc6:', 'libc6:amd64:i386', 'nginx[1]', 'ngin?'])
def test_undecidable(name):
    assert not packages.decidable(name)


def test_all_installed():
    out = 'nginx\tii \npostgresql-15\tii \n'
    assert missing(['postgresql-15', 'nginx'], 0, out) == []


def test_held_counts_as_installed():
    assert missing(['postgresql-15'], 0, 'postgresql-15\thi \n') == []


@pytest.mark.parametrize('status', ['rc ', 'un ', 'iU ', 'iF ', 'iH ', 'iW ', 'it ', 'pn ', 'ri ', 'iiR', 'hiR', 'in '])
def test_not_installed_states(status):
    assert missing(['nginx', 'curl'], 0, 'curl\tii \nnginx\t%s\n' % status) == ['nginx']


def test_unknown_package_on_stderr():
    assert missing(['nginx', 'nosuchpkg', 'curl'], 1, 'curl\tii \nnginx\tii \n',
                   'dpkg-query: no packages found matching nosuchpkg\n') == ['nosuchpkg']


def test_unknown_package_merged_into_stdout_by_a_tty():
    out = 'dpkg-query: no packages found matching nosuchpkg\r\ncurl\tii \r\n'
    assert missing(['curl', 'nosuchpkg'], 1, out) == ['nosuchpkg']


def test_crlf_output():
    assert missing(['curl', 'nginx'], 0, 'curl\tii \r\nnginx\tii \r\n') == []
    assert missing(['curl', 'nginx'], 0, 'curl\tii\r\nnginx\trc\r\n') == ['nginx']


def test_no_trailing_space_or_newline():
    assert missing(['curl'], 0, 'curl\tii') == []


def test_name_not_printed_at_all_is_missing():
    assert missing(['curl', 'nginx'], 0, 'curl\tii \n') == ['nginx']


def test_arch_qualified_name_compares_by_package():
    assert missing(['libc6:amd64', 'curl'], 0, 'curl\tii \nlibc6\tii \n') == []
    assert missing(['libc6:i386'], 1, '', 'dpkg-query: no packages found matching libc6:i386\n') == ['libc6:i386']


def test_several_architectures_all_must_be_installed():
    # libc6 installed for one architecture, only configuration left for another: let apt decide
    assert missing(['libc6'], 0, 'libc6\tii \nlibc6\trc \n') == ['libc6']
    assert missing(['libc6'], 0, 'libc6\tii \nlibc6\tii \n') == []


def test_undecidable_names_are_missing_and_order_kept_once():
    states = packages.parse_probe(0, 'curl\tii \nnginx\tii \n', '')
    assert packages.missing_packages(['nginx=1.22*', 'curl', 'nginx', 'curl', 'x/bookworm-backports'], states) == [
        'nginx=1.22*', 'x/bookworm-backports']


@pytest.mark.parametrize('rc, stdout, stderr', [
    (2, '', 'dpkg-query: error: parsing file /var/lib/dpkg/status'),
    (127, '', 'sh: 1: dpkg-query: not found'),
    (None, '', ''),
    (1, '', 'dpkg-query: something else went wrong'),
    (1, '', ''),
    (0, 'garbage\n', ''),
    (0, 'curl ii\n', ''),
    (0, 'curl\tinstalled\n', ''),
    (0, 'Curl\tii \n', ''),
    (0, 'curl\tii \nsudo: unable to resolve host x\n', ''),
])
def test_untrusted_probe_raises(rc, stdout, stderr):
    with pytest.raises(ProbeError):
        packages.parse_probe(rc, stdout, stderr)


def test_unrelated_stderr_noise_is_ignored_when_output_reads():
    assert missing(['curl'], 0, 'curl\tii \n', 'sudo: unable to resolve host x\n') == []
    assert missing(['curl', 'nosuch'], 1, 'curl\tii \n',
                   'sudo: unable to resolve host x\ndpkg-query: no packages found matching nosuch\n') == ['nosuch']


def test_apt_arguments_pass_only_the_options_set():
    assert packages.apt_arguments(('nginx', 'curl'), dict(update_cache=None, cache_valid_time=None)) == dict(
        name=['nginx', 'curl'], state='present')
    assert packages.apt_arguments(['nginx'], dict(update_cache=False, install_recommends=False,
                                                  default_release='bookworm-backports')) == dict(
        name=['nginx'], state='present', update_cache=False, install_recommends=False,
        default_release='bookworm-backports')


def test_update_cache_when_missing_is_update_cache_without_valid_time():
    assert packages.apt_arguments(['nginx'], dict(update_cache_when_missing=True, install_recommends=False)) == dict(
        name=['nginx'], state='present', install_recommends=False, update_cache=True)
    assert packages.apt_arguments(['nginx'], dict(update_cache_when_missing=False)) == dict(
        name=['nginx'], state='present')


@pytest.mark.parametrize('options, conflicts', [
    (dict(update_cache_when_missing=True), []),
    (dict(update_cache_when_missing=True, update_cache=None, cache_valid_time=None), []),
    (dict(update_cache_when_missing=True, update_cache=True), ['update_cache']),
    (dict(update_cache_when_missing=True, update_cache=False, cache_valid_time=0), ['cache_valid_time', 'update_cache']),
    (dict(update_cache_when_missing=False, update_cache=True, cache_valid_time=3600), []),
    (dict(update_cache=True, cache_valid_time=3600), []),
])
def test_option_conflicts(options, conflicts):
    assert packages.option_conflicts(options) == conflicts


@pytest.mark.skipif(not shutil.which('dpkg-query'), reason='dpkg-query not installed here')
def test_against_the_real_dpkg_query():
    cmd = packages.probe_command(['dpkg', 'fediops-no-such-package'])
    res = subprocess.run(['/bin/sh', '-c', cmd], capture_output=True, text=True, check=False)
    states = packages.parse_probe(res.returncode, res.stdout, res.stderr)
    assert packages.missing_packages(['dpkg', 'fediops-no-such-package'], states) == ['fediops-no-such-package']
