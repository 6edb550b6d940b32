# -*- coding: utf-8 -*-
"""The secret rules (plugins/module_utils/secret_rules.py): each kind, placeholders, the VAPID pair, generation."""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import os
import secrets
import string

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.fediops.mastodon.plugins.module_utils import secret_rules as R

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def _cryptography_pair():
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return (base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, 'big')).decode(),
            base64.urlsafe_b64encode(public).decode())


def _fleet_kinds():
    with open(os.path.join(REPO, 'roles', 'fleet', 'defaults', 'main.yml')) as handle:
        return yaml.safe_load(handle)['fleet_secret_kinds']


def test_every_kind_accepts_what_its_generator_gives():
    for kind in ('password', 'secret_key_base', 'ar_key'):
        assert R.rule_broken(kind, R.generate(kind)) is None
    pair = R.generate('vapid_private_key')
    assert R.problems({'v_private': pair['private'], 'v_public': pair['public']},
                      {'v_private': 'vapid_private_key', 'v_public': 'vapid_public_key'}) == []
    assert len(R.generate('secret_key_base')) == 128 and len(R.generate('ar_key')) == 32


@pytest.mark.parametrize('kind, value, rule', [
    ('password', 'a' * 23, 'shorter than 24'),
    ('password', '', 'is empty'),
    ('password', None, 'is empty'),
    ('password', 'replace-with-a-long-random-password', 'placeholder'),
    ('password', 'x' * 30 + 'CHANGEME', 'placeholder'),
    ('password', 'my-Example-password-that-is-long', 'placeholder'),
    ('secret_key_base', 'CHANGE-ME', 'placeholder'),
    ('secret_key_base', 'ab' * 31, 'at least 64 hexadecimal'),
    ('secret_key_base', 'g' * 128, 'at least 64 hexadecimal'),
    ('ar_key', 'A' * 31, 'shorter than 32'),
    ('vapid_private_key', 'not base64!', 'not a P-256 private key'),
    ('vapid_private_key', base64.urlsafe_b64encode(b'\xff' * 32).decode(), 'not a P-256 private key'),   # >= the group order
    ('vapid_public_key', base64.urlsafe_b64encode(b'\x04' + b'\x01' * 64).decode(), 'not a P-256 public key'),   # off the curve
    ('vapid_public_key', base64.urlsafe_b64encode(b'\x04' * 33).decode(), 'not a P-256 public key'),   # compressed length
    ('provided', 'todo', 'placeholder'),
])
def test_refusals_name_the_rule_never_the_value(kind, value, rule):
    problem = R.problems({'some_var': value}, kind)
    assert len(problem) == 1 and problem[0].startswith('some_var ') and rule in problem[0]
    if value:
        assert value not in problem[0] and value.lower() not in problem[0].lower()


def test_accepts_real_values():
    assert R.problems({'a': secrets.token_hex(12), 'b': secrets.token_hex(32), 'c': 'Zx9' * 11, 'd': 'short but provided'},
                      {'a': 'password', 'b': 'secret_key_base', 'c': 'ar_key', 'd': 'provided'}) == []


def test_vapid_pairs_from_cryptography_and_the_pure_python_math_agree():
    for dummy in range(5):
        private, public = _cryptography_pair()
        assert R.vapid_public_key_of(private) == public
        assert R.problems({'x_vapid_private_key': private, 'x_vapid_public_key': public},
                          {'x_vapid_private_key': 'vapid_private_key', 'x_vapid_public_key': 'vapid_public_key'}) == []
    # Unpadded urlsafe base64, and a private key with a leading zero byte dropped (Ruby's to_bn.to_s(2)), are accepted.
    assert R.vapid_private_scalar(private.rstrip('=')) == R.vapid_private_scalar(private)
    assert R.vapid_private_scalar(base64.urlsafe_b64encode(b'\x01' * 31).decode()) is not None


def test_mismatched_vapid_pair_is_refused_naming_both():
    private, dummy = _cryptography_pair()
    dummy, other_public = _cryptography_pair()
    kinds = {'x_vapid_private_key': 'vapid_private_key', 'x_vapid_public_key': 'vapid_public_key'}
    problem = R.problems({'x_vapid_private_key': private, 'x_vapid_public_key': other_public}, kinds)
    assert problem == ["x_vapid_private_key and x_vapid_public_key are not one key pair (the public key is not the private "
                       "key's): keep the pair generated together"]


def test_kinds_from_the_fleet_list_including_list_items():
    kinds = _fleet_kinds()
    assert set(kinds.values()) <= set(R.KINDS)
    assert R.kind_of('object_storage_buckets[1].secret_key', kinds) == 'password'
    assert R.kind_of('mastodon_config_vapid_public_key', kinds) == 'vapid_public_key'
    with pytest.raises(ValueError, match='not_a_secret is not in the fleet'):
        R.problems({'not_a_secret': 'x'}, kinds)
    with pytest.raises(ValueError, match='unknown secret kind'):
        R.rule_broken('nonsense', 'x')


def test_the_lab_secrets_pass_and_the_example_placeholders_do_not():
    kinds = _fleet_kinds()
    with open(os.path.join(REPO, 'inventories', 'lab', 'group_vars', 'all', 'secrets.yml')) as handle:
        lab = yaml.safe_load(handle)
    # Every literal value but the S3 access keys (names, not secrets); the lab's own names are passwords.
    literal = dict((k, v) for k, v in lab.items() if '{{' not in str(v) and not k.endswith('_access_key'))
    assert len(literal) >= 19, sorted(literal)
    assert R.problems(literal, dict((k, kinds.get(k, 'password')) for k in literal)) == []
    example = os.path.join(REPO, 'inventories', 'example-production', 'group_vars')
    placeholders = []
    for directory, dummy, files in os.walk(example):
        for name in files:
            if name.startswith('vault'):
                with open(os.path.join(directory, name)) as handle:
                    placeholders.extend(v for k, v in (yaml.safe_load(handle) or {}).items()
                                        if k.startswith('vault_') and k != 'vault_placeholder' and isinstance(v, str))
    assert placeholders and all(R.placeholder_in(v) for v in placeholders), placeholders


def test_random_values_practically_never_hold_a_placeholder():
    # The words are long enough that a generated value does not trip them (generate() draws again if one does).
    alnum = string.ascii_letters + string.digits
    hits = [v for v in (''.join(secrets.choice(alnum) for dummy in range(32)) for dummy in range(5000)) if R.placeholder_in(v)]
    assert len(hits) < 5


def test_file_values_and_file_without():
    text = ('---\n# comment\nvault_a: "CHANGE-ME"\nvault_b:\n  4ee5e3\nvault_c: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n'
            'vault_d:\nplain: 3\n')
    assert R.file_values(text) == {'vault_a': 'CHANGE-ME', 'vault_b': '4ee5e3', 'vault_c': None, 'vault_d': '', 'plain': '3'}
    assert R.file_without(text, ['vault_b', 'vault_c']) == '---\n# comment\nvault_a: "CHANGE-ME"\nvault_d:\nplain: 3\n'
    assert R.file_values('') == {}
    with pytest.raises(ValueError, match='not a YAML mapping'):
        R.file_values('- a\n')
