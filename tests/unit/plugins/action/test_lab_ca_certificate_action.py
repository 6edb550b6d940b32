# -*- coding: utf-8 -*-
"""The lab_ca_certificate action with its commands run by a real /bin/sh and openssl on a temporary directory (with a
tty's line ends, as the connection may give them) and fediops.mastodon.files run in-process: the key made once and
never sent, the module run only to install a new certificate, and nothing at all on a converged host."""

from __future__ import annotations

import datetime
import grp
import os
import pwd
import stat
import subprocess
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.fediops.mastodon.plugins.action import lab_ca_certificate
from ansible_collections.fediops.mastodon.plugins.action.lab_ca_certificate import ActionModule
from ansible_collections.fediops.mastodon.plugins.modules import files
from ansible_collections.fediops.mastodon.plugins.plugin_utils import lab_ca

from ..modules.utils import run_module

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def local_shell(command, sudoable=True):
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return dict(rc=done.returncode, stdout=done.stdout.replace('\n', '\r\n'), stderr=done.stderr)


def write_ca(directory, name='lab CA'):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(exist_ok=True)
    (directory / 'ca.crt').write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / 'ca.key').write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return cert


@pytest.fixture
def paths(tmp_path):
    host = tmp_path / 'host'
    host.mkdir()
    controller = tmp_path / 'controller'
    ca_cert = write_ca(controller)
    return dict(host=host, controller=controller, ca_cert=ca_cert, key=host / 'server.key', cert=host / 'server.crt',
                ca=host / 'ca.crt')


def task_args(paths, **changes):
    args = dict(key_path=str(paths['key']), cert_path=str(paths['cert']), common_name='mon1',
                subject_alt_names=['DNS:mon1', 'IP:10.0.0.5'], extended_key_usage=['serverAuth'],
                owner=OWNER, group=GROUP, key_mode='0640', valid_days=365, renew_days=30,
                ca_cert=str(paths['controller'] / 'ca.crt'), ca_key=str(paths['controller'] / 'ca.key'))
    args.update(changes)
    return args


