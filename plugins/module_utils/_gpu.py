# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU facts and InstructLab system-profile selection (private API).

The one GPU reader: :func:`read_gpus` runs ``nvidia-smi`` for
``labforge.instructlab.gpu_info``, ``ilab_info`` and ``ilab_config`` (a train
profile of ``auto``), so all three see the same GPUs on one host; and the
choice of the profile ``ilab config init`` would pick.

API summary (stable; only additions from now on)::

    from ansible_collections.labforge.instructlab.plugins.module_utils._gpu import (
        QUERY_FIELDS, CAP_QUERY_FIELDS, query_argv, unknown_field, parse_query_csv,
        parse_cuda_version, classify_failure, choose_profile, profile_details, known_ilab_versions,
        read_gpus)

    status, reason, gpus, cuda_version, commands = read_gpus(module, nvidia_smi=None)
                                                # STATUS_*; gpus: GPU_KEYS + cuda_version
    gpus = parse_query_csv(stdout)              # list of dicts (see GPU_KEYS)
    profile_id, reason = choose_profile(gpus, '0.26.1')
    details = profile_details(profile_id, '0.26.1', gpus)  # dict or None

Profile table
-------------
``ilab config init`` (InstructLab 0.25.x and 0.26.x, ``src/instructlab/config/
init.py``: ``get_gpu_or_cpu`` and ``walk_and_choose_system_profile``) picks a
*system profile* shipped in ``src/instructlab/profiles/`` and copied to
``$XDG_DATA_HOME/instructlab/internal/system_profiles/<vendor>/<family>/<file>``.
It matches when

* the CUDA device name, lower-cased, with ``-`` replaced by spaces (the name of
  the LAST device: ilab overwrites it in its loop), equals
  ``"<gpu_manufacturer> <gpu_family> <sku>"`` lower-cased, for ``sku`` in
  ``[""] + gpu_sku``; and
* the number of CUDA devices equals ``gpu_count``.

vRAM only matters for one tweak: ``a100`` in the name, 8 GPUs and a total of
320 GiB (8 x 40 GB) sets ``train.max_batch_len`` to 10000.

Profile identifiers are the file paths relative to the system profile
directory (``nvidia/a100/a100_x4.yaml``): what ``ilab config init --profile``
needs after ``system_profiles/``. The table below was read from the v0.25.0,
v0.25.1, v0.26.0 and v0.26.1 tags (identical in these releases). No profile
exists for 1 or 2 L4, 1 A10G, T4, ...: ilab then keeps its generic defaults,
and so does :func:`choose_profile` (``None`` with a reason).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import HostTool

# Fields asked from ``nvidia-smi --query-gpu``; every driver since long before
# 450 knows them. The CUDA version has no --query-gpu field on the drivers we
# support: it is read from the header of plain ``nvidia-smi``.
QUERY_FIELDS = ('index', 'name', 'uuid', 'memory.total', 'memory.used', 'driver_version')
# The same and ``compute_cap`` (the CUDA compute capability, "8.6"), which
# drivers know since 510; older ones refuse the whole query ("... is not a
# valid field to query") and are asked again with QUERY_FIELDS.
CAP_QUERY_FIELDS = QUERY_FIELDS + ('compute_cap',)
GPU_KEYS = ('index', 'name', 'uuid', 'memory_total_mib', 'memory_used_mib', 'driver_version', 'compute_cap')


def query_argv(nvidia_smi, fields=QUERY_FIELDS):
    """argv of the machine-readable query."""
    return [nvidia_smi, '--query-gpu=' + ','.join(fields), '--format=csv,noheader,nounits']


def unknown_field(stdout, stderr):
    """True when nvidia-smi refused a field of the query (a driver older than the field)."""
    return 'is not a valid field to query' in '\n'.join(t for t in (stdout, stderr) if t)


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        # "[N/A]" or "[Not Supported]"
        return None


def _compute_cap(value):
    """'8.6' -> '8.6'; '[N/A]' or a missing field -> None."""
    return value if value and re.match(r'^[0-9]+\.[0-9]+$', value) else None


