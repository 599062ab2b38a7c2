"""functions-framework's per-request execution id, drawn in one call instead of twelve.

functions-framework's ASGI middleware gives every request that arrives without a
``Function-Execution-Id`` header an id of ``_EXECUTION_ID_LENGTH`` (12) characters from
``_EXECUTION_ID_CHARSET`` (digits and ASCII letters), drawn with one ``random.randrange``
per character through a generator. ``install`` puts ``draw`` in its place: the same
length and alphabet from the same generator (``random``, reseeded in each forked worker),
one ``randbytes`` call mapped through a table. The ids stay what they were for its log
correlation (``LOG_EXECUTION_ID``); why it is worth replacing, in numbers:
docs/benchmarks.md (issue 21).

The replaced function is private to functions-framework: ``install`` replaces it only when
the module still has the names it expects, and tests/test_execution_ids.py fails if the
pinned version stops calling it.
"""

from __future__ import annotations

import random

from functions_framework import execution_id as _framework

_LENGTH: int = getattr(_framework, "_EXECUTION_ID_LENGTH", 12)
_ALPHABET: bytes = getattr(_framework, "_EXECUTION_ID_CHARSET", "").encode("ascii")
# Byte b -> _ALPHABET[b % 62]: the first 256 % 62 = 8 characters come 5/256 of the time
# instead of 4/256, a loss of under 0.01 bit per character in an id that only needs to be
# unlikely to repeat.
_TABLE = bytes(_ALPHABET[b % len(_ALPHABET)] for b in range(256)) if _ALPHABET else b""


def draw() -> str:
    """A new execution id: ``_LENGTH`` characters of functions-framework's alphabet."""
    return random.randbytes(_LENGTH).translate(_TABLE).decode("ascii")


def install() -> bool:
    """Make functions-framework draw its execution ids with ``draw``; False (nothing
    changed) when its module no longer has the function and constants this relies on."""
    if not (_TABLE and callable(getattr(_framework, "_generate_execution_id", None))):
        return False
    _framework._generate_execution_id = draw  # noqa: SLF001 - see the module docstring
    return True
