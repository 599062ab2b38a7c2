"""The model and how it is called; nothing here knows HTTP, JSON or events.

    onnx_model.py   OnnxModel: an onnxruntime session plus its signature (runs arrays)
    sessions.py     session options and execution providers (serving and model_export)
    graph_check.py  the card checked against the graph at load; spec comparison
    custom_ops.py   custom operator libraries a graph needs (onnxruntime-extensions)
    opset_domains.py  the operator domains a model file imports, read without loading it
    runner.py       ModelRunner: inline or in a thread, alone or merged; Runners
    cost.py         the cost curve (fixed + per row), measured and kept current
    batcher.py      Batcher: concurrent requests merged into one call, split by offsets
    merging.py      merged requests' feeds concatenated (re-padded), outputs split back
    cuts.py         the memory budget of one call; rows cut to fit it, token rows by length
    lanes.py        Lanes: merges' cuts two calls at once, the next merge's as one frees
    isolation.py    items the model itself refuses, isolated by bisection, input named
    finite.py       which rows of the outputs are NaN or infinite (never answered)
"""

from functions.model.onnx_model import OnnxModel, RowInput
from functions.model.runner import ModelRunner, Runners

__all__ = ["ModelRunner", "OnnxModel", "RowInput", "Runners"]
