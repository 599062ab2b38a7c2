"""Models using onnxruntime-extensions' custom operators (domain ai.onnx.contrib) load when
the package is installed, and otherwise fail readiness naming the package (issue 11).

"Not installed" is a real environment: a venv that sees every package of the test venv
except onnxruntime-extensions, serving the function with functions-framework.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.model.onnx_model import OnnxModel
from tests.servers import ROOT


def contrib_model(folder: Path) -> Path:
    """text -> (lower, length) through two ai.onnx.contrib string ops, and its card."""
    graph = helper.make_graph(
        [helper.make_node("StringLower", ["text"], ["lower"], domain="ai.onnx.contrib"),
         helper.make_node("StringLength", ["lower"], ["length"], domain="ai.onnx.contrib")],
        "contrib", [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
        [helper.make_tensor_value_info("lower", TensorProto.STRING, [None]),
         helper.make_tensor_value_info("length", TensorProto.INT64, [None])])
    model = helper.make_model(graph, ir_version=8, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.contrib", 1)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lower.onnx"
    onnx.save(model, path)
    card = {"name": "lower", "version": "1", "task": "classification",
            "inputs": [{"name": "text", "dtype": "str", "shape": [None]}],
            "outputs": [{"name": "lower", "dtype": "str", "shape": [None]},
                        {"name": "length", "dtype": "int64", "shape": [None]}]}
    (folder / "lower.card.json").write_text(json.dumps(card))
    return path


def venv_without(folder: Path, package: str) -> Path:
    """The python of a new venv whose site-packages links every entry of this one's except
    ``package`` (its module and its dist-info): that package is not installed there."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=120)
    here = Path(sysconfig.get_paths()["purelib"])
    python = folder / "bin" / "python"
    there = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                 "print(sysconfig.get_paths()['purelib'])"], check=True,
                                capture_output=True, text=True).stdout.strip())
    for entry in here.iterdir():
        if not entry.name.startswith(package):
            (there / entry.name).symlink_to(entry)
    return python


def test_the_model_loads_and_runs_with_the_package_installed(app, tmp_path: Path) -> None:
    path = contrib_model(tmp_path / "m")
    fn = app({"MODEL_URI": str(path), "REQUIRE_SHA256": "false"})  # waits for /readyz 200
    assert fn.get("/readyz").json()["ready"] is True
    card = ModelCard.from_json((tmp_path / "m" / "lower.card.json").read_text())
    model = OnnxModel(path, card, Settings())
    out = model.run({"text": np.array(["Hello World", "ÀB"], dtype=object)})
    assert out["lower"].tolist() == ["hello world", "àb"]
    assert out["length"].tolist() == [11, 2]
    assert model.custom_ops == ["onnxruntime-extensions"]


def test_the_package_is_not_imported_to_register_its_operators(tmp_path: Path) -> None:
    """Importing onnxruntime_extensions costs seconds (it imports torch and onnx when they
    are installed); its library is registered by path."""
    path = contrib_model(tmp_path / "m")
    code = ("import sys; from pathlib import Path; from functions.config.card import ModelCard; "
            "from functions.model.onnx_model import OnnxModel; "
            "from functions.config.settings import Settings; "
            f"card = ModelCard.from_json(Path({str(path.with_suffix(''))!r} + '.card.json')"
            ".read_text()); "
            f"OnnxModel(Path({str(path)!r}), card, Settings()); "
            "print(sorted(m for m in sys.modules if m.startswith(('onnxruntime_ext', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.fixture(scope="module")
def python_without_extensions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = venv_without(tmp_path_factory.mktemp("venv") / "v", "onnxruntime_extensions")
    probe = subprocess.run([str(python), "-c", "import onnxruntime, onnxruntime_extensions"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert "No module named 'onnxruntime_extensions'" in probe.stderr, probe.stderr
    return python


def test_without_the_package_readiness_names_it(serve, tmp_path: Path,
                                                python_without_extensions: Path) -> None:
    """Over a socket: the subject is a process whose interpreter lacks the package (a venv
    without it), which this process cannot be."""
    path = contrib_model(tmp_path / "m")
    fn = serve({"MODEL_URI": str(path), "REQUIRE_SHA256": "false"}, wait="/healthz",
               python=python_without_extensions)
    ready = fn.get("/readyz")
    for _ in range(400):  # the load runs in the background (a bound for a hang: 20 s)
        if "load failed" in ready.text:
            break
        time.sleep(0.05)
        ready = fn.get("/readyz")
    assert ready.status_code == 503
    reason = ready.json()["reason"]
    assert "onnxruntime-extensions" in reason and "requirements-extensions.txt" in reason
    assert "domain ai.onnx.contrib" in reason
    # the same environment serves a model without custom operators
    demo = serve({}, python=python_without_extensions)
    assert demo.get("/readyz").status_code == 200
