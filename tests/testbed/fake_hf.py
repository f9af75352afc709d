"""A minimal stand-in for the Hugging Face Hub file API, for offline tests.

Usage: python3 fake_hf.py PORT DIR  (the expected token is read from stdin)

Serves HEAD/GET /<org>/<repo>/resolve/<revision>/<file> from DIR/<org>/<repo>/<file>
with the headers huggingface_hub's hf_hub_download reads (X-Repo-Commit, ETag,
Content-Length), only with ``Authorization: Bearer <token>`` (else 401).
Writes one line per request to DIR/requests.log: method, path, status and
whether the token matched (never the token itself).
"""
import hashlib
import http.server
import os
import sys

PORT, ROOT = int(sys.argv[1]), sys.argv[2]
TOKEN = sys.stdin.readline().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):  # quiet
        pass

    def _serve(self, body):
        parts = self.path.split('?')[0].strip('/').split('/')
        auth_ok = self.headers.get('Authorization') == 'Bearer ' + TOKEN
        status = 200
        path = None
        if len(parts) < 5 or parts[2] != 'resolve':
            status = 404
        elif not auth_ok:
            status = 401
        else:
            path = os.path.join(ROOT, parts[0], parts[1], *parts[4:])
            if not os.path.isfile(path):
                status = 404
        with open(os.path.join(ROOT, 'requests.log'), 'a') as log:
            log.write('%s %s %d auth_ok=%s\n' % (self.command, self.path, status, auth_ok))
        if status != 200:
            self.send_response(status)
            self.send_header('Content-Length', '0')
            self.send_header('X-Error-Code', 'GatedRepo' if status == 401 else 'EntryNotFound')
            self.end_headers()
            return
        data = open(path, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('ETag', '"%s"' % hashlib.sha256(data).hexdigest())
        self.send_header('X-Repo-Commit', hashlib.sha1(data).hexdigest())
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self):  # noqa: N802
        self._serve(False)

    def do_GET(self):  # noqa: N802
        self._serve(True)


http.server.ThreadingHTTPServer(('127.0.0.1', PORT), Handler).serve_forever()
