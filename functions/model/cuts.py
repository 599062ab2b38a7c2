"""One model call's rows cut into calls that fit the memory budget, token inputs by length.

A call's memory grows with what it computes: rows times the padded token length for a text
model (attention and activations per token), rows times the row's bytes for any other. A
``Budget`` bounds both. Token rows are sorted by their real length and cut in that order, so
each call is padded only to its own longest row and wastes at most ``max_waste`` of its
tokens on padding (infinity-emb, TEI and vLLM sort likewise); answers are put back in the
order the rows came in. ``finish`` (pooling) runs per call, so a request's unpooled outputs
never exist whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from functions.model.packing import CALL_TOKENS

Feeds = dict[str, np.ndarray]
Finish = Callable[[Feeds, Feeds], Feeds]
TOKEN_BYTES = 64 * 1024
"""Memory of one padded token in a call, for a small transformer at its maximum length
(attention scores of every head plus activations); docs/benchmarks.md has the measurement."""
INPUT_SHARE = 64
"""Activations of a tensor model are tens of times its input: a call's input bytes may be
1/INPUT_SHARE of the budget."""
MAX_WASTE = 0.3
IN_QUEUE = 8
"""A request's cuts waiting in a batcher's queue at once: all of a usual request's, while a
very large request leaves room between its cuts for other requests' rows (and copies only
these cuts' feeds at a time)."""


@dataclass(frozen=True, slots=True)
class Budget:
    """What one model call may hold: ``tokens`` padded tokens (text) or ``input_bytes``."""

    tokens: int
    input_bytes: int
    max_rows: int
    max_waste: float = MAX_WASTE
    call_tokens: float | None = None
    """A call's fixed cost in padded tokens, from the model's measured cost curve (None:
    not measured): rows are cut apart where padding them to the next length costs more."""
    pack_tokens: int | None = None
    """A packed graph's (``functions.model.packing``): padding costs nothing, so calls are
    cut only to hold about this many real tokens each."""

    @classmethod
    def of(cls, memory_mb: int, max_rows: int, packed: object = None) -> Budget:
        """The budget of MODEL_CALL_MEMORY_MB; ``packed``: a packed graph's (any truthy)."""
        memory = memory_mb << 20
        return cls(max(1, memory // TOKEN_BYTES), max(1, memory // INPUT_SHARE), max_rows,
                   pack_tokens=CALL_TOKENS if packed else None)


def token_lengths(feeds: Feeds, pads: dict[str, int]) -> np.ndarray:
    """Each row's real token count: up to its last token that is not padding."""
    names = [n for n in pads if n in feeds]
    real = feeds[names[0]] != pads[names[0]]
    for name in names[1:]:
        real |= feeds[name] != pads[name]
    width = real.shape[1] if real.ndim == 2 else 0
    if width == 0:  # no tokens at all (an Open Inference Protocol shape of [n, 0])
        return np.ones(len(real), dtype=np.intp)
    last = width - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last, 1).astype(np.intp)


def padded_length(feeds: Feeds, pads: dict[str, int]) -> int:
    """The token axis of ``feeds``' token inputs (0: none)."""
    return max((feeds[name].shape[1] for name in pads if name in feeds), default=0)


def tokens_aligned(feeds: Feeds, pads: dict[str, int]) -> bool:
    """Whether the token inputs are one [rows, tokens] layout (what cuts and merges take)."""
    shapes = {feeds[name].shape for name in pads if name in feeds}
    return len(shapes) == 1 and len(next(iter(shapes))) == 2


def shared_rows(feeds: Feeds) -> int:
    """The batch axis every feed shares (0: none, e.g. Open Inference Protocol tensors)."""
    sizes = {len(a) if a.ndim else 0 for a in feeds.values()}
    return sizes.pop() if len(sizes) == 1 else 0


def cut_by_length(lengths: np.ndarray, budget: Budget) -> list[np.ndarray]:
    """Row indices per call: sorted by length, each call within ``budget.tokens`` padded
    tokens (a single longer row still gets a call), ``budget.max_rows`` rows and
    ``budget.max_waste`` padding; with ``budget.call_tokens``, also cut where padding the
    call's rows so far up to the next row's length would cost more than another call."""
    if len(lengths) < 2:  # one row (most requests under load): one call
        return [np.arange(len(lengths))]
    order = np.argsort(lengths, kind="stable")
    if budget.pack_tokens:
        return _cut_for_packing(lengths, order, budget)
    cuts: list[np.ndarray] = []
    start, useful, previous = 0, 0, 0
    call = budget.call_tokens
    for k, i in enumerate(order.tolist()):
        length = int(lengths[i])
        rows = k - start + 1
        padded = rows * length
        if rows > 1 and (padded > budget.tokens or rows > budget.max_rows
                         or useful + length < (1 - budget.max_waste) * padded
                         or (call is not None and (rows - 1) * (length - previous) > call)):
            cuts.append(order[start:k])
            start, useful = k, 0
        useful += length
        previous = length
    cuts.append(order[start:])
    return cuts


