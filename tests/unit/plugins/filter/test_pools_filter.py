# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.filter.pools import FilterModule
from ansible_collections.fediops.mastodon.plugins.module_utils import pools

F = FilterModule().filters()
SIZING = {'web': [{'host': 'w1', 'workers': 2, 'threads': 5}, {'host': 'w2', 'workers': 2, 'threads': 5}],
          'streaming': [{'host': 'w1', 'instances': 1}],
          'sidekiq': [{'name': 'all', 'concurrency': 10, 'queues': ['default', 'push', 'ingress', 'mailers', 'pull', 'scheduler']}],
          'sidekiq_default_hosts': ['s1'],
          'reserve': 0, 'postgres': {'max_connections': 100}}


def test_filters_agree_with_module_utils():
    assert F['connection_budget'](SIZING) == pools.connection_budget(SIZING)
    assert F['connection_budget'](SIZING)['total'] == 20 + 10 + 10
    assert F['connection_budget_errors'](SIZING) == []
    assert F['connection_budget_errors'](SIZING, pgbouncer={'max_client_conn': 30}) != []
    assert F['connection_budget_errors'](dict(SIZING, postgres={'max_connections': 10})) != []
    assert F['sidekiq_queue_layout_errors']({'sidekiq': SIZING['sidekiq']}) == []            # a dict with sidekiq accepted too
    assert F['sidekiq_queue_layout_errors'](SIZING['sidekiq'], mastodon_version='4.4.0') == [
        'queue fasp is not served by any sidekiq pool']
    assert 'fasp' in F['mastodon_queues']('4.5.0') and 'fasp' not in F['mastodon_queues']()


def test_filters_reject_bad_input():
    with pytest.raises(AnsibleFilterError, match='fleet sizing dict'):
        F['connection_budget']([])
    with pytest.raises(AnsibleFilterError, match='mastodon_web_concurrency must be an integer'):
        F['connection_budget'](dict(SIZING, web=[{'host': 'w1', 'workers': 'x', 'threads': 5}]))
    with pytest.raises(AnsibleFilterError):
        F['sidekiq_queue_layout_errors']('default')
    assert F['connection_budget_errors'](dict(SIZING, web=[{'host': 'w1', 'workers': 'x', 'threads': 5}])) == [
        "connection budget: web host w1 mastodon_web_concurrency must be an integer, not 'x'"]
