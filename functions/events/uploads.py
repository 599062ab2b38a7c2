"""An object landed in a bucket (GCS finalize event, S3 ObjectCreated, batch job listing).

Routing by prefix, first match wins: our own outputs/errors (ignored, so results never
trigger scoring), MODELS_PREFIX (roll-out), INPUTS_PREFIX (score the file), anything else
(ignored). The output of ``inputs/a/b.csv`` at generation G is
``outputs/a/b.csv.G.jsonl`` (errors: ``errors/a/b.csv.G.errors.jsonl``) in the same bucket:
the same input generation always maps to the same objects, so redelivery never duplicates.
"""

from __future__ import annotations

from functions.events.formats import format_of
from functions.events.outcome import Outcome
from functions.events.rollout import Rollout
from functions.events.scoring import Scorer
from functions.loading.object_store import ObjectRef
from functions.settings import Settings


def result_uris(ref: ObjectRef, settings: Settings) -> tuple[str, str]:
    """(predictions URI, errors URI) for one input version."""
    rel = ref.name[len(settings.inputs_prefix):] if ref.name.startswith(settings.inputs_prefix) \
        else ref.name
    stem = f"{rel}.{ref.generation or 'current'}"
    root = f"{ref.scheme}://{ref.bucket}/"
    return (f"{root}{settings.outputs_prefix}{stem}.jsonl",
            f"{root}{settings.errors_prefix}{stem}.errors.jsonl")


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
        summary = self.scorer.score_file(ref, fmt, out_uri, err_uri)
        facts = {"output": out_uri, **summary.facts()}
        if summary.errors:
            facts["errors_object"] = err_uri
        return Outcome("scored", f"{summary.scored} rows -> {out_uri}, {summary.errors} errors",
                       facts)

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
