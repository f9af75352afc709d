# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the ilab_* modules (private): sha256 notation and dotted
config keys. File operations live in ``_fs`` (the one file layer)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

_MISSING = object()

# Keys of config.yaml's train section that name places, not how to train: a train
# profile leaves them alone and they are no part of a training's fingerprint.
TRAIN_PATH_KEYS = ('model_path', 'data_path', 'ckpt_output_dir', 'data_output_dir',
                   'phased_base_dir', 'training_journal', 'phased_mt_bench_judge')


# ------------------------------------------------------------------ digests
def normalize_sha256(value):
    """'sha256:HEX' or 'HEX' -> lowercase HEX (None when empty)."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith('sha256:'):
        value = value[len('sha256:'):]
    if len(value) != 64 or any(c not in '0123456789abcdef' for c in value):
        raise ValueError('not a sha256 digest: %r' % value)
    return value


# ---------------------------------------------------------- dotted keys
def dotted_get(data, key, default=_MISSING):
    cur = data
    for part in key.split('.'):
        if not isinstance(cur, dict) or part not in cur:
            return None if default is _MISSING else default
        cur = cur[part]
    return cur


def dotted_has(data, key):
    cur = data
    for part in key.split('.'):
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
    return True


def dotted_set(data, key, value):
    parts = key.split('.')
    cur = data
    for part in parts[:-1]:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value


def flatten(data, prefix=''):
    out = {}
    for k, v in (data or {}).items():
        key = '%s.%s' % (prefix, k) if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
