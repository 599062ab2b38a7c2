"""The OpenAI embeddings codec: ``POST /v1/embeddings`` bodies -> token inputs, and back.

A request ``{"input", "model", "encoding_format", "dimensions", "user"}`` is decoded into
the text plan's ``Inputs`` (the card's tokenizer, exactly as ``/predict`` tokenizes), so
the one pipeline scores it; the answer is OpenAI's list of embeddings with the tokenizer's
real token counts as ``usage``. The rules:

- ``input``: a non-empty string or a list of 1..``max_inputs`` of them. Token ids (a list
  of integers, or a list of such lists) only when ``token_ids`` is on, read as the model's
  own tokenizer's ids, special tokens included; otherwise a 400 that says to send text.
- An input longer than the card's ``max_length`` tokens is refused (400
  ``context_length_exceeded`` naming it), as OpenAI refuses it: never cut silently.
- ``model``: the card's name or an alias (404 ``model_not_found`` otherwise), echoed.
- ``encoding_format``: ``float`` (default) or ``base64`` (little-endian float32).
- ``dimensions``: the first k values, re-normalised when embeddings are, only for a card
  with ``shortened_embeddings``; otherwise only the full width.
- ``user`` is accepted and ignored, and so are keys OpenAI does not define.

Every refusal is a ServingError whose first detail's ``field`` is the OpenAI ``param``;
``functions.openai.routes`` renders them in OpenAI's error shape.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson

from functions.codecs.json_text import parse_json
from functions.codecs.plans import Inputs, TextPlan
from functions.codecs.predictions import shape_for
from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.errors import Problem, RequestError
from functions.model.onnx_model import OnnxModel
from functions.service import Scored

FORMATS = ("float", "base64")


@dataclass(frozen=True, slots=True)
class OpenAIModel:
    """The served model as the OpenAI routes present it: its names, its embedding width,
    the limits."""

    names: tuple[str, ...]
    """The card's name first, then the aliases from settings."""
    width: int | None
    """The embedding's length (the graph's last output dimension), if the graph states it."""
    max_inputs: int
    token_ids: bool
    shortened: bool
    """The card's ``shortened_embeddings``: ``dimensions`` below the width honoured."""


def served_for(model: OnnxModel, settings: Settings) -> OpenAIModel:
    """What ``model`` serves under ``settings`` (built once per loaded model)."""
    card = model.card
    return OpenAIModel((card.name, *(settings.openai_model_aliases or ())),
                  embedding_width(card, model.outputs), settings.max_instances,
                  settings.openai_token_ids, bool(card.shortened_embeddings))


@dataclass(slots=True)
class EmbeddingRequest:
    """One decoded request: the plan's inputs and what the answer needs."""

    inputs: Inputs
    tokens: int
    """Real tokens over every input (special tokens included, padding not)."""
    model: str
    base64: bool
    dimensions: int | None


def refusal(message: str, param: str | None, code: str, status: int = 400) -> RequestError:
    """An error naming the OpenAI ``param`` it is about (the first detail's field)."""
    return RequestError(message, [Problem(message, None, param)], status=status, code=code)


def embedding_width(card: ModelCard, outputs: list[Any]) -> int | None:
    """The embedding's length as the graph's output states it (None: a dynamic axis)."""
    name = card.embedding_output or (outputs[0].name if outputs else None)
    dims = next((o.shape for o in outputs if o.name == name), [])
    last = dims[-1] if dims else None
    return last if isinstance(last, int) else None


def normalised(card: ModelCard) -> bool:
    """Whether the served embeddings are unit vectors (pooled by us or in the graph)."""
    in_graph = card.extra.get("embedding", {}) if isinstance(card.extra, dict) else {}
    return bool((card.tokenizer and card.tokenizer.normalize)
                or (isinstance(in_graph, dict) and in_graph.get("normalized")))


