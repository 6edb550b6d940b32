# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side logic of fediops.mastodon.lab_ca_certificate: the probe's shell text and its parsing, whether the
host's certificate still holds, and signing a new one with the lab CA.

Nothing here talks to a host, so it is tested with throwaway CAs (tests/unit/plugins/plugin_utils/test_lab_ca.py).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import shlex

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as exc:  # the action fails with this when it runs; importing must not
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

# The curve of the keys the roles made with `openssl genpkey` before this plugin, so existing keys stay as they are.
KEY_ALGORITHM_ARGS = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
# A certificate file larger than this is not a PEM certificate; the probe does not ship it back whole.
CERT_READ_LIMIT = 65536
PROBE_END = '@@end'

if HAS_CRYPTOGRAPHY:
    # openssl's short names, as the roles wrote them in `openssl req -addext extendedKeyUsage=...`.
    EKU_BY_NAME = {
        'serverAuth': ExtendedKeyUsageOID.SERVER_AUTH,
        'clientAuth': ExtendedKeyUsageOID.CLIENT_AUTH,
        'codeSigning': ExtendedKeyUsageOID.CODE_SIGNING,
        'emailProtection': ExtendedKeyUsageOID.EMAIL_PROTECTION,
        'timeStamping': ExtendedKeyUsageOID.TIME_STAMPING,
        'OCSPSigning': ExtendedKeyUsageOID.OCSP_SIGNING,
    }
else:  # pragma: no cover - without cryptography nothing below is called
    EKU_BY_NAME = {}


class Request:
    """What the host's certificate must say: names, usages, lifetime and renewal window."""

    def __init__(self, common_name, subject_alt_names, extended_key_usage, valid_days, renew_days):
        if not common_name:
            raise ValueError('common_name must not be empty')
        if valid_days <= renew_days:
            # Otherwise every run would find the new certificate inside the renewal window and sign again.
            raise ValueError('valid_days (%d) must be more than renew_days (%d)' % (valid_days, renew_days))
        if renew_days < 0:
            raise ValueError('renew_days must not be negative')
        self.common_name = common_name
        self.names = [parse_name(name) for name in subject_alt_names]
        self.usages = [parse_usage(name) for name in extended_key_usage]
        self.valid_days = valid_days
        self.renew_days = renew_days

    def name_keys(self):
        return {name_key(name) for name in self.names}

    def usage_keys(self):
        return {usage.dotted_string for usage in self.usages}


def parse_name(text):
    """'DNS:host.example' or 'IP:10.0.0.1' -> a cryptography GeneralName."""
    kind, sep, value = str(text).partition(':')
    value = value.strip()
    if not sep or not value:
        raise ValueError('subject alternative name %r is not DNS:<name> or IP:<address>' % (text,))
    if kind.strip().upper() == 'DNS':
        return x509.DNSName(value)
    if kind.strip().upper() == 'IP':
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError as exc:
            raise ValueError('subject alternative name %r: %r is not an IP address' % (text, value)) from exc
    raise ValueError('subject alternative name %r: only DNS: and IP: names are supported' % (text,))


def parse_usage(text):
    """'serverAuth', 'clientAuth' (openssl's names) or a dotted OID -> an ObjectIdentifier."""
    text = str(text).strip()
    if text in EKU_BY_NAME:
        return EKU_BY_NAME[text]
    if text and all(part.isdigit() for part in text.split('.')) and '.' in text:
        return x509.ObjectIdentifier(text)
    raise ValueError('extended key usage %r is not one of %s or a dotted OID' % (text, ', '.join(sorted(EKU_BY_NAME))))


def name_key(name):
    """A comparable form of a GeneralName: DNS names ignore case, IP addresses compare as addresses."""
    if isinstance(name, x509.DNSName):
        return 'DNS:' + name.value.lower()
    if isinstance(name, x509.IPAddress):
        return 'IP:' + str(name.value)
    return '%s:%s' % (type(name).__name__, name.value)


# ---- the host side: shell text and what it prints ----

def _sh(script):
    return '/bin/sh -c ' + shlex.quote(script)


def probe_command(key_path, cert_path, ca_cert_path=None):
    """One command printing the key's attributes and public key, the certificate's attributes and text, and the
    installed CA certificate's attributes and SHA-256; a closing marker shows the output is complete."""
    key, cert = shlex.quote(key_path), shlex.quote(cert_path)
    parts = [
        'LC_ALL=C',
        'export LC_ALL',
        "attrs() { stat -c '%u %g %U %G %a' -- \"$1\"; }",
        'if [ -f {k} ]; then echo "@@key $(attrs {k})"; openssl pkey -passin pass: -in {k} -pubout 2>&1;'
        ' else echo "@@key missing"; fi'.format(k=key),
        'if [ -f {c} ]; then echo "@@cert $(attrs {c})"; head -c {limit} {c}; echo;'
        ' else echo "@@cert missing"; fi'.format(c=cert, limit=CERT_READ_LIMIT),
    ]
    if ca_cert_path:
        ca = shlex.quote(ca_cert_path)
        parts.append('if [ -f {a} ]; then echo "@@ca $(attrs {a}) $(sha256sum < {a} | cut -d " " -f 1)";'
                     ' else echo "@@ca missing"; fi'.format(a=ca))
    parts.append('echo ' + PROBE_END)
    return _sh('; '.join(parts))


