"""functions-framework's execution ids, drawn by functions/http/execution_ids.py."""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

from functions_framework import execution_id as framework

from functions.http import execution_ids

ID = re.compile(r"[0-9A-Za-z]{12}")


def _id_given_to(headers: list[tuple[bytes, bytes]]) -> str:
    """The Function-Execution-Id that functions-framework's own ASGI middleware hands the
    app for a request with ``headers``."""
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen.update(dict(scope["headers"]))

    scope = {"type": "http", "headers": headers}
    asyncio.run(framework.AsgiMiddleware(app)(scope, None, None))
    return seen[b"function-execution-id"].decode()


def test_the_framework_middleware_draws_its_ids_with_ours() -> None:
    assert execution_ids.install()
    state = random.getstate()  # other tests (hypothesis's among them) watch the generator
    try:
        random.seed(2026)
        given = _id_given_to([(b"host", b"x")])
        random.seed(2026)
        assert given == execution_ids.draw()  # the framework's own draw would differ
    finally:
        random.setstate(state)
    assert ID.fullmatch(given)


def test_ids_keep_the_framework_format_and_do_not_repeat() -> None:
    drawn = [execution_ids.draw() for _ in range(20_000)]
    assert all(ID.fullmatch(d) for d in drawn)
    assert len(set(drawn)) == len(drawn)
    used = set("".join(drawn))
    assert used == set(framework._EXECUTION_ID_CHARSET)  # every character, nothing else


def test_an_id_the_platform_sent_is_kept() -> None:
    execution_ids.install()
    assert _id_given_to([(b"function-execution-id", b"abc123")]) == "abc123"
