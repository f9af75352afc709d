"""Write an OCI image layout whose layers are model files (what `oras push` makes).

Usage: oci_layout.py OUT_DIR TAG FILE [FILE...]

Each FILE becomes one layer (media type application/vnd.oci.image.layer.v1.tar
is NOT used: the blob is the raw file) annotated with
org.opencontainers.image.title = its base name, with the empty config
application/vnd.oci.empty.v1+json. Push it with
`skopeo copy oci:OUT_DIR:TAG docker://HOST:PORT/models/NAME:TAG`.
Prints the manifest digest.
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


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    out, tag, files = argv[1], argv[2], argv[3:]
    os.makedirs(os.path.join(out, 'blobs', 'sha256'), exist_ok=True)
    with open(os.path.join(out, 'oci-layout'), 'w') as f:
        json.dump({'imageLayoutVersion': '1.0.0'}, f)
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
    raw = json.dumps(manifest, sort_keys=True).encode()
    m_digest, m_size = blob(out, data=raw)
    index_path = os.path.join(out, 'index.json')
    index = {'schemaVersion': 2, 'manifests': []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index['manifests'] = [m for m in index['manifests']
                          if m.get('annotations', {}).get('org.opencontainers.image.ref.name') != tag]
    index['manifests'].append({'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                               'digest': m_digest, 'size': m_size,
                               'annotations': {'org.opencontainers.image.ref.name': tag}})
    with open(index_path, 'w') as f:
        json.dump(index, f)
    print(m_digest)


if __name__ == '__main__':
    main(sys.argv)
