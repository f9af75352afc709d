"""Write an OCI image layout whose layers are model files (what `oras push` makes).

Usage: oci_layout.py OUT_DIR TAG FILE [FILE...]
       oci_layout.py --index OUT_DIR TAG OS/ARCH=FILE[,FILE...] [OS/ARCH=FILE[,FILE...]...]

Each FILE becomes one layer (media type application/vnd.oci.image.layer.v1.tar
is NOT used: the blob is the raw file) annotated with
org.opencontainers.image.title = its base name, with the empty config
application/vnd.oci.empty.v1+json. Push it with
`skopeo copy oci:OUT_DIR:TAG docker://HOST:PORT/models/NAME:TAG`.
Prints the manifest digest.

With --index, one such manifest is written per platform (its files after the
``=``, comma-separated) and TAG names an OCI image index listing them with
their ``platform`` (what a multi-architecture image is). Push it with
`skopeo copy --all ...`. Prints the index digest, then ``OS/ARCH DIGEST`` per
platform.
"""
import hashlib
import json
import os
import shutil
import sys


def blob(out, data=None, path=None):
    h = hashlib.sha256()
    if path:
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        size = os.path.getsize(path)
    else:
        h.update(data)
        size = len(data)
    digest = h.hexdigest()
    dst = os.path.join(out, 'blobs', 'sha256', digest)
    if not os.path.exists(dst):
        if path:
            shutil.copyfile(path, dst)
        else:
            with open(dst, 'wb') as f:
                f.write(data)
    return 'sha256:' + digest, size


def model_manifest(out, files):
    """(digest, size) of a new manifest whose layers are ``files``."""
    cfg_digest, cfg_size = blob(out, data=b'{}')
    layers = []
    for path in files:
        d, size = blob(out, path=path)
        layers.append({'mediaType': 'application/vnd.oci.image.layer.v1.tar',
                       'digest': d, 'size': size,
                       'annotations': {'org.opencontainers.image.title': os.path.basename(path)}})
    manifest = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': cfg_digest,
                           'size': cfg_size, 'data': 'e30='},
                'layers': layers}
    return blob(out, data=json.dumps(manifest, sort_keys=True).encode())


def tag_in_index(out, tag, desc):
    """Make ``tag`` name ``desc`` in OUT/index.json."""
    index_path = os.path.join(out, 'index.json')
    index = {'schemaVersion': 2, 'manifests': []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index['manifests'] = [m for m in index['manifests']
                          if m.get('annotations', {}).get('org.opencontainers.image.ref.name') != tag]
    desc = dict(desc, annotations={'org.opencontainers.image.ref.name': tag})
    index['manifests'].append(desc)
    with open(index_path, 'w') as f:
        json.dump(index, f)


def main(argv):
    multi = len(argv) > 1 and argv[1] == '--index'
    if multi:
        argv = argv[:1] + argv[2:]
    if len(argv) < 4 or (multi and not all('=' in a and '/' in a.split('=')[0] for a in argv[3:])):
        sys.exit(__doc__)
    out, tag = argv[1], argv[2]
    os.makedirs(os.path.join(out, 'blobs', 'sha256'), exist_ok=True)
    with open(os.path.join(out, 'oci-layout'), 'w') as f:
        json.dump({'imageLayoutVersion': '1.0.0'}, f)
    if not multi:
        m_digest, m_size = model_manifest(out, argv[3:])
        tag_in_index(out, tag, {'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                                'digest': m_digest, 'size': m_size})
        print(m_digest)
        return
    platforms = []
    for arg in argv[3:]:
        platform, files = arg.split('=', 1)
        os_name, arch = platform.split('/', 1)
        m_digest, m_size = model_manifest(out, files.split(','))
        platforms.append((platform, {'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                                     'digest': m_digest, 'size': m_size,
                                     'platform': {'os': os_name, 'architecture': arch}}))
    index = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json',
             'manifests': [desc for _platform, desc in platforms]}
    i_digest, i_size = blob(out, data=json.dumps(index, sort_keys=True).encode())
    tag_in_index(out, tag, {'mediaType': 'application/vnd.oci.image.index.v1+json',
                            'digest': i_digest, 'size': i_size})
    print(i_digest)
    for platform, desc in platforms:
        print('%s %s' % (platform, desc['digest']))


if __name__ == '__main__':
    main(sys.argv)
