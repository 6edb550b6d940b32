# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What makes a secret real: the rules for each kind of secret, defined once.

The fleet's secret variables and their kinds are listed once in roles/fleet/defaults/main.yml
(fleet_secret_kinds); every role's preflight checks its own secrets with these rules through the
fediops.mastodon.secret_problems filter, and playbooks/mastodon_secrets.yml uses them to decide which
values are placeholders to replace and to generate values that pass.

A problem names the variable and the rule, never the value (nor any part of it).

Kinds:
  password          at least MIN_PASSWORD_LENGTH characters (database, PgBouncer, Redis users, S3 secret keys,
                    the cache buster, the pgBackRest cipher passphrase)
  secret_key_base   at least 64 hexadecimal characters (Mastodon's `rails secret` gives 128); OTP_SECRET too
  ar_key            at least 32 characters (`bin/rails db:encryption:init` prints 32 alphanumerics)
  vapid_private_key a P-256 private scalar, urlsafe base64 (Webpush.generate_key), matching ...
  vapid_public_key  ... the 65-byte uncompressed public point of that scalar, urlsafe base64
  provided          set by a third party (e.g. an SMTP password): only the placeholder rule
Every kind: not empty, and no known placeholder word (PLACEHOLDERS, case-insensitive).

The elliptic-curve check is pure Python (no dependency on the controller); the unit tests compare it
with the cryptography package.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import re
import secrets
import string

MIN_PASSWORD_LENGTH = 24
MIN_SECRET_KEY_BASE_HEX = 64
MIN_AR_KEY_LENGTH = 32

# Words that mark a value nobody filled in: the example inventory's own placeholders and common
# defaults. Long enough that a random value (hex, alphanumeric, base64) practically never contains one,
# and generate() draws again if it ever does.
PLACEHOLDERS = (
    'change-me', 'change_me', 'changeme', 'changeit', 'change-it',
    'replace-with', 'replace_with', 'replace-me', 'replace_me', 'replaceme',
    'example', 'placeholder', 'todo', 'fixme', 'tbd-', 'dummy',
    'secret123', 'password', 'passw0rd', 'letmein', 'qwerty', '123456', 'xxxxxx',
)

KINDS = ('password', 'secret_key_base', 'ar_key', 'vapid_private_key', 'vapid_public_key', 'provided')

# NIST P-256 (secp256r1)
_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff
_A = _P - 3
_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b
_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
_G = (0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296,
      0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5)


def _add(p, q):
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0] and (p[1] + q[1]) % _P == 0:
        return None
    if p == q:
        m = (3 * p[0] * p[0] + _A) * pow(2 * p[1], _P - 2, _P) % _P
    else:
        m = (q[1] - p[1]) * pow(q[0] - p[0], _P - 2, _P) % _P
    x = (m * m - p[0] - q[0]) % _P
    return x, (m * (p[0] - x) - p[1]) % _P


def _multiply(k, point=_G):
    result = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _b64decode(value):
    """urlsafe base64 with or without padding -> bytes, or None."""
    if not re.match(r'^[A-Za-z0-9_-]+={0,2}$', value):
        return None
    try:
        return base64.urlsafe_b64decode(value.rstrip('=') + '=' * (-len(value.rstrip('=')) % 4))
    except (binascii.Error, ValueError, TypeError):
        return None


def vapid_private_scalar(value):
    raw = _b64decode(value)
    if raw is None or not 1 <= len(raw) <= 32:
        return None
    k = int(binascii.hexlify(raw), 16) if raw else 0
    return k if 1 <= k < _N else None


def vapid_public_point(value):
    raw = _b64decode(value)
    if raw is None or len(raw) != 65 or raw[0:1] != b'\x04':
        return None
    x, y = int(binascii.hexlify(raw[1:33]), 16), int(binascii.hexlify(raw[33:]), 16)
    if x >= _P or y >= _P or (y * y - (x * x * x + _A * x + _B)) % _P:
        return None
    return x, y


def vapid_public_key_of(private_value):
    """The urlsafe base64 uncompressed public point of a VAPID private key (None if it is not one)."""
    k = vapid_private_scalar(private_value)
    if k is None:
        return None
    x, y = _multiply(k)
    return base64.urlsafe_b64encode(b'\x04' + binascii.unhexlify('%064x%064x' % (x, y))).decode('ascii')


def placeholder_in(value):
    lowered = value.lower()
    return any(word in lowered for word in PLACEHOLDERS)


