"""Where a single-row request's time goes, in process: the profile behind the serving ratio.

    .venv/bin/python -m benchmarks.hot_path_profile

Both apps are functions-framework's own ASGI app (``create_asgi_app``: its middleware,
Starlette routing, execution ids), driven in one process with ``POST /`` and no sockets,
so uvicorn's share (the same for both) is left out. Ours is then measured with one part
at a time replaced by its precomputed result ("canned"): what a part costs is the drop.
A part's cost here is 2-3x what it costs timed alone in a loop: on the request path its
code shares the CPU caches with everything else a request runs. Best of 5 x 20,000.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.harness import ROOT, save

BODY = b'{"instances":[[5.1,3.5,1.4,0.2]]}'
SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
         "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
         "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                     (b"content-length", str(len(BODY)).encode())],
         "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": BODY, "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def per_request_us(app: Callable[..., Awaitable[None]], n: int = 20_000) -> float:
    for _ in range(n // 10):
        await app(dict(SCOPE), _receive, _send)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            await app(dict(SCOPE), _receive, _send)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


async def profile() -> dict[str, float]:
    os.environ.setdefault("MODEL_PATH", str(ROOT / "models" / "iris.onnx"))
    os.chdir(ROOT)
    from functions_framework.aio import create_asgi_app

    import main
    from functions.codecs import vertex
    from functions.codecs.predict_bodies import predict_body
    from functions.http import routes

    ours, tuned = (create_asgi_app("predict", "main.py"),
                   create_asgi_app("predict", str(ROOT / "benchmarks" / "tuned_handler.py")))
    rt = main._rt
    model = await rt.holder.get()
    svc = rt.service
    runner = svc.runners(model)
    while runner.curve is None:  # the cost curve is measured in a thread after the load
        await asyncio.sleep(0.05)
    plan = svc.plan(model)
    inputs = vertex.decode(BODY, plan, 1000)
    outputs = model.run(inputs.feeds)
    scored = await svc.predict(model, inputs, strict=True)
    body = predict_body(scored)

    out: dict[str, float] = {"tuned handler": await per_request_us(tuned),
                             "ours": await per_request_us(ours)}

    async def canned_predict(*args: Any, **kw: Any) -> Any:
        return scored

    cans: list[tuple[str, list[tuple[Any, str, Any]]]] = [
        ("ours, decode canned (request codec and plan)",
         [(vertex, "decode", lambda *a: inputs)]),
        ("ours, model call canned (runner and onnxruntime)",
         [(runner, "run_now", lambda *a: outputs)]),
        ("ours, answer canned (response codec)", [(routes, "predict_body", lambda *a: body)]),
        ("ours, service canned (lookups, dedupe, runner, counters)",
         [(svc, "predict", canned_predict)])]
    for label, parts in cans:
        reals = [(owner, name, getattr(owner, name)) for owner, name, _ in parts]
        for owner, name, stand_in in parts:
            setattr(owner, name, stand_in)
        try:
            out[label] = await per_request_us(ours)
        finally:
            for owner, name, real in reals:
                setattr(owner, name, real)

    async def canned_router(request: Any) -> Any:
        from functions.http.responses import json_response
        return json_response(body)

    real_router, main._rt.router = main._rt.router, canned_router
    try:
        out["ours, whole router canned (functions-framework alone)"] = await per_request_us(ours)
    finally:
        main._rt.router = real_router
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    import uvloop

    result = uvloop.run(profile())
    for label, us in result.items():
        print(f"{us:7.1f} µs  {label}")
    save("hot_path", {"per_request_us": result})
    return result


if __name__ == "__main__":
    main()