def parse_query_csv(text, fields=QUERY_FIELDS):
    """Parse ``--format=csv,noheader,nounits`` output of ``fields`` (:data:`QUERY_FIELDS`
    or :data:`CAP_QUERY_FIELDS`).

    Returns a list of dicts with :data:`GPU_KEYS` (``compute_cap`` None when not
    asked or not known); raises ValueError on a line with the wrong number of
    fields. GPU names never contain commas.
    """
    gpus = []
    for line in (text or '').splitlines():
        line = line.strip()
        if not line:
            continue
        values = [f.strip() for f in line.split(',')]
        if len(values) != len(fields):
            raise ValueError('unexpected nvidia-smi line (%d fields, expected %d): %r'
                             % (len(values), len(fields), line))
        gpus.append({
            'index': _int_or_none(values[0]),
            'name': values[1],
            'uuid': values[2],
            'memory_total_mib': _int_or_none(values[3]),
            'memory_used_mib': _int_or_none(values[4]),
            'driver_version': values[5],
            'compute_cap': _compute_cap(values[6]) if len(values) > 6 else None,
        })
    return gpus


_CUDA_RE = re.compile(r'CUDA Version\s*:\s*([0-9]+\.[0-9]+)')


def parse_cuda_version(text):
    """CUDA version from plain ``nvidia-smi`` (header) or ``nvidia-smi -q``; None if absent."""
    m = _CUDA_RE.search(text or '')
    return m.group(1) if m else None


def driver_branch(driver_version):
    """'565.57.01' -> '565' (None for an empty version)."""
    if not driver_version:
        return None
    return driver_version.split('.')[0]


# Failure classification for a non-zero ``nvidia-smi`` exit.
STATUS_OK = 'ok'
STATUS_NO_NVIDIA_SMI = 'no_nvidia_smi'
STATUS_NO_DRIVER = 'no_driver'
STATUS_NO_GPU = 'no_gpu'
STATUS_MISMATCH = 'driver_library_mismatch'
STATUS_ERROR = 'error'


def classify_failure(rc, stdout, stderr):
    """(status, reason) for a failed ``nvidia-smi`` run. nvidia-smi prints its errors on stdout."""
    text = '\n'.join(t for t in (stdout, stderr) if t).strip()
    first = text.splitlines()[0] if text else ''
    if 'Driver/library version mismatch' in text:
        lib = re.search(r'NVML library version:\s*(\S+)', text)
        return STATUS_MISMATCH, (
            'nvidia-smi: "%s" (rc=%s): the NVIDIA kernel module loaded now is not the one '
            'of the installed user-space driver%s. This is expected right after a driver '
            'install or update: reboot (or unload and reload the nvidia kernel modules).'
            % (first, rc, ' (NVML library %s)' % lib.group(1) if lib else ''))
    if "couldn't communicate with the NVIDIA driver" in text:
        return STATUS_NO_DRIVER, (
            'nvidia-smi: the NVIDIA kernel driver is not loaded (rc=%s): "%s" Check that the '
            'driver is installed for the running kernel (DKMS build), that Secure Boot did not '
            'reject an unsigned module (`modprobe nvidia`), or reboot after installing it.'
            % (rc, first))
    if 'No devices were found' in text:
        return STATUS_NO_GPU, 'nvidia-smi: no NVIDIA GPU found by the driver (rc=%s).' % rc
    return STATUS_ERROR, 'nvidia-smi failed (rc=%s): %s' % (rc, text[-2000:] if text else 'no output')


# Where nvidia-smi is looked for after PATH (CUDA containers, WSL).
SEARCH_DIRS = ['/usr/bin', '/usr/local/bin', '/usr/local/nvidia/bin', '/usr/lib/wsl/lib']
NO_NVIDIA_SMI = 'nvidia-smi not found: no NVIDIA driver is installed on this host'


