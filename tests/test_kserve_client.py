"""The KServe Python SDK (InferenceRESTClient, protocol v2) drives the function served by
functions-framework, unchanged, from its own venv (``make clients``): health, model
readiness, JSON and binary inference."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import onnxruntime as ort

from tests.client_venvs import client_bin
from tests.conftest import DEMO_MODEL
from tests.servers import ROOT, Served

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def test_kserve_sdk_reads_health_and_infers(demo_function: Served) -> None:
    done = subprocess.run([str(client_bin("kserve")), str(ROOT / "tests" / "client_scripts" /
                                                         "kserve_v2.py"),
                           demo_function.url, json.dumps(ROWS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["live"] is True and found["ready"] is True
    assert found["model_ready"] is True and found["other_model_ready"] is False
    session = ort.InferenceSession(str(DEMO_MODEL), providers=["CPUExecutionProvider"])
    expected = session.run(["probabilities"],
                           {"input": np.array(ROWS, dtype=np.float32)})[0]
    for form in ("json", "binary"):
        answer = found[form]
        assert answer["id"] == f"kserve-{form == 'binary'}"
        assert answer["names"] == ["probabilities"]
        np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-6)


def test_health_bodies_are_kserves(demo_app) -> None:
    """The bodies themselves, as KServe's server answers them (tritonclient ignores them)."""
    assert demo_app.get("/v2/health/live").json() == {"live": True}
    assert demo_app.get("/v2/health/ready").json() == {"ready": True}
    assert demo_app.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert demo_app.get("/v2/models/iris/versions/1/ready").json() == {"name": "iris",
                                                                       "ready": True}
