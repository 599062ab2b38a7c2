"""functions/events/object_names.py: names built from outside input stay under their prefix,
never collide, and fit the 1,024-byte limit of GCS and S3, the same every time."""

from __future__ import annotations

import posixpath

from hypothesis import given
from hypothesis import strategies as st

from functions.events.object_names import MAX_NAME_BYTES, escape_path, id_name, object_name

_segment = st.text(alphabet=st.sampled_from(["a", "é", " ", "+", "%", ".", "2", "E", "/"]),
                   max_size=12)


@given(_segment, _segment)
def test_escaping_is_injective_and_never_climbs(a: str, b: str) -> None:
    if a != b:
        assert escape_path(a) != escape_path(b)
    name = object_name("outputs/", a, ".1.jsonl")
    normalised = posixpath.normpath("/" + name)
    assert normalised.startswith("/outputs/") and "//" not in name


@given(st.text(min_size=1, max_size=3000))
def test_long_names_fit_and_stay_unique(rel: str) -> None:
    name = object_name("outputs/", rel, ".123.errors.jsonl")
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name.startswith("outputs/") and name.endswith(".123.errors.jsonl")
    assert name == object_name("outputs/", rel, ".123.errors.jsonl")  # reproducible
    assert name != object_name("outputs/", rel + "x", ".123.errors.jsonl")


def test_ids_are_one_segment() -> None:
    assert id_name("p/", "a/../b", ".json") == "p/a%2F..%2Fb.json"
    assert id_name("p/", "..", ".json") == "p/%2E%2E.json"
    assert id_name("p/", "a%2Fb", ".json") != id_name("p/", "a/b", ".json")
