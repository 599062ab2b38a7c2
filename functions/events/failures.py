"""How an event handler failed decides what the platform does with the event.

- ``Poison``: the event itself is unusable (undecodable, schema-invalid, an event type we
  do not handle). It is preserved where the transport says (functions/events/poison.py),
  then acknowledged; retrying would fail forever.
- ``MissingInput`` (a Poison): the input object an event names does not exist, or not at
  that version (``is_missing``: NotFound, NoSuchKey, NoSuchVersion, a deleted generation;
  checked where inputs are opened, never where outputs are written). Acknowledged.
- ``Unhandled``: an event of a kind we do not handle (a trigger wired to the wrong
  function). Refused: logged at ERROR and raised like a transient failure, so the platform
  retries it and, past its retry limit, dead-letters it.
- Anything else raises out of the handler so the platform redelivers (Pub/Sub push
  answers 500, SQS reports the record in ``batchItemFailures``, a Cloud Run Job task
  exits non-zero). When in doubt we retry: a dead-letter policy bounds retries, a lost
  event cannot be recovered.
"""

from __future__ import annotations

from collections.abc import Iterator

from functions.loading.s3_store import s3_code


class Poison(Exception):
    """The event can never succeed: preserve it, acknowledge it, move on."""

    outcome = "poison"


class MissingInput(Poison):
    """The input the event names is gone (deleted since, never written, not that version)."""

    outcome = "missing"


class Unhandled(Exception):
    """An event of a kind no handler takes: refused, for the platform to dead-letter."""


_TRANSIENT_NAMES = {
    # google-api-core / requests / urllib3 / botocore: named, not imported (they are heavy
    # and optional: a GCP deployment has no botocore and vice versa)
    "ServerError", "ServiceUnavailable", "InternalServerError", "BadGateway",
    "GatewayTimeout", "TooManyRequests", "RetryError", "ConnectionError", "Timeout",
    "ReadTimeout", "ConnectTimeout", "ProtocolError", "EndpointConnectionError",
    "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
}
_MISSING_CODES = ("404", "403", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "AccessDenied")
_MISSING_NAMES = {"NotFound", "Forbidden", "NoSuchKey", "NoSuchBucket", "NoSuchVersion"}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def is_transient(exc: BaseException) -> bool:
    """Somewhere in the cause chain the network or the far service failed (5xx, 429, I/O)."""
    for cur in _chain(exc):
        if isinstance(cur, (ConnectionError, TimeoutError)) or _names(cur) & _TRANSIENT_NAMES:
            return True
        code = s3_code(cur)
        if code.isdigit() and (int(code) >= 500 or int(code) == 429) or code in (
                "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"):
            return True
    return False


def is_missing(exc: BaseException) -> bool:
    """The object (or bucket, or that version) does not exist or may not be read: a retry
    will not help."""
    for cur in _chain(exc):
        if isinstance(cur, FileNotFoundError) or _names(cur) & _MISSING_NAMES:
            return True
        if s3_code(cur) in _MISSING_CODES:
            return True
    return False
