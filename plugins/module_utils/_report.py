# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``report`` return value of the collection's modules (private API).

A module names, once, which of its return values a reader of the run report needs
(paths, URLs, digests, row counts, losses, versions). :func:`attach` makes every
``exit_json`` and ``fail_json`` of that module add them under the key ``report``,
with the values they have in that result; the run_report callback records
``report`` as the step's artifact entry and knows no module's keys itself.

Schema: ``report`` is a flat dict ``{return value name: its value}`` holding only the
named return values that have a value (not None, '', [] or {}), in the order they are
named. A value is the same as the top-level return value of that name (so a path in
``report`` is the path the module returned). A failure adds, when present, ``path``
(the path the file layer refused) and ``log_path`` (the log of the failed command).
Never put a secret, a command line or command output in ``report``.

API::

    from ansible_collections.labforge.instructlab.plugins.module_utils import _report

    module = AnsibleModule(...)
    _report.attach(module, 'path', 'digest', 'log_path')
    ...
    module.exit_json(changed=True, path=p, digest=d, cmd=c)   # + report={'path': p, 'digest': d}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# what a failure adds to a module's own report names
FAILURE_KEYS = ('path', 'log_path')


EMPTY = (None, '', [], {})


def build(result, keys):
    """``{key: result[key]}`` for the KEYS that RESULT holds with a value, in KEYS order."""
    return dict((key, result[key]) for key in keys if key in result and result[key] not in EMPTY)


def attach(module, *keys):
    """Make MODULE's exit_json and fail_json add ``report=build(result, KEYS)`` (fail_json also
    FAILURE_KEYS). A ``report`` dict the caller passes is kept and wins over the built values."""
    keys = tuple(keys)
    fail_keys = ('path',) + tuple(k for k in keys if k != 'path') + \
        tuple(k for k in FAILURE_KEYS if k not in keys and k != 'path')
    exit_json, fail_json = module.exit_json, module.fail_json

    def with_report(kwargs, names):
        report = build(kwargs, names)
        if isinstance(kwargs.get('report'), dict):
            report.update(kwargs['report'])
        kwargs['report'] = report
        return kwargs

    def report_exit_json(**kwargs):
        exit_json(**with_report(kwargs, keys))

    def report_fail_json(*args, **kwargs):
        fail_json(*args, **with_report(kwargs, fail_keys))

    module.exit_json = report_exit_json
    module.fail_json = report_fail_json
    return module
