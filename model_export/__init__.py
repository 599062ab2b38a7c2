"""model_export: from a trained scikit-learn or PyTorch model to a verified ONNX artifact.

Subcommands (``python -m model_export COMMAND --help``):

    sklearn   joblib/pickle estimator or Pipeline -> ONNX + card (skl2onnx), verified
    torch     nn.Module (state dict + class, TorchScript, ExportedProgram) -> ONNX + card
    verify    parity of an ONNX model against its source model; report into the card
    optimize  onnxruntime graph optimisations applied offline; session-creation times
    quantize  dynamic int8 variant; size, latency, accuracy change; refused over budget
    prune     magnitude pruning of a PyTorch model, then export; sparsity and accuracy
    publish   upload model + card to gs:// or s3:// as NAME/VERSION/, never overwriting
    demo      rebuild the bundled iris model in models/ from scratch

The card schema is ``functions.card.ModelCard``, shared with the serving function.
Expected failures raise ``model_export.errors.ExportError`` subclasses (exit codes 1-7).
"""
