"""Admission: what requests in flight may hold in memory, bounded per instance.

Each model call has its budget (MODEL_CALL_MEMORY_MB); what a request holds around its
calls does not: its body, the values parsed from it, its decoded feeds (a text model's
padded to its longest text) and its answer, from the read to the last byte sent. Many large
requests at once multiply that. ``Admission`` charges each request an estimate of what it
holds, against REQUESTS_MEMORY_MB:

- before its body is read, from its Content-Length (``take``: an upper bound, as if every
  item were the smallest JSON value at ``ROW_BYTES`` each; for a model whose one input is
  rows of numbers of a known width, from that width, ``bounds``). A request that does not fit
  waits with its body unread, so TCP holds its client back; a body whose bound is over its
  lane's budget is charged the whole lane (it runs alone);
- once decoded, a large charge becomes what the request holds from then on (``settle``:
  its body, its feeds, an answer per item sized by the model's outputs), so a request of
  a few long items gives its margin back at once;
- the charge is given back when the answer's last byte is sent, or, for a small charge,
  when the handler returns (``answered`` does either).

One ``Admission`` per instance charges every prediction route (/predict, /batch-predict,
/v1/embeddings, /v2 infer) and event pushes (``take_body``) against the same lanes. A
prediction goes: ``take``, and ``wait`` if it must; read, decode; ``settle`` a large charge;
score, encode; ``answered`` (``leave`` if the handler raises instead). A compressed body's
Content-Length bounds nothing of what it inflates to, so the route charges it as a body of
unknown length (it runs alone in its lane) and settles it on the inflated body.

Two lanes, each first come, first served: charges up to 1/64 of the budget (single rows,
a few texts) share 1/8 of it, larger ones the rest; so a queue of large bodies never holds
up single predictions, and a stream of small ones never starves a large one. A request
still waiting after ADMISSION_WAIT_SECONDS is answered 503 ``overloaded`` with a
Retry-After, after its body is read and dropped (a client still sending would otherwise
see its connection reset instead of the answer).

The fast path (a charge that fits, nobody waiting) is a few integer operations, no await.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from functions import metrics
from functions.errors import ClientGone, ServingError

if TYPE_CHECKING:
    from functions.codecs.plans import Inputs
    from functions.model.onnx_model import OnnxModel

BODY_FACTOR = 48
"""Bytes held per body byte besides the items: the body, the values parsed from it, and
while a text is tokenized, the tokenizer's own encodings of it (long texts: the most)."""
ROW_BYTES = 16 * 1024
"""Most bytes one item holds before its model is consulted: a text padded to 256 tokens
in three int64 feeds, plus the answer of a 384-value embedding."""
BYTE_BOUND = BODY_FACTOR + ROW_BYTES // 2
"""At most one item per 2 body bytes (the shortest item, its comma included: ``1,``)."""
TABLE_ROW_BYTES = 128
TABLE_VALUE_BYTES = 128
"""A row of numbers (a model with one [rows, width] input) holds at most TABLE_ROW_BYTES
plus TABLE_VALUE_BYTES per value before its answer: its parsed list and numbers, its row of
the matrix and of the cast, its dedupe key. Its fewest body bytes are 2 per value (``1,``)."""
VALUE_BYTES = 24
"""An answered output value: its float32 and its JSON text."""
ANSWER_ROW_BYTES = 256
"""An answered item besides its values (the row's object, its separators)."""


class Overloaded(ServingError):
    status, code = 503, "overloaded"


