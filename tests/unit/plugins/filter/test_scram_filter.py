"""scram_sha256 against RFC 7677's worked example and PostgreSQL's verifier format."""
import base64
import hashlib
import hmac

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.filter.scram import scram_sha256


def test_rfc7677_example_server_signature():
    # RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
    verifier = scram_sha256('pencil', 'user', salt='W22ZaJ0SNY7soEsUEjb6gQ==')
    head, keys = verifier.split('$')[1:]
    assert head == '4096:W22ZaJ0SNY7soEsUEjb6gQ=='
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(':'))
    auth_message = (b'n=user,r=rOprNGfwEbeRWgbNEkqO,'
                    b'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,'
                    b'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0')
    server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(server_signature) == b'6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='
    client_proof = base64.b64decode('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=')
    client_signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(client_proof, client_signature))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_derived_salt_is_stable_and_per_role():
    a = scram_sha256('s3cret-pass', 'mastodon')
    assert a == scram_sha256('s3cret-pass', 'mastodon')
    assert a != scram_sha256('s3cret-pass', 'replicator')
    assert a.startswith('SCRAM-SHA-256$4096:')
    assert 's3cret' not in a


@pytest.mark.parametrize('password, user', [('', 'mastodon'), (None, 'mastodon'), ('x', '')])
def test_refuses_empty_input(password, user):
    with pytest.raises(AnsibleFilterError):
        scram_sha256(password, user)
