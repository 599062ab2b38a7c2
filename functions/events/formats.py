"""Data files -> rows, streamed: JSON Lines, CSV (with or without a header) and .npy.

``read_rows`` yields one Row per data row and holds at most one read block (plus one
partial line) in memory, whatever the file size. A row that cannot be parsed is still
yielded, with ``problem`` set, so it lands in the errors file under its line number and
never stops the rows after it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from functions.codecs.json_text import parse_json
from functions.errors import MalformedJSON
from functions.events.failures import Poison

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".npy": "npy"}


@dataclass(slots=True)
class Row:
    """One data row: 0-based ``index`` among data rows, 1-based ``line`` in a text file."""

    index: int
    line: int | None
    instance: Any = None
    problem: str | None = None


def format_of(name: str) -> str | None:
    """The format a file name announces, or None (not a data file we score)."""
    lowered = name.lower()
    return next((fmt for ext, fmt in FORMATS.items() if lowered.endswith(ext)), None)


def read_rows(stream: IO[bytes], fmt: str, block: int) -> Iterator[Row]:
    """Rows of ``stream`` in file order (``fmt`` from ``format_of``)."""
    if fmt == "npy":
        return _npy_rows(stream, block)
    lines = _lines(stream, block)
    return _csv_rows(lines) if fmt == "csv" else _jsonl_rows(lines)


def _lines(stream: IO[bytes], block: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline) for every line, read ``block`` bytes at a time."""
    carry, number = b"", 0
    while chunk := stream.read(block):
        parts = (carry + chunk).split(b"\n")
        carry = parts.pop()
        for part in parts:
            number += 1
            yield number, part.rstrip(b"\r")
    if carry:
        yield number + 1, carry.rstrip(b"\r")


def _jsonl_rows(lines: Iterator[tuple[int, bytes]]) -> Iterator[Row]:
    index = 0
    for number, raw in lines:
        if not raw.strip():
            continue  # blank lines (a trailing newline, spacing) are not rows
        try:
            row = Row(index, number, parse_json(raw))
        except MalformedJSON as exc:
            row = Row(index, number, problem=exc.message)
        index += 1
        yield row


def _number(cell: str) -> Any:
    """A CSV cell as a number when it is one; otherwise kept, so validation names it."""
    text = cell.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _csv_rows(lines: Iterator[tuple[int, bytes]]) -> Iterator[Row]:
    header: list[str] | None = None
    index = 0
    for number, raw in lines:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")
        if not text.strip():
            continue
        cells = next(csv.reader([text]))
        if number == 1 and not all(isinstance(_number(c), float) for c in cells):
            header = [c.strip() for c in cells]  # a first line of numbers is data, not names
            continue
        values = [_number(c) for c in cells]
        if header is None:
            row = Row(index, number, values)
        elif len(values) != len(header):
            row = Row(index, number, problem=f"expected {len(header)} fields "
                                             f"({', '.join(header)}), got {len(values)}")
        else:
            row = Row(index, number, dict(zip(header, values)))
        index += 1
        yield row


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, or fewer only at the end of the stream (network readers may short-read)."""
    parts, got = [], 0
    while got < size and (chunk := stream.read(size - got)):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _npy_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(stream)
        return npy_format.read_array_header_2_0(stream)
    except ValueError as exc:
        raise Poison(f"not a .npy file: {exc}") from None


def _npy_rows(stream: IO[bytes], block: int) -> Iterator[Row]:
    shape, fortran, dtype = _npy_header(stream)
    if len(shape) != 2 or fortran or dtype.hasobject or dtype.kind not in "fiub":
        raise Poison(f".npy must be a C-order 2-D numeric array, got shape {shape} "
                     f"dtype {dtype} fortran_order={fortran}")
    n, width = shape
    row_bytes = max(1, width * dtype.itemsize)
    per_read = max(1, block // row_bytes)
    for start in range(0, n, per_read):
        want = min(per_read, n - start)
        buf = _read_exact(stream, want * row_bytes)
        if len(buf) < want * row_bytes:
            raise Poison(f".npy is truncated: header says {n} rows, data ends near row "
                         f"{start + len(buf) // row_bytes}")
        values = np.frombuffer(buf, dtype=dtype).reshape(want, width).astype(np.float64)
        for offset, row in enumerate(values.tolist()):
            yield Row(start + offset, None, row)  # non-finite cells are reported by validation