def rule_broken(kind, value):
    """The rule a single value breaks (a sentence without the value), or None."""
    if kind not in KINDS:
        raise ValueError('unknown secret kind %r (known: %s)' % (kind, ', '.join(KINDS)))
    if value is None or (not isinstance(value, bool) and str(value) == ''):
        return 'is empty'
    value = str(value)
    if placeholder_in(value):
        return ('looks like a placeholder (it contains one of the words listed in PLACEHOLDERS, '
                'plugins/module_utils/secret_rules.py): set a real random value')
    if kind == 'password' and len(value) < MIN_PASSWORD_LENGTH:
        return 'is shorter than %d characters (use e.g. openssl rand -hex 24)' % MIN_PASSWORD_LENGTH
    if kind == 'secret_key_base' and not re.match(r'^[0-9a-fA-F]{%d,}$' % MIN_SECRET_KEY_BASE_HEX, value):
        return ('is not at least %d hexadecimal characters (Mastodon\'s `rails secret` gives 128; '
                'playbooks/mastodon_secrets.yml generates one)' % MIN_SECRET_KEY_BASE_HEX)
    if kind == 'ar_key' and len(value) < MIN_AR_KEY_LENGTH:
        return ('is shorter than %d characters (the length `bin/rails db:encryption:init` generates; '
                'playbooks/mastodon_secrets.yml generates one)' % MIN_AR_KEY_LENGTH)
    if kind == 'vapid_private_key' and vapid_private_scalar(value) is None:
        return 'is not a P-256 private key in urlsafe base64 (32 bytes; generate the VAPID pair with playbooks/mastodon_secrets.yml)'
    if kind == 'vapid_public_key' and vapid_public_point(value) is None:
        return ('is not a P-256 public key in urlsafe base64 (a 65-byte uncompressed point on the curve; generate the VAPID '
                'pair with playbooks/mastodon_secrets.yml)')
    return None


def kind_of(name, kinds):
    """A variable's kind from the fleet's list; `buckets[3].secret_key` is listed as `buckets[].secret_key`."""
    if isinstance(kinds, str):
        return kinds
    if name in kinds:
        return kinds[name]
    general = re.sub(r'\[[^\]]*\]', '[]', name)
    if general in kinds:
        return kinds[general]
    raise ValueError('%s is not in the fleet\'s list of secrets (fleet_secret_kinds): add it with its kind' % name)


def problems(values, kinds):
    """Every broken rule of `values` (variable name -> value) as 'NAME rule' sentences, sorted by name.

    `kinds` is the fleet's list (variable name -> kind) or one kind for every value. A VAPID private key
    and public key given together (same name with private/public) must form one key pair.
    """
    found = []
    for name in sorted(values):
        broken = rule_broken(kind_of(name, kinds), values[name])
        if broken:
            found.append('%s %s' % (name, broken))
    for name in sorted(values):
        if kind_of(name, kinds) != 'vapid_private_key':
            continue
        public_name = name.replace('private', 'public')
        if public_name not in values or kind_of(public_name, kinds) != 'vapid_public_key':
            continue
        private, public = str(values[name] or ''), str(values[public_name] or '')
        if rule_broken('vapid_private_key', private) or rule_broken('vapid_public_key', public):
            continue
        if _b64decode(public) != _b64decode(vapid_public_key_of(private)):
            found.append('%s and %s are not one key pair (the public key is not the private key\'s): keep the pair '
                         'generated together' % (name, public_name))
    return found


def generate(kind):
    """A fresh value of a kind, in the format Mastodon's own generators use, that passes the rules.

    vapid_private_key returns the pair as a dict {'private': ..., 'public': ...}.
    """
    alnum = string.ascii_letters + string.digits
    while True:
        if kind == 'secret_key_base':
            value = secrets.token_hex(64)                                     # like SecureRandom.hex(64)
        elif kind == 'ar_key':
            value = ''.join(secrets.choice(alnum) for dummy in range(32))     # like db:encryption:init
        elif kind == 'password':
            value = secrets.token_hex(24)
        elif kind == 'vapid_private_key':                                     # like Webpush.generate_key
            scalar = secrets.randbelow(_N - 1) + 1
            private = base64.urlsafe_b64encode(binascii.unhexlify('%064x' % scalar)).decode('ascii')
            pair = {'private': private, 'public': vapid_public_key_of(private)}
            if not problems({'p_private': pair['private'], 'p_public': pair['public']},
                            {'p_private': 'vapid_private_key', 'p_public': 'vapid_public_key'}):
                return pair
            continue
        else:
            raise ValueError('cannot generate a secret of kind %r' % kind)
        if rule_broken(kind, value) is None:
            return value


def file_values(text):
    """The top-level variables of a vars file: name -> value as a string, or None for an encrypted (!vault) value.

    Used by playbooks/mastodon_secrets.yml to tell a placeholder from a real secret without a vault password:
    an encrypted value counts as set (the preflight checks it once decrypted).
    """
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    vaulted = object()
    _Loader.add_constructor('!vault', lambda loader, node: vaulted)
    try:
        data = yaml.load(text, Loader=_Loader)        # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ValueError('not a YAML vars file (%s)' % getattr(e, 'problem', 'parse error'))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError('not a YAML mapping of variables')
    return dict((str(k), None if v is vaulted else ('' if v is None else str(v))) for k, v in data.items())


def file_without(text, names):
    """The text of a vars file without the top-level entries `names` (the key line and its indented continuation)."""
    out, skipping = [], False
    for line in text.splitlines(True):
        top = re.match(r'^([A-Za-z_][A-Za-z0-9_]*)\s*:', line)
        if top:
            skipping = top.group(1) in names
        elif line.strip() and not line[0].isspace():
            skipping = False
        if not skipping:
            out.append(line)
    return ''.join(out)
