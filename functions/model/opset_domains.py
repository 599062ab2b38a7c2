"""The operator domains an ONNX file imports, read from its top level without loading it.

A model's ``opset_import`` (ModelProto field 8) lists every operator domain its graph uses;
onnxruntime refuses a node whose domain is not listed. Reading just those entries tells the
loader, before any session is built, whether a custom operator library is needed, in
microseconds whatever the file's size: the graph and its weights (field 7) are skipped with
a seek. The onnx package is not a runtime dependency, and need not be.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

_OPSET_IMPORT = 8  # ModelProto.opset_import: repeated OperatorSetIdProto
_DOMAIN = 1  # OperatorSetIdProto.domain (string); version (field 2) is not needed here


class NotOnnx(ValueError):
    """The bytes are not a protobuf message (a truncated or foreign file)."""


def _varint(fh: BinaryIO) -> int | None:
    """The next base-128 varint, or None at the end of the file."""
    value, shift = 0, 0
    while True:
        byte = fh.read(1)
        if not byte:
            if shift:
                raise NotOnnx("file ends inside a varint")
            return None
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise NotOnnx("varint longer than 64 bits")


def _fields(fh: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(field number, bytes) per field: the bytes of ``_OPSET_IMPORT`` and ``_DOMAIN``
    fields, None for every other field (skipped, not read)."""
    while True:
        key = _varint(fh)
        if key is None:
            return
        field, wire = key >> 3, key & 7
        if wire == 0:
            _varint(fh)
            yield field, None
        elif wire in (1, 5):
            fh.seek(8 if wire == 1 else 4, 1)
            yield field, None
        elif wire == 2:
            length = _varint(fh)
            if length is None:
                raise NotOnnx("file ends inside a field")
            if field in (_OPSET_IMPORT, _DOMAIN):
                yield field, fh.read(length)
            else:
                fh.seek(length, 1)
                yield field, None
        else:
            raise NotOnnx(f"unsupported protobuf wire type {wire}")


def opset_domains(path: Path) -> set[str]:
    """Domains the model at ``path`` imports ("" is the default ONNX domain); NotOnnx when
    the file cannot be a model."""
    domains: set[str] = set()
    with open(path, "rb") as fh:
        for field, value in _fields(fh):
            if field != _OPSET_IMPORT or value is None:
                continue
            entry = BytesIO(value)
            domain = next((v for f, v in _fields(entry) if f == _DOMAIN and v is not None),
                          b"")
            domains.add(domain.decode("utf-8", "replace"))
    return domains
