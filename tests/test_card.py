"""The model card refuses values that would escape the cache directory or a bucket prefix."""

import json

import msgspec
import pytest

from functions.config.card import ModelCard
from tests.conftest import DEMO_CARD


@pytest.mark.parametrize("field, value", [
    ("name", "../../etc/passwd"), ("name", ""), ("version", "1/../2"), ("version", ".hidden"),
    ("sha256", "../" + "a" * 61), ("sha256", "A" * 64), ("sha256", "abc"),
])
def test_unsafe_names_are_refused(field: str, value: str) -> None:
    card = json.loads(DEMO_CARD.read_text())
    card[field] = value
    with pytest.raises(msgspec.ValidationError, match=field):
        ModelCard.from_json(json.dumps(card))


def test_the_bundled_card_is_valid() -> None:
    card = ModelCard.from_json(DEMO_CARD.read_bytes())
    assert (card.name, card.version, len(card.sha256 or "")) == ("iris", "1", 64)


@pytest.mark.parametrize("change, field", [
    ({"task": "translation"}, "task"),
    ({"tokenizer": {"file": "../t.json"}}, "tokenizer.file"),
    ({"tokenizer": {"pooling": "max"}}, "tokenizer.pooling"),
    ({"inputs": [{"name": "x"}]}, "inputs"),
])
def test_literals_and_nested_patterns_are_enforced(change: dict, field: str) -> None:
    card = json.loads(DEMO_CARD.read_text()) | change
    with pytest.raises(msgspec.ValidationError, match=field):
        ModelCard.from_json(json.dumps(card))


def test_unknown_keys_are_kept_on_rewrite() -> None:
    """An older function reads a newer exporter's card; a read-modify-write keeps them."""
    card = json.loads(DEMO_CARD.read_text()) | {
        "newer": {"a": [1, None]}, "extra": "a key of that name too",
        "tokenizer": {"file": "t.json", "pad_token_id": 0},
        "lookups": [{"key_field": "u", "url_template": "u/{key}", "features": {}, "x": 1}]}
    read = ModelCard.from_json(json.dumps(card).encode())
    assert read.extra == {"newer": {"a": [1, None]}, "extra": "a key of that name too"}
    changed = msgspec.structs.replace(read, version="2")
    written = json.loads(changed.to_json())
    assert (written["version"], written["newer"], written["extra"]) == (
        "2", {"a": [1, None]}, "a key of that name too")
    assert (written["tokenizer"]["pad_token_id"], written["lookups"][0]["x"]) == (0, 1)
    assert ModelCard.from_json(changed.to_json()).to_json() == changed.to_json()
