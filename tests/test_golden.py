"""Every answer of the golden corpus (tests/golden/corpus.py) is the same, byte for byte.

The corpus holds status, content type and body for every route x model kind x error case,
and a scored Pub/Sub message's objects. A change of behaviour on purpose is made by
re-recording (``python -m tests.golden.corpus``) in the same commit, so the diff of
tests/golden/corpus.json shows exactly what changed for users.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.built_models import BuiltModels
from tests.golden.corpus import CORPUS, collect


def test_every_answer_is_the_recorded_one(tmp_path: Path, built_model: BuiltModels) -> None:
    want = json.loads(CORPUS.read_text())
    got = json.loads(json.dumps(collect(tmp_path, built_model)))
    assert sorted(got) == sorted(want)
    changed = [name for name in want if got[name] != want[name]]
    assert not changed, "\n".join(f"{n}:\n  was {want[n]}\n  now {got[n]}"[:1500]
                                  for n in changed[:10])
