"""PyTorch modules to ONNX with ``torch.onnx.export`` (TorchScript exporter, offline).

The graph takes the declared inputs (``declared_inputs.DeclaredInput``: by default one float32
``input`` [N, ...]), each with a dynamic batch axis (and any named dynamic axes), in the
order of the module's ``forward`` arguments. Classifiers get a head appended to the graph:
``probabilities`` [N, C] (softmax of the logits, or the module's own probabilities with
``head="probabilities"``) and ``label`` [N] int64 (argmax, an index into the card's
labels). Regressors answer ``value``, embedding models ``embedding``.

The TorchScript-based exporter (``dynamo=False``) is used because it needs nothing beyond
torch and handles nn.Module, TorchScript and unlifted ExportedProgram modules alike. It
traces: Python control flow that depends on the data is frozen at the traced branch,
which is exactly what ``verify`` exists to catch.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import onnx

from functions.config.card import ModelCard
from model_export import card_files, graph_edits
from model_export.exit_codes import InputError, UnsupportedModel
from model_export.sources.declared_inputs import DeclaredInput, dummy
from model_export.sources.torch_files import LoadedModule

HEADS = ("softmax", "probabilities")
RAW_OUTPUT = {"regression": "value", "embedding": "embedding", "classification": "scores"}


class TorchSource:
    """The module answering with the ONNX graph's output names (see ``verify``); its
    ``forward`` takes ``input_names`` in that order."""

    def __init__(self, loaded: LoadedModule, task: str, head: str = "softmax",
                 input_names: list[str] | None = None, description: str | None = None) -> None:
        import torch

        self.loaded, self.task, self.head = loaded, task, head
        self.input_names = input_names or ["input"]
        self.description = description or (f"torch {torch.__version__} "
                                           f"{type(loaded.module).__name__}")
        if loaded.kind != "exported_program":  # unlifted programs refuse train()/eval()
            loaded.module.eval()

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.input_names]
        try:
            with torch.no_grad():
                out = self.loaded.module(*args)
        except (TypeError, RuntimeError, IndexError, ValueError) as exc:
            raise InputError(f"the torch module cannot run the rows given for inputs "
                             f"{', '.join(self.input_names)}: {exc}") from exc
        out = (out[0] if isinstance(out, (tuple, list)) else out).detach()
        if self.task != "classification":
            return {RAW_OUTPUT[self.task]: out.numpy()}
        probs = torch.softmax(out, dim=1) if self.head == "softmax" else out
        return {"label": probs.argmax(dim=1).numpy(), "probabilities": probs.numpy()}


def export(source: TorchSource, specs: list[DeclaredInput], opset: int, name: str,
           trace_feeds: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """Trace ``source``'s module on ``trace_feeds``, or a small batch drawn from ``specs``
    (their dtypes and ranges), and build the graph described above."""
    import torch

    scores = RAW_OUTPUT[source.task]
    feeds = trace_feeds or dummy(specs)
    trace = tuple(torch.from_numpy(feeds[s.name]) for s in specs)
    axes = {s.name: s.dynamic_axes() for s in specs}
    buffer = io.BytesIO()
    # unlifted ExportedPrograms refuse train(False); they were exported in their own mode
    mode = (torch.onnx.TrainingMode.PRESERVE if source.loaded.kind == "exported_program"
            else torch.onnx.TrainingMode.EVAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "legacy exporter": chosen
            warnings.filterwarnings("ignore", message="It is recommended that constant folding")
            warnings.filterwarnings("ignore", message="no signature found")  # TorchScript
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # verify's job
            warnings.filterwarnings("ignore", message="Exporting aten::index")
            torch.onnx.export(
                source.loaded.module, trace, buffer, dynamo=False,
                training=mode, opset_version=opset,
                input_names=[s.name for s in specs], output_names=[scores],
                dynamic_axes={**axes, scores: {0: "batch"}},
            )
    except Exception as exc:  # exporter errors have no common base; say what failed
        raise UnsupportedModel(f"torch.onnx could not export "
                               f"{type(source.loaded.module).__name__}: {exc}") from exc
    proto = onnx.load_from_string(buffer.getvalue())
    # only the first output is served
    graph_edits.drop_outputs(proto, {o.name for o in proto.graph.output} - {scores})
    if source.task == "classification":
        graph_edits.add_classifier_head(proto, scores, softmax=source.head == "softmax")
    proto.graph.name = name
    return proto


def n_classes(proto: onnx.ModelProto) -> int | None:
    """Columns of the ``probabilities`` output, when static."""
    for out in proto.graph.output:
        if out.name == "probabilities":
            dim = out.type.tensor_type.shape.dim[1]
            return dim.dim_value if dim.HasField("dim_value") else None
    return None


def make_card(source: TorchSource, proto: onnx.ModelProto, name: str, version: str,
              feature_names: list[str], labels: list[str] | None,
              description: str | None) -> ModelCard:
    """Card fields from the module and graph (signature and sha come on write)."""
    import torch

    classifier = source.task == "classification"
    width = n_classes(proto)
    if classifier and not labels:
        labels = [f"class_{i}" for i in range(width or 0)]
    if classifier and labels and width and len(labels) != width:
        raise InputError(f"{len(labels)} labels given for a model with {width} outputs")
    converter = {"name": "torch.onnx", "version": torch.__version__, "exporter": "torchscript",
                 "source_kind": source.loaded.kind, "head": source.head,
                 "input_order": ",".join(source.input_names)}
    extra: dict[str, Any] = {}
    if classifier:
        extra = {"labels": labels, "label_output": "label", "probability_output": "probabilities",
                 "output_meaning": "label: index into labels (argmax); probabilities: "
                                   + ("softmax of the logits" if source.head == "softmax"
                                      else "the module's own probabilities")}
    else:
        extra = {"value_output": "value", "output_meaning": "value: the module's output"}
    return ModelCard(name=name, version=version, description=description,
                     created_at=card_files.now_iso(), task=source.task,
                     framework=card_files.dist("torch"), converter=converter,
                     feature_names=feature_names, **extra)
