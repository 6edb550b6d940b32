# -*- coding: utf-8 -*-
"""The controller-side logic of lab_ca_certificate with throwaway CAs: which certificates hold, why the others are
signed again, what a new one looks like, and how the probe's output (with a tty's line ends) is read."""

from __future__ import annotations

import datetime
import ipaddress

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.fediops.mastodon.plugins.plugin_utils import lab_ca

NOW = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)


def make_ca(name='test CA', key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=10)).not_valid_after(NOW + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()))
    return cert, key


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode('ascii')


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def request(**kwargs):
    wanted = dict(common_name='mon1', subject_alt_names=['DNS:mon1', 'IP:10.0.0.5'],
                  extended_key_usage=['serverAuth'], valid_days=365, renew_days=30)
    wanted.update(kwargs)
    return lab_ca.Request(**wanted)


@pytest.fixture(scope='module')
def ca():
    return make_ca()


@pytest.fixture(scope='module')
def host_key():
    return ec.generate_private_key(ec.SECP256R1())


def test_a_certificate_it_issued_holds_and_has_the_wanted_shape(ca, host_key):
    ca_cert, ca_key = ca
    text, not_after = lab_ca.issue(host_key.public_key(), ca_cert, ca_key, request(), now=NOW)
    assert not_after == NOW + datetime.timedelta(days=365)
    assert lab_ca.check(text, host_key.public_key(), ca_cert, request(), now=NOW) == (None, not_after)
    cert = x509.load_pem_x509_certificate(text.encode())
    assert cert.subject.rfc4514_string() == 'CN=mon1' and cert.issuer == ca_cert.subject
    assert cert.not_valid_before_utc == NOW - datetime.timedelta(days=1)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not sans.critical
    assert sans.value.get_values_for_type(x509.DNSName) == ['mon1']
    assert sans.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address('10.0.0.5')]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    cert.verify_directly_issued_by(ca_cert)


def test_names_compare_as_sets_ignoring_dns_case(ca, host_key):
    ca_cert, ca_key = ca
    text, dummy = lab_ca.issue(host_key.public_key(), ca_cert, ca_key, request(), now=NOW)
    reordered = request(subject_alt_names=['IP:10.0.0.5', 'DNS:MON1'])
    assert lab_ca.check(text, host_key.public_key(), ca_cert, reordered, now=NOW)[0] is None


@pytest.mark.parametrize('change, reason', [
    (dict(common_name='mon2'), 'its common name is mon1, wanted mon2'),
    (dict(subject_alt_names=['DNS:mon1', 'IP:10.0.0.6']),
     'its subject alternative names are DNS:mon1, IP:10.0.0.5, wanted DNS:mon1, IP:10.0.0.6'),
    (dict(subject_alt_names=['DNS:mon1']), 'its subject alternative names are DNS:mon1, IP:10.0.0.5, wanted DNS:mon1'),
    (dict(extended_key_usage=['clientAuth']), 'its extended key usages are serverAuth, wanted clientAuth'),
    (dict(extended_key_usage=['serverAuth', 'clientAuth']),
     'its extended key usages are serverAuth, wanted clientAuth, serverAuth'),
    (dict(extended_key_usage=[]), 'its extended key usages are serverAuth, wanted none'),
])
def test_a_different_name_or_usage_is_signed_again(ca, host_key, change, reason):
    ca_cert, ca_key = ca
    text, dummy = lab_ca.issue(host_key.public_key(), ca_cert, ca_key, request(), now=NOW)
    assert lab_ca.check(text, host_key.public_key(), ca_cert, request(**change), now=NOW)[0] == reason


def test_another_key_is_signed_again(ca, host_key):
    ca_cert, ca_key = ca
    text, dummy = lab_ca.issue(host_key.public_key(), ca_cert, ca_key, request(), now=NOW)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert lab_ca.check(text, other, ca_cert, request(), now=NOW)[0] == \
        "the certificate is for another key than the host's"


def test_another_issuer_is_signed_again(ca, host_key):
    ca_cert, dummy = ca
    # Another CA with the same name: only the signature tells them apart.
    impostor_cert, impostor_key = make_ca()
    text, dummy = lab_ca.issue(host_key.public_key(), impostor_cert, impostor_key, request(), now=NOW)
    assert lab_ca.check(text, host_key.public_key(), ca_cert, request(), now=NOW)[0] == \
        'the certificate was not signed by the CA'
    other_cert, other_key = make_ca('other CA')
    text, dummy = lab_ca.issue(host_key.public_key(), other_cert, other_key, request(), now=NOW)
    assert lab_ca.check(text, host_key.public_key(), ca_cert, request(), now=NOW)[0] == \
        'the certificate was not signed by the CA'


def test_expiry_within_the_renewal_window_is_signed_again(ca, host_key):
    ca_cert, ca_key = ca
    text, not_after = lab_ca.issue(host_key.public_key(), ca_cert, ca_key, request(valid_days=90), now=NOW)
    later = NOW + datetime.timedelta(days=59)
    assert lab_ca.check(text, host_key.public_key(), ca_cert, request(), now=later)[0] is None
    reason, seen = lab_ca.check(text, host_key.public_key(), ca_cert, request(), now=NOW + datetime.timedelta(days=61))
    assert reason == 'it expires on 2025-08-30 12:00 UTC, within 30 days' and seen == not_after
    assert lab_ca.check(text, host_key.public_key(), ca_cert, request(), now=NOW + datetime.timedelta(days=100))[0] \
        .startswith('it expires on')