def make_action(args, shell=local_shell, check_mode=False, diff=False):
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    task.diff = diff
    task.action = 'fediops.mastodon.lab_ca_certificate'
    action = ActionModule(task, MagicMock(), PlayContext(), loader=None, templar=None, shared_loader_obj=None)
    action._low_level_execute_command = MagicMock(side_effect=shell)
    action._find_needle = MagicMock(side_effect=lambda dirname, needle: needle)

    def execute_module(module_name, module_args, task_vars):
        assert module_name == 'fediops.mastodon.files'
        result = run_module(files, module_args, check_mode=check_mode, diff=diff)
        result['invocation'] = dict(module_args=module_args)
        return result

    action._execute_module = MagicMock(side_effect=execute_module)
    return action


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def load_cert(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_new_host_gets_a_key_and_a_certificate_then_nothing_runs(paths):
    action = make_action(task_args(paths))
    first = action.run(task_vars={})
    assert first['changed'] is True
    assert first['reason'] == 'no key yet at %s; no certificate yet' % paths['key']
    assert first['changed_files'] == [str(paths['cert'])] and 'invocation' not in first
    assert mode_of(paths['key']) == 0o640 and mode_of(paths['cert']) == 0o644
    # The private key never travels: only the certificate goes to the module.
    sent = repr(action._execute_module.call_args)
    assert 'PRIVATE KEY' not in sent and 'BEGIN CERTIFICATE' in sent
    cert = load_cert(paths['cert'])
    cert.verify_directly_issued_by(paths['ca_cert'])
    host_key = serialization.load_pem_private_key(paths['key'].read_bytes(), password=None)
    assert isinstance(host_key, ec.EllipticCurvePrivateKey) and host_key.curve.name == 'secp256r1'
    assert cert.public_key() == host_key.public_key()
    assert cert.subject.rfc4514_string() == 'CN=mon1'
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert first['not_after'] == lab_ca.not_after_of(cert).strftime('%Y-%m-%dT%H:%M:%SZ')

    action = make_action(task_args(paths))
    second = action.run(task_vars={})
    assert second == dict(changed=False, cert_path=str(paths['cert']), not_after=first['not_after'], reason='')
    action._execute_module.assert_not_called()
    assert action._low_level_execute_command.call_count == 1
    (command,), kwargs = action._low_level_execute_command.call_args
    assert command.startswith('/bin/sh -c ') and kwargs == dict(sudoable=True)


def test_check_mode_on_a_new_host_makes_nothing(paths):
    action = make_action(task_args(paths), check_mode=True, diff=True)
    result = action.run(task_vars={})
    assert result['changed'] is True and result['reason'] == 'no key yet at %s' % paths['key']
    assert result['not_after'] is None and result['diff'][0]['after'].startswith('new EC P-256 private key')
    assert not paths['key'].exists() and not paths['cert'].exists()
    action._execute_module.assert_not_called()


def test_check_mode_reports_a_renewal_without_signing(paths):
    make_action(task_args(paths)).run(task_vars={})
    before = paths['cert'].read_bytes()
    action = make_action(task_args(paths, common_name='mon2'), check_mode=True)
    result = action.run(task_vars={})
    assert result['changed'] is True and result['reason'] == 'its common name is mon1, wanted mon2'
    assert result['not_after'] is None
    assert paths['cert'].read_bytes() == before
    action._execute_module.assert_not_called()
    converged = make_action(task_args(paths), check_mode=True)
    assert converged.run(task_vars={})['changed'] is False


@pytest.mark.parametrize('changes, reason', [
    (dict(subject_alt_names=['DNS:mon1', 'DNS:logs.example', 'IP:10.0.0.5']),
     'its subject alternative names are DNS:mon1, IP:10.0.0.5, wanted DNS:logs.example, DNS:mon1, IP:10.0.0.5'),
    (dict(extended_key_usage=['clientAuth']), 'its extended key usages are serverAuth, wanted clientAuth'),
    (dict(renew_days=366, valid_days=400), 'within 366 days'),
])
def test_a_certificate_that_no_longer_holds_is_signed_again_for_the_same_key(paths, changes, reason):
    make_action(task_args(paths)).run(task_vars={})
    key_before = paths['key'].read_bytes()
    action = make_action(task_args(paths, **changes))
    result = action.run(task_vars={})
    assert result['changed'] is True and reason in result['reason']
    assert result['changed_files'] == [str(paths['cert'])]
    assert paths['key'].read_bytes() == key_before
    assert make_action(task_args(paths, **changes)).run(task_vars={})['changed'] is False


def test_a_certificate_of_another_ca_is_replaced(paths, tmp_path):
    make_action(task_args(paths)).run(task_vars={})
    other = write_ca(tmp_path / 'other', name='lab CA')
    args = task_args(paths, ca_cert=str(tmp_path / 'other' / 'ca.crt'), ca_key=str(tmp_path / 'other' / 'ca.key'))
    result = make_action(args).run(task_vars={})
    assert result['reason'] == 'the certificate was not signed by the CA'
    load_cert(paths['cert']).verify_directly_issued_by(other)


def test_a_drifted_key_mode_is_put_right_without_a_module(paths):
    make_action(task_args(paths)).run(task_vars={})
    os.chmod(paths['key'], 0o644)
    cert_before = paths['cert'].read_bytes()
    action = make_action(task_args(paths), diff=True)
    result = action.run(task_vars={})
    assert result['changed'] is True and result['reason'] == ''
    assert mode_of(paths['key']) == 0o640 and paths['cert'].read_bytes() == cert_before
    action._execute_module.assert_not_called()
    assert 'mode: 0644' in result['diff'][0]['before'] and 'mode: 0640' in result['diff'][0]['after']


def test_a_drifted_certificate_mode_reinstalls_the_same_certificate(paths):
    make_action(task_args(paths)).run(task_vars={})
    os.chmod(paths['cert'], 0o600)
    cert_before = paths['cert'].read_bytes()
    result = make_action(task_args(paths)).run(task_vars={})
    assert result['changed'] is True and result['reason'] == '' and result['changed_files'] == [str(paths['cert'])]
    assert mode_of(paths['cert']) == 0o644 and paths['cert'].read_bytes() == cert_before


def test_the_ca_certificate_is_installed_beside_and_kept_in_step(paths):
    args = task_args(paths, ca_cert_path=str(paths['ca']))
    first = make_action(args).run(task_vars={})
    assert first['changed_files'] == [str(paths['cert']), str(paths['ca'])]
    assert paths['ca'].read_bytes() == (paths['controller'] / 'ca.crt').read_bytes()
    action = make_action(args)
    assert action.run(task_vars={})['changed'] is False
    action._execute_module.assert_not_called()
    paths['ca'].write_text('stale\n')
    result = make_action(args).run(task_vars={})
    assert result['changed'] is True and result['changed_files'] == [str(paths['ca'])] and result['reason'] == ''
    assert paths['ca'].read_bytes() == (paths['controller'] / 'ca.crt').read_bytes()


def encrypted_key():
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b'secret')).decode('ascii')


