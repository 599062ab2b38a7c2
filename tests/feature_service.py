"""A real local HTTP feature service for tests and benchmarks, with injectable trouble.

``GET /<collection>/<key>`` answers ``{"id", "sepal": {"length", "width"}, "petal": {...}}``
with one of three iris-like profiles chosen from the key (``profile(key)``). Per key, a
test can add latency, answer given statuses first (``fail=[503, 429]``), always answer one
status, hang until the service stops, or send a raw body (malformed JSON). The service
counts calls per key, records arrival order and the most calls it had in flight at once.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

DEMO_CARD = Path(__file__).resolve().parent.parent / "models" / "iris.card.json"

PROFILES = (  # one typical flower per iris class: (sepal l, sepal w, petal l, petal w)
    (5.0, 3.4, 1.5, 0.2),
    (5.9, 2.8, 4.3, 1.3),
    (6.6, 3.0, 5.6, 2.1),
)
LABELS = ("setosa", "versicolor", "virginica")


def profile(key: str) -> tuple[float, float, float, float]:
    """The features the service answers for ``key`` (deterministic)."""
    return PROFILES[zlib.crc32(key.encode()) % 3]


def lookup_card(dest: Path, lookups: list[dict[str, Any]]) -> Path:
    """A copy of the demo iris card with ``lookups``, written to ``dest`` (same model sha256)."""
    card = json.loads(DEMO_CARD.read_text())
    card["lookups"] = lookups
    dest.write_text(json.dumps(card))
    return dest


def sepal_lookup(base_url: str, **extra: Any) -> dict[str, Any]:
    """A spec: ``user_id`` -> sepal features from ``/users/{key}``."""
    return {"key_field": "user_id", "url_template": base_url + "/users/{key}",
            "features": {"sepal_length": "sepal.length", "sepal_width": "sepal.width"}, **extra}


@dataclass
class Behaviour:
    """How the service treats one key."""

    latency: float = 0.0
    fail: list[int] = field(default_factory=list)  # statuses for the first calls, in order
    status: int | None = None                       # always answer this status
    hang: bool = False                              # never answer (until stop())
    body: bytes | None = None                       # raw 200 body instead of the profile
    headers: dict[str, str] = field(default_factory=dict)


class FeatureService:
    """The service; ``url`` is its base, ``calls[key]`` counts requests per key."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.behaviours: dict[str, Behaviour] = {}
        self.calls: Counter[str] = Counter()
        self.arrivals: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def behave(self, key: str, **kw: Any) -> None:
        self.behaviours[key] = Behaviour(**kw)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    # -- called by the handler threads ----------------------------------------------------
    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        key = unquote(path.rstrip("/").rsplit("/", 1)[-1])
        with self._lock:
            self.calls[key] += 1
            self.arrivals.append(key)
            nth = self.calls[key]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._respond(key, nth)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _respond(self, key: str, nth: int) -> tuple[int, bytes, dict[str, str]]:
        b = self.behaviours.get(key, Behaviour(latency=self.latency))
        if b.hang:
            self._release.wait(60)
            return 504, b"{}", {}
        if b.latency:
            time.sleep(b.latency)
        if nth <= len(b.fail):
            return b.fail[nth - 1], b'{"error": "injected"}', b.headers
        if b.status is not None:
            return b.status, b'{"error": "injected"}', b.headers
        if b.body is not None:
            return 200, b.body, {}
        sl, sw, pl, pw = profile(key)
        doc = {"id": key, "sepal": {"length": sl, "width": sw},
               "petal": {"length": pl, "width": pw}}
        return 200, json.dumps(doc).encode(), {}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default (5) drops connects when 64 arrive at once


def _handler_for(service: FeatureService) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client's pooled connections are reused
        # Headers and body go out in two writes; with Nagle on, the second waits for the
        # client's delayed ACK (~40 ms), which would make every keep-alive call look slow.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            status, body, headers = service.answer(self.path)
            try:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): nothing to answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
