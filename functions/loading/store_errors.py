"""What a storage failure means, read from whatever the SDK raised (the whole cause chain).

- ``is_transient``: the network or the far service failed (5xx, 429, a timeout, a dropped
  connection): the same call may succeed later. The model load retries it; event handlers
  hand the event back for redelivery.
- ``is_missing``: the object (bucket, version) does not exist or may not be read.
- ``is_lost_race``: a create-only write found the object already there (GCS 412 for
  ``ifGenerationMatch=0``, S3 412 for ``If-None-Match: *``, FileExistsError locally).

SDK exception types are matched by name, not imported: google-api-core, requests, urllib3
and botocore are heavy and optional (a GCP deployment has no botocore and vice versa).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

_TRANSIENT_NAMES = {
    "ServerError", "ServiceUnavailable", "InternalServerError", "BadGateway",
    "GatewayTimeout", "TooManyRequests", "RetryError", "ConnectionError", "Timeout",
    "ReadTimeout", "ConnectTimeout", "ProtocolError", "EndpointConnectionError",
    "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
}
_TRANSIENT_S3_CODES = ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout",
                       "ConditionalRequestConflict")  # a concurrent conditional write: retry
_MISSING_CODES = ("404", "403", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "AccessDenied")
_MISSING_NAMES = {"NotFound", "Forbidden", "NoSuchKey", "NoSuchBucket", "NoSuchVersion"}


def s3_code(exc: BaseException) -> str:
    """The error code of a botocore ClientError ("404", "NoSuchKey", ...), else ""."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status a storage SDK error carries: google-api-core's ``code``, an HTTP
    response's ``status_code`` (google-resumable-media, requests), or ours (FetchError's
    ``http_status``; a ServingError's ``status`` is what we answer, not what we were told)."""
    status = getattr(exc, "http_status", None)
    if status is None and not isinstance(exc, OSError):  # OSError's ``code`` is no status
        status = getattr(exc, "code", None)
    response = getattr(exc, "response", None)
    if status is None and response is not None and not isinstance(response, dict):
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) and 100 <= status < 600 else None


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes and contexts, each once."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def is_transient(exc: BaseException) -> bool:
    """Somewhere in the cause chain the network or the far service failed (5xx, 429, I/O).
    A certificate that does not verify is no network blip (requests reports it as a
    ConnectionError): not transient."""
    links = list(chain(exc))
    if any(isinstance(cur, ssl.SSLCertVerificationError) for cur in links):
        return False
    for cur in links:
        if isinstance(cur, (ConnectionError, TimeoutError)) or _names(cur) & _TRANSIENT_NAMES:
            return True
        status = http_status(cur)
        if status is not None and (status >= 500 or status == 429):
            return True
        code = s3_code(cur)
        if code.isdigit() and (int(code) >= 500 or int(code) == 429) \
                or code in _TRANSIENT_S3_CODES:
            return True
    return False


def is_missing(exc: BaseException) -> bool:
    """The object (or bucket, or that version) does not exist or may not be read: a retry
    will not help."""
    for cur in chain(exc):
        if isinstance(cur, FileNotFoundError) or _names(cur) & _MISSING_NAMES:
            return True
        if s3_code(cur) in _MISSING_CODES:
            return True
    return False


def is_lost_race(exc: BaseException) -> bool:
    """A create-only write lost to a writer that created the object first."""
    for cur in chain(exc):
        if isinstance(cur, FileExistsError) or s3_code(cur) in ("PreconditionFailed", "412"):
            return True
        if "PreconditionFailed" in _names(cur) or http_status(cur) == 412:
            return True
    return False
