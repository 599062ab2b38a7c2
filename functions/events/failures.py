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
- ``Redeliver``: neither the event's fault nor a bug: this deployment cannot take it now
  (poison with nowhere to keep it, no MESSAGE_OUTPUT_URI). Handed back like a transient
  failure: ``/events`` and Pub/Sub push answer 503 with Retry-After.
- Anything else raises out of the handler so the platform redelivers (Pub/Sub push
  answers 503 when the failure is transient, 500 for a bug; SQS reports the record in
  ``batchItemFailures``, a Cloud Run Job task exits non-zero). When in doubt we retry: a
  dead-letter policy bounds retries, a lost event cannot be recovered.
"""

from __future__ import annotations

from functions.loading.store_errors import is_missing, is_transient

__all__ = ["MissingInput", "Poison", "Redeliver", "Unhandled", "is_missing", "is_transient"]


class Poison(Exception):
    """The event can never succeed: preserve it, acknowledge it, move on."""

    outcome = "poison"


class MissingInput(Poison):
    """The input the event names is gone (deleted since, never written, not that version)."""

    outcome = "missing"


class Unhandled(Exception):
    """An event of a kind no handler takes: refused, for the platform to dead-letter."""


class Redeliver(Exception):
    """This deployment cannot take the event now: hand it back for a later delivery (and,
    past the platform's retry limit, its dead letter). Not a bug: no 500."""
