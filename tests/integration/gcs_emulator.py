"""A Google Cloud Storage API on loopback for the gs:// tests.

`gcp-storage-emulator` (from the package index) serves GCS's JSON, upload, download and
XML-object APIs, in its own process here so pipeline runs, Beam workers and emulated pods
reach it alike.

How each client reaches it, by configuration only:
- the Python clients (gcsfs, google-cloud-storage, Beam's GCS IO, MLflow's GCS artifact
  store) read STORAGE_EMULATOR_HOST, which a GcsConnection block's `endpoint` sets;
- TensorFlow's own GCS file system (under TFX's `fileio`, TFDV, tf.Transform, SavedModels)
  has its endpoints compiled in (https://www.googleapis.com/storage/v1/,
  https://storage.googleapis.com/<bucket>/<object>) and no variable to change them. It talks
  through libcurl, which honours HTTPS_PROXY and CURL_CA_BUNDLE: this process also runs an
  HTTPS proxy that answers CONNECT to *.googleapis.com with a certificate of a throwaway
  certificate authority and hands each request to the emulator. `tensorflow_environment()`
  names the proxy and the authority. Nothing else leaves loopback: any other CONNECT is
  refused.

Credentials are real in form: `service_account_key()` makes a key (a fresh RSA key) whose
token_uri is the emulator; google-auth and TensorFlow sign their assertions with it and get a
token from the emulator (TensorFlow at its compiled-in oauth2 URL, through the proxy). The
emulator checks no token.

Where the emulator differs from GCS for requests our clients send, this module corrects it:
- it answers one request at a time (http.server.HTTPServer): served here by a threading
  server, with the store behind one lock;
- a body sent chunked with a Content-Length as well (TensorFlow's uploads) was read by the
  length: the chunks are decoded, as HTTP says;
- an empty object written in one request (TensorFlow's directory markers `dir/`) made it fail
  (`len(None)`): an empty body is an empty object here.

And it adds what the tests need (under /_retrain/, not part of GCS):
- `GET /_retrain/stats`: requests by method, bytes of object content served (`media_bytes`)
  and per object (`download:<bucket>/<object>`), listings per prefix
  (`list:<bucket>/<prefix>`), refused requests per bucket (`denied:<bucket>`);
- `POST /_retrain/stats/reset`;
- `POST /_retrain/token` and `/oauth2/v4/token`: OAuth's token endpoint (counted as `tokens`);
- objects.move (`.../moveTo/o/...`, gcsfs's `mv`), which the emulator answers 501;
- `POST /_retrain/deny/<bucket>` / `POST /_retrain/allow/<bucket>`: every request for that
  bucket answers 403 as GCS does for a caller without permission.

Run as a script: `python gcs_emulator.py --port N --proxy-port M --certs DIR --bucket NAME`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from functools import partial
from http import server as http_server
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from gcs_proxy import read_body, serve_proxy, write_certificates

_BUCKET_IN_PATH = re.compile(
    r"^(?:/(?:upload/|download/)?storage/v1)?/b/(?P<a>[-.\w]+)|^/(?P<b>[-.\w]+)/")
_MEDIA = re.compile(r"^/download/|[?&]alt=media")
_NOT_OBJECT = ("/storage/", "/upload/", "/b/", "/_retrain/")


_JSON_OBJECT = re.compile(r"^(?:/download)?/storage/v1/b/(?P<bucket>[-.\w]+)/o/(?P<name>.+)$")


_MOVE = re.compile(r"^/storage/v1/b/(?P<bucket>[-.\w]+)/o/(?P<source>.+)/moveTo/o/(?P<target>.+)$")
_LISTING = re.compile(r"^/storage/v1/b/(?P<bucket>[-.\w]+)/o$")
_TOKEN_PATHS = ("/_retrain/token", "/oauth2/v4/token")


def _downloaded_object(path: str) -> str | None:
    """`bucket/object` when the request downloads object content (the JSON API's media, the
    XML API's /bucket/object), else None."""
    url = urlparse(path)
    if _MEDIA.search(path):
        match = _JSON_OBJECT.match(url.path)
        return f"{match['bucket']}/{unquote(match['name'])}" if match else None
    if path.startswith(_NOT_OBJECT) or _bucket_of(url.path) is None:
        return None
    bucket, _, name = url.path.lstrip("/").partition("/")
    return f"{bucket}/{unquote(name)}"


def _bucket_of(path: str) -> str | None:
    match = _BUCKET_IN_PATH.match(path)
    if not match or path.startswith("/_retrain/"):
        return None
    return match.group("a") or match.group("b")

def _serve(port: int, buckets: list[str]) -> None:
    from gcp_storage_emulator import server as emulator
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import buckets as bucket_handlers
    from gcp_storage_emulator.handlers import objects
    from gcp_storage_emulator.storage import Storage

    def read_raw_data(handler):
        # Transfer-Encoding: chunked wins over Content-Length (RFC 9112 6.3); TensorFlow's
        # uploads send both.
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return read_body(handler.rfile, {"transfer-encoding": "chunked"})
        length = handler.headers.get("Content-Length")
        return handler.rfile.read(int(length)) if length else None

    emulator._read_raw_data = read_raw_data
    original_read = emulator._read_data

    def read_data(handler, query):
        data = original_read(handler, query)
        if data is None and (handler.command == "PUT" and not handler.path.startswith("/upload/")
                             or "uploadType=media" in handler.path):
            return b""  # an empty object, e.g. TensorFlow's directory marker
        return data

    emulator._read_data = read_data

    storage = Storage(use_memory_fs=True)
    for name in buckets:
        bucket_handlers.create_bucket(name, storage)
    lock = threading.Lock()
    stats: Counter = Counter()
    denied: set[str] = set()

    class Handler(emulator.RequestHandler):
        def _control(self) -> bool:
            path = urlparse(self.path).path
            if not path.startswith("/_retrain/"):
                return False
            body: dict = {}
            if path == "/_retrain/stats":
                body = dict(stats)
            elif path == "/_retrain/stats/reset":
                stats.clear()
            elif path.startswith("/_retrain/deny/"):
                denied.add(path.rsplit("/", 1)[1])
            elif path.startswith("/_retrain/allow/"):
                denied.discard(path.rsplit("/", 1)[1])
            self._reply(200, body)
            return True

        def _forbidden(self) -> bool:
            bucket = _bucket_of(urlparse(self.path).path)
            if bucket not in denied:
                return False
            stats[f"denied:{bucket}"] += 1
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self._reply(403, {"error": {"code": 403, "message": (
                "caller does not have storage.objects.list access to the Google Cloud "
                f"Storage bucket {bucket}. Permission 'storage.objects.list' denied."),
                "errors": [{"reason": "forbidden", "domain": "global"}]}})
            return True

        def send_header(self, keyword, value):
            if keyword.lower() == "content-length" and self.command == "GET":
                name = _downloaded_object(self.path)
                if name is not None:
                    stats["media_bytes"] += int(value)
                    stats[f"download:{name}"] += int(value)
            super().send_header(keyword, value)

        def _reply(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _token(self) -> bool:
            """OAuth's token endpoint: google-auth (a key's token_uri) and TensorFlow (its
            compiled-in https://www.googleapis.com/oauth2/v4/token, through the proxy) get a
            token for any signed assertion."""
            if self.command != "POST" or urlparse(self.path).path not in _TOKEN_PATHS:
                return False
            form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if "assertion=" not in form:
                self._reply(400, {"error": "invalid_grant"})
                return True
            stats["tokens"] += 1
            self._reply(200, {"access_token": "emulated-access-token", "expires_in": 3600,
                              "token_type": "Bearer"})
            return True

        def _move(self) -> bool:
            """The JSON API's objects.move (gcsfs's `mv`), which the emulator lacks."""
            match = _MOVE.match(urlparse(self.path).path) if self.command == "POST" else None
            if match is None:
                return False
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            bucket, source, target = (match["bucket"], unquote(match["source"]),
                                      unquote(match["target"]))
            with lock:
                stats["POST"] += 1
                try:
                    moved = objects._copy(f"http://{self.headers.get('Host')}", storage,
                                          bucket, source, bucket, target)
                except NotFound:
                    self._reply(404, {"error": {"code": 404, "message": "No such object: "
                                                f"{bucket}/{source}"}})
                    return True
                objects._delete(storage, bucket, source)
            self._reply(200, moved)
            return True

        def _route(self, method: str) -> None:
            if self._token() or self._control():
                return
            url = urlparse(self.path)
            listing = _LISTING.match(url.path) if method == "GET" else None
            if listing:
                prefix = parse_qs(url.query).get("prefix", [""])[0]
                stats[f"list:{listing['bucket']}/{prefix}"] += 1
            if self._forbidden() or self._move():
                return
            with lock:
                stats[method] += 1
                getattr(super(), f"do_{method}")()

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

        def do_DELETE(self):
            self._route("DELETE")

        def do_PATCH(self):
            self._route("PATCH")

        def log_message(self, format, *args):  # one line per request, into the log file
            print(format % args, self.headers.get("Range") or "", flush=True)

    httpd = http_server.ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, storage))
    httpd.daemon_threads = True
    print("ready", flush=True)
    httpd.serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GcsEmulator:
    """The emulator in a child process, as a context manager: `.endpoint`, `.stats()`,
    `.reset_stats()`, `.deny(bucket)`, `.allow(bucket)`."""

    def __init__(self, buckets: list[str], directory: Path):
        self.buckets = buckets
        self.port, self.proxy_port = _free_port(), _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._directory = directory
        self._log_path = directory / "emulator.log"
        self._process: subprocess.Popen | None = None

    def tensorflow_environment(self) -> dict[str, str]:
        """What points TensorFlow's own GCS file system (libcurl) at the emulator: the
        proxy, and the authority that signed its certificate."""
        return {"HTTPS_PROXY": f"http://127.0.0.1:{self.proxy_port}",
                "CURL_CA_BUNDLE": str(self._directory / "certs" / "authority.pem"),
                "NO_PROXY": "127.0.0.1,localhost"}

    def service_account_key(self, email: str = "trainer@retrain-tests.iam.gserviceaccount.com"
                            ) -> str:
        """A service-account JSON key with a fresh RSA key whose token_uri is this emulator:
        the clients sign their assertions with it and get a token here."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        return json.dumps({
            "type": "service_account", "project_id": "retrain-tests",
            "private_key_id": "emulated", "private_key": pem, "client_email": email,
            "client_id": "1", "token_uri": f"{self.endpoint}/_retrain/token"})

    def __enter__(self) -> GcsEmulator:
        write_certificates(self._directory / "certs")
        args = [sys.executable, __file__, "--port", str(self.port),
                "--proxy-port", str(self.proxy_port), "--certs", str(self._directory / "certs")]
        for bucket in self.buckets:
            args += ["--bucket", bucket]
        self._log = open(self._log_path, "w")
        self._process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.stats()
                return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the GCS emulator did not start: "
                                       + self._log_path.read_text()[-2000:]) from None
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._log.close()

    def _call(self, method: str, path: str) -> dict:
        request = urllib.request.Request(f"{self.endpoint}{path}", method=method,
                                         data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def stats(self) -> dict[str, int]:
        """Requests served by method (GET, PUT, ...) and `media_bytes` of content served."""
        return self._call("GET", "/_retrain/stats")

    def reset_stats(self) -> None:
        self._call("POST", "/_retrain/stats/reset")

    def deny(self, bucket: str) -> None:
        self._call("POST", f"/_retrain/deny/{bucket}")

    def allow(self, bucket: str) -> None:
        self._call("POST", f"/_retrain/allow/{bucket}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--proxy-port", type=int, required=True)
    parser.add_argument("--certs", type=Path, required=True)
    parser.add_argument("--bucket", action="append", default=[])
    options = parser.parse_args()
    os.environ.pop("STORAGE_EMULATOR_HOST", None)
    threading.Thread(target=serve_proxy, daemon=True,
                     args=(options.proxy_port, options.port, options.certs)).start()
    _serve(options.port, options.bucket)