def make_key_command(key_path, owner, group, mode):
    """Make the private key where none is (umask 077: never readable by others, not even for a moment), give it its
    owner and mode, and print its public key."""
    key = shlex.quote(key_path)
    script = ('LC_ALL=C; export LC_ALL; umask 077; '
              'if [ -e {k} ]; then echo "{k} appeared meanwhile; not overwriting it" >&2; exit 3; fi; '
              'openssl genpkey {algo} -out {k} && {attrs} && openssl pkey -passin pass: -in {k} -pubout'
              .format(k=key, algo=' '.join(shlex.quote(arg) for arg in KEY_ALGORITHM_ARGS),
                      attrs=attributes_command(key_path, owner, group, mode)))
    return _sh(script)


def attributes_command(path, owner, group, mode):
    """chown/chmod text, for a key whose owner, group or mode drifted (the key itself stays on the host)."""
    quoted = shlex.quote(path)
    steps = []
    if owner or group:
        steps.append('chown -- %s %s' % (shlex.quote('%s:%s' % (owner or '', group or '')), quoted))
    if mode:
        steps.append('chmod -- %s %s' % (shlex.quote(mode), quoted))
    return ' && '.join(steps) or 'true'


def _attributes(fields):
    """'0 0 root root 600' -> dict; None when the line is not that (stat failed, output mangled)."""
    if len(fields) < 5 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    try:
        mode = int(fields[4], 8)
    except ValueError:
        return None
    return dict(uid=fields[0], gid=fields[1], user=fields[2], group=fields[3], mode=mode)


def parse_probe(output):
    """The probe's output -> dict(key=..., cert=..., ca=...), or None when it is incomplete.

    key: None (missing) or dict(attrs, public_key (PEM text or None), text (everything openssl printed));
    cert: None or dict(attrs, pem (the first certificate's PEM text or None)); ca: None or dict(attrs, sha256).
    The connection may have a tty: lines end in \\r\\n and stderr is mixed in, so PEM is picked out by its markers.
    """
    lines = [line.rstrip('\r') for line in output.splitlines()]
    parsed = dict(key=None, cert=None, ca=None)
    blocks = dict(key=[], cert=[])
    section = None
    complete = False
    for line in lines:
        if line.startswith('@@'):
            fields = line[2:].split()
            if not fields:
                continue
            tag = fields[0]
            if tag == PROBE_END[2:]:
                complete = True
                section = None
                continue
            if tag not in ('key', 'cert', 'ca'):
                continue
            section = tag
            if fields[1:] == ['missing']:
                parsed[tag] = None
                section = None
                continue
            entry = dict(attrs=_attributes(fields[1:6]))
            if tag == 'ca':
                entry['sha256'] = fields[6].lower() if len(fields) > 6 else None
                section = None
            parsed[tag] = entry
            continue
        if section in blocks:
            blocks[section].append(line)
    if not complete:
        return None
    if parsed['key'] is not None:
        parsed['key']['public_key'] = pem_block(blocks['key'], 'PUBLIC KEY')
        parsed['key']['text'] = '\n'.join(blocks['key']).strip()
    if parsed['cert'] is not None:
        parsed['cert']['pem'] = pem_block(blocks['cert'], 'CERTIFICATE')
    return parsed


def pem_block(lines, label):
    """The first -----BEGIN <label>----- ... -----END <label>----- block among lines, as text, or None."""
    begin, end = '-----BEGIN %s-----' % label, '-----END %s-----' % label
    block = None
    for line in lines:
        text = line.strip()
        if block is None:
            if text == begin:
                block = [text]
        else:
            block.append(text)
            if text == end:
                return '\n'.join(block) + '\n'
    return None


def attributes_differ(attrs, owner, group, mode):
    """Which of owner, group and mode differ from the wanted ones (all three when attrs could not be read).
    A numeric owner or group compares with the id, a name with the name."""
    if attrs is None:
        return [field for field, wanted in (('owner', owner), ('group', group), ('mode', mode)) if wanted]
    differ = []
    if owner and owner != (attrs['uid'] if owner.isdigit() else attrs['user']):
        differ.append('owner')
    if group and group != (attrs['gid'] if group.isdigit() else attrs['group']):
        differ.append('group')
    if mode and int(str(mode), 8) != attrs['mode']:
        differ.append('mode')
    return differ


def describe_attributes(attrs):
    if attrs is None:
        return 'unknown\n'
    return 'owner: %s\ngroup: %s\nmode: %04o\n' % (attrs['user'], attrs['group'], attrs['mode'])


def parse_mode(mode):
    """'0600' or '600' -> the same text; anything else is refused (one meaning, as the files module does)."""
    text = str(mode)
    if not text.isdigit() or any(ch not in '01234567' for ch in text) or len(text) > 4:
        raise ValueError('mode %r is not an octal mode such as "0600"' % (mode,))
    return text


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


