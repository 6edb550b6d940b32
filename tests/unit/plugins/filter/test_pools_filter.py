# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.filter.pools import FilterModule

F = FilterModule().filters()
FLEET = {'web': {'hosts': 2, 'workers': 2, 'threads': 5},
         'sidekiq': [{'name': 'all', 'concurrency': 10, 'queues': ['default', 'push', 'ingress', 'mailers', 'pull', 'scheduler']}],
         'streaming': {'hosts': 1, 'processes': 1}}


def test_filters_agree_with_module_utils():
    assert F['db_connection_budget'](FLEET)['total'] == 20 + 10 + 10
    assert F['db_connection_errors'](FLEET, postgres={'max_connections': 40}) != []
    assert F['db_connection_errors'](FLEET, postgres={'max_connections': 100}) == []
    assert F['sidekiq_queue_layout_errors'](FLEET) == []            # whole fleet accepted too
    assert F['sidekiq_queue_layout_errors'](FLEET['sidekiq'], mastodon_version='4.4.0') == [
        'queue fasp is not served by any sidekiq pool']
    assert 'fasp' in F['mastodon_queues']('4.5.0') and 'fasp' not in F['mastodon_queues']()


def test_filters_reject_bad_input():
    with pytest.raises(AnsibleFilterError, match='unknown fleet keys: webs'):
        F['db_connection_budget']({'webs': {}})
    with pytest.raises(AnsibleFilterError, match='web.workers'):
        F['db_connection_budget']({'web': {'workers': 'x'}})
    with pytest.raises(AnsibleFilterError):
        F['sidekiq_queue_layout_errors']('default')
    assert F['db_connection_errors']({'web': {'workers': 'x'}}) == ["web.workers must be an integer, not 'x'"]
