#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the work is done by the action plugin (plugins/action/lab_ca_certificate.py) on the controller,
# which installs through fediops.mastodon.files.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_ca_certificate
short_description: A private key made on the host and a certificate signed by a CA the controller holds
version_added: 0.2.0
description:
  - Makes an EC P-256 private key on the host when there is none (C(openssl genpkey) under C(umask 077)); the key
    never leaves the host and an existing key is never replaced. Its owner, group and mode are put right when they
    drifted.
  - Reads the key's public half, the installed certificate and the attributes of the files with one short shell
    command, and checks the certificate on the controller with the Python library C(cryptography). It is kept when
    it certifies the host's key, was signed by O(ca_cert), has exactly O(common_name), O(subject_alt_names) and
    O(extended_key_usage), and does not expire within O(renew_days). Then the task reports no change and runs no
    module on the host.
  - Otherwise the controller signs a new certificate with O(ca_key) and installs it with M(fediops.mastodon.files)
    (one module run, which also puts right the owner and mode of a certificate or CA certificate that drifted).
  - In check mode nothing is made, signed or written; the task reports what would change.
  - The signed certificate has the subject C(CN=common_name) only, the subject alternative names and extended key
    usages asked for (not critical), subject and authority key identifiers, and is valid from a day before signing
    for O(valid_days) days.
  - Needs C(openssl), C(stat), C(sha256sum) and C(head) on the host and C(cryptography) on the controller.
author:
  - fediops maintainers (@fediops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Key and certificate attribute changes as owner, group and mode; a new certificate as its PEM text.
  platform:
    platforms: posix
options:
  key_path:
    description: The private key on the host. Made when missing; never replaced or read back by the controller.
    type: path
    required: true
  cert_path:
    description: The certificate on the host.
    type: path
    required: true
  ca_cert_path:
    description: When set, O(ca_cert) is also installed on the host at this path (same owner, group and mode as the
      certificate), for services that check their peers against the CA.
    type: path
  ca_cert:
    description: The CA certificate on the controller.
    type: path
    required: true
  ca_key:
    description: The CA's private key on the controller (unencrypted PEM). Read only when a certificate is signed.
    type: path
    required: true
  common_name:
    description: The certificate's subject common name.
    type: str
    required: true
  subject_alt_names:
    description: The subject alternative names, each C(DNS:<name>) or C(IP:<address>). Compared as a set (DNS names
      ignoring case).
    type: list
    elements: str
    default: []
  extended_key_usage:
    description: The extended key usages, as openssl names them (C(serverAuth), C(clientAuth), C(codeSigning),
      C(emailProtection), C(timeStamping), C(OCSPSigning)) or dotted OIDs. Empty for none.
    type: list
    elements: str
    default: [serverAuth]
  owner:
    description: Owner (name or uid) of the key, the certificate and the CA certificate.
    type: str
    default: root
  group:
    description: Group (name or gid) of the certificate and the CA certificate, and of the key unless O(key_group)
      is set.
    type: str
    default: root
  key_group:
    description: Group of the key when it differs from O(group) (a service reading its key through its group).
    type: str
  key_mode:
    description: Octal mode of the key.
    type: str
    default: "0600"
  cert_mode:
    description: Octal mode of the certificate and the CA certificate.
    type: str
    default: "0644"
  valid_days:
    description: Validity of a new certificate, in days. Must be more than O(renew_days).
    type: int
    default: 365
  renew_days:
    description: A certificate expiring within this many days is signed again.
    type: int
    default: 30
notes:
  - The CA key stays on the controller; only the signed certificate (public) travels to the host.
  - A key whose file exists but that openssl cannot read fails the task; it is left for the operator.
seealso:
  - module: fediops.mastodon.files
"""

EXAMPLES = r"""
- name: The edge's key and certificate from the lab CA
  fediops.mastodon.lab_ca_certificate:
    key_path: /etc/nginx/fediops/tls/edge.key
    cert_path: /etc/nginx/fediops/tls/edge.crt
    common_name: media.example.test
    subject_alt_names: [DNS:media.example.test, DNS:example.test]
    extended_key_usage: [serverAuth]
    valid_days: 90
    renew_days: 30
    ca_cert: "{{ lab_ca_cert }}"
    ca_key: "{{ lab_ca_key }}"
  notify: Reload nginx

- name: A service's key readable by its group, with the CA certificate beside it
  fediops.mastodon.lab_ca_certificate:
    key_path: /etc/fediops/journal-remote/server.key
    cert_path: /etc/fediops/journal-remote/server.crt
    ca_cert_path: /etc/fediops/journal-remote/ca.crt
    key_group: systemd-journal-remote
    key_mode: "0640"
    common_name: "{{ inventory_hostname }}"
    subject_alt_names: ["DNS:{{ inventory_hostname }}", "IP:{{ fediops_private_address }}"]
    ca_cert: "{{ lab_ca_cert }}"
    ca_key: "{{ lab_ca_key }}"
"""

RETURN = r"""
cert_path:
  description: The certificate on the host (O(cert_path)).
  returned: always
  type: str
  sample: /etc/nginx/fediops/tls/edge.crt
not_after:
  description: End of validity (UTC) of the certificate now in place; null in check mode when one would be signed.
  returned: always
  type: str
  sample: "2026-03-01T09:30:00Z"
reason:
  description: Why the certificate was (or in check mode would be) signed; empty when it was kept.
  returned: always
  type: str
  sample: it expires on 2025-12-20 09:30 UTC, within 30 days
changed_files:
  description: Files M(fediops.mastodon.files) created or changed (certificate, CA certificate).
  returned: when a file was installed
  type: list
  elements: str
  sample: [/etc/nginx/fediops/tls/edge.crt]
"""
