"""Input plans: instances -> one array per graph input, whatever the model's signature.

A plan is chosen once per loaded model by ``plan_for``, from its signature and card:

    TabularPlan  one 2-D numeric input: rows as lists in feature order or objects keyed by
                 feature name (codecs.tabular); external lookups fill features in place
    TensorPlan   any other signature: per-instance tensors, or objects keyed by input name
                 (codecs.tensors)
    TextPlan     a card with a tokenizer: strings, or objects with the card's text field,
                 become token inputs (codecs.tokens); embeddings pooled as the card says

A plan's ``decode`` never raises for bad content: every problem is reported per index in
the ``Inputs`` it returns, and the bad item's row is filled so the others keep their place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.codecs.tabular import FEW_ROWS, Decoded, Schema, clean_rows, decode_instances
from functions.codecs.tensors import InputSpec, decode_column, split_by_input
from functions.codecs.tokens import TextEncoder
from functions.errors import Problem
from functions.loading.sidecars import tokenizer_path
from functions.model.onnx_model import OnnxModel


@dataclass(slots=True)
class Inputs:
    """Decoded items: ``feeds`` hold a row for every item (bad rows filled), in the graph's
    dtypes; what the service needs besides the arrays rides along."""

    feeds: dict[str, np.ndarray]
    problems: dict[int, list[Problem]]
    n: int
    """How many items (every feed has a row for each)."""
    notes: dict[int, dict[str, Any]] | None = None
    """Per-row facts for the answer, e.g. ``{"truncated": True}`` (None: none)."""
    table: Decoded | None = None
    """Tabular models: the matrix (the same array as the feed) that lookups fill in."""
    instances: Sequence[Any] = ()
    """The items as sent (lookups read their keys from them)."""
    plan: Plan | None = None
    """The plan that decoded them; None for tensors fed as they are (the Open Inference
    Protocol), whose outputs are answered raw."""


def input_specs(model: OnnxModel) -> list[InputSpec]:
    """The graph's inputs as instances see them (item shape: the shape without batch)."""
    return [InputSpec(s.name, None if s.dtype == "str" else np.dtype(s.dtype),
                      tuple(d if isinstance(d, int) else None for d in s.shape[1:]))
            for s in model.inputs]


class TabularPlan:
    kind = "tabular"
    finishes = False

    def __init__(self, model: OnnxModel, schema: Schema) -> None:
        assert model.row_input is not None
        self.input = model.row_input.name
        self.schema = schema
        self.specs = input_specs(model)
        self.looks_up = bool(schema.optional or schema.extra_fields)
        """Some features may come from external lookups (the enricher has work to do)."""
        self.unwraps = self.input not in schema.feature_names
        """``{"input": [...]}`` may name the one input (unless a feature has that name)."""
        self.matrix_width = schema.width \
            if not self.looks_up and schema.dtype.kind == "f" else None
        """Rows are plain float features: a body that is one numeric matrix this wide may be
        read without a Python object per value (codecs.matrix). None otherwise."""

    def decode(self, instances: Sequence[Any], may_hold_bools: bool = True) -> Inputs:
        if type(instances) is list and len(instances) <= FEW_ROWS and not self.looks_up:
            matrix = clean_rows(instances, self.schema)  # the common single row, at once
            if matrix is not None:
                return Inputs({self.input: matrix}, {}, len(matrix), None, None, instances,
                              self)
        if self.unwraps and type(instances) is list and dict in set(map(type, instances)):
            key = {self.input}  # {"input": [...]} names the one input: unwrap it
            instances = [i[self.input] if type(i) is dict and i.keys() == key else i
                         for i in instances]
        table = decode_instances(instances, self.schema, may_hold_bools)
        return Inputs({self.input: table.matrix}, table.problems, len(table.matrix),
                      table=table, instances=instances, plan=self)

    def finish(self, outputs: dict[str, np.ndarray],
               feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return outputs

    def sample(self, rows: int) -> dict[str, np.ndarray]:
        """Feeds of ``rows`` rows to time the model with."""
        return {self.input: np.zeros((rows, self.schema.width), dtype=self.schema.dtype)}

    def pads(self) -> dict[str, int]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"format": "tabular", "features": list(self.schema.feature_names),
                "inputs": [s.describe() for s in self.specs],
                "instance": "a list of numbers in feature order, or an object keyed by "
                            "feature name"}