def read_gpus(module, nvidia_smi=None):
    """The host's NVIDIA GPUs: ``(status, reason, gpus, cuda_version, commands)``.

    ``nvidia_smi``: its path (default: searched on PATH and :data:`SEARCH_DIRS`).
    Asks :data:`CAP_QUERY_FIELDS`, again with :data:`QUERY_FIELDS` on a driver
    older than ``compute_cap``, then plain ``nvidia-smi`` for the CUDA version
    (also set in every GPU's ``cuda_version``); all in the C locale. ``status``
    is one of the ``STATUS_*`` values (``reason`` None when ``ok``); ``commands``
    lists every argv run.
    """
    smi = HostTool(module, 'nvidia-smi', path=nvidia_smi, opt_dirs=SEARCH_DIRS, env={'LC_ALL': 'C'})
    if not smi.path:
        return STATUS_NO_NVIDIA_SMI, NO_NVIDIA_SMI, [], None, smi.commands
    fields = CAP_QUERY_FIELDS
    rc, out, err = smi.run(*query_argv(smi.path, fields)[1:])
    if rc != 0 and unknown_field(out, err):
        # a driver older than 510 knows no compute_cap
        fields = QUERY_FIELDS
        rc, out, err = smi.run(*query_argv(smi.path, fields)[1:])
    if rc != 0:
        status, reason = classify_failure(rc, out, err)
        return status, reason, [], None, smi.commands
    try:
        gpus = parse_query_csv(out, fields)
    except ValueError as exc:
        return STATUS_ERROR, str(exc), [], None, smi.commands
    if not gpus:
        return STATUS_NO_GPU, 'nvidia-smi listed no GPU', [], None, smi.commands
    rc, out, err = smi.run()
    cuda = parse_cuda_version(out) if rc == 0 else None
    for gpu in gpus:
        gpu['cuda_version'] = cuda
    return STATUS_OK, None, gpus, cuda, smi.commands


# ---------------------------------------------------------------------------
# InstructLab system profiles, by release series.
# ---------------------------------------------------------------------------
_A100_SKUS = ('SXM4 40GB', 'PG509 200', 'SXM4 80GB', 'SXM 64GB', '80GB PCIe')
_H100_SKUS = ('80GB HBM3', 'NVL', 'PCIe')


def _p(pid, family, count, skus, nproc, ebs, mbl, vllm_gpus):
    return {
        'id': pid,
        'manufacturer': 'Nvidia',
        'family': family,
        'count': count,
        'skus': skus,
        # Key values of the profile file (for reports and sanity checks).
        'train': {'device': 'cuda', 'nproc_per_node': nproc,
                  'effective_batch_size': ebs, 'max_batch_len': mbl},
        'serve': {'backend': 'vllm', 'vllm_gpus': vllm_gpus,
                  'tensor_parallel_size': vllm_gpus},
    }


_PROFILES_0_25 = (
    _p('nvidia/a100/a100_x2.yaml', 'A100', 2, _A100_SKUS, 2, 96, 60000, 2),
    _p('nvidia/a100/a100_x4.yaml', 'A100', 4, _A100_SKUS, 4, 128, 54000, 4),
    _p('nvidia/a100/a100_x8.yaml', 'A100', 8, _A100_SKUS, 8, 128, 60000, 4),
    _p('nvidia/h100/h100_x2.yaml', 'H100', 2, _H100_SKUS, 2, 96, 60000, 2),
    _p('nvidia/h100/h100_x4.yaml', 'H100', 4, _H100_SKUS, 4, 128, 54000, 4),
    _p('nvidia/h100/h100_x8.yaml', 'H100', 8, _H100_SKUS, 8, 128, 60000, 4),
    _p('nvidia/l4/l4_x8.yaml', 'L4', 8, (), 8, 128, 30000, 4),
    _p('nvidia/l40s/l40s_x4.yaml', 'L40s', 4, (), 4, 128, 30000, 4),
    _p('nvidia/l40s/l40s_x8.yaml', 'L40s', 8, (), 8, 128, 30000, 4),
)

# Release series ("major.minor") -> profiles. 0.25.x and 0.26.x ship the same
# NVIDIA profiles and the same matching code.
PROFILES = {
    '0.25': _PROFILES_0_25,
    '0.26': _PROFILES_0_25,
}

SYSTEM_PROFILE_SUBDIR = 'instructlab/internal/system_profiles'