# ---- the certificate ----

def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def not_after_of(cert):
    try:
        return cert.not_valid_after_utc
    except AttributeError:  # cryptography < 42
        return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def load_ca(cert_pem, key_pem=None):
    """The CA certificate (and key, when given) from PEM bytes; the key must belong to the certificate."""
    try:
        ca_cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise ValueError('the CA certificate is not a PEM certificate: %s' % exc) from exc
    if key_pem is None:
        return ca_cert, None
    try:
        ca_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError('the CA key is not an unencrypted PEM private key: %s' % exc) from exc
    if _spki(ca_key.public_key()) != _spki(ca_cert.public_key()):
        raise ValueError('the CA key does not belong to the CA certificate')
    return ca_cert, ca_key


def load_public_key(pem_text):
    """The host's public key from the PEM text openssl printed; ValueError when it does not load."""
    try:
        return serialization.load_pem_public_key(pem_text.encode('ascii'))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(str(exc)) from exc


def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def issued_by(cert, ca_cert):
    """True when ca_cert's key signed cert and cert names ca_cert's subject as its issuer."""
    if cert.issuer != ca_cert.subject:
        return False
    verify = getattr(cert, 'verify_directly_issued_by', None)
    if verify is not None:
        try:
            verify(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True
    return _verify_signature(cert, ca_cert.public_key())  # pragma: no cover - cryptography < 40


def _verify_signature(cert, public_key):  # pragma: no cover - cryptography < 40
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                              cert.signature_hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _extension(cert, kind):
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def common_name_of(cert):
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if len(names) == 1 else None


def _names_text(keys):
    return ', '.join(sorted(keys)) or 'none'


def check(cert_pem, public_key, ca_cert, request, now=None):
    """(reason, not_after): reason is None when the certificate holds, else why it must be signed again.

    It holds when it parses, certifies the host's public key, was signed by the CA, names exactly the wanted CN,
    subject alternative names and extended key usages, and is valid beyond the renewal window.
    """
    if cert_pem is None:
        return 'no certificate yet', None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode('ascii'))
    except ValueError:
        return 'the certificate does not parse', None
    not_after = not_after_of(cert)
    if _spki(cert.public_key()) != _spki(public_key):
        return 'the certificate is for another key than the host\'s', not_after
    if not issued_by(cert, ca_cert):
        return 'the certificate was not signed by the CA', not_after
    common_name = common_name_of(cert)
    if common_name != request.common_name:
        return 'its common name is %s, wanted %s' % (common_name, request.common_name), not_after
    sans = _extension(cert, x509.SubjectAlternativeName)
    have = {name_key(name) for name in sans} if sans is not None else set()
    if have != request.name_keys():
        return ('its subject alternative names are %s, wanted %s'
                % (_names_text(have), _names_text(request.name_keys())), not_after)
    usages = _extension(cert, x509.ExtendedKeyUsage)
    have = {usage.dotted_string for usage in usages} if usages is not None else set()
    if have != request.usage_keys():
        return ('its extended key usages are %s, wanted %s'
                % (_usages_text(have), _usages_text(request.usage_keys())), not_after)
    now = now or utcnow()
    if not_after <= now + datetime.timedelta(days=request.renew_days):
        return ('it expires on %s, within %d days' % (not_after.strftime('%Y-%m-%d %H:%M UTC'), request.renew_days),
                not_after)
    return None, not_after


def _usages_text(dotted):
    names = {oid.dotted_string: name for name, oid in EKU_BY_NAME.items()}
    return ', '.join(sorted(names.get(item, item) for item in dotted)) or 'none'


def _digest_for(ca_key):
    if isinstance(ca_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    return hashes.SHA256()


def issue(public_key, ca_cert, ca_key, request, now=None):
    """(PEM text, not_after) of a new certificate for public_key, signed by the CA.

    The same shape community.crypto's ownca provider gave the CSRs the roles used to make: subject CN only, the
    wanted subject alternative names and extended key usages (not critical), subject and authority key identifiers,
    valid from a day ago (a host clock a little behind still accepts it) for valid_days.
    """
    now = now or utcnow()
    not_after = now + datetime.timedelta(days=request.valid_days)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.common_name)]))
               .issuer_name(ca_cert.subject)
               .public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(not_after)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    ca_ski = _extension(ca_cert, x509.SubjectKeyIdentifier)
    if ca_ski is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    else:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    builder = builder.add_extension(aki, critical=False)
    if request.names:
        builder = builder.add_extension(x509.SubjectAlternativeName(request.names), critical=False)
    if request.usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(request.usages), critical=False)
    cert = builder.sign(ca_key, _digest_for(ca_key))
    return cert.public_bytes(serialization.Encoding.PEM).decode('ascii'), not_after_of(cert)


def canonical_pem(cert_pem):
    """The certificate re-encoded, for reinstalling a good certificate whose file attributes drifted."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode('ascii'))
    return cert.public_bytes(serialization.Encoding.PEM).decode('ascii')
