# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.filter.sidekiq_autoscale import FilterModule

F = FilterModule().filters()
SIZING = {'web': [{'host': 'w1', 'workers': 2, 'threads': 5}],
          'sidekiq': [{'name': 'all', 'concurrency': 10, 'queues': ['default', 'push', 'mailers', 'pull', 'scheduler']},
                      {'name': 'ingress', 'concurrency': 5, 'queues': ['ingress'],
                       'autoscale': {'min': 1, 'max': 2, 'target_latency': 30}}],
          'sidekiq_default_hosts': ['s1'],
          'reserve': 0, 'postgres': {'max_connections': 100}}


def test_room_and_errors():
    # clients 10 + 10 + 5 = 25 -> max_client_conn ceil(25 x 1.25) = 32: 7 connections of room.
    assert F['sidekiq_autoscale_room'](SIZING) == {'accepted': 32, 'counted': 25, 'room': 7, 'max_client_conn': 32, 'poolers': 1}
    assert F['sidekiq_autoscale_errors'](SIZING) == []
    too_many = dict(SIZING, sidekiq=[SIZING['sidekiq'][0], dict(SIZING['sidekiq'][1], autoscale={'min': 1, 'max': 3, 'target_latency': 30})])
    assert 'autoscale.max can be at most 2' in F['sidekiq_autoscale_errors'](too_many)[0]
    assert F['sidekiq_autoscale_errors'](too_many, pgbouncer={'max_client_conn': 40}) == []


def test_wrong_input_and_a_bad_budget_raise_filter_errors():
    with pytest.raises(AnsibleFilterError):
        F['sidekiq_autoscale_errors']([])
    with pytest.raises(AnsibleFilterError):
        F['sidekiq_autoscale_room'](dict(SIZING, postgres={}))
