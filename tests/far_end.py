"""A fault-injecting far end: an HTTP proxy in front of a real storage server (the GCS
emulator, moto's S3, a plain file host) that the code under test is pointed at.

It changes only what the network and the far service do, never our code:

- ``fail(n)``: the next ``n`` requests (``-1``: every one until ``heal()``) are answered
  503 with a GCS-shaped error body, as storage does when it is overloaded;
- ``gcs_create_only = True``: enforce ``ifGenerationMatch=0`` on uploads, as Cloud Storage
  does and gcp-storage-emulator does not: a simple or multipart upload, or the start or the
  last chunk of a resumable one, that would replace an existing object is answered 412;
- ``hold_writes(n, part)``: hold writes (PUT/POST) whose path contains ``part`` until ``n``
  of them arrived, so that ``n`` writers meet at the store at the same moment;
- writes are forwarded one at a time: the store decides each in turn, as a real one does
  atomically (moto checks ``If-None-Match`` and stores the object in two steps).

``requests`` lists (method, path, status) of everything answered.
"""

from __future__ import annotations

import http.client
import http.server
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "content-length"}
PRECONDITION = {"error": {"code": 412, "message": "At least one of the pre-conditions you "
                          "specified did not hold.", "errors": [{"reason": "conditionNotMet"}]}}


class FarEnd(http.server.ThreadingHTTPServer):
    """The proxy; ``url`` is where clients go, ``upstream`` the real server behind it."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = urlsplit(upstream)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.requests: list[tuple[str, str, int]] = []
        self.gcs_create_only = False
        self._failures_left = 0
        self._lock = threading.Lock()
        self._writes = threading.Lock()
        self._uploads: dict[str, tuple[str, str]] = {}  # resumable upload id -> (bucket, name)
        self._hold: tuple[int, str, threading.Barrier] | None = None
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a client going away is no news

    def fail(self, n: int) -> None:
        with self._lock:
            self._failures_left = n

    def heal(self) -> None:
        self.fail(0)

    def hold_writes(self, n: int, part: str) -> None:
        self._hold = (n, part, threading.Barrier(n, timeout=30))

    def answered(self, status: int, part: str = "") -> list[tuple[str, str, int]]:
        return [r for r in self.requests if r[2] == status and part in r[1]]

    def take_failure(self) -> bool:
        with self._lock:
            if self._failures_left == 0:
                return False
            self._failures_left -= self._failures_left > 0
            return True

    def upstream_call(self, method: str, path: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def gcs_object_exists(self, bucket: str, name: str) -> bool:
        path = f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}"
        return self.upstream_call("GET", path, {}, b"")[0] == 200

    def gcs_precondition(self, method: str, path: str, headers: dict[str, str],
                         body: bytes) -> tuple[str, str] | None:
        """(bucket, name) of an upload that must not replace an object; None otherwise."""
        parts = urlsplit(path)
        query = parse_qs(parts.query)
        if not self.gcs_create_only or not parts.path.startswith("/upload/storage/v1/b/"):
            return None
        bucket = parts.path.split("/")[5]
        if method == "PUT" and "upload_id" in query:  # a chunk: the last one commits
            total = headers.get("content-range", "").rpartition("/")[2]
            return self._uploads.get(query["upload_id"][0]) if total not in ("", "*") else None
        if query.get("ifGenerationMatch") != ["0"]:
            return None
        # a resumable upload is checked when it starts, and again when its last chunk
        # arrives (_Handler.remember_upload): the client must take a 412 at either
        return bucket, query.get("name", [None])[0] or _metadata_name(body)


def _metadata_name(body: bytes) -> str:
    """The object name in an upload's JSON metadata (resumable start, or multipart's first
    part)."""
    start = body.find(b"{")
    end = body.find(b"}\r\n") if b"}\r\n" in body else len(body)
    try:
        return str(json.loads(body[start:end + 1])["name"])
    except (ValueError, KeyError):
        return ""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FarEnd

    def log_message(self, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.server.requests.append((self.command, self.path, status))
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._answer(status, [("Content-Type", "application/json")], json.dumps(body).encode())

    def _proxy(self) -> None:
        server, body = self.server, self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if server.take_failure():
            self._json(503, {"error": {"code": 503, "message": "injected by the far end"}})
            return
        writing = self.command in ("PUT", "POST")
        hold = server._hold
        if writing and hold is not None and hold[1] in self.path:
            hold[2].wait()
        if not writing:
            self._answer(*server.upstream_call(self.command, self.path, headers, body))
            return
        with server._writes:  # one write at a time: the store decides each in turn
            target = server.gcs_precondition(self.command, self.path,
                                             {k.lower(): v for k, v in headers.items()}, body)
            if target is not None and server.gcs_object_exists(*target):
                self._json(412, PRECONDITION)
                return
            status, out_headers, out = server.upstream_call(self.command, self.path, headers,
                                                            body)
            self.remember_upload(status, out_headers, body)
        self._answer(status, out_headers, out)

    def remember_upload(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """A resumable upload started with ifGenerationMatch=0: note its object, for the
        check when its last chunk arrives."""
        query = parse_qs(urlsplit(self.path).query)
        if status != 200 or query.get("uploadType") != ["resumable"] \
                or query.get("ifGenerationMatch") != ["0"] or "upload_id" in query:
            return
        location = dict((k.lower(), v) for k, v in headers).get("location", "")
        upload_id = parse_qs(urlsplit(location).query).get("upload_id", [""])[0]
        bucket = urlsplit(self.path).path.split("/")[5]
        name = query.get("name", [None])[0] or _metadata_name(body)
        self.server._uploads[upload_id] = (bucket, name)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _proxy  # noqa: N815


def start_far_end(upstream: str) -> FarEnd:
    """A far end in front of ``upstream``; call ``shutdown()`` when done."""
    far = FarEnd(upstream)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # serve_forever is up once a connection is taken
        try:
            http.client.HTTPConnection("127.0.0.1", far.server_address[1], timeout=1).connect()
            break
        except OSError:
            time.sleep(0.01)
    return far
