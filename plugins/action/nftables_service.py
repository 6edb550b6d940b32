# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediops.mastodon.nftables_service: probe the rule file and drop-ins, run the module only when one differs.

Every service of every role opens its ports with this module, so a converged run paid one module run per service per
host just to find the rule file unchanged. The module changes something (and runs nft or systemctl) only when the
base ruleset lacks the include, or the rule file or a drop-in differs from what it renders; one shell command reads
exactly those (plugins/module_utils/nftables_rules.py), and when all are as wanted the action returns the module's
unchanged result itself. Anything else, or an answer it cannot trust, runs the module as before.
"""

from __future__ import annotations

import copy
import shlex

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.fediops.mastodon.plugins.module_utils.nftables_rules import (
    ARGUMENT_SPEC, REQUIRED_IF, ProbeError, differences, parse_probe, plan, probe_command, unchanged_result,
)

MODULE = 'fediops.mastodon.nftables_service'
PATH_OPTIONS = ('config_file', 'include_dir', 'systemd_dir')


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def _wanted(self):
        """What the module would want, or None when the module must judge the options itself (it fails with its
        own message, or reads paths it expands on the host)."""
        validated = ArgumentSpecValidator(copy.deepcopy(ARGUMENT_SPEC), required_if=REQUIRED_IF).validate(
            dict(self._task.args))
        if validated.error_messages:
            return None
        params = validated.validated_parameters
        # type path expands ~ and $VAR, here on the controller: the host's expansion is the module's business.
        for option in PATH_OPTIONS:
            raw = self._task.args.get(option)
            if raw is not None and raw != params[option]:
                return None
        try:
            return plan(params)
        except ValueError:
            return None

    def _converged(self, wanted):
        try:
            command = '/bin/sh -c %s' % shlex.quote(probe_command(wanted))
            res = self._low_level_execute_command(command, sudoable=True)
            found = differences(wanted, parse_probe(res.get('rc'), res.get('stdout', ''), wanted))
        except ProbeError as exc:
            self._display.vvv('%s: probe not usable, running the module: %s' % (MODULE, exc))
            return False
        if found:
            self._display.vvv('%s: running the module: %s' % (MODULE, '; '.join(found)))
        return not found

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        wanted = self._wanted()
        if wanted is not None and self._converged(wanted):
            result.update(unchanged_result(wanted))
            return result

        result.update(self._execute_module(module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars))
        return result
