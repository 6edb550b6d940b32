"""Issue 12: a weak or placeholder secret is refused by the preflight before any change, naming the variable
and the rule, never the value. The rules live in plugins/module_utils/secret_rules.py (unit-tested there);
these runs prove every role's preflight applies them. Cases that fail in the same task share a run (the
preflight stops at the first failing task), so the whole file is four preflight runs.
"""
import base64
import os

import yaml

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .test_preflight import REPO, run_preflight


def _vapid_pair():
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return (base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, "big")).decode(),
            base64.urlsafe_b64encode(public).decode())


def _refused(result, values, *expected):
    assert result.returncode != 0, result.stdout[-3000:]
    text = " ".join(result.stdout.split())
    for sentence in expected:
        assert sentence in text, (sentence, text[-4000:])
    for value in values:
        assert value not in result.stdout and value not in result.stderr, "a secret value was printed"


def test_the_lab_secrets_pass_on_every_host_and_none_is_printed_with_v_and_diff(tmp_path, monkeypatch):
    monkeypatch.setenv("ANSIBLE_VERBOSITY", "1")
    monkeypatch.setenv("ANSIBLE_DIFF_ALWAYS", "1")
    result = run_preflight(tmp_path, limit="all")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count("Refuse weak or placeholder secrets") >= 6
    assert '"msg": "All assertions passed"' in result.stdout          # -v results are printed
    with open(os.path.join(REPO, "inventories", "lab", "group_vars", "all", "secrets.yml")) as handle:
        lab = yaml.safe_load(handle)
    values = dict((k, str(v)) for k, v in lab.items()
                  if "{{" not in str(v) and not k.endswith(("_access_key", "vapid_public_key")))
    assert len(values) >= 18
    printed = sorted(k for k, v in values.items() if v in result.stdout or v in result.stderr)
    assert printed == [], "secret values printed by the preflight (-v) for: %s" % printed


def test_redis_placeholder_and_short_password_are_refused(tmp_path):
    values = {"redis_app_password": "replace-with-a-long-random-password", "redis_admin_password": "f3a9c2e71b4d8065"}
    result = run_preflight(tmp_path, limit="redis-persistent", **values)
    _refused(result, values.values(),
             "redis_admin_password is shorter than 24 characters",
             "redis_app_password looks like a placeholder")


def test_mastodon_placeholder_key_base_mismatched_vapid_and_short_ar_key_are_refused(tmp_path):
    private, dummy = _vapid_pair()
    dummy, public = _vapid_pair()
    values = {"mastodon_config_secret_key_base": "CHANGE-ME",
              "mastodon_config_vapid_private_key": private, "mastodon_config_vapid_public_key": public,
              "mastodon_config_active_record_encryption_primary_key": "Zq7" * 10}
    result = run_preflight(tmp_path, limit="web1", **values)
    _refused(result, values.values(),
             "mastodon_config_active_record_encryption_primary_key is shorter than 32 characters",
             "mastodon_config_secret_key_base looks like a placeholder",
             "mastodon_config_vapid_private_key and mastodon_config_vapid_public_key are not one key pair")


def test_weak_pgbackrest_cipher_is_refused(tmp_path):
    values = {"pgbackrest_cipher_pass": "backup-cipher-2024"}
    result = run_preflight(tmp_path, limit="db1", **values)
    _refused(result, values.values(), "On db1: pgbackrest_cipher_pass is shorter than 24 characters")
