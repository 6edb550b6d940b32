# -*- coding: utf-8 -*-
# Copyright: fediops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediops.mastodon.checks: a role's preflight checks in one task, each with its own message.

A preflight was one ansible.builtin.assert task per rule, and on a 13-host fleet each task costs the controller
about 50 ms per host even when it passes (issue 15). Here the rules of one role are one task: they are evaluated in
order, on the controller, and the first that does not hold fails the task with its own message, as its assert did.

`checks` is not templated as a whole before the action runs (finalize_task_arg): a rule's message is rendered only
when that rule fails, and a rule's `when` can keep the rules after it from being evaluated at all, so a message may
use values that exist only when the rule is broken, and a rule may rely on the rules before it.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

CHECK_KEYS = frozenset(('that', 'msg', 'when'))


def _conditions(value, what):
    """A condition or a list of conditions -> a list of condition strings (or booleans)."""
    values = value if isinstance(value, list) else [value]
    for item in values:
        if not isinstance(item, (str, bool)):
            raise AnsibleActionFail('%s: each condition is a string (a Jinja2 test without braces), got %s'
                                    % (what, type(item).__name__))
    return values


class ActionModule(ActionBase):

    _requires_connection = False

    @classmethod
    def finalize_task_arg(cls, name: str, value: t.Any, templar: t.Any, context: t.Any) -> t.Any:
        if name == 'checks':
            # Left as written: run() evaluates each rule's conditions and renders a message only when needed.
            return value
        return super().finalize_task_arg(name, value, templar, context)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        unknown = sorted(set(self._task.args) - {'checks'})
        if unknown:
            raise AnsibleActionFail('unsupported option(s): %s (only checks)' % ', '.join(unknown))
        checks = self._task.args.get('checks')
        if not isinstance(checks, list) or not checks:
            raise AnsibleActionFail('checks must be a non-empty list of {that, msg} rules')

        evaluated = 0
        for number, check in enumerate(checks, start=1):
            what = 'checks[%d]' % number
            if not isinstance(check, dict) or 'that' not in check or 'msg' not in check:
                raise AnsibleActionFail('%s: each rule needs that and msg' % what)
            extra = sorted(set(check) - CHECK_KEYS)
            if extra:
                raise AnsibleActionFail('%s: unsupported key(s) %s (that, msg, when)' % (what, ', '.join(extra)))
            if 'when' in check and not all(self._templar.evaluate_conditional(conditional=condition)
                                           for condition in _conditions(check['when'], what + '.when')):
                continue
            evaluated += 1
            for condition in _conditions(check['that'], what + '.that'):
                if not self._templar.evaluate_conditional(conditional=condition):
                    message = self._templar.template(check['msg'])
                    if isinstance(message, list):
                        message = ' '.join(to_text(part) for part in message)
                    result.update(failed=True, msg=to_text(message), assertion=condition, evaluated_to=False,
                                  check=number)
                    return result

        result.update(changed=False, msg='All %d checks passed' % evaluated, checked=evaluated)
        return result