def _cut_for_packing(lengths: np.ndarray, order: np.ndarray,
                     budget: Budget) -> list[np.ndarray]:
    """``order`` in as few runs of near-equal real tokens as hold ``budget.pack_tokens``
    each (and ``max_rows`` rows, ``tokens`` in all: memory)."""
    total = int(lengths.sum())
    calls = max(-(-total // budget.pack_tokens), -(-total // budget.tokens))
    ends = np.cumsum(lengths[order])
    bounds = np.searchsorted(ends, total * np.arange(1, calls) / calls, side="right")
    step = budget.max_rows  # short texts come first: a share may hold more rows than that
    return [part[lo:lo + step] for part in np.split(order, bounds)
            for lo in range(0, len(part), step)]


def cut_by_bytes(rows: int, row_bytes: int, budget: Budget) -> list[np.ndarray]:
    """Consecutive row ranges of at most ``budget.input_bytes`` input (at least one row)."""
    step = max(1, min(budget.max_rows, budget.input_bytes // max(1, row_bytes)))
    return [np.arange(lo, min(lo + step, rows)) for lo in range(0, rows, step)]


def take(feeds: Feeds, index: np.ndarray, pads: dict[str, int], length: int) -> Feeds:
    """The rows ``index`` of every feed, token inputs cut to ``length``."""
    return {name: (a[index, :length] if name in pads else a[index]) for name, a in feeds.items()}


class Joined:
    """The outputs of every row of ``feeds``, filled in one cut at a time."""

    def __init__(self, feeds: Feeds, pads: dict[str, int], lengths: np.ndarray | None,
                 token_outputs: dict[str, int]) -> None:
        self.feeds, self.pads, self.lengths = feeds, pads, lengths
        self.token_outputs = token_outputs
        self.total = len(next(iter(feeds.values())))
        self.width = padded_length(feeds, pads)
        self.outputs: Feeds = {}

    def part(self, index: np.ndarray) -> tuple[Feeds, int]:
        """A cut's feeds, token inputs cut to its longest row, and that length."""
        length = int(self.lengths[index].max()) if self.lengths is not None else self.width
        return take(self.feeds, index, self.pads, length), length

    def place(self, index: np.ndarray, out: Feeds, length: int) -> None:
        _place(self.outputs, out, index, self.total, length, self.width, self.token_outputs)


async def run_cuts(call: Callable[[Feeds], Awaitable[Feeds]], feeds: Feeds,
                   cuts: list[np.ndarray], pads: dict[str, int], lengths: np.ndarray | None,
                   finish: Finish | None = None, together: bool = False, *,
                   token_outputs: dict[str, int]) -> Feeds:
    """Outputs for every row of ``feeds``, in row order: computed one cut at a time, or
    with ``together`` up to ``IN_QUEUE`` cuts handed to ``call`` at once (a batcher's queue,
    which merges them with other requests' rows and cuts the whole again; if one cut fails,
    the others are cancelled and its error raised)."""
    joined = Joined(feeds, pads, lengths, token_outputs)

    async def one(index: np.ndarray) -> None:
        part, length = joined.part(index)
        out = await call(part)
        joined.place(index, out if finish is None else finish(out, part), length)

    if not together:
        for index in cuts:
            await one(index)
        return joined.outputs
    gate = asyncio.Semaphore(IN_QUEUE)

    async def gated(index: np.ndarray) -> None:
        async with gate:
            await one(index)

    tasks = [asyncio.ensure_future(gated(index)) for index in cuts]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    return joined.outputs


def run_cuts_now(run: Callable[[Feeds], Feeds], feeds: Feeds, cuts: list[np.ndarray],
                 pads: dict[str, int], lengths: np.ndarray, *,
                 token_outputs: dict[str, int]) -> Feeds:
    """``run_cuts`` for a caller already off the event loop (the model's thread), or on it
    within the inline budget: one cut after another on the calling thread, so no cut waits
    for the loop to start the next (two at a time: functions.model.lanes)."""
    joined = Joined(feeds, pads, lengths, token_outputs)
    for index in cuts:
        part, length = joined.part(index)
        joined.place(index, run(part), length)
    return joined.outputs


def on_token_axis(token_outputs: dict[str, int], name: str, value: np.ndarray,
                  length: int) -> bool:
    """Whether output ``name``'s ``value`` carries the token axis, ``length`` long: one of
    ``token_outputs`` (OnnxModel's: name -> declared rank) at its declared rank (a pooled
    output has an axis fewer) whose second axis is ``length``."""
    return token_outputs.get(name) == value.ndim and value.shape[1] == length


def _place(joined: Feeds, out: Feeds, index: np.ndarray, total: int, length: int,
           width: int, token_outputs: dict[str, int]) -> None:
    """Write one cut's outputs at its rows (one on the token axis, ``on_token_axis``, is
    padded back with zeros to the feeds' width; one without a batch axis is kept as it is)."""
    for name, value in out.items():
        if value.ndim == 0 or value.shape[0] != len(index):
            joined.setdefault(name, value)
            continue
        tokens = length != width and on_token_axis(token_outputs, name, value, length)
        if name not in joined:
            shape = (total, width, *value.shape[2:]) if tokens else (total, *value.shape[1:])
            joined[name] = np.zeros(shape, dtype=value.dtype)
        if tokens:
            joined[name][index, :length] = value
        else:
            joined[name][index] = value
