"""Helpers for the model_export tests: run the real CLI in process, write row files, check
served answers."""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from tests.inprocess import InProcess, environment, forget_clients
from tests.servers import Served

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_LABELS = ["setosa", "versicolor", "virginica"]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m model_export ARGS`` run in this process: ``model_export.cli.main(argv)``
    with stdout and stderr captured and ``env`` applied for the call (SDK clients made
    afresh from it, as a new process would); an argparse exit (a usage error) counts as
    the exit code, as it would for the process."""
    from model_export.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with environment(env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        forget_clients()
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            forget_clients()
    return subprocess.CompletedProcess(["python", "-m", "model_export", *argv], code,
                                       out.getvalue(), err.getvalue())


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """stdout of a run that must have succeeded (its output shown if not)."""
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def fails(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """stderr of a run that must have failed with ``code``, one clean line, no traceback."""
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not in:\n{proc.stderr}"
    return proc.stderr


def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


def write_csv(path: Path, X: np.ndarray, y: np.ndarray | None = None,
              names: list[str] = IRIS_FEATURES) -> Path:
    """Rows with a header; ``species`` column (label names) when ``y`` is given."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(names + (["species"] if y is not None else []))
        for i, row in enumerate(X.tolist()):
            out.writerow(row + ([IRIS_LABELS[int(y[i])]] if y is not None else []))
    return path


def served_predictions(served: InProcess | Served, X: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(labels, probabilities [N, C] in IRIS_LABELS order) answered by POST /predict."""
    resp = served.post("/predict", json={"instances": X.tolist()})
    assert resp.status_code == 200, resp.text
    preds: list[dict[str, Any]] = resp.json()["predictions"]
    labels = [p["label"] for p in preds]
    probs = np.array([[p["probabilities"][name] for name in IRIS_LABELS] for p in preds])
    return labels, probs


def create_s3_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)


def v2_infer(served: InProcess | Served, model: str,
             feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs (name -> array) answered by POST /v2/models/MODEL/infer for ``feeds``."""
    datatypes = {"i": "INT64", "f": "FP32", "O": "BYTES", "U": "BYTES"}
    inputs = [{"name": name, "datatype": datatypes[value.dtype.kind],
               "shape": list(value.shape), "data": value.ravel().tolist()}
              for name, value in feeds.items()]
    resp = served.post(f"/v2/models/{model}/infer", json={"inputs": inputs})
    assert resp.status_code == 200, resp.text
    return {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in resp.json()["outputs"]}
