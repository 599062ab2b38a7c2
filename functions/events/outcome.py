"""What an event handler did, for the log line, the metrics and the HTTP route's answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from functions import metrics

log = logging.getLogger("functions.events")


@dataclass(frozen=True)
class Outcome:
    """``action`` is one of: scored, skipped, rolled_out, unchanged, waiting, refused,
    ignored, poison (kept under the errors location), missing (the input is gone). Every
    one of them acknowledges the event."""

    action: str
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    def report(self, source: str, subject: str) -> Outcome:
        """Log and count this outcome (refusals and poison at ERROR: someone must look)."""
        level = {"refused": logging.ERROR, "poison": logging.ERROR,
                 "missing": logging.WARNING}.get(self.action, logging.INFO)
        log.log(level, "%s %s: %s (%s)", source, subject, self.action, self.detail)
        metrics.inc(f'events_total{{source="{source}",outcome="{self.action}"}}', 1,
                    "events handled, by source and outcome")
        return self
