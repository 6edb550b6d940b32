"""playbooks/mastodon_secrets.yml replaces placeholders, keeps real values, and refuses real values that break a rule.

It only writes a vars file on the controller, so it runs here for real (plain-text mode, as for the lab).
"""
import os
import re
import shutil

import yaml

from ansible_collections.fediops.mastodon.plugins.module_utils import secret_rules

from .test_example_production import _run
from .test_preflight import REPO, VENV_BIN

EXAMPLE = os.path.join(REPO, "inventories", "example-production", "group_vars", "mastodon", "vault.yml")
NAMES = ["secret_key_base", "vapid_private_key", "vapid_public_key", "active_record_encryption_deterministic_key",
         "active_record_encryption_key_derivation_salt", "active_record_encryption_primary_key"]


def _secrets(tmp_path, target, *extra):
    return _run(tmp_path, ["-i", "localhost,", os.path.join(REPO, "playbooks", "mastodon_secrets.yml"),
                           "-e", "mastodon_secrets_file=%s" % target, "-e", "mastodon_secrets_version=4.5.3",
                           "-e", "mastodon_secrets_plaintext=true",
                           "-e", "ansible_python_interpreter=%s" % os.path.join(VENV_BIN, "python"), "-v", "--diff"] + list(extra))


def _check(values):
    kinds = dict(("vault_mastodon_" + n, k) for n, k in
                 (("secret_key_base", "secret_key_base"), ("vapid_private_key", "vapid_private_key"),
                  ("vapid_public_key", "vapid_public_key")))
    kinds.update(("vault_mastodon_" + n, "ar_key") for n in NAMES if n.startswith("active_record"))
    return secret_rules.problems(dict((k, values[k]) for k in kinds), kinds)


def test_placeholders_of_the_example_inventory_are_replaced_then_kept(tmp_path):
    target = tmp_path / "vault.yml"
    shutil.copy(EXAMPLE, str(target))
    result = _secrets(tmp_path, target)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    assert "CHANGE-ME" not in target.read_text()
    values = yaml.safe_load(target.read_text())
    assert sorted(values) == sorted("vault_mastodon_" + n for n in NAMES)
    assert _check(values) == []
    for value in values.values():
        assert value not in result.stdout and value not in result.stderr, "a generated secret was printed (-v --diff)"
    assert target.read_text().startswith("---\n# Encrypt with")          # the rest of the file is kept
    # A second run finds every secret real and changes nothing.
    before = target.read_text()
    again = _secrets(tmp_path, target)
    assert again.returncode == 0 and "nothing was generated or changed" in again.stdout, again.stdout[-3000:]
    assert target.read_text() == before


def test_lab_secrets_are_real_and_kept(tmp_path):
    target = tmp_path / "secrets.yml"
    shutil.copy(os.path.join(REPO, "inventories", "lab", "group_vars", "all", "secrets.yml"), str(target))
    before = target.read_text()
    result = _secrets(tmp_path, target, "-e", "mastodon_secrets_prefix=mastodon_config_")
    assert result.returncode == 0 and "nothing was generated or changed" in result.stdout, result.stdout[-3000:]
    assert target.read_text() == before


def test_real_value_that_breaks_its_rule_is_refused_not_replaced(tmp_path):
    target = tmp_path / "vault.yml"
    text = open(EXAMPLE).read().replace('vault_mastodon_secret_key_base: "CHANGE-ME"', 'vault_mastodon_secret_key_base: "abc123abc123"')
    target.write_text(text)
    result = _secrets(tmp_path, target)
    assert result.returncode != 0
    message = " ".join(result.stdout.split())
    assert "vault_mastodon_secret_key_base is not at least 64 hexadecimal characters" in message, message[-3000:]
    assert "abc123abc123" not in result.stdout
    assert target.read_text() == text


def test_half_a_placeholder_vapid_pair_is_refused(tmp_path):
    target = tmp_path / "vault.yml"
    pair = secret_rules.generate("vapid_private_key")
    text = re.sub(r'vault_mastodon_vapid_public_key: "CHANGE-ME"', 'vault_mastodon_vapid_public_key: "%s"' % pair["public"],
                  open(EXAMPLE).read())
    target.write_text(text)
    result = _secrets(tmp_path, target)
    assert result.returncode != 0
    assert "has one VAPID key without the other" in " ".join(result.stdout.split())
    assert target.read_text() == text
