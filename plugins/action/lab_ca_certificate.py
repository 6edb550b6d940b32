# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediops.mastodon.lab_ca_certificate: a host key and a certificate the lab CA signed, probe first.

The roles used six to eight tasks for this (key, mode, CSR, slurp, expiry check and signing on the controller,
install), several module runs per host on every converge. Here one short shell command reads the key's public half,
the certificate and the attributes; the controller checks the certificate with cryptography. When it holds, that
is all. Otherwise the controller signs a new one with the CA key it keeps and one fediops.mastodon.files run
installs it. The private key is made on the host and never leaves it.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.fediops.mastodon.plugins.plugin_utils import lab_ca

ARGUMENT_SPEC = dict(
    key_path=dict(type='path', required=True),
    cert_path=dict(type='path', required=True),
    ca_cert_path=dict(type='path'),
    ca_cert=dict(type='path', required=True),
    ca_key=dict(type='path', required=True, no_log=False),
    common_name=dict(type='str', required=True),
    subject_alt_names=dict(type='list', elements='str', default=[]),
    extended_key_usage=dict(type='list', elements='str', default=['serverAuth']),
    owner=dict(type='str', default='root'),
    group=dict(type='str', default='root'),
    key_group=dict(type='str'),
    key_mode=dict(type='str', default='0600'),
    cert_mode=dict(type='str', default='0644'),
    valid_days=dict(type='int', default=365),
    renew_days=dict(type='int', default=30),
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False

    def _controller_file(self, path, what):
        try:
            source = self._find_needle('files', path)
            with open(source, 'rb') as stream:
                return stream.read()
        except (AnsibleError, OSError) as exc:
            raise AnsibleActionFail('cannot read the %s %s on the controller: %s' % (what, path, to_text(exc))) from exc

    def _run(self, command, what):
        """A short command on the host (with become, as the task has it); fails the task with its output if it fails."""
        res = self._low_level_execute_command(command, sudoable=True)
        if res.get('rc') != 0:
            answer = (res.get('stderr') or res.get('stdout') or '').strip()
            raise AnsibleActionFail('%s failed (rc %s): %s' % (what, res.get('rc'), answer))
        return res.get('stdout') or ''

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        if not lab_ca.HAS_CRYPTOGRAPHY:
            raise AnsibleActionFail('fediops.mastodon.lab_ca_certificate needs the Python library cryptography on the '
                                    'controller (pip install cryptography): %s' % lab_ca.CRYPTOGRAPHY_IMPORT_ERROR)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        owner, group = args['owner'], args['group']
        key_group = args['key_group'] or group
        try:
            key_mode = lab_ca.parse_mode(args['key_mode'])
            cert_mode = lab_ca.parse_mode(args['cert_mode'])
            request = lab_ca.Request(args['common_name'], args['subject_alt_names'], args['extended_key_usage'],
                                     args['valid_days'], args['renew_days'])
            ca_cert_pem = self._controller_file(args['ca_cert'], 'CA certificate')
            ca_cert, dummy = lab_ca.load_ca(ca_cert_pem)
        except ValueError as exc:
            raise AnsibleActionFail(to_text(exc)) from exc

        check_mode = bool(self._task.check_mode)
        key_path, cert_path = args['key_path'], args['cert_path']
        result.update(changed=False, cert_path=cert_path, not_after=None, reason='')
        diffs = []

        output = self._low_level_execute_command(
            lab_ca.probe_command(key_path, cert_path, args['ca_cert_path']), sudoable=True)
        state = lab_ca.parse_probe(output.get('stdout') or '') if output.get('rc') == 0 else None
        if state is None:
            # Without the host's public key nothing can be checked or signed: say what the host answered.
            raise AnsibleActionFail('could not read the key and certificate on the host (rc %s): %s'
                                    % (output.get('rc'), (output.get('stderr') or output.get('stdout') or '').strip()))

        # The key: made when missing, its owner and mode put right when they drifted. It is never replaced.
        key = state['key']
        public_text = ''
        if key is None:
            result.update(changed=True, reason='no key yet at %s' % key_path)
            diffs.append(dict(before_header=key_path, after_header=key_path, before='',
                              after='new EC P-256 private key\nowner: %s\ngroup: %s\nmode: %s\n'
                                    % (owner, key_group, key_mode.zfill(4))))
            if check_mode:
                # Nothing to sign yet; the certificate would follow the new key.
                return self._finish(result, diffs)
            public_text = self._run(lab_ca.make_key_command(key_path, owner, key_group, key_mode),
                                    'making the private key %s' % key_path)
            public_pem = lab_ca.pem_block([line.rstrip('\r') for line in public_text.splitlines()], 'PUBLIC KEY')
        else:
            public_pem = key['public_key']
            drift = lab_ca.attributes_differ(key['attrs'], owner, key_group, key_mode)
            if drift:
                result['changed'] = True
                diffs.append(dict(before_header=key_path, after_header=key_path,
                                  before=lab_ca.describe_attributes(key['attrs']),
                                  after='owner: %s\ngroup: %s\nmode: %s\n' % (owner, key_group, key_mode.zfill(4))))
                if not check_mode:
                    self._run(lab_ca.attributes_command(key_path, owner, key_group, key_mode),
                              'setting the owner and mode of %s' % key_path)
        if public_pem is None:
            raise AnsibleActionFail('openssl cannot read the key %s on the host (it is left as it is): %s'
                                    % (key_path, (key or {}).get('text') or public_text.strip()))
        try:
            public_key = lab_ca.load_public_key(public_pem)
        except ValueError as exc:
            raise AnsibleActionFail('the public key of %s does not load: %s' % (key_path, to_text(exc))) from exc

        # The certificate: kept while it holds, signed again otherwise.
        cert = state['cert']
        reason, not_after = lab_ca.check(cert['pem'] if cert else None, public_key, ca_cert, request)
        files = []
        if reason is not None:
            result.update(changed=True, reason=reason if key is not None else '%s; %s' % (result['reason'], reason))
            if check_mode:
                diffs.append(dict(before_header=cert_path, after_header=cert_path,
                                  before='' if cert is None else 'certificate until %s\n' % _iso(not_after),
                                  after='new certificate (%s)\n' % reason))
                not_after = None
            else:
                ca_key_pem = self._controller_file(args['ca_key'], 'CA key')
                try:
                    dummy, ca_key = lab_ca.load_ca(ca_cert_pem, ca_key_pem)
                except ValueError as exc:
                    raise AnsibleActionFail('%s (%s, %s)' % (to_text(exc), args['ca_cert'], args['ca_key'])) from exc
                cert_pem, not_after = lab_ca.issue(public_key, ca_cert, ca_key, request)
                files.append(dict(dest=cert_path, content=cert_pem, owner=owner, group=group, mode=cert_mode))
        elif lab_ca.attributes_differ(cert['attrs'], owner, group, cert_mode):
            files.append(dict(dest=cert_path, content=lab_ca.canonical_pem(cert['pem']), owner=owner, group=group,
                              mode=cert_mode))
        result['not_after'] = _iso(not_after)

        # The CA certificate on the host, for tasks that install it beside the host's own.
        if args['ca_cert_path']:
            host_ca = state['ca']
            if (host_ca is None or host_ca['sha256'] != lab_ca.sha256_hex(ca_cert_pem)
                    or lab_ca.attributes_differ(host_ca['attrs'], owner, group, cert_mode)):
                files.append(dict(dest=args['ca_cert_path'], content=to_text(ca_cert_pem), owner=owner, group=group,
                                  mode=cert_mode))

        if files:
            installed = self._execute_module(module_name='fediops.mastodon.files', module_args=dict(files=files),
                                             task_vars=task_vars)
            if installed.get('failed'):
                installed.pop('invocation', None)
                result.update(installed)
                return result
            result['changed'] = result['changed'] or bool(installed.get('changed'))
            result['changed_files'] = installed.get('changed_files', [])
            module_diff = installed.get('diff')
            if isinstance(module_diff, list):
                diffs.extend(module_diff)
            elif module_diff:
                diffs.append(module_diff)
        return self._finish(result, diffs)

    def _finish(self, result, diffs):
        if diffs and self._task.diff:
            result['diff'] = diffs
        return result


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ') if moment is not None else None