def decode_request(body: bytes, plan: TextPlan, served: OpenAIModel) -> EmbeddingRequest:
    """``body`` checked field by field and tokenized (see the module docstring)."""
    req = parse_json(body)
    if not isinstance(req, dict):
        raise refusal("the body must be a JSON object with input and model", None,
                      "invalid_request")
    model = req.get("model")
    if model is None:
        raise refusal(f"model is required: one of {list(served.names)}", "model",
                      "missing_required_parameter")
    if not isinstance(model, str):
        raise refusal(f"model must be a string: one of {list(served.names)}", "model",
                      "invalid_type")
    if model not in served.names:
        raise refusal(f"the model '{model[:100]}' does not exist here; this function serves "
                      f"{list(served.names)}", "model", "model_not_found", 404)
    fmt = req.get("encoding_format")
    if fmt is not None and fmt not in FORMATS:
        raise refusal(f"encoding_format must be float or base64, got {_shown(fmt)}",
                      "encoding_format", "invalid_value")
    user = req.get("user")
    if user is not None and not isinstance(user, str):
        raise refusal("user must be a string", "user", "invalid_type")
    dimensions = _dimensions(req.get("dimensions"), served)
    if "input" not in req:
        raise refusal("input is required: a string or a list of strings", "input",
                      "missing_required_parameter")
    texts, ids = _input(req["input"], served)
    inputs = plan.decode(texts) if texts is not None else token_inputs(ids, plan)
    if inputs.notes:
        i = min(inputs.notes)
        raise refusal(f"input[{i}] is longer than this model's limit of "
                      f"{plan.spec.max_length} tokens; shorten or split it", "input",
                      "context_length_exceeded")
    return EmbeddingRequest(inputs, _token_count(inputs.feeds, plan), model, fmt == "base64",
                            dimensions)


def _shown(value: Any) -> str:
    if type(value) is int:  # any size (orjson writes 64 bits at most): -1.7e308 as read
        return str(value)[:60]
    text = orjson.dumps(value).decode() if value is None or isinstance(
        value, bool | int | float | str) else type(value).__name__
    return text[:60]


def _dimensions(value: Any, served: OpenAIModel) -> int | None:
    """``dimensions`` as given (None: the full width), or the 400 saying why not."""
    width = served.width
    if value is None:
        return None
    if type(value) is float and value.is_integer():  # JSON Schema's integer: 8.0 is one
        value = int(value)
    if type(value) is not int or value < 1:
        raise refusal(f"dimensions must be a positive integer, got {_shown(value)}",
                      "dimensions", "invalid_value")
    if width is not None and value > width:
        raise refusal(f"dimensions {value} is over this model's {width}", "dimensions",
                      "invalid_value")
    if value == width:
        return None
    if not served.shortened:
        raise refusal("this model was not trained for shortened embeddings (its card has no "
                      "shortened_embeddings): dimensions must be left out" +
                      (f" or be {width}" if width else ""), "dimensions",
                      "dimensions_not_supported")
    return value


def _input(value: Any, served: OpenAIModel) -> tuple[list[str] | None, list[list[int]]]:
    """(texts, None) or (None, token id lists), checked; 400 naming the index otherwise."""
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, list):
        raise refusal(f"input must be a string or a list of strings, got {_shown(value)}",
                      "input", "invalid_type")
    if not value:
        raise refusal("input must not be empty", "input", "empty_input")
    if len(value) > served.max_inputs:
        raise refusal(f"input has {len(value)} items; at most {served.max_inputs} are taken "
                      "per request", "input", "too_many_inputs")
    if all(type(v) is str for v in value):
        empty = next((i for i, v in enumerate(value) if not v), None)
        if empty is not None:
            raise refusal(f"input[{empty}] is an empty string", "input", "empty_input")
        return value, []
    ids = [value] if all(type(v) is int for v in value) else value
    if not all(type(seq) is list and seq and all(type(t) is int for t in seq) for seq in ids):
        if served.token_ids and all(type(v) is list for v in value):
            bad = next(i for i, seq in enumerate(value)
                       if not seq or not all(type(t) is int for t in seq))
            raise refusal(f"input[{bad}] must be a non-empty list of token ids (integers)",
                          "input", "invalid_type")
        bad = next(i for i, v in enumerate(value) if type(v) is not str)
        raise refusal(f"input[{bad}] must be a string, got {_shown(value[bad])}", "input",
                      "invalid_type")
    if not served.token_ids:
        raise refusal("input holds token ids; this function takes text: send the strings "
                      "themselves. Ids from another tokenizer (tiktoken: LangChain's "
                      "OpenAIEmbeddings unless check_embedding_ctx_length=False) would be "
                      "read as this model's own and give wrong embeddings. OPENAI_TOKEN_IDS="
                      "true takes ids from the model's own tokenizer.", "input",
                      "token_ids_not_accepted")
    return None, ids