class TensorPlan:
    kind = "tensors"
    finishes = False

    matrix_width = None
    looks_up = False

    def __init__(self, model: OnnxModel) -> None:
        self.specs = input_specs(model)
        self.allow_nan = model.card.allow_nan

    def decode(self, instances: Sequence[Any], may_hold_bools: bool = True) -> Inputs:
        problems: dict[int, list[Problem]] = {}
        columns = split_by_input(instances, self.specs, problems)
        feeds = {s.name: decode_column(columns[s.name], s, self.allow_nan, may_hold_bools,
                                       problems) for s in self.specs}
        return Inputs(feeds, problems, len(instances), instances=instances, plan=self)

    def finish(self, outputs: dict[str, np.ndarray],
               feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return outputs

    def sample(self, rows: int) -> dict[str, np.ndarray]:
        """Feeds of ``rows`` rows to time the model with (dynamic axes of size 1)."""
        return {s.name: (np.full((rows, *[d or 1 for d in s.item_shape]), "", dtype=object)
                         if s.dtype is None else
                         np.zeros((rows, *[d or 1 for d in s.item_shape]), dtype=s.dtype))
                for s in self.specs}

    def pads(self) -> dict[str, int]:
        return {}

    def describe(self) -> dict[str, Any]:
        one = "that input's value, or " if len(self.specs) == 1 else ""
        return {"format": "tensors", "inputs": [s.describe() for s in self.specs],
                "instance": f"{one}an object keyed by input name"}


class TextPlan:
    kind = "text"
    matrix_width = None
    looks_up = False

    def __init__(self, model: OnnxModel) -> None:
        spec = model.card.tokenizer
        assert spec is not None
        self.spec = spec
        self.encoder = TextEncoder(tokenizer_path(model.path), spec,
                                   {s.name: np.dtype(s.dtype) for s in model.inputs})
        self.embedding_output = model.card.embedding_output
        self.finishes = self.embedding_output is not None
        """Whether ``finish`` has work to do (pooling the embedding output)."""
        self.specs = input_specs(model)

    def decode(self, instances: Sequence[Any], may_hold_bools: bool = True) -> Inputs:
        field_name = self.spec.text_field
        texts: list[str] = []
        problems: dict[int, list[Problem]] = {}
        for i, inst in enumerate(instances):
            text = inst.get(field_name) if isinstance(inst, dict) else inst
            if not isinstance(text, str):
                where = field_name if isinstance(inst, dict) else "instances"
                problems[i] = [Problem(f'expected text: a string or {{"{field_name}": '
                                       f'"..."}}, got {type(text).__name__}', i, where)]
                text = ""
            texts.append(text)
        feeds, truncated = self.encoder.encode(texts)
        notes = {i: {"truncated": True} for i in truncated if i not in problems}
        return Inputs(feeds, problems, len(texts), notes, instances=instances, plan=self)

    def finish(self, outputs: dict[str, np.ndarray],
               feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        name = self.embedding_output
        if name is None or name not in outputs:
            return outputs
        return {**outputs, name: self.encoder.pool(outputs[name], feeds)}

    def sample(self, rows: int, tokens: int = 16) -> dict[str, np.ndarray]:
        """Token feeds of ``rows`` sentences of ``tokens`` tokens to time the model with."""
        feeds, _ = self.encoder.encode([" ".join(["word"] * (tokens - 2))] * rows)
        return feeds

    def pads(self) -> dict[str, int]:
        """Token inputs and the value that pads each (merged batches are re-padded)."""
        return self.encoder.pads()

    def describe(self) -> dict[str, Any]:
        spec = self.spec
        return {"format": "text", "instance": f'a string, or an object with "{spec.text_field}"',
                "tokenizer": {"max_length": spec.max_length, "text_field": spec.text_field,
                              "padding": "to the longest item of each batch",
                              "pooling": spec.pooling, "normalize": spec.normalize},
                "inputs": [s.describe() for s in self.specs]}


Plan = TabularPlan | TensorPlan | TextPlan


def plan_for(model: OnnxModel, optional: frozenset[str] = frozenset(),
             extra_fields: frozenset[str] = frozenset()) -> Plan:
    """How instances become this model's inputs (``optional``/``extra_fields``: lookups)."""
    if model.card.tokenizer is not None:
        return TextPlan(model)
    row = model.row_input
    if row is None:
        return TensorPlan(model)
    names = tuple(model.card.feature_names) or tuple(f"f{i}" for i in range(row.n_features or 0))
    return TabularPlan(model, Schema(names, row.dtype, model.card.allow_nan, optional,
                                     extra_fields))
