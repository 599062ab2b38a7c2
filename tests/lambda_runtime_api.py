"""A stand-in for the AWS Lambda Runtime API (the far end awslambdaric talks to): it hands
out the events queued with ``invoke`` on ``GET /2018-06-01/runtime/invocation/next`` and
collects what the runtime posts back to ``.../invocation/{id}/response`` or ``/error``
(and ``/runtime/init/error``), as Lambda's own endpoint does for one execution
environment."""

from __future__ import annotations

import http.server
import json
import queue
import threading
import time
import uuid
from typing import Any

PREFIX = "/2018-06-01/runtime"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:onnx-serverless"
TRACE = "Root=1-00000000-000000000000000000000000;Sampled=0"


class RuntimeApi(http.server.ThreadingHTTPServer):
    """``address`` is what AWS_LAMBDA_RUNTIME_API takes; ``invoke(event)`` waits for the
    runtime's answer: ("response" | "error", decoded body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pending: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.answers: dict[str, queue.Queue[tuple[str, Any]]] = {}
        self.init_error: Any = None
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def invoke(self, event: dict[str, Any], timeout: float = 60.0) -> tuple[str, Any]:
        request_id = str(uuid.uuid4())
        self.answers[request_id] = queue.Queue()
        self.pending.put((request_id, json.dumps(event).encode()))
        try:
            return self.answers[request_id].get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer to invocation {request_id} after {timeout}s "
                               f"(init error: {self.init_error})") from None

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RuntimeApi

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, b'{"errorType": "NotFound"}')
            return
        request_id, body = self.server.pending.get()  # long poll, as Lambda's does
        deadline = int((time.time() + 60) * 1000)
        self._reply(200, body, {"Lambda-Runtime-Aws-Request-Id": request_id,
                                "Lambda-Runtime-Deadline-Ms": str(deadline),
                                "Lambda-Runtime-Invoked-Function-Arn": ARN,
                                "Lambda-Runtime-Trace-Id": TRACE})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.removeprefix(PREFIX + "/").split("/")
        decoded = json.loads(body) if body else None
        if parts == ["init", "error"]:
            self.server.init_error = decoded
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            self.server.answers[parts[1]].put((parts[2], decoded))
        else:
            self._reply(404, b'{"errorType": "NotFound"}')
            return
        self._reply(202, b'{"status": "OK"}')

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass
