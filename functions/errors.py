"""Errors that carry their HTTP status, and the one place that turns them into responses.

Exception tree::

    ServingError (500)                     base: anything the service raises on purpose
    ├── RequestError (400)                 the request itself is unusable
    │   ├── MalformedJSON (400)            body is not JSON
    │   ├── UnsupportedMediaType (415)     Content-Type is not one we read
    │   ├── PayloadTooLarge (413)          body over MAX_BODY_BYTES
    │   ├── NotFound (404)                 no such route / model / version
    │   ├── MethodNotAllowed (405)
    │   └── ValidationFailed (422)         JSON is fine, its content is not (carries details)
    ├── ModelNotReady (503)                still loading, or the load failed
    └── ModelLoadError (500)               raised by the loader; readiness reports it, never a route

A strict route raises a failed item's own status (e.g. 424 ``lookup_failed`` when an
external lookup failed for good) as a ServingError with ``status``/``code`` given.
A failed item inside a batch is no exception at all: it is an ``ItemError`` value, whose
``body(index)`` is the same in /batch-predict answers and in event errors files; a strict
call turns its failed items into one exception (``validation_error``, ``first_failure``).

Where errors become responses: ``functions.http.responses.error_response`` is the one
mapper for every HTTP route (the Router calls it, Lambda's HTTP events pass through the
same Router); the Open Inference Protocol routes render the same exceptions in that
protocol's own shape (``functions.oip.routes.error_json``). Every package error renders
as ``{"error": {"status", "code", "message", "details"}}`` where ``details`` is a list of
``{"index", "field", "message"}`` naming what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one instance: ``index`` is the instance, ``field`` the feature."""

    message: str
    index: int | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.index is not None:
            out["index"] = self.index
        if self.field is not None:
            out["field"] = self.field
        return out


class ServingError(Exception):
    """Base class; ``status`` is the HTTP status and ``code`` a stable machine-readable name."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, details: list[Problem] | None = None,
                 headers: dict[str, str] | None = None, *, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[Problem] = details or []
        self.headers: dict[str, str] = headers or {}
        if status is not None:  # an item's own status, raised whole by a strict route
            self.status = status
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.details:
            err["details"] = [p.as_dict() for p in self.details]
        return {"error": err}


class RequestError(ServingError):
    status, code = 400, "bad_request"


class MalformedJSON(RequestError):
    status, code = 400, "malformed_json"


class UnsupportedMediaType(RequestError):
    status, code = 415, "unsupported_media_type"


class PayloadTooLarge(RequestError):
    status, code = 413, "payload_too_large"


class NotFound(RequestError):
    status, code = 404, "not_found"


class ClientGone(RequestError):
    """The client closed the connection before its body arrived. Nobody reads the answer
    (nginx's 499); it is no fault of the function's: no 500, no traceback in the log."""

    status, code = 499, "client_closed_request"


class MethodNotAllowed(RequestError):
    status, code = 405, "method_not_allowed"


class ValidationFailed(RequestError):
    status, code = 422, "validation_failed"


class ModelNotReady(ServingError):
    status, code = 503, "model_not_ready"


class ModelLoadError(ServingError):
    status, code = 500, "model_load_failed"


@dataclass(slots=True)
class ItemError:
    """A per-item failure inside a batch response (the batch itself succeeded)."""

    problems: list[Problem] = field(default_factory=list)
    status: int = 422
    code: str = "invalid_instance"

    def body(self, index: int) -> dict[str, Any]:
        """The one JSON body of a failed item, in /batch-predict answers and in events
        errors files alike: ``index`` is the item's place in what the caller sent."""
        return {"status": self.status, "code": self.code, "index": index,
                "message": self.problems[0].message if self.problems else self.code,
                "details": [{**p.as_dict(), "index": index} for p in self.problems]}


MAX_REPORTED_PROBLEMS = 50
"""A strict call's error lists at most this many problems."""


def validation_error(failures: dict[int, ItemError]) -> ValidationFailed:
    """422 naming the first problem; its code is the first failed item's own when that is
    more than "invalid_instance" (``model_refused``: only the model could tell)."""
    problems = [p for i in sorted(failures) for p in failures[i].problems]
    shown = problems[:MAX_REPORTED_PROBLEMS]
    first = shown[0]
    where = f"instances[{first.index}]" + (f".{first.field}" if first.field else "")
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    code = failures[min(failures)].code
    return ValidationFailed(f"{where}: {first.message}{more}", shown,
                            code=None if code == "invalid_instance" else code)


def first_failure(failures: dict[int, ItemError]) -> ServingError:
    """A strict route fails with its first failed item's status (422, 424, ...)."""
    i = min(failures)
    err = failures[i]
    return ServingError(f"instances[{i}]: {err.problems[0].message}", err.problems,
                        status=err.status, code=err.code)
