"""Shared benchmark plumbing: start a function, drive it with wrk, time cold starts."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FF = str(Path(sys.executable).parent / "functions-framework")
SETOSA = [5.1, 3.5, 1.4, 0.2]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(source: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """functions-framework (ASGI, production server) serving ``source:predict``."""
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), **(env or {})}
    proc = subprocess.Popen([FF, "--target", "predict", "--source", source, "--asgi",
                             "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen) -> None:
    """Stop ``proc``; one started in a session of its own (``start_new_session``) is
    stopped with its whole process group, so that no worker it spawned outlives it (and
    burns CPU under the next measurement)."""
    try:
        group = proc.pid if os.getpgid(proc.pid) == proc.pid else None
    except ProcessLookupError:  # already gone
        group = None
    if group is not None:
        os.killpg(group, signal.SIGTERM)
    else:
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)  # stragglers that ignored SIGTERM
        except ProcessLookupError:
            pass


def pause(proc: subprocess.Popen, paused: bool) -> None:
    """Freeze (SIGSTOP) or thaw (SIGCONT) a server started in a session of its own, with
    its workers: a server that is not being measured takes no CPU from the one that is
    (LitServe's idle workers poll, ~9% of a core)."""
    os.killpg(proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)


def first_200(url: str, body: bytes, proc: subprocess.Popen, timeout: float = 60.0) -> float:
    """Seconds until POST ``url`` first answers 200 (polling every 5 ms)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}")
        try:
            r = requests.post(url, data=body, headers={"content-type": "application/json"},
                              timeout=5)
            if r.status_code == 200:
                return time.perf_counter() - t0
        except requests.ConnectionError:
            pass
        time.sleep(0.005)
    raise TimeoutError(url)


def cold_starts(targets: dict[str, tuple[str, dict[str, str], str]],
                runs: int) -> dict[str, list[float]]:
    """Process spawn -> first 200, for each ``name: (source, env, path)``, taken in turn
    ``runs`` times (fresh model cache each) so drift on a shared machine hits all alike.

    Bytecode is compiled first, as the container images do at build time, so neither side
    measures the compiler.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", "main.py", "functions",
                    "benchmarks"], cwd=ROOT, check=True)
    body = json.dumps({"instances": [SETOSA]}).encode()
    times: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(runs):
        for name, (source, env, path) in targets.items():
            cache = tempfile.mkdtemp(prefix="bench-cache-")
            t0 = time.perf_counter()
            proc, url = spawn(source, {**env, "MODEL_CACHE_DIR": cache})
            try:
                first_200(url + path, body, proc)
                times[name].append(time.perf_counter() - t0)
            finally:
                stop(proc)
                shutil.rmtree(cache, ignore_errors=True)
    return times


def wrk(url: str, body: bytes, seconds: int, connections: int = 8) -> float:
    """Requests/s from wrk (POST ``body`` as JSON); raises if any answer was not 2xx."""
    return wrk_at_once([url], body, seconds, connections)[0]


def wrk_at_once(urls: list[str], body: bytes, seconds: int, connections: int = 8,
                cpu: int | None = None) -> list[float]:
    """Requests/s of each of ``urls``, driven at the same time by a wrk each (pinned to
    ``cpu`` when given); raises if any answer was not 2xx."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk (see README, Benchmarks)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                  f"wrk.body = {json.dumps(body.decode())}\n")
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    runs = [subprocess.Popen([*pin, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s",
                              lua.name, url], stdout=subprocess.PIPE, text=True)
            for url in urls]
    outs = [run.communicate()[0] for run in runs]
    os.unlink(lua.name)
    for run, out in zip(runs, outs):
        if run.returncode or "Non-2xx" in out:
            raise RuntimeError(f"wrk failed or saw non-2xx answers:\n{out}")
    return [float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) for out in outs]


def pin_server(proc: subprocess.Popen, cpu: int) -> None:
    """Pin a server started in a session of its own, every process and thread of it, to
    ``cpu``."""
    pids = [proc.pid]
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True,
                       capture_output=True)
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            pids.extend(int(p) for p in fh.read().split())


def wait_ready(url: str, proc: subprocess.Popen, body: bytes) -> None:
    first_200(url, body, proc)


def median(values: list[float]) -> float:
    return statistics.median(values)


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def worker_pid(arbiter: int) -> int:
    """The gunicorn worker of the arbiter ``arbiter`` (itself if it has no child)."""
    with open(f"/proc/{arbiter}/task/{arbiter}/children") as fh:
        children = [int(p) for p in fh.read().split()]
    return children[0] if children else arbiter


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB."""
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def cpu_ticks(pids: list[int]) -> int:
    """User + system CPU of ``pids`` so far, in clock ticks (os.sysconf("SC_CLK_TCK"))."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total
