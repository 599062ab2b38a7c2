"""Score rows and data files through the core, writing predictions and errors to storage.

Memory is bounded by ``chunk_rows`` (plus the reader's block and the writer's upload
block), not by the input size. Predictions are written in input order as JSON Lines,
``{"row": i, "prediction": {...}}``; rows that cannot be scored go to the errors object as
``{"row": i, "line": n, "error": {...}}`` (``line`` for text files; ``error`` is the same
per-item body /batch-predict answers). Both objects are committed only when the whole
input was read: the errors object first, then the predictions; so "predictions exist"
means "this input is done", which makes redelivery cheap and never leaves a half-written
result. Both are created only if absent (``ObjectStore.open_write``): when two deliveries
of one input score at the same moment, the first to commit writes the result and the other
finds it there, which counts as done (``Summary.lost_race``), not as a failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any

import orjson

from functions import metrics
from functions.codecs.predict_bodies import items as answer_items
from functions.errors import ItemError, Problem, RequestError
from functions.events.failures import MissingInput, Poison, is_missing, is_transient
from functions.events.formats import Row, read_rows
from functions.loading.object_store import AlreadyExists, ObjectRef
from functions.loading.stores import Stores
from functions.service import PredictionService
from functions.telemetry import spans

_DUMP = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
SPOOL_BYTES = 8 << 20
COPY_BLOCK = 1 << 20


@dataclass
class Summary:
    """What one input produced."""

    rows: int = 0
    scored: int = 0
    errors: int = 0
    lost_race: bool = False
    """Another delivery of the same input committed its result first; ours was dropped."""

    def facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"rows": self.rows, "scored": self.scored,
                                 "errors": self.errors}
        if self.lost_race:
            facts["lost_race"] = True
        return facts


def scored_detail(summary: Summary, out_uri: str) -> str:
    """The outcome line of one scored input or message."""
    detail = f"{summary.scored} rows -> {out_uri}, {summary.errors} errors"
    if summary.lost_race:
        detail += " (another delivery of it committed first: its result is kept)"
    return detail


def _error_line(row: Row, err: ItemError) -> bytes:
    body: dict[str, Any] = {"row": row.index}
    if row.line is not None:
        body["line"] = row.line
    body["error"] = err.body(row.index)
    return orjson.dumps(body, option=_DUMP)


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


class Scorer:
    """Scores rows (from a message) or a data file (from storage) with the service."""

    def __init__(self, service: PredictionService, stores: Stores, chunk_rows: int,
                 read_block_bytes: int) -> None:
        self.service = service
        self.stores = stores
        self.chunk_rows = chunk_rows
        self.read_block_bytes = read_block_bytes

    async def _score_chunk(self, chunk: list[Row], out: IO[bytes], errs: IO[bytes],
                           summary: Summary) -> None:
        ready = [r for r in chunk if r.problem is None]
        items: list[Any] = []
        if ready:
            try:
                model = await self.service.model()
                inputs = self.service.plan(model).decode([r.instance for r in ready])
                items = answer_items(await self.service.predict(model, inputs, strict=False))
            except RequestError as exc:  # the model takes no row-format input at all
                raise Poison(exc.message) from exc
        by_row = dict(zip((r.index for r in ready), items))
        for row in chunk:
            item = by_row.get(row.index)
            if row.problem is not None:
                errs.write(_error_line(row, ItemError([Problem(row.problem, row.index)], 400,
                                                      "unparseable_row")))
            elif isinstance(item, ItemError):
                errs.write(_error_line(row, item))
            else:
                out.write(orjson.dumps({"row": row.index, "prediction": item}, option=_DUMP))
                summary.scored += 1
                continue
            summary.errors += 1
        summary.rows += len(chunk)

    def score_rows(self, rows: Iterable[Row], output_uri: str, errors_uri: str) -> Summary:
        """Score ``rows``; write predictions to ``output_uri`` and bad rows to ``errors_uri``.

        Synchronous on purpose: event handlers run on the platform's worker thread (or a
        thread of the ASGI app), so the async core runs on a private loop that is never the
        caller's.
        """
        summary = Summary()
        try:
            with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner, \
                    tempfile.SpooledTemporaryFile(SPOOL_BYTES) as errs, \
                    self.stores.for_uri(output_uri).open_write(output_uri) as out:
                for chunk in _chunks(rows, self.chunk_rows):
                    with spans.span("score.chunk", rows=len(chunk), first_row=chunk[0].index):
                        # in this chunk's trace context (the runner keeps its first one)
                        runner.run(self._score_chunk(chunk, out, errs, summary),  # type: ignore[arg-type]
                                   context=contextvars.copy_context())
                if summary.errors:
                    errs.seek(0)
                    try:
                        with self.stores.for_uri(errors_uri).open_write(errors_uri) as sink:
                            shutil.copyfileobj(errs, sink, COPY_BLOCK)
                    except AlreadyExists:  # still commit the predictions: they mark it done
                        summary.lost_race = True
        except AlreadyExists:
            summary.lost_race = True
        metrics.inc("event_rows_total", summary.rows, "rows read from data files and messages")
        metrics.inc("event_row_errors_total", summary.errors, "rows written to errors objects")
        return summary

    def score_file(self, ref: ObjectRef, fmt: str, out_uri: str, err_uri: str) -> Summary:
        """Stream the data file ``ref`` (format ``fmt``) through the model, chunk by chunk."""
        block = self.read_block_bytes
        with self._open_input(ref, block) as stream:
            return self.score_rows(read_rows(stream, fmt, block), out_uri, err_uri)

    @contextmanager
    def _open_input(self, ref: ObjectRef, block: int) -> Iterator[IO[bytes]]:
        """Exactly the version ``ref`` names. An input that does not exist (deleted since the
        event, a version deleted since, a wrong URI in a message) or may not be read is
        MissingInput: redelivering the event cannot make it appear."""
        try:
            stream = self.stores.for_uri(ref.uri).open_read(ref, block)
        except Exception as exc:
            if is_missing(exc) and not is_transient(exc):
                raise MissingInput(f"{ref.uri} does not exist (at that version) or may not be "
                                   f"read: {type(exc).__name__}: {exc}") from exc
            raise
        try:
            yield stream
        finally:
            stream.close()
