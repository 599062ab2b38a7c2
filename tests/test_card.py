"""The model card refuses values that would escape the cache directory or a bucket prefix."""

import json

import pytest
from pydantic import ValidationError

from functions.card import ModelCard
from tests.conftest import DEMO_CARD


@pytest.mark.parametrize("field, value", [
    ("name", "../../etc/passwd"), ("name", ""), ("version", "1/../2"), ("version", ".hidden"),
    ("sha256", "../" + "a" * 61), ("sha256", "A" * 64), ("sha256", "abc"),
])
def test_unsafe_names_are_refused(field: str, value: str) -> None:
    card = json.loads(DEMO_CARD.read_text())
    card[field] = value
    with pytest.raises(ValidationError, match=field):
        ModelCard.from_json(json.dumps(card))


def test_the_bundled_card_is_valid() -> None:
    card = ModelCard.from_json(DEMO_CARD.read_bytes())
    assert (card.name, card.version, len(card.sha256 or "")) == ("iris", "1", 64)
