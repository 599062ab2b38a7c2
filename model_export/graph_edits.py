"""Small, checked rewrites of ONNX graphs that the exporters and quantiser need.

- ``add_classifier_head``: logits (or probabilities) -> ``probabilities`` [N, C] float and
  ``label`` [N] int64 (argmax), the outputs a classifier card names.
- ``rename_output``: give a converter's output the name the card uses (``value``).
- ``gemm_to_matmul``: onnxruntime's dynamic quantisation handles MatMul but not Gemm, which
  is what ``torch.onnx`` emits for ``nn.Linear``; Gemm(A, B, C) with constant B and
  alpha = beta = 1 becomes MatMul(A, B') + C, numerically the same.
"""

from __future__ import annotations

from collections import Counter

import onnx
from onnx import TensorProto, helper, numpy_helper


def drop_outputs(model: onnx.ModelProto, names: set[str]) -> None:
    """Remove the graph outputs called ``names`` (the nodes stay; nobody reads them)."""
    kept = [o for o in model.graph.output if o.name not in names]
    del model.graph.output[:]
    model.graph.output.extend(kept)


def _output(model: onnx.ModelProto, name: str) -> onnx.ValueInfoProto:
    for out in model.graph.output:
        if out.name == name:
            return out
    raise KeyError(f"graph has no output {name!r}")


def add_classifier_head(model: onnx.ModelProto, scores: str, softmax: bool) -> None:
    """Replace graph output ``scores`` [N, C] by ``label`` [N] int64 and ``probabilities``.

    ``softmax``: the scores are logits; otherwise they already are probabilities.
    """
    graph = model.graph
    n_classes = _output(model, scores).type.tensor_type.shape.dim[1]
    if softmax:
        graph.node.append(helper.make_node("Softmax", [scores], ["probabilities"], axis=1))
    else:
        graph.node.append(helper.make_node("Identity", [scores], ["probabilities"]))
    graph.node.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
    drop_outputs(model, {scores})
    cols = n_classes.dim_value if n_classes.HasField("dim_value") else None
    graph.output.extend([
        helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", cols]),
    ])


def rename_output(model: onnx.ModelProto, old: str, new: str) -> None:
    """Rename graph output ``old`` to ``new`` everywhere it is produced or consumed."""
    _output(model, old).name = new
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def gemm_to_matmul(model: onnx.ModelProto) -> int:
    """Rewrite quantisable Gemm nodes in place as MatMul (+ Add); returns how many."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    uses = Counter(name for node in graph.node for name in node.input)
    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
                 and not attrs.get("transA", 0))
        if node.op_type != "Gemm" or not plain or uses[node.input[1]] != 1 \
                or node.input[1] not in inits:
            nodes.append(node)
            continue
        weight = inits[node.input[1]]
        if attrs.get("transB", 0):
            array = numpy_helper.to_array(weight).T.copy()
            weight.CopyFrom(numpy_helper.from_array(array, weight.name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = node.output[0] + "_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", node.input[:2], [product], name=node.name))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]],
                                          name=node.name + "_bias"))
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return rewritten


def label_as_index(model: onnx.ModelProto, probabilities: str = "probabilities",
                   label: str = "label") -> None:
    """Make ``label`` the argmax column index of ``probabilities`` (int64 [N]).

    For classifiers whose integer classes are not 0..K-1 the converter's label output holds
    class values; the card's convention (and the server's) is an index into ``labels``.
    """
    rename_output(model, label, label + "_value")
    drop_outputs(model, {label + "_value"})
    model.graph.node.append(
        helper.make_node("ArgMax", [probabilities], [label], axis=1, keepdims=0))
    model.graph.output.insert(0, helper.make_tensor_value_info(label, TensorProto.INT64,
                                                               ["batch"]))


def set_output_dims(model: onnx.ModelProto, name: str, dims: list[int | str]) -> None:
    """Declare output ``name``'s shape: ints are fixed, strings dynamic axis names."""
    shape = _output(model, name).type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        else:
            dim.dim_param = d


def batch_outputs(model: onnx.ModelProto) -> None:
    """Make a fixed first axis of an output the dynamic ``batch`` (LightGBM's converter
    declares its label [1], which onnxruntime warns about on every call with more rows)."""
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_param = "batch"


def dedupe_opsets(model: onnx.ModelProto) -> None:
    """Keep one opset import per domain (the highest); skl2onnx can list one twice, which
    onnxruntime's quantiser rejects."""
    best: dict[str, int] = {}
    for imp in model.opset_import:
        best[imp.domain] = max(best.get(imp.domain, 0), imp.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in best.items())
