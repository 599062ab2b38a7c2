"""The Router: exact (method, path) routes plus prefix handlers, errors mapped in one place.

Every response it returns is counted in /metrics by route label and status. A handler
raises; ``responses.error_response`` (the one mapper) turns the exception into the answer.
Adapters for other protocols (the Open Inference Protocol under /v2) register a prefix,
and may name the renderer of errors the Router itself raises under it (``prefix_errors``).

Tracing: a request's trace header (``traceparent`` or ``X-Cloud-Trace-Context``) is kept
for its log lines (functions.telemetry.context), and with OpenTelemetry on the request is
a server span (functions.telemetry.tracing).

Shutdown (functions.http.shutdown): the Router counts requests in flight, arms the drain
on the first request, and from SIGTERM on answers 503 ``shutting_down`` to any request
that arrives, except liveness, readiness (which says why it is not ready) and metrics.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from functions import metrics, telemetry
from functions.errors import MethodNotAllowed, NotFound, ServingError
from functions.http.responses import error_response
from functions.http.shutdown import Drain
from functions.telemetry.context import HEADER, find

Handler = Callable[[Request], Awaitable[Response]]
Renderer = Callable[[BaseException], Response]
DRAIN_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})


class ShuttingDown(ServingError):
    status, code = 503, "shutting_down"


class Router:
    """Exact (method, path) routes plus prefix handlers; errors mapped in one place."""

    def __init__(self, drain: Drain | None = None) -> None:
        self.exact: dict[str, dict[str, Handler]] = {}
        self.prefixes: list[tuple[str, Handler]] = []
        self.prefix_errors: dict[str, Renderer] = {}
        self.drain = drain or Drain(0.0)
        self._series: dict[tuple[str, int], tuple[str, str]] = {}  # metric names, built once
        self._resolved: dict[tuple[str, str], tuple[Handler, str]] = {}
        """(method, path) -> (handler, metrics label) of the exact routes: one lookup."""

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.exact.setdefault(path, {})[method] = handler
        self._resolved[(method, path)] = (handler, path)

    def add_prefix(self, prefix: str, handler: Handler) -> None:
        self.prefixes.append((prefix, handler))

    def _label(self, path: str) -> str:
        """The metrics label for ``path``: its route, never the raw URL (bounded labels)."""
        if path in self.exact:
            return path
        for prefix, _ in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix
        return "unmatched"

    async def __call__(self, request: Request) -> Response:
        scope = request.scope
        path = scope["path"].rstrip("/") or "/"
        started = time.perf_counter()
        drain = self.drain
        if not drain.armed:
            drain.arm()
        drain.in_flight += 1
        route = self._resolved.get((scope["method"], path))
        label = route[1] if route is not None else self._label(path)
        header = find(scope["headers"])
        token = HEADER.set(header) if header is not None else None
        traced = None if telemetry.tracer is None else \
            telemetry.tracer.request(scope["method"], label, header)
        response: Response | None = None
        try:
            if drain.draining and path not in DRAIN_EXEMPT:
                raise ShuttingDown("this instance is shutting down; send the request again",
                                   headers={"Retry-After": "1", "Connection": "close"})
            handler = route[0] if route is not None else self._handler(request, path)
            response = await handler(request)
        except Exception as exc:  # noqa: BLE001 - the one place errors become responses
            response = self.prefix_errors.get(label, error_response)(exc)
        finally:
            drain.in_flight -= 1
            if token is not None:
                HEADER.reset(token)
            if traced is not None:
                traced.end(response.status_code if response is not None else None)
        series = self._series.get((label, response.status_code))
        if series is None:
            series = self._series[(label, response.status_code)] = (
                f'http_requests_total{{path="{label}",status="{response.status_code}"}}',
                f'http_request{{path="{label}"}}')
        metrics.inc(series[0], 1, "HTTP requests by route and status")
        metrics.observe(series[1], time.perf_counter() - started,
                        "time spent answering HTTP requests, by route")
        return response

    def _handler(self, request: Request, path: str) -> Handler:
        """The handler of ``request`` (a plain call: one coroutine less per request)."""
        methods = self.exact.get(path)
        if methods is not None:
            handler = methods.get(request.method)
            if handler is None:
                allowed = ", ".join(sorted(methods))
                raise MethodNotAllowed(f"{request.method} {path} is not allowed; use {allowed}",
                                       headers={"Allow": allowed})
            return handler
        for prefix, handler in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return handler
        raise NotFound(f"no route {request.method} {path}; see GET /model and the README")