# An encrypted key would make openssl ask for its passphrase on the tty; it must fail at once instead.
# The key is made in the test, not at collection: pytest-xdist's workers must collect the same parameters.
@pytest.mark.parametrize('kind', ['garbage', 'encrypted'])
def test_an_unreadable_key_fails_and_is_left_alone(paths, kind):
    content = 'not a key\n' if kind == 'garbage' else encrypted_key()
    paths['key'].write_text(content)
    with pytest.raises(AnsibleActionFail, match='openssl cannot read the key'):
        make_action(task_args(paths)).run(task_vars={})
    assert paths['key'].read_text() == content


@pytest.mark.parametrize('answer', [
    dict(rc=1, stdout='', stderr='sudo: a password is required'),
    dict(rc=0, stdout='Welcome!\r\n', stderr=''),
    dict(rc=0, stdout=None, stderr=''),
])
def test_an_answer_that_cannot_be_trusted_fails(paths, answer):
    action = make_action(task_args(paths), shell=lambda command, sudoable=True: answer)
    with pytest.raises(AnsibleActionFail, match='could not read the key and certificate'):
        action.run(task_vars={})
    action._execute_module.assert_not_called()


def test_a_ca_key_of_another_certificate_fails_before_signing(paths, tmp_path):
    write_ca(tmp_path / 'other')
    args = task_args(paths, ca_key=str(tmp_path / 'other' / 'ca.key'))
    with pytest.raises(AnsibleActionFail, match='does not belong'):
        make_action(args).run(task_vars={})
    assert not paths['cert'].exists()


@pytest.mark.parametrize('changes, message', [
    (dict(valid_days=20), 'must be more than renew_days'),
    (dict(subject_alt_names=['mon1']), 'DNS:<name> or IP:<address>'),
    (dict(key_mode='u=rw'), 'not an octal mode'),
    (dict(ca_cert='/nonexistent/ca.crt'), 'cannot read the CA certificate'),
])
def test_bad_arguments_fail_before_touching_the_host(paths, changes, message):
    action = make_action(task_args(paths, **changes))
    if changes.get('ca_cert'):
        action._find_needle = MagicMock(side_effect=lab_ca_certificate.AnsibleError('not found'))
    with pytest.raises(AnsibleActionFail, match=message):
        action.run(task_vars={})
    action._low_level_execute_command.assert_not_called()


def test_without_cryptography_it_says_so(paths, monkeypatch):
    monkeypatch.setattr(lab_ca, 'HAS_CRYPTOGRAPHY', False)
    monkeypatch.setattr(lab_ca, 'CRYPTOGRAPHY_IMPORT_ERROR', ImportError('No module named cryptography'))
    with pytest.raises(AnsibleActionFail, match='needs the Python library cryptography'):
        make_action(task_args(paths)).run(task_vars={})


def test_a_failing_install_is_reported(paths):
    action = make_action(task_args(paths))
    action._execute_module = MagicMock(return_value=dict(failed=True, msg='no such user', invocation={}))
    result = action.run(task_vars={})
    assert result['failed'] is True and result['msg'] == 'no such user' and 'invocation' not in result
