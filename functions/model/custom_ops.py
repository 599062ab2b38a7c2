"""Custom operator libraries a graph needs, registered before its session is built.

onnxruntime-extensions (operator domain ``ai.onnx.contrib``: string ops, in-graph
tokenizers, audio and image decoders) is an optional dependency, installed with
``pip install -r requirements-extensions.txt``. Its library is located without importing the
Python package: that import pulls in torch and onnx when they are installed (~1.7 s here),
whereas registering the library with a session costs ~2 ms. A model that needs the package
where it is missing fails its load (readiness 503) with a message naming the package and the
requirements file, instead of onnxruntime's "not a registered function/op".
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import onnxruntime as ort

from functions.errors import ModelLoadError
from functions.model.opset_domains import NotOnnx, opset_domains

EXTENSIONS_DOMAIN = "ai.onnx.contrib"
EXTENSIONS_PACKAGE = "onnxruntime-extensions"
EXTENSIONS_REQUIREMENTS = "requirements-extensions.txt"


def extensions_library() -> str | None:
    """Path of onnxruntime-extensions' operator library, or None when it is not installed
    (found on the import path without running the package's ``__init__``)."""
    spec = importlib.util.find_spec("onnxruntime_extensions")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = importlib.machinery.PathFinder.find_spec(
        "_extensions_pydll", list(spec.submodule_search_locations))
    return lib.origin if lib is not None and lib.origin else None


def register_custom_ops(options: ort.SessionOptions, model: Path) -> list[str]:
    """Register on ``options`` the operator libraries the model at ``model`` imports;
    returns their names. ModelLoadError when one is needed and not installed."""
    try:
        domains = opset_domains(model)
    except NotOnnx:  # let onnxruntime say what is wrong with the file
        return []
    if EXTENSIONS_DOMAIN not in domains:
        return []
    library = extensions_library()
    if library is None:
        raise ModelLoadError(
            f"{model.name} uses custom operators of {EXTENSIONS_PACKAGE} (domain "
            f"{EXTENSIONS_DOMAIN}), which is not installed: pip install -r "
            f"{EXTENSIONS_REQUIREMENTS}")
    options.register_custom_ops_library(library)
    return [EXTENSIONS_PACKAGE]
