# -*- coding: utf-8 -*-
"""The checks action: rules evaluated in order with a real templar, the first broken one fails with its own message
(rendered only then), `when` skips a rule without rendering it, and the task's arguments are not templated up front."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar, trust_as_template

from ansible_collections.fediops.mastodon.plugins.action.checks import ActionModule


def trusted(value):
    """As the YAML loader hands a task's arguments over: every string a trusted template."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(item) for item in value]
    if isinstance(value, dict):
        return dict((key, trusted(item)) for key, item in value.items())
    return value


def run(checks, **variables):
    task = MagicMock()
    task.args = dict(checks=trusted(checks))
    task.async_val = 0
    task.check_mode = False
    loader = DataLoader()
    action = ActionModule(task, MagicMock(), PlayContext(), loader=loader,
                          templar=Templar(loader=loader, variables=variables), shared_loader_obj=None)
    return action.run(task_vars=variables)


RULES = [
    dict(that='maxclients + 32 <= nofile', msg='maxclients={{ maxclients }} on {{ host }} needs nofile >= {{ maxclients + 32 }}'),
    dict(that=['groups_named | difference(known) | length == 0'], msg='{{ host }}: unknown groups {{ groups_named | difference(known) }}'),
]


def test_every_rule_holds():
    result = run(RULES, maxclients=100, nofile=200, host='redis-cache', groups_named=['web'], known=['web', 'sidekiq'])
    assert result.get('failed') is not True
    assert result['checked'] == 2 and result['changed'] is False


def test_the_first_broken_rule_fails_with_its_own_message():
    result = run(RULES, maxclients=300, nofile=200, host='redis-cache', groups_named=['nope'], known=['web'])
    assert result['failed'] is True
    assert result['msg'] == 'maxclients=300 on redis-cache needs nofile >= 332'
    assert result['check'] == 1 and result['assertion'] == 'maxclients + 32 <= nofile'


def test_a_later_rule_fails_when_the_earlier_hold():
    result = run(RULES, maxclients=100, nofile=200, host='web1', groups_named=['nope'], known=['web'])
    assert result['failed'] is True and result['check'] == 2
    assert result['msg'] == "web1: unknown groups ['nope']"


def test_a_message_is_rendered_only_when_its_rule_fails():
    # The message reads a variable that exists only when the rule is broken: rendering it up front would fail.
    rules = [dict(that='problems is not defined', msg='{{ problems | join(", ") }}')]
    assert run(rules).get('failed') is not True
    assert run(rules, problems=['a', 'b'])['msg'] == 'a, b'


def test_when_skips_a_rule_without_evaluating_it():
    rules = [dict(when='tls', that='certificate | length > 0', msg='{{ certificate_name }} is empty')]
    result = run(rules, tls=False)      # certificate is undefined: never evaluated
    assert result.get('failed') is not True and result['checked'] == 0
    result = run(rules, tls=True, certificate='', certificate_name='redis_tls_certificate')
    assert result['failed'] is True and result['msg'] == 'redis_tls_certificate is empty'


@pytest.mark.parametrize('checks, message', [
    ([], 'non-empty list'),
    ([dict(that='true')], 'each rule needs that and msg'),
    ([dict(that='true', msg='x', loop=[1])], 'unsupported key'),
    ([dict(that=[{'a': 1}], msg='x')], 'each condition is a string'),
])
def test_malformed_rules_are_refused(checks, message):
    with pytest.raises(AnsibleActionFail, match=message):
        run(checks)


def test_checks_are_left_for_the_action_to_evaluate():
    raw = [dict(that='x', msg='{{ y }}')]
    assert ActionModule.finalize_task_arg('checks', raw, templar=None, context=None) is raw
