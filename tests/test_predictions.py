"""Float32 outputs are written with the fewest digits that read back as the same float32."""

import numpy as np

from functions.codecs.predictions import float_values


def test_float32_round_trips_exactly_with_short_decimals() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.dirichlet([1, 1, 1], 500).ravel(),
                             rng.normal(scale=1e6, size=200), [0.0, -0.0, 1e-30, 6.2037806e-08,
                                                               np.inf, -np.inf, 3.4e38]])
    values = values.astype(np.float32)
    short = float_values(values)
    assert np.array_equal(np.array(short, dtype=np.float32), values)
    # powers of ten are exact up to 1e22: within that range every value is short
    assert max(len(repr(v)) for v in short if 1e-12 < abs(v) < 1e12) <= 16


def test_nan_and_float64_pass_through() -> None:
    assert np.isnan(float_values(np.array([np.nan], dtype=np.float32))[0])
    assert float_values(np.array([0.1 + 0.2])) == [0.1 + 0.2]


def test_a_classifier_answers_the_same_whatever_its_graph_declares() -> None:
    """What the graph declares of a classifier's outputs (integer labels, float32
    probabilities of a known width) only spares the answer its questions to the arrays:
    rows are the same as without the declaration, for one row, a few and many (past the
    short-decimal limit), and for 70 classes (one row already past it)."""
    from functions.codecs.predictions import shape_of
    from functions.config.card import ModelCard, TensorSpec

    rng = np.random.default_rng(7)
    for classes in (3, 70):
        labels = [f"c{i}" for i in range(classes)]
        card = ModelCard(name="m", version="1", task="classification", labels=labels,
                         label_output="label", probability_output="probabilities")
        specs = [TensorSpec(name="label", dtype="int64", shape=[None]),
                 TensorSpec(name="probabilities", dtype="float32", shape=[None, classes])]
        declared, plain = shape_of(card, {}, specs), shape_of(card, {})
        assert declared.indexes and declared.width == classes  # the declaration was read
        for n in (1, 4, 30):
            probs = rng.dirichlet(np.ones(classes), n).astype(np.float32)
            outputs = {"label": probs.argmax(axis=1).astype(np.int64), "probabilities": probs}
            assert declared.rows(outputs, n) == plain.rows(outputs, n)
