"""Real servers for the tests: the function under functions-framework, storage emulators,
and a plain HTTP file server. Each starts on a free loopback port and stops by itself."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
FF = Path(sys.executable).parent / "functions-framework"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A function served over HTTP by functions-framework in a subprocess."""

    url: str
    proc: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=kw.pop("timeout", 60), **kw)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, self.url + path, timeout=kw.pop("timeout", 60), **kw)

    def stop(self) -> None:
        stop_group(self.proc)


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop ``proc``'s process group (it was started with ``start_new_session``): SIGTERM,
    then SIGKILL to whatever of the group is left after ``grace`` seconds, workers whose
    arbiter is gone included."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait(5)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(proc.name))
    return members


def wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    """Until no process of group ``pgid`` is alive; TimeoutError naming those left."""
    deadline = time.monotonic() + timeout
    while members := group_members(pgid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {members} of group {pgid} still alive")
        time.sleep(0.02)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:  # the whole group is gone already
        pass


def wait_http(url: str, timeout: float = 60.0, want: tuple[int, ...] = (200,),
              proc: subprocess.Popen | None = None) -> requests.Response:
    """Poll ``url`` until it answers a status in ``want``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} while waiting for {url}")
        try:
            resp = requests.get(url, timeout=5)
            if resp.status_code in want:
                return resp
            last = resp.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{url} not answering {want} after {timeout}s (last: {last})")


def start_function(env: dict[str, str], tmp: Path, target: str = "predict",
                   asgi: bool = True, signature_type: str | None = None,
                   wait: str | None = "/readyz", timeout: float = 60.0,
                   python: Path | None = None) -> Served:
    """functions-framework serving ``main.py:target`` with ``env`` on a free port; its
    command line as installed, or ``python -m functions_framework`` for another venv's
    ``python``."""
    port = free_port()
    full_env = {**os.environ, "MODEL_CACHE_DIR": str(tmp / "model-cache"),
                "PYTHONUNBUFFERED": "1", **env, "PORT": str(port)}
    launcher = [str(python), "-m", "functions_framework"] if python else [str(FF)]
    cmd = [*launcher, "--target", target, "--source", str(ROOT / "main.py"),
           "--host", "127.0.0.1", "--port", str(port)]
    if asgi:
        cmd.append("--asgi")
    if signature_type:
        cmd += ["--signature-type", signature_type]
    log_path = tmp / f"function-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own group: workers stop with it
    served = Served(f"http://127.0.0.1:{port}", proc, log_path, env)
    try:
        wait_http(served.url + (wait or "/healthz"), timeout,
                  (200,) if wait == "/readyz" else (200, 404, 405, 503), proc)
    except Exception as exc:
        served.stop()
        raise RuntimeError(f"{exc}\n--- function log ---\n{served.log()}") from exc
    return served


class _FileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, counting GETs per path and optionally answering slowly."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        server = self.server
        server.hits[self.path] = server.hits.get(self.path, 0) + 1  # type: ignore[attr-defined]
        time.sleep(server.delay)  # type: ignore[attr-defined]
        super().do_GET()

    def copyfile(self, source: Any, outputfile: Any) -> None:
        rate = self.server.rate  # type: ignore[attr-defined]
        if not rate:
            return super().copyfile(source, outputfile)
        block = max(1, int(rate) // 20)  # 20 writes a second: the bytes keep flowing
        try:
            while chunk := source.read(block):
                outputfile.write(chunk)
                time.sleep(len(chunk) / rate)
        except (BrokenPipeError, ConnectionResetError):  # the client went away: fine
            pass

    def log_message(self, *args: Any) -> None:
        pass


def start_file_server(directory: Path, delay: float = 0.0,
                      tls: tuple[Path, Path] | None = None, rate: float = 0.0,
                      ) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A local HTTP(S) server for ``directory`` (stands in for a model host).

    ``server.hits`` counts GETs per path; ``server.delay`` slows every answer (before its
    first byte); ``server.rate`` (bytes per second, 0: unlimited) streams bodies slowly, so
    a large download is still in progress while small ones (cards) return at once; ``tls``
    is (certificate, key) to serve https:// instead.
    """
    handler = lambda *a, **kw: _FileHandler(*a, directory=str(directory), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.hits = {}  # type: ignore[attr-defined]
    server.delay = delay  # type: ignore[attr-defined]
    server.rate = rate  # type: ignore[attr-defined]
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, made with the openssl command line."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def ready_runtime(settings: Any) -> Any:
    """A process's wiring (functions.runtime.build) for ``settings``, in this process, once
    its model has loaded: for tests that call the router or the service directly."""
    from functions.runtime import build

    rt = build(settings)
    deadline = time.monotonic() + 60
    while rt.holder.model is None and time.monotonic() < deadline:
        assert "failed" not in rt.holder.readiness()[1], rt.holder.readiness()
        time.sleep(0.05)
    return rt