def test_missing_or_garbled_certificates_are_signed(ca, host_key):
    ca_cert, dummy = ca
    assert lab_ca.check(None, host_key.public_key(), ca_cert, request()) == ('no certificate yet', None)
    garbled = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'
    assert lab_ca.check(garbled, host_key.public_key(), ca_cert, request()) == ('the certificate does not parse', None)


@pytest.mark.parametrize('ca_key', [rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                    ed25519.Ed25519PrivateKey.generate()])
def test_rsa_and_ed25519_cas_sign_too(host_key, ca_key):
    ca_cert, dummy = make_ca(key=ca_key)
    text, dummy = lab_ca.issue(host_key.public_key(), ca_cert, ca_key, request(), now=NOW)
    assert lab_ca.check(text, host_key.public_key(), ca_cert, request(), now=NOW)[0] is None


def test_a_ca_without_key_identifier_still_gets_an_authority_key_identifier(host_key):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'bare CA')])
    ca_cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=9))
               .sign(key, hashes.SHA256()))
    text, dummy = lab_ca.issue(host_key.public_key(), ca_cert, key, request(), now=NOW)
    cert = x509.load_pem_x509_certificate(text.encode())
    assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == \
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest


def test_load_ca_refuses_a_key_of_another_certificate(ca):
    ca_cert, ca_key = ca
    loaded_cert, loaded_key = lab_ca.load_ca(pem(ca_cert).encode(), key_pem(ca_key))
    assert loaded_cert == ca_cert and loaded_key.private_numbers() == ca_key.private_numbers()
    with pytest.raises(ValueError, match='does not belong'):
        lab_ca.load_ca(pem(ca_cert).encode(), key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ValueError, match='not a PEM certificate'):
        lab_ca.load_ca(b'nonsense')
    with pytest.raises(ValueError, match='not an unencrypted PEM private key'):
        lab_ca.load_ca(pem(ca_cert).encode(), b'nonsense')


@pytest.mark.parametrize('kwargs, message', [
    (dict(common_name=''), 'common_name must not be empty'),
    (dict(valid_days=30), 'valid_days (30) must be more than renew_days (30)'),
    (dict(subject_alt_names=['mon1']), 'is not DNS:<name> or IP:<address>'),
    (dict(subject_alt_names=['IP:mon1']), 'is not an IP address'),
    (dict(subject_alt_names=['URI:https://x']), 'only DNS: and IP: names'),
    (dict(extended_key_usage=['webServer']), 'is not one of'),
])
def test_requests_that_make_no_sense_are_refused(kwargs, message):
    with pytest.raises(ValueError) as caught:
        request(**kwargs)
    assert message in str(caught.value)


def test_usages_by_dotted_oid():
    wanted = request(extended_key_usage=['1.3.6.1.5.5.7.3.1'])
    assert wanted.usage_keys() == {ExtendedKeyUsageOID.SERVER_AUTH.dotted_string}


PUBLIC = '-----BEGIN PUBLIC KEY-----\nMFkw\nAAAA\n-----END PUBLIC KEY-----\n'
CERT = '-----BEGIN CERTIFICATE-----\nMIIB\nBBBB\n-----END CERTIFICATE-----\n'


def tty(text):
    return text.replace('\n', '\r\n')


def test_probe_output_with_a_tty():
    output = tty('@@key 0 998 root systemd-journal-remote 640\n' + PUBLIC + '@@cert 0 0 root root 644\n' + CERT
                 + CERT.replace('MIIB', 'MIIC') + '\n@@ca 0 0 root root 644 ABCDEF\n@@end\n')
    state = lab_ca.parse_probe(output)
    assert state['key']['attrs'] == dict(uid='0', gid='998', user='root', group='systemd-journal-remote', mode=0o640)
    assert state['key']['public_key'] == PUBLIC
    # A chain file: the first certificate is the host's.
    assert state['cert']['pem'] == CERT and state['cert']['attrs']['mode'] == 0o644
    assert state['ca'] == dict(attrs=dict(uid='0', gid='0', user='root', group='root', mode=0o644), sha256='abcdef')


def test_probe_output_of_a_new_host_and_of_unreadable_things():
    new_host = lab_ca.parse_probe('@@key missing\n@@cert missing\n@@ca missing\n@@end\n')
    assert new_host == dict(key=None, cert=None, ca=None)
    state = lab_ca.parse_probe('@@key stat: cannot statx\nCould not read key from x.key\n@@cert 0 0 root root 644\n'
                               'garbage\n@@end\n')
    assert state['key']['attrs'] is None and state['key']['public_key'] is None
    assert state['key']['text'] == 'Could not read key from x.key'
    assert state['cert']['pem'] is None


@pytest.mark.parametrize('output', ['', 'Welcome!\n', '@@key missing\n@@cert missing\n'])
def test_incomplete_probe_output_is_not_trusted(output):
    assert lab_ca.parse_probe(output) is None


ROOT_640 = dict(uid='0', gid='998', user='root', group='seaweedfs', mode=0o640)


@pytest.mark.parametrize('owner, group, mode, differ', [
    ('root', 'seaweedfs', '0640', []),
    ('0', '998', '640', []),
    ('root', 'root', '0640', ['group']),
    ('nobody', 'seaweedfs', '0600', ['owner', 'mode']),
])
def test_attributes_compare_names_with_names_and_ids_with_ids(owner, group, mode, differ):
    assert lab_ca.attributes_differ(ROOT_640, owner, group, mode) == differ


def test_unknown_attributes_differ():
    assert lab_ca.attributes_differ(None, 'root', 'root', '0600') == ['owner', 'group', 'mode']


def test_modes_are_octal_text():
    assert lab_ca.parse_mode('0640') == '0640'
    for bad in ('u=rw', '0986', '12345'):
        with pytest.raises(ValueError):
            lab_ca.parse_mode(bad)
