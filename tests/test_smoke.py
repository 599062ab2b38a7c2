"""The bundled model served over real HTTP answers the documented routes."""

from tests.servers import Served


def test_demo_model_answers_a_prediction(demo_function: Served) -> None:
    resp = demo_function.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert resp.status_code == 200, resp.text
    pred = resp.json()["predictions"][0]
    assert pred["label"] == "setosa"
    assert set(pred["probabilities"]) == {"setosa", "versicolor", "virginica"}
