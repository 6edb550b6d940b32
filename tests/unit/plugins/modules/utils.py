# -*- coding: utf-8 -*-
"""Run a module's main() with arguments, capturing exit_json / fail_json (community.general style)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    def __init__(self, result):
        super(ModuleExit, self).__init__(result)
        self.result = result


class ModuleFail(Exception):
    def __init__(self, result):
        super(ModuleFail, self).__init__(result.get('msg'))
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    raise ModuleExit(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs['failed'] = True
    kwargs['msg'] = msg
    raise ModuleFail(kwargs)


def run_module(module, args, check_mode=False, diff=True, expect_fail=False):
    """Return the result dict; asserts the module failed (or did not) as expected (None: either)."""
    full = dict(args)
    full['_ansible_check_mode'] = check_mode
    full['_ansible_diff'] = diff
    with patch_module_args(full), \
            mock.patch.object(basic.AnsibleModule, 'exit_json', _exit_json), \
            mock.patch.object(basic.AnsibleModule, 'fail_json', _fail_json):
        try:
            module.main()
        except ModuleExit as e:
            if expect_fail is None:
                return e.result
            if expect_fail:
                raise AssertionError('module succeeded but a failure was expected: %r' % (e.result,))
            return e.result
        except ModuleFail as e:
            if expect_fail is None:
                return e.result
            if not expect_fail:
                raise AssertionError('module failed: %s\n%r' % (e.result.get('msg'), e.result))
            return e.result
    raise AssertionError('module returned without exit_json/fail_json')
