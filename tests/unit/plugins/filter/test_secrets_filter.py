# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.filter.secrets import FilterModule

F = FilterModule().filters()
AR = ['ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY', 'ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT',
      'ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY']


def test_encryption_keys_from_4_3_and_otp_before_4_4():
    assert not set(AR) & set(F['mastodon_required_secrets']('4.2.10'))
    assert set(AR + ['OTP_SECRET']) <= set(F['mastodon_required_secrets']('v4.3.0'))
    assert 'OTP_SECRET' not in F['mastodon_required_secrets']('4.5.0')


def test_missing_names_only():
    env = {'SECRET_KEY_BASE': 's', 'VAPID_PRIVATE_KEY': 'p', 'VAPID_PUBLIC_KEY': 'q',
           'ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY': 'd', 'ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT': ''}
    missing = F['mastodon_missing_secrets'](env, '4.5.0')
    assert missing == ['ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT', 'ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY']


def test_bad_input():
    with pytest.raises(AnsibleFilterError, match='not a version'):
        F['mastodon_required_secrets']('latest')
    with pytest.raises(AnsibleFilterError, match='as a dict'):
        F['mastodon_missing_secrets'](['SECRET_KEY_BASE'], '4.5.0')
