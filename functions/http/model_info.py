"""GET /model: what is served and how to call it, from the card and the graph."""

from __future__ import annotations

from typing import Any

from functions.config.structs import dump
from functions.loading.holder import ModelHolder
from functions.lookups.enricher import effective_specs, lookup_config
from functions.service import PredictionService


def describe(holder: ModelHolder, service: PredictionService) -> dict[str, Any]:
    """/model: what is served and how to call it (503 while nothing is loaded).

    ``instances`` says what one instance of ``/predict`` looks like for this model: its
    format (tabular, tensors or text), each input with the shape of one instance, and for
    text models the tokenizer.
    """
    model = holder.require()
    card = model.card
    return {
        "name": card.name, "version": card.version, "sha256": card.sha256, "task": card.task,
        "instances": service.plan(model).describe(),
        "batching": service.runners(model).describe(),
        "inputs": dump(model.inputs), "outputs": dump(model.outputs),
        "feature_names": card.feature_names, "labels": card.labels,
        "allow_nan": card.allow_nan, "providers": model.providers,
        "graph_optimization": "done offline (skipped at load)"
        if model.graph_optimised_offline else "at load",
        "load_seconds": holder.load_seconds,
        "lookups": dump(effective_specs(card, holder.settings)),
        "lookup_settings": lookup_config(holder.settings),
        "card": card.to_dict(exclude=frozenset({"inputs", "outputs"})),
    }
