"""Names of the objects events write: outputs, errors and poison records.

Input names and message ids come from outside, so a name built from one must stay under its
prefix and be the same for the same input every time (redelivery overwrites, never adds):

- ``.`` and ``..`` segments, empty segments (a leading ``/``, ``a//b``) and ``%`` are
  escaped (``%2E%2E``, ``%``, ``%25``), so no segment can climb out of its prefix (a file://
  store resolves paths) and two different inputs never share a name;
- unicode, spaces and ``+`` are kept as they are (both GCS and S3 take them);
- a name longer than the 1,024-byte limit of GCS object names and S3 keys keeps its prefix
  and suffix and is cut in the middle (at a character boundary), where a hash of the whole
  name goes, so it stays unique and reproducible.
"""

from __future__ import annotations

import hashlib

MAX_NAME_BYTES = 1024
_SPECIAL = {"": "%", ".": "%2E", "..": "%2E%2E"}


def _segment(part: str) -> str:
    return _SPECIAL.get(part) or part.replace("%", "%25")


def escape_path(rel: str) -> str:
    """``rel`` with every segment made safe (an injective mapping; ``/`` kept as separator)."""
    return "/".join(_segment(part) for part in rel.split("/"))


def escape_id(ident: str) -> str:
    """A message id as one safe segment (``/`` escaped too)."""
    return _segment(ident).replace("/", "%2F")


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits in ``max_bytes`` UTF-8 bytes."""
    return text.encode()[:max(0, max_bytes)].decode(errors="ignore")


def object_name(prefix: str, rel: str, suffix: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """``prefix + escape_path(rel) + suffix``, shortened to ``max_bytes`` when longer.

    A shortened name is ``prefix + head + "~" + sha256(escaped rel)[:16] + suffix``: the
    same ``rel`` always gives the same name, and two long names that share a head differ.
    """
    return _fit(prefix, escape_path(rel), suffix, max_bytes)


def id_name(prefix: str, ident: str, suffix: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """``prefix + escape_id(ident) + suffix`` (shortened like ``object_name``)."""
    return _fit(prefix, escape_id(ident), suffix, max_bytes)


def _fit(prefix: str, safe: str, suffix: str, max_bytes: int) -> str:
    name = prefix + safe + suffix
    if len(name.encode()) <= max_bytes:
        return name
    tag = "~" + hashlib.sha256(safe.encode()).hexdigest()[:16]
    room = max_bytes - len((prefix + tag + suffix).encode())
    if room < 0:
        raise ValueError(f"prefix and suffix alone exceed {max_bytes} bytes: {prefix!r}")
    return prefix + _cut(safe, room) + tag + suffix
