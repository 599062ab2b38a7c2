"""The model card: the JSON sidecar that travels beside every model.

One schema for both sides: ``model_export`` writes it, the function reads it. Together with
the ONNX graph it is the single source of the request schema, ``/model`` and the docs.
Unknown keys are kept on read (``card.extra``) so an older function can serve a card
written by a newer exporter (``extra``, see ``functions.config.structs.Open``), and written back
when the exporter rewrites a card. msgspec structs: importing them costs ~3 ms of the cold
start where pydantic's import and schema building cost ~100 ms.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from functions.config.structs import Open, dump, load

CARD_SCHEMA_VERSION = 1
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SafeName = Annotated[str, Meta(pattern=SAFE_NAME)]
Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]


CARD_SUFFIX = ".card.json"


def sidecar_card(model_uri: str) -> str:
    """The card that travels beside a model: ``x.onnx`` -> ``x.card.json``."""
    return model_uri.removesuffix(".onnx") + CARD_SUFFIX


class TensorSpec(msgspec.Struct, kw_only=True):
    """One graph input or output: ONNX name, numpy dtype name, shape (None = dynamic)."""

    name: str
    dtype: str
    shape: list[int | str | None]


class LookupSpec(Open, kw_only=True):
    """Features fetched from an external HTTP service instead of sent in the request."""

    key_field: str
    """The instance field that carries the lookup key (e.g. ``user_id``)."""
    url_template: str
    """URL with ``{key}`` in it, e.g. ``http://features/users/{key}``."""
    features: dict[str, str]
    """feature name -> JSON field (dotted path) in the service's answer."""
    defaults: dict[str, float] | None = None
    """Used when the lookup fails for good; without it the item fails."""


class TokenizerSpec(Open, kw_only=True):
    """How text becomes the model's token inputs: a Hugging Face ``tokenizer.json``.

    The file travels beside the model (``publish`` uploads it, the function downloads it
    and checks its sha256 like the model's). Padding is always dynamic (to the longest
    item of a batch); truncation at ``max_length``; special tokens as ``tokenizer.json``
    declares them (its post-processor), i.e. as the model was trained.
    """

    file: SafeName = "tokenizer.json"
    """File name of the tokenizer, in the same folder as the model."""
    sha256: Sha256 | None = None
    max_length: Annotated[int, Meta(ge=1)] = 512
    """Longest token sequence fed to the model (special tokens included); longer text is
    truncated and the truncation reported."""
    text_field: str = "text"
    """The key of the text when an instance is an object (a bare string is the text)."""
    input_names: dict[str, str] = msgspec.field(default_factory=lambda: {
        "input_ids": "input_ids", "attention_mask": "attention_mask",
        "token_type_ids": "token_type_ids"})
    """Tokenizer output (input_ids, attention_mask, token_type_ids) -> graph input name;
    outputs the graph does not take are not fed."""
    pooling: Literal["none", "mean", "cls"] = "none"
    """Pooling applied by the function to a [batch, tokens, dim] output (``none``: the graph
    already outputs one vector per item)."""
    normalize: bool = False
    """L2-normalise each embedding after pooling (when the graph does not)."""


class ModelCard(Open, kw_only=True):
    """What a served model is and how to talk to it."""

    schema_version: int = CARD_SCHEMA_VERSION
    # name, version and sha256 end up in cache file names and object keys: no path tricks
    name: SafeName
    version: SafeName
    sha256: Sha256 | None = None
    task: Literal["classification", "regression", "embedding"] = "classification"
    description: str | None = None
    created_at: str | None = None
    framework: dict[str, str] = msgspec.field(default_factory=dict)
    """Source framework and version, e.g. ``{"name": "scikit-learn", "version": "1.9.1"}``."""
    converter: dict[str, str] = msgspec.field(default_factory=dict)
    opset: int | None = None
    inputs: list[TensorSpec] = msgspec.field(default_factory=list)
    outputs: list[TensorSpec] = msgspec.field(default_factory=list)
    feature_names: list[str] = msgspec.field(default_factory=list)
    feature_ranges: dict[str, tuple[float, float]] | None = None
    """Observed [min, max] per feature; used to draw verification rows."""
    labels: list[str] | None = None
    """Class labels in the order of the probability columns (classifiers)."""
    label_output: str | None = None
    """Name of the output holding the predicted class index / label."""
    probability_output: str | None = None
    """Name of the output holding per-class probabilities, shape [batch, n_labels]."""
    value_output: str | None = None
    """Name of the output holding regression values."""
    embedding_output: str | None = None
    """Name of the output holding embeddings (task ``embedding``)."""
    shortened_embeddings: bool | None = None
    """Embedding models trained for shortened embeddings (Matryoshka representation
    learning): the first k values of an embedding, re-normalised when embeddings are
    normalised, are an embedding themselves. The OpenAI embeddings route honours
    ``dimensions`` only when this is true (None: not stated, so not)."""
    tokenizer: TokenizerSpec | None = None
    """Text models: the tokenizer that turns instances' text into the token inputs."""
    output_meaning: str | None = None
    allow_nan: bool = False
    """The model handles NaN (e.g. an imputer in the pipeline): NaN and null are accepted."""
    lookups: list[LookupSpec] = msgspec.field(default_factory=list)
    verify: dict[str, Any] | None = None
    """The parity report written by ``model_export verify``."""
    variants: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """Steps that derived this file from the exported model, in order (``optimize``,
    ``quantize``, ``prune``): each with ``kind``, ``parent_sha256``, its settings and report."""

    @classmethod
    def from_json(cls, raw: bytes | str) -> ModelCard:
        """Parse and validate card JSON; unknown keys kept in ``extra``. Raises ValueError
        (``msgspec.DecodeError`` for bad JSON, ``msgspec.ValidationError`` naming the field:
        ``Expected `str` matching regex ... - at `$.name```)."""
        return load(cls, msgspec.json.decode(raw))

    def to_dict(self, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The card as JSON builtins (None fields omitted, extra keys in place)."""
        out: dict[str, Any] = dump(self, omit_none=True, exclude=exclude)
        return out

    def to_json(self) -> str:
        """Stable, human-readable JSON: fields in schema order, indented, None omitted."""
        return msgspec.json.format(msgspec.json.encode(self.to_dict()), indent=2).decode()
