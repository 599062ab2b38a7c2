"""Does the card describe the graph? Checked at load: a mismatch keeps readiness at 503.

The card is half of the request schema (feature names, labels, task, which output means
what) and the graph the other half; the function must not serve a pair that disagree.

    spec_problems   two lists of tensor specs (names, dtypes, ranks, fixed dimensions);
                    the one comparison for card vs graph, and for served vs new graph on
                    roll-out
    card_problems   everything the card declares, against the graph's inputs and outputs

A graph output that is not a tensor (ZipMap's sequence of maps) has an onnxruntime type name
such as ``seq(map(int64,tensor(float)))`` as its dtype.
"""

from __future__ import annotations

from collections.abc import Callable

from functions.config.card import ModelCard, TensorSpec

FLOATS = {"float16", "float32", "float64"}
NUMBERS = FLOATS | {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
_ALIASES = {"string": "str", "object": "str", "float": "float32", "double": "float64"}


def _dtype(name: str) -> str:
    return _ALIASES.get(name, name)


def is_tensor(spec: TensorSpec) -> bool:
    """False for sequences and maps (ZipMap's output, for one)."""
    return not spec.dtype.startswith(("seq(", "map(", "optional("))


def spec_problems(kind: str, expected: list[TensorSpec], actual: list[TensorSpec],
                  says: str = "the card says", has: str = "the graph has",
                  same_order: bool = False) -> list[str]:
    """How ``actual`` differs from ``expected``: names (in the same order when
    ``same_order``), dtypes, ranks, and dimensions fixed on both sides. Dimensions that
    either side leaves free are not compared; nor are non-tensor specs beyond their name.
    Each problem reads "<kind> <name>: <says> X, <has> Y"."""
    names, found = [s.name for s in expected], [s.name for s in actual]
    if names != found and (same_order or sorted(names) != sorted(found)):
        return [f"{kind} names: {says} {names}, {has} {found}"]
    by_name = {s.name: s for s in actual}
    problems: list[str] = []
    for want in expected:
        got = by_name[want.name]
        if not (is_tensor(want) and is_tensor(got)):
            continue
        if _dtype(want.dtype) != _dtype(got.dtype):
            problems.append(f"{kind} {want.name}: {says} dtype {want.dtype}, {has} {got.dtype}")
        if len(want.shape) != len(got.shape):
            problems.append(f"{kind} {want.name}: {says} rank {len(want.shape)}, {has} "
                            f"{len(got.shape)}")
            continue
        problems += [f"{kind} {want.name}: {says} dimension {axis} is {a}, {has} {b}"
                     for axis, (a, b) in enumerate(zip(want.shape, got.shape))
                     if isinstance(a, int) and isinstance(b, int) and a != b]
    return problems


def _last_dim(spec: TensorSpec) -> int | None:
    last = spec.shape[-1] if spec.shape else None
    return last if isinstance(last, int) else None


def _label(spec: TensorSpec, card: ModelCard) -> str | None:
    if not is_tensor(spec) or len(spec.shape) > 2 or len(spec.shape) == 2 \
            and _last_dim(spec) not in (None, 1):
        return "a tensor of one label per row"
    return None


def _probabilities(spec: TensorSpec, card: ModelCard) -> str | None:
    if not is_tensor(spec):  # ZipMap: one {class: probability} map per row
        return None if spec.dtype.startswith("seq(map(") else "[rows, classes] floats"
    if _dtype(spec.dtype) not in FLOATS or len(spec.shape) != 2:
        return "[rows, classes] floats or ZipMap's sequence of maps"
    width = _last_dim(spec)
    if card.labels and width is not None and width != len(card.labels):
        return f"one column per label ({len(card.labels)} labels, {width} columns)"
    return None


def _value(spec: TensorSpec, card: ModelCard) -> str | None:
    ok = is_tensor(spec) and _dtype(spec.dtype) in NUMBERS and 1 <= len(spec.shape) <= 2
    return None if ok else "a numeric tensor of one value (or one row of values) per row"


def _embedding(spec: TensorSpec, card: ModelCard) -> str | None:
    pooled = card.tokenizer is not None and card.tokenizer.pooling != "none"
    rank = 3 if pooled else 2
    if is_tensor(spec) and _dtype(spec.dtype) in FLOATS and len(spec.shape) == rank:
        return None
    return ("[rows, tokens, dim] floats (the card pools them)" if pooled
            else "[rows, dim] floats")


_ROLES: dict[str, Callable[[TensorSpec, ModelCard], str | None]] = {
    "label_output": _label, "probability_output": _probabilities,
    "value_output": _value, "embedding_output": _embedding}


def card_problems(card: ModelCard, inputs: list[TensorSpec],
                  outputs: list[TensorSpec]) -> list[str]:
    """Why ``card`` does not describe a graph with these inputs and outputs (empty: it does).

    Checked: the inputs and outputs the card lists (``spec_problems``); each output the card
    names (label_output, probability_output, value_output, embedding_output) exists and has
    a type fit for its role; feature names match a single 2-D input's fixed width; the
    tokenizer feeds an input the graph has.
    """
    problems: list[str] = []
    if card.inputs:
        problems += spec_problems("input", card.inputs, inputs)
    by_name = {s.name: s for s in outputs}
    if card.outputs:
        known = set(by_name)
        listed = [s for s in card.outputs if s.name in known]
        problems += [f"card lists output {s.name!r}, the graph has {sorted(known)}"
                     for s in card.outputs if s.name not in known]
        problems += spec_problems("output", listed, [by_name[s.name] for s in listed])
    for role, check in _ROLES.items():
        name = getattr(card, role)
        if not name:
            continue
        spec = by_name.get(name)
        if spec is None:
            problems.append(f"card names {role} {name!r}, the graph's outputs are "
                            f"{[s.name for s in outputs]}")
        elif (want := check(spec, card)) is not None:
            problems.append(f"{role} {name!r} is {spec.dtype} {spec.shape}; expected {want}")
    problems += _feature_problems(card, inputs)
    if card.tokenizer is not None:
        ids = card.tokenizer.input_names.get("input_ids")
        if ids not in {s.name for s in inputs}:
            problems.append(f"the tokenizer feeds input_ids to {ids!r}, the graph's inputs are "
                            f"{[s.name for s in inputs]}")
    return problems


def _feature_problems(card: ModelCard, inputs: list[TensorSpec]) -> list[str]:
    if not card.feature_names or len(inputs) != 1 or len(inputs[0].shape) != 2:
        return []
    width = _last_dim(inputs[0])
    if width is None or width == len(card.feature_names):
        return []
    return [f"card has {len(card.feature_names)} feature names, input {inputs[0].name!r} "
            f"takes {width} columns"]