def token_inputs(ids: list[list[int]], plan: TextPlan) -> Inputs:
    """Token id lists (the model's own tokenizer's) as the plan's padded token inputs."""
    encoder, limit = plan.encoder, plan.spec.max_length
    vocab = vocab_size(plan)
    for i, seq in enumerate(ids):
        if len(seq) > limit:
            raise refusal(f"input[{i}] has {len(seq)} tokens, over this model's limit of "
                          f"{limit}", "input", "context_length_exceeded")
        if min(seq) < 0 or max(seq) >= vocab:
            raise refusal(f"input[{i}] holds a token id outside this model's vocabulary of "
                          f"{vocab}", "input", "invalid_value")
    lengths = np.fromiter(map(len, ids), dtype=np.intp, count=len(ids))
    real = np.arange(int(lengths.max()))[None, :] < lengths[:, None]
    matrix = np.full(real.shape, encoder.pad_id, dtype=np.int64)
    matrix[real] = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    values = {"input_ids": matrix, "attention_mask": real, "token_type_ids": np.zeros_like(real)}
    feeds = {name: values[role].astype(dtype) for role, (name, dtype) in encoder.feeds.items()}
    return Inputs(feeds, {}, len(ids), plan=plan)


def vocab_size(plan: TextPlan) -> int:
    """One more than the largest id the tokenizer knows (its vocabulary may skip ids)."""
    return max(plan.encoder.tokenizer.get_vocab(with_added_tokens=True).values()) + 1


def _token_count(feeds: dict[str, np.ndarray], plan: TextPlan) -> int:
    """Real tokens in ``feeds``: the attention mask's ones, or every id but padding."""
    encoder = plan.encoder
    if "attention_mask" in encoder.feeds:
        return int(feeds[encoder.feeds["attention_mask"][0]].sum())
    return int((feeds[encoder.feeds["input_ids"][0]] != encoder.pad_id).sum())


def encode_response(scored: Scored, req: EmbeddingRequest) -> bytes:
    """OpenAI's answer for a request every input of which was scored (strict)."""
    model = scored.model
    assert scored.outputs is not None  # strict: a failure was raised, not answered
    vectors = shape_for(model).columns(scored.outputs, scored.rows).fields["embedding"]
    assert isinstance(vectors, np.ndarray)
    if scored.src is not None:
        vectors = vectors[scored.src]
    if req.dimensions is not None and req.dimensions > vectors.shape[1]:  # a width the
        # graph did not state (a dynamic axis), found only now
        raise refusal(f"dimensions {req.dimensions} is over this model's "
                      f"{vectors.shape[1]}", "dimensions", "invalid_value")
    if req.dimensions is not None:
        vectors = vectors[:, :req.dimensions]
        if normalised(model.card):
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True),
                                        1e-12, None)
    if req.base64:
        raw = np.ascontiguousarray(vectors, dtype="<f4")
        values: Any = [base64.b64encode(row.tobytes()).decode("ascii") for row in raw]
    else:
        values = np.ascontiguousarray(vectors)
    data = [{"object": "embedding", "index": i, "embedding": values[i]}
            for i in range(scored.n)]
    usage = {"prompt_tokens": req.tokens, "total_tokens": req.tokens}
    return orjson.dumps({"object": "list", "data": data, "model": req.model, "usage": usage},
                        option=orjson.OPT_SERIALIZE_NUMPY)