def known_ilab_versions():
    return sorted(PROFILES)


def _series(ilab_version):
    m = re.match(r'^\s*v?(\d+)\.(\d+)', str(ilab_version or ''))
    return '%s.%s' % (m.group(1), m.group(2)) if m else None


def _profiles_for(ilab_version):
    series = _series(ilab_version)
    return series, PROFILES.get(series)


def ilab_chip_name(gpu_name):
    """The name ilab compares: lower-cased CUDA device name, '-' -> ' '."""
    name = (gpu_name or '').lower()
    if '-' in name:
        name = ' '.join(name.split('-'))
    return name


def profile_label(profile):
    """What ``ilab config init`` prints: 'NVIDIA A100 X4'."""
    return ' '.join([profile['manufacturer'], profile['family'], 'x%d' % profile['count']]).upper()


def total_vram_gib(gpus):
    """Total vRAM in whole GiB, floored, as ilab computes it."""
    total_mib = sum(g.get('memory_total_mib') or 0 for g in gpus)
    return total_mib // 1024


def choose_profile(gpus, ilab_version):
    """Choose the system profile ``ilab config init`` offers for these GPUs.

    ``gpus``: list of dicts with at least ``name`` (and ``memory_total_mib``),
    as returned by :func:`parse_query_csv` / the gpu_info module.
    Returns ``(profile_id_or_None, reason)``.
    """
    series, table = _profiles_for(ilab_version)
    if table is None:
        return None, ('no InstructLab profile table for version %r (known release series: %s)'
                      % (ilab_version, ', '.join(known_ilab_versions())))
    if not gpus:
        return None, ('no NVIDIA GPU: InstructLab %s uses its generic (CPU) defaults' % ilab_version)
    names = sorted(set(g.get('name') or '' for g in gpus))
    if len(names) > 1:
        return None, ('mixed GPU models (%s): InstructLab %s has no profile for mixed systems; '
                      'set the profile explicitly' % (', '.join(names), ilab_version))
    chip = ilab_chip_name(names[0])
    count = len(gpus)
    for prof in table:
        for sku in ('',) + tuple(prof['skus']):
            candidate = ' '.join([prof['manufacturer'], prof['family'], sku]).strip().lower()
            if candidate == chip and count == prof['count']:
                return prof['id'], ('%dx %s matches InstructLab %s system profile %s (%s)'
                                    % (count, names[0], ilab_version, prof['id'], profile_label(prof)))
    same_family = sorted(set('x%d' % p['count'] for p in table
                             if any(' '.join([p['manufacturer'], p['family'], s]).strip().lower() == chip
                                    for s in ('',) + tuple(p['skus']))))
    if same_family:
        return None, ('no InstructLab %s system profile for %dx %s (profiles exist for %s of this GPU); '
                      'ilab keeps its generic defaults' % (ilab_version, count, names[0], ', '.join(same_family)))
    return None, ('no InstructLab %s system profile for %dx %s; ilab keeps its generic defaults'
                  % (ilab_version, count, names[0]))


def profile_details(profile_id, ilab_version, gpus=None):
    """Details of a profile id: label, path relative to XDG_DATA_HOME, key values, overrides."""
    if not profile_id:
        return None
    _series_, table = _profiles_for(ilab_version)
    for prof in table or ():
        if prof['id'] == profile_id:
            overrides = {}
            if gpus is not None and len(gpus) == 8 and 'a100' in ilab_chip_name(gpus[0].get('name')) \
                    and total_vram_gib(gpus) == 320:
                # init.py: 8x A100 40 GB -> train.max_batch_len = 10000
                overrides['train.max_batch_len'] = 10000
            train = dict(prof['train'])
            train.update({k.split('.', 1)[1]: v for k, v in overrides.items() if k.startswith('train.')})
            return {
                'id': prof['id'],
                'label': profile_label(prof),
                'data_path': SYSTEM_PROFILE_SUBDIR + '/' + prof['id'],
                'gpu_count': prof['count'],
                'train': train,
                'serve': dict(prof['serve']),
                'overrides': overrides,
            }
    return None
