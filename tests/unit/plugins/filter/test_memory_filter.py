# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.filter.memory import FilterModule

STEP = FilterModule().filters()['memory_step']


def test_drift_of_a_few_mib_changes_nothing():
    # An 8 GiB host reports a little under 8192 MiB, differently across boots and kernels.
    assert {STEP(m) for m in (7936, 7950, 7976, 7980, 8000, 8191)} == {7936}
    # ... and so the settings derived from it stay the same (shared_buffers = 25 %).
    assert {STEP(m) * 25 // 100 for m in (7950, 7976, 8100)} == {1984}


def test_rounds_down_to_a_whole_step_and_never_below_one():
    assert STEP(8192) == 8192
    assert STEP('3920') == 3840
    assert STEP(1000, 64) == 960
    assert STEP(100) == 256


@pytest.mark.parametrize('memory, step', [('lots', 256), (1024, 0), (-5, 256), (None, 256)])
def test_bad_input_is_refused(memory, step):
    with pytest.raises(AnsibleFilterError, match='memory_step'):
        STEP(memory, step)
