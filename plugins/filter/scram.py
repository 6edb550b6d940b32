# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: scram_sha256
short_description: A PostgreSQL SCRAM-SHA-256 password verifier, the same on every run
version_added: 0.1.0
description:
  - Returns the C(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>) verifier PostgreSQL keeps in
    C(pg_authid.rolpassword) (RFC 5802 / RFC 7677).
  - The salt is derived from the password and the role name with PBKDF2 (as expensive as the verifier
    itself), so the verifier is stable across runs. That makes C(ALTER ROLE ... PASSWORD '<verifier>')
    idempotent and lets PgBouncer's C(userlist.txt) hold the very verifier Postgres holds, which is
    what PgBouncer needs to log in to Postgres with SCRAM on the client's behalf. No plaintext password
    reaches a server, a SQL log or a file.
  - Pass O(salt) to use a given salt instead.
positional: user
options:
  _input:
    description: The password.
    type: str
    required: true
  user:
    description: The role name (mixed into the derived salt, so two roles with one password differ).
    type: str
    required: true
  iterations:
    description: PBKDF2 iterations (PostgreSQL's default is 4096).
    type: int
    default: 4096
  salt:
    description: Base64 salt to use instead of the derived one.
    type: str
"""

EXAMPLES = r"""
password: "{{ postgresql_app_password | fediops.mastodon.scram_sha256('mastodon') }}"
"""

RETURN = r"""
_value:
  description: The verifier.
  type: str
"""

import base64
import hashlib
import hmac

from ansible.errors import AnsibleFilterError


def _b64(data):
    return base64.b64encode(data).decode('ascii')


def scram_sha256(password, user, iterations=4096, salt=None):
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError('scram_sha256: the password is empty or not a string')
    if not user:
        raise AnsibleFilterError('scram_sha256: a role name is required')
    iterations = int(iterations)
    if iterations < 4096:
        raise AnsibleFilterError('scram_sha256: iterations must be at least 4096')
    secret = password.encode('utf-8')
    if salt is None:
        raw_salt = hashlib.pbkdf2_hmac('sha256', secret, ('fediops-scram-salt:%s' % user).encode('utf-8'), iterations)[:16]
    else:
        try:
            raw_salt = base64.b64decode(salt, validate=True)
        except ValueError as e:
            raise AnsibleFilterError('scram_sha256: salt is not base64: %s' % e)
    salted = hashlib.pbkdf2_hmac('sha256', secret, raw_salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    return 'SCRAM-SHA-256$%d:%s$%s:%s' % (iterations, _b64(raw_salt), _b64(stored_key), _b64(server_key))


class FilterModule(object):
    def filters(self):
        return {'scram_sha256': scram_sha256}
