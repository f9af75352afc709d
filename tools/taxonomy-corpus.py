# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the upstream taxonomy corpus used by ilab_taxonomy's agreement test.

Reads a git clone of https://github.com/instructlab/taxonomy (bare is fine),
walks the history of the selected refs (default: every branch) and keeps every
distinct ``qna.yaml`` blob under ``compositional_skills/`` or ``knowledge/``
(the two folders ``ilab taxonomy diff`` reads), deduplicated by blob id.

Writes into OUT (default tests/unit/fixtures/taxonomy-upstream):
  corpus.tar.xz  one member per blob, named ``<blob id>/<original path>``
                 (byte-identical output for the same input: sorted, mtime 0)
  MANIFEST.tsv   blob, original path, first commit and date holding it,
                 number of commits holding it at that path
  SOURCE.txt     the refs walked and the commit each pointed at
  LICENSE        the upstream licence (Apache-2.0), from the newest main

  python3 tools/taxonomy-corpus.py --git-dir /path/to/taxonomy.git
  python3 tools/taxonomy-corpus.py --git-dir DIR --check   # compare with OUT, no writes
  python3 tools/taxonomy-corpus.py --git-dir DIR --refs=--all --out /tmp/x  # incl. PR refs
"""

from __future__ import annotations

import argparse
import io
import lzma
import os
import subprocess
import sys
import tarfile

FOLDERS = ('compositional_skills/', 'knowledge/')
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'tests', 'unit', 'fixtures', 'taxonomy-upstream')


def git(git_dir, *args, data=None):
    return subprocess.run(['git', '--git-dir', git_dir] + list(args), input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def collect(git_dir, refs):
    """{blob: [path, first_commit, first_date, commits]} over the history of refs."""
    log = git(git_dir, 'log', '--reverse', '--date-order', '--format=%H %cs', *refs).decode().split('\n')
    blobs = {}
    for line in filter(None, log):
        commit, date = line.split()
        for entry in git(git_dir, 'ls-tree', '-r', '-z', commit).split(b'\0'):
            if not entry:
                continue
            meta, path = entry.split(b'\t', 1)
            path = path.decode('utf-8')
            if not path.startswith(FOLDERS) or os.path.basename(path) != 'qna.yaml':
                continue
            blob = meta.split()[2].decode()
            if blob not in blobs:
                blobs[blob] = [path, commit, date, 0]
            if blobs[blob][0] == path:
                blobs[blob][3] += 1
    return blobs


def contents(git_dir, blob_ids):
    """Blob contents by id (one `git cat-file --batch`)."""
    out = git(git_dir, 'cat-file', '--batch', data=''.join(b + '\n' for b in blob_ids).encode())
    result, pos = {}, 0
    for blob in blob_ids:
        header_end = out.index(b'\n', pos)
        sha, _kind, size = out[pos:header_end].decode().split()
        assert sha == blob, (sha, blob)
        start = header_end + 1
        result[blob] = out[start:start + int(size)]
        pos = start + int(size) + 1
    return result


def build(git_dir, refs):
    blobs = collect(git_dir, refs)
    order = sorted(blobs, key=lambda b: (blobs[b][0], blobs[b][2], b))
    data = contents(git_dir, order)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.GNU_FORMAT) as tar:
        for blob in order:
            info = tarfile.TarInfo('%s/%s' % (blob, blobs[blob][0]))
            info.size, info.mtime, info.mode = len(data[blob]), 0, 0o644
            tar.addfile(info, io.BytesIO(data[blob]))
    files = {
        'corpus.tar.xz': lzma.compress(raw.getvalue(), preset=9 | lzma.PRESET_EXTREME),
        'MANIFEST.tsv': ('blob\tpath\tfirst_commit\tfirst_date\tcommits\n' + ''.join(
            '%s\t%s\t%s\t%s\t%d\n' % (b, blobs[b][0], blobs[b][1], blobs[b][2], blobs[b][3])
            for b in order)).encode(),
        'LICENSE': git(git_dir, 'show', _newest_main(git_dir) + ':LICENSE'),
    }
    heads = git(git_dir, 'for-each-ref', '--format=%(objectname) %(committerdate:short) %(refname)',
                *_ref_patterns(refs)).decode()
    files['SOURCE.txt'] = ('# https://github.com/instructlab/taxonomy: refs walked (git log %s)\n'
                           % ' '.join(refs) + heads).encode()
    return files, len(order)


def _ref_patterns(refs):
    pats = []
    for r in refs:
        if r == '--all':
            pats.append('refs/')
        elif r == '--branches':
            pats.append('refs/heads/')
        elif not r.startswith('-'):
            pats.append(r if r.startswith('refs/') else 'refs/heads/' + r)
    return pats


def _newest_main(git_dir):
    for ref in ('refs/heads/main', 'HEAD'):
        try:
            return git(git_dir, 'rev-parse', '--verify', '-q', ref).decode().strip()
        except subprocess.CalledProcessError:
            continue
    raise SystemExit('no main branch in %s' % git_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--git-dir', required=True, help='a clone of github.com/instructlab/taxonomy')
    ap.add_argument('--refs', nargs='+', default=['--branches'],
                    help='what to walk, as for git log (default: --branches)')
    ap.add_argument('--out', default=DEFAULT_OUT)
    ap.add_argument('--check', action='store_true', help='compare with OUT instead of writing')
    args = ap.parse_args()
    files, count = build(args.git_dir, args.refs)
    if args.check:
        stale = [name for name, data in sorted(files.items())
                 if not os.path.exists(os.path.join(args.out, name))
                 or open(os.path.join(args.out, name), 'rb').read() != data]
        print('%d qna.yaml blobs; %s' % (count, 'differs: ' + ', '.join(stale) if stale else 'up to date'))
        return 1 if stale else 0
    os.makedirs(args.out, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(args.out, name), 'wb') as f:
            f.write(data)
    print('%d qna.yaml blobs written to %s (corpus.tar.xz %d bytes)'
          % (count, args.out, len(files['corpus.tar.xz'])))
    return 0


if __name__ == '__main__':
    sys.exit(main())
