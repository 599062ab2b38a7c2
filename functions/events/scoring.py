"""Score a stream of rows in chunks through the core, writing predictions and errors.

Memory is bounded by ``chunk_rows`` (plus the reader's block and the writer's upload
block), not by the input size. Predictions are written in input order as JSON Lines,
``{"row": i, "prediction": {...}}``; rows that cannot be scored go to the errors object as
``{"row": i, "line": n, "error": {...}}`` (``line`` for text files). Both objects are
committed only when the whole input was read: the errors object first, then the
predictions; so "predictions exist" means "this input is done", which makes redelivery
cheap (``skip_if_done``) and never leaves a half-written result.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, TYPE_CHECKING, Any

import orjson

from functions import metrics
from functions.errors import ItemError, RequestError
from functions.events import objects
from functions.events.failures import Poison
from functions.events.formats import Row

if TYPE_CHECKING:
    from functions.app import Instance

_DUMP = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


@dataclass
class Summary:
    """What one input produced."""

    rows: int = 0
    scored: int = 0
    errors: int = 0

    def facts(self) -> dict[str, Any]:
        return {"rows": self.rows, "scored": self.scored, "errors": self.errors}


def _error_line(row: Row, code: str, message: str, details: list[dict[str, Any]]) -> bytes:
    body: dict[str, Any] = {"row": row.index}
    if row.line is not None:
        body["line"] = row.line
    body["error"] = {"code": code, "message": message, **({"details": details} if details else {})}
    return orjson.dumps(body, option=_DUMP)


def _item_error_line(row: Row, err: ItemError) -> bytes:
    details = [p.as_dict() for p in err.problems]
    message = err.problems[0].message if err.problems else err.code
    for d in details:  # the index inside the chunk means nothing to the reader: drop it
        d.pop("index", None)
    return _error_line(row, err.code, message, details)


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


async def _score_chunk(inst: Instance, chunk: list[Row], out: IO[bytes], errs: IO[bytes],
                       summary: Summary) -> None:
    ready = [r for r in chunk if r.problem is None]
    items: list[Any] = []
    if ready:
        try:
            result = await inst.service.predict([r.instance for r in ready], strict=False)
        except RequestError as exc:  # the model takes no row-format input at all
            raise Poison(exc.message) from exc
        items = result.items
    by_row = dict(zip((r.index for r in ready), items))
    for row in chunk:
        item = by_row.get(row.index)
        if row.problem is not None:
            errs.write(_error_line(row, "unparseable_row", row.problem, []))
        elif isinstance(item, ItemError):
            errs.write(_item_error_line(row, item))
        else:
            out.write(orjson.dumps({"row": row.index, "prediction": item}, option=_DUMP))
            summary.scored += 1
            continue
        summary.errors += 1
    summary.rows += len(chunk)


def score_rows(inst: Instance, rows: Iterable[Row], output_uri: str, errors_uri: str) -> Summary:
    """Score ``rows``; write predictions to ``output_uri`` and bad rows to ``errors_uri``.

    Synchronous on purpose: event handlers run on the platform's worker thread (or a thread
    of the ASGI app), so the async core runs on a private loop that is never the caller's.
    """
    summary = Summary()
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner, \
            tempfile.SpooledTemporaryFile(objects.SPOOL_BYTES) as errs, \
            objects.open_write(output_uri) as out:
        for chunk in _chunks(rows, inst.settings.chunk_rows):
            runner.run(_score_chunk(inst, chunk, out, errs, summary))  # type: ignore[arg-type]
        if summary.errors:
            errs.seek(0)
            with objects.open_write(errors_uri) as sink:
                shutil.copyfileobj(errs, sink, objects.UPLOAD_BLOCK)
    metrics.inc("event_rows_total", summary.rows, "rows read from data files and messages")
    metrics.inc("event_row_errors_total", summary.errors, "rows written to errors objects")
    return summary
