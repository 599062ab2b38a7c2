"""The function in this process: functions-framework's own ASGI app around ``main.py``,
driven by Starlette's TestClient (or, for a ``signature_type``, its Flask app as it serves
without ``--asgi``, through httpx's WSGI transport), with the ``get``/``post`` surface of
``servers.Served``.

``start_in_process(env, tmp)`` executes ``main.py`` afresh with ``env`` applied to the
process environment, so its ``runtime()`` (the Router, service and holder that
``functions.runtime.build`` wires) is built from that environment exactly as in a served
process. The environment is restored once the model is ready, and the cached wiring is
forgotten; each request applies it again, and the process's cached SDK clients (which read
STORAGE_EMULATOR_HOST, AWS_ENDPOINT_URL, ... when created) are dropped whenever another app
sends, so no state but the module-level metrics leaks from one app to the next. Counters
under ``/metrics`` are process-wide: compare before and after, never absolute values. Log
records go to this process's logging (pytest's ``caplog``). The TestClient runs the app on
a thread of its own, where the batcher never merges (it serves the main thread's loop
only): ``concurrently`` sends requests that may be merged.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from starlette.testclient import TestClient

from tests.servers import ROOT

URL = "http://testserver"


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``env`` inside the block, restored after."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _SharedEnvironment:
    """``environment(env)`` for requests that may overlap (a test's thread pool): the first
    to enter applies ``env``, the last to leave restores; overlapping requests come from
    one app, so they share one ``env``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._block: Any = None

    @contextmanager
    def applied(self, env: Mapping[str, str]) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._block = environment(env)
                self._block.__enter__()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._block.__exit__(None, None, None)


_request_env = _SharedEnvironment()


def forget_clients() -> None:
    """Drop the process's cached SDK clients: the next one is made from the environment."""
    from functions.loading.sdk_clients import gcs_client, s3_client

    s3_client.cache_clear()
    gcs_client.cache_clear()


def forget_runtime() -> None:
    """Drop the process's cached wiring and SDK clients: the next build reads the env."""
    from functions.runtime import runtime

    runtime.cache_clear()
    forget_clients()


def _as_client_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """requests' keywords as the TestClient (httpx) takes them: raw bytes are ``content``."""
    kw.pop("timeout", None)  # the app runs in this process: a hang shows as a stuck test
    data = kw.get("data")
    if isinstance(data, bytes | str):
        kw["content"] = kw.pop("data")
    return kw


@dataclass
class InProcess:
    """The function's ASGI app in this process; ``module`` is its own copy of main.py."""

    client: Any
    """Starlette's TestClient (ASGI) or an httpx client over the Flask app (WSGI)."""
    module: ModuleType
    env: dict[str, str] = field(default_factory=dict)
    full_env: dict[str, str] = field(default_factory=dict)
    """``env`` with the defaults start_in_process adds: applied around each request."""
    url: str = URL

    @property
    def runtime(self) -> Any:
        """The wiring this copy of main.py built (``functions.runtime.Runtime``)."""
        return self.module._rt

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """``method path`` through the app, with this app's environment applied."""
        global _last_sender
        with _request_env.applied(self.full_env):
            if _last_sender is not self:
                forget_clients()
                _last_sender = self
            return self.client.request(method, path, **_as_client_kwargs(kw))

    def concurrently(self, method: str, path: str, requests: list[dict[str, Any]]) -> list[Any]:
        """One ``method path`` per keyword dict in ``requests``, all in flight at once on an
        event loop of the calling thread, as a worker holds many connections; the answers
        in that order. The batcher merges requests only on the main thread's loop (the
        server's), and the TestClient behind ``get``/``post`` runs the app on a thread of
        its own: call this from the test's (main) thread to see requests merged."""
        import asyncio

        import httpx2

        async def send_all() -> list[Any]:
            transport = httpx2.ASGITransport(app=self.client.app)
            async with httpx2.AsyncClient(transport=transport, base_url=self.url) as client:
                return await asyncio.gather(*(
                    client.request(method, path, **_as_client_kwargs(dict(kw)))
                    for kw in requests))

        with _request_env.applied(self.full_env):
            return asyncio.run(send_all())

    def log(self) -> str:
        """No separate log: the app logs into this process (use pytest's caplog)."""
        return ""

    def stop(self) -> None:
        self.client.__exit__(None, None, None)


_last_sender: InProcess | None = None
"""The app that sent last: the SDK clients cached in this process were made for it."""


def _load_main(target: str, signature_type: str | None) -> tuple[Any, ModuleType]:
    """A fresh copy of main.py and functions-framework's app for ``target``: its ASGI app,
    or with ``signature_type`` its Flask app (what ``functions-framework`` serves without
    ``--asgi``)."""
    import functions_framework
    import functions_framework.aio

    previous = sys.modules.get("main")
    try:
        if signature_type is None:
            app = functions_framework.aio.create_asgi_app(target=target,
                                                          source=str(ROOT / "main.py"))
        else:
            app = functions_framework.create_app(target=target, source=str(ROOT / "main.py"),
                                                 signature_type=signature_type)
        module = sys.modules["main"]
    finally:  # tests that import main (the Lambda entry point) get their own
        if previous is None:
            sys.modules.pop("main", None)
        else:
            sys.modules["main"] = previous
    return app, module


def _client(app: Any, wsgi: bool) -> Any:
    if not wsgi:
        return TestClient(app, raise_server_exceptions=False)
    import httpx2

    return httpx2.Client(transport=httpx2.WSGITransport(app=app, raise_app_exceptions=False),
                         base_url=URL)


def start_in_process(env: Mapping[str, str], tmp: Path, target: str = "predict",
                     wait: str | None = "/readyz", timeout: float = 60.0,
                     signature_type: str | None = None) -> InProcess:
    """main.py's ``target`` served in this process with ``env``; like
    ``servers.start_function``, returns once ``wait`` answers 200 (None: at once);
    ``signature_type`` (``cloudevent``, ``http``): functions-framework's Flask path."""
    full_env = {"MODEL_CACHE_DIR": str(tmp / "model-cache"), **env}
    with environment(full_env):
        forget_runtime()
        try:
            app, module = _load_main(target, signature_type)
            client = _client(app, wsgi=signature_type is not None)
            client.__enter__()
            served = InProcess(client, module, dict(env), full_env)
            if wait is not None:
                _wait_ready(served, wait, timeout)
        finally:
            forget_runtime()
    return served


def _wait_ready(served: InProcess, path: str, timeout: float) -> None:
    """Until ``path`` answers 200; the model load runs in the holder's own thread."""
    deadline = time.monotonic() + timeout
    resp = served.get(path)
    while resp.status_code != 200:
        if time.monotonic() > deadline or "failed" in resp.text:
            served.stop()
            raise RuntimeError(f"{path} answered {resp.status_code} {resp.text[:500]}")
        time.sleep(0.02)
        resp = served.get(path)
