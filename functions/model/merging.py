"""Merged requests' feeds: concatenated (token inputs re-padded), and the outputs split back.

What the batcher (functions.model.batcher) does to a group of requests it runs as one call;
see its docstring for when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from functions.dedupe import dedupe_feeds
from functions.model.cuts import on_token_axis, padded_length

Feeds = dict[str, np.ndarray]
W = TypeVar("W")


def merge(parts: list[Feeds], pads: dict[str, int]) -> Feeds:
    """One feed per input: the parts concatenated, token inputs padded to the longest."""
    longest = max(padded_length(p, pads) for p in parts) if pads else 0
    merged = {}
    for name in parts[0]:
        arrays = [p[name] for p in parts]
        if name in pads and any(a.shape[1] < longest for a in arrays):
            rows = sum(len(a) for a in arrays)
            out = np.full((rows, longest, *arrays[0].shape[2:]), pads[name],
                          dtype=np.result_type(*arrays))
            lo = 0
            for a in arrays:  # each part's tokens at its rows, the rest left as padding
                out[lo:lo + len(a), :a.shape[1]] = a
                lo += len(a)
            merged[name] = out
        else:
            merged[name] = np.concatenate(arrays)
    return merged


def split(outputs: Feeds, sizes: list[int], lengths: list[int], total: int,
          token_outputs: dict[str, int]) -> list[Feeds]:
    """Each part's rows of every output; those of ``token_outputs`` (OnnxModel's: name ->
    declared rank) cut back to the part's own token length where the merge padded them."""
    bounds = np.cumsum([0, *sizes])
    longest = max(lengths, default=0)
    parts: list[Feeds] = []
    for k, length in enumerate(lengths):
        lo, hi = bounds[k], bounds[k + 1]
        part = {}
        for name, out in outputs.items():
            if out.ndim == 0 or out.shape[0] != total:
                part[name] = out  # no batch axis: every part gets it whole
                continue
            rows = out[lo:hi]
            if length < longest and on_token_axis(token_outputs, name, rows, longest):
                rows = rows[:, :length]
            part[name] = rows
        parts.append(part)
    return parts


@dataclass(frozen=True, slots=True)
class Merged:
    """A group of requests' feeds (``parts``) concatenated (``merged``), with the rows
    repeated across them computed once: ``unique``, and ``inverse`` (dedupe_feeds') to put
    the answers back."""

    parts: list[Feeds]
    merged: Feeds
    unique: Feeds
    inverse: np.ndarray

    @classmethod
    def of(cls, parts: list[Feeds], pads: dict[str, int]) -> Merged:
        merged = merge(parts, pads)
        return cls(parts, merged, *dedupe_feeds(merged))

    def answers(self, out: Feeds, pads: dict[str, int],
                token_outputs: dict[str, int]) -> list[Feeds]:
        """Each part's outputs, from ``out`` (the outputs of ``unique``)."""
        if self.unique is not self.merged:
            rows = len(next(iter(self.unique.values())))
            out = {k: v[self.inverse] if v.ndim and v.shape[0] == rows else v
                   for k, v in out.items()}
        sizes = [len(next(iter(p.values()))) for p in self.parts]
        lengths = [padded_length(p, pads) for p in self.parts] if pads else [0] * len(sizes)
        return split(out, sizes, lengths, sum(sizes), token_outputs)


def _shape_key(feeds: Feeds, pads: dict[str, int]) -> tuple:
    """What must be equal for two requests to be concatenated: every item shape, but the
    token axis of padded inputs."""
    return tuple((name, a.shape[2:] if name in pads else a.shape[1:])
                 for name, a in feeds.items())


def compatible(group: list[W], pads: dict[str, int]) -> list[list[W]]:
    """The group (of queued requests: ``.feeds``) split into runs that can be concatenated
    (same item shapes)."""
    runs: dict[tuple, list[W]] = {}
    for w in group:
        runs.setdefault(_shape_key(w.feeds, pads), []).append(w)
    return list(runs.values())