class Lane:
    """``budget`` bytes shared first come, first served; ``free`` is what is left."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.free = budget
        self.waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def wait(self, charge: int, seconds: float) -> bool:
        """Wait until ``charge`` fits behind those waiting before it, and take it; False
        (nothing taken) if it did not within ``seconds``."""
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (charge, granted)
        self.waiting.append(entry)
        try:
            async with asyncio.timeout(seconds):
                await granted
            return True
        except BaseException as exc:
            if granted.done() and not granted.cancelled():
                if isinstance(exc, TimeoutError):
                    return True  # let in as the deadline fell: it holds its charge
                self.leave(charge)
                raise
            try:
                self.waiting.remove(entry)
            except ValueError:
                pass
            self._wake()
            if not isinstance(exc, TimeoutError):
                raise
        return False

    def leave(self, charge: int) -> None:
        """Give ``charge`` back and let in whoever now fits."""
        self.free += charge
        if self.waiting:
            self._wake()

    def _wake(self) -> None:
        waiting = self.waiting
        while waiting:
            charge, granted = waiting[0]
            if granted.done():  # its deadline fell; it removes itself
                waiting.popleft()
                continue
            if charge > self.free:
                return
            waiting.popleft()
            self.free -= charge
            granted.set_result(None)


class Admission:
    """The two lanes of REQUESTS_MEMORY_MB: charges up to ``small_max`` share 1/8 of it,
    larger ones the rest, so neither kind holds the other up."""

    def __init__(self, budget: int, wait_seconds: float, max_body_bytes: int) -> None:
        self.small_max = budget // 64
        self.small = Lane(budget // 8)
        self.large = Lane(budget - budget // 8)
        self.wait_seconds = wait_seconds
        self.max_body_bytes = max_body_bytes
        self._answer_row: weakref.WeakKeyDictionary[OnnxModel, int] = \
            weakref.WeakKeyDictionary()  # per loaded version, dropped with it
        self._last_bounds: tuple[weakref.ref[OnnxModel], tuple[int, int]] | None = None

    def take(self, declared: bytes | None, cap: int, model: OnnxModel | None = None) -> int:
        """Charge a body of ``declared`` bytes (Content-Length; absent or unreadable: the
        largest body) with at most ``cap`` items its upper bound, at most its lane's
        budget (0 for a body over the limit: refused unread); ``model``, when known, bounds
        its items more tightly (``bounds``). Returns the charge taken, or its negation if
        it must ``wait``: it does not fit, or others wait before it."""
        try:
            size = int(declared)  # type: ignore[arg-type]  # None: no length, below
        except (TypeError, ValueError):
            size = -1
        per_byte, row = (BYTE_BOUND, ROW_BYTES) if model is None else self.bounds(model)
        charge = size * per_byte
        if 0 <= charge <= self.small_max:  # the common small body: its lane, at once
            small = self.small
            if charge <= small.free and not small.waiting:
                small.free -= charge
                return charge
            return -charge
        if not 0 <= size <= self.max_body_bytes:
            if size > 0:
                return 0  # refused (413) before it is read
            size = self.max_body_bytes
        return self._charge(min(size * per_byte, size * BODY_FACTOR + cap * row))

    def take_body(self, declared: bytes | str | None, limit: int, factor: int) -> int:
        """Charge a body of ``declared`` bytes (at most ``limit``; unknown: ``limit``) held
        ``factor`` times over while it is handled (an event push: the body, the values
        parsed from it, its decoded data), at most its lane's budget; like ``take``, the
        charge, or its negation if it must ``wait``."""
        try:
            size = min(int(declared), limit)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            size = limit
        return self._charge(max(0, size) * factor)

    def _charge(self, charge: int) -> int:
        """``charge``, at most its lane's budget, taken if it fits and nobody waits before
        it; else its negation (``wait``)."""
        lane = self._lane(charge)
        charge = min(charge, lane.budget)
        if charge <= lane.free and not lane.waiting:
            lane.free -= charge
            return charge
        return -charge

    async def wait(self, charge: int, request: Request) -> int:
        """Wait until ``charge`` is taken in its lane (returned); past the deadline, drop
        the body and raise Overloaded (503 with Retry-After)."""
        metrics.inc("admission_waits_total", 1, "requests that waited for REQUESTS_MEMORY_MB")
        if await self._lane(charge).wait(charge, self.wait_seconds):
            return charge
        metrics.inc("admission_overloaded_total", 1,
                    "requests answered 503 after ADMISSION_WAIT_SECONDS of waiting")
        await self._drop_body(request)
        retry = max(1, math.ceil(self.wait_seconds))
        raise Overloaded(f"this instance's memory for requests in flight stayed full for "
                         f"{self.wait_seconds:g} s; send the request again",
                         headers={"Retry-After": str(retry), "Connection": "close"})

    def leave(self, charge: int) -> None:
        """Give ``charge`` back (to the lane ``take`` chose for it)."""
        lane = self.small if charge <= self.small_max else self.large
        lane.free += charge
        if lane.waiting:
            lane.leave(0)

    def _lane(self, charge: int) -> Lane:
        return self.small if charge <= self.small_max else self.large

    def held(self) -> int:
        """Bytes charged to the requests in flight now."""
        return sum(lane.budget - lane.free for lane in (self.small, self.large))

    def settle(self, charge: int, body_bytes: int, inputs: Inputs, model: OnnxModel) -> int:
        """The charge of a decoded request (its body, feeds and answer) replacing a large
        ``charge`` in the same lane; the difference is given back (or taken, unwaited)."""
        held = 2 * body_bytes + sum(a.nbytes for a in inputs.feeds.values()) \
            + inputs.n * self.answer_row(model)
        held = min(max(held, self.small_max + 1), self.large.budget)
        self.large.leave(charge - held)
        return held

    def bounds(self, model: OnnxModel) -> tuple[int, int]:
        """(bytes charged per body byte, most bytes one item holds) for ``model``: rows of
        numbers of a known width (one [rows, width] input) from that width and the answer;
        any other item as the largest text (``ROW_BYTES``, one per 2 body bytes)."""
        last = self._last_bounds
        if last is not None and last[0]() is model:
            return last[1]
        spec = model.row_input
        if spec is None or not spec.n_features:
            found = BYTE_BOUND, ROW_BYTES
        else:
            row = TABLE_ROW_BYTES + TABLE_VALUE_BYTES * spec.n_features + self.answer_row(model)
            found = BODY_FACTOR + -(-row // (2 * spec.n_features)), row
        self._last_bounds = (weakref.ref(model), found)
        return found

    def answer_row(self, model: OnnxModel) -> int:
        """Bytes of one item's answer: every output's values per row (dynamic axes
        counted once) at ``VALUE_BYTES`` each."""
        found = self._answer_row.get(model)
        if found is None:
            values = sum(math.prod(d or 1 for d in o.shape[1:]) for o in model.outputs)
            found = self._answer_row[model] = values * VALUE_BYTES + ANSWER_ROW_BYTES
        return found

    def answered(self, response: Response, charge: int) -> Response:
        """``response``, its request's ``charge`` given back: a small one now (the handler
        is done with it), a large one once the answer's last byte is sent (or the answer is
        dropped unsent)."""
        if charge > self.small_max:
            return _Releasing(response, self, charge)
        self.leave(charge)
        return response

    async def _drop_body(self, request: Request) -> None:
        """Read the body and throw it away, up to the largest body accepted."""
        seen = 0
        while seen <= self.max_body_bytes:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone("the client closed the connection while it waited")
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class _Releasing(Response):
    """A sent-or-dropped response that gives its request's charge back (exactly once)."""

    def __init__(self, inner: Response, admission: Admission, charge: int) -> None:
        self.__dict__.update(inner.__dict__)  # the same body, status, headers, background
        self._admission: Admission | None = admission
        self._charge = charge

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()

    def _release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission.leave(self._charge)

    def __del__(self) -> None:  # never sent (Lambda reads the body directly)
        self._release()
