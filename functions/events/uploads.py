"""An object landed in a bucket (GCS finalize event, S3 ObjectCreated, batch job listing).

Routing by prefix, first match wins: our own outputs/errors (ignored, so results never
trigger scoring), MODELS_PREFIX (roll-out), INPUTS_PREFIX (score the file), anything else
(ignored). The output of ``inputs/a/b.csv`` at generation G is
``outputs/a/b.csv.G.jsonl`` (errors: ``errors/a/b.csv.G.errors.jsonl``) in the same bucket:
the same input generation always maps to the same objects, so redelivery never duplicates
(names made safe and reproducible by functions/events/object_names.py).

An input that is gone (MissingInput) is acknowledged as ``missing``. A data file that
cannot be read at all (a corrupt .npy, a model that takes no rows) is ``poison``: its errors
object holds the one line ``{"row": null, "error": {"code": "unreadable_input", ...}}`` and
an empty predictions object marks it done, so a redelivery answers ``skipped``.
"""

from __future__ import annotations

import orjson

from functions.config.settings import Settings
from functions.events.failures import MissingInput, Poison
from functions.events.formats import format_of
from functions.events.object_names import object_name
from functions.events.outcome import Outcome
from functions.events.rollout import Rollout
from functions.events.scoring import Scorer, scored_detail
from functions.loading.object_store import ObjectRef


def result_uris(ref: ObjectRef, settings: Settings) -> tuple[str, str]:
    """(predictions URI, errors URI) for one input version."""
    rel = ref.name[len(settings.inputs_prefix):] if ref.name.startswith(settings.inputs_prefix) \
        else ref.name
    version = f".{ref.generation or 'current'}"
    root = f"{ref.scheme}://{ref.bucket}/"
    return (root + object_name(settings.outputs_prefix, rel, f"{version}.jsonl"),
            root + object_name(settings.errors_prefix, rel, f"{version}.errors.jsonl"))


class Uploads:
    """Acts on new objects: roll-outs under MODELS_PREFIX, scoring under INPUTS_PREFIX."""

    def __init__(self, settings: Settings, scorer: Scorer, rollout: Rollout) -> None:
        self.settings = settings
        self.scorer = scorer
        self.rollout = rollout

    def score_object(self, ref: ObjectRef) -> Outcome:
        """Score one data file unless this version was already scored."""
        fmt = format_of(ref.name)
        if fmt is None:
            return Outcome("ignored", "not a data file (.jsonl, .ndjson, .csv, .npy)")
        out_uri, err_uri = result_uris(ref, self.settings)
        if self.scorer.stores.for_uri(out_uri).exists(out_uri):
            return Outcome("skipped", f"already scored: {out_uri}", {"output": out_uri})
        try:
            summary = self.scorer.score_file(ref, fmt, out_uri, err_uri)
        except MissingInput as exc:
            return Outcome("missing", str(exc))
        except Poison as exc:
            return self._unreadable(str(exc), out_uri, err_uri)
        facts = {"output": out_uri, **summary.facts()}
        if summary.errors:
            facts["errors_object"] = err_uri
        return Outcome("scored", scored_detail(summary, out_uri), facts)

    def _unreadable(self, reason: str, out_uri: str, err_uri: str) -> Outcome:
        """Keep why the file cannot be read in its errors object, then mark it done."""
        line = {"row": None, "error": {"code": "unreadable_input", "message": reason}}
        stores = self.scorer.stores  # created only if absent: a twin delivery wrote the same
        stores.for_uri(err_uri).create(err_uri, orjson.dumps(line) + b"\n", "application/x-ndjson")
        stores.for_uri(out_uri).create(out_uri, b"", "application/x-ndjson")
        return Outcome("poison", f"{reason}; kept in {err_uri}",
                       {"output": out_uri, "errors_object": err_uri})

    def handle(self, ref: ObjectRef) -> Outcome:
        """Route one new object by bucket and prefix."""
        s = self.settings
        if s.watch_bucket and ref.bucket != s.watch_bucket:
            return Outcome("ignored", f"bucket {ref.bucket} is not WATCH_BUCKET")
        name = ref.name
        if name.startswith(s.outputs_prefix) or name.startswith(s.errors_prefix):
            return Outcome("ignored", "an output of ours")
        if name.startswith(s.models_prefix):
            return self.rollout.on_model_object(ref)
        if name.startswith(s.inputs_prefix):
            return self.score_object(ref)
        return Outcome("ignored", "outside the watched prefixes")
