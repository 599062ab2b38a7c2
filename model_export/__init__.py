"""model_export: from a trained model to a verified ONNX artifact with its model card.

Subcommands (``python -m model_export COMMAND --help``):

    sklearn   joblib/pickle estimator or Pipeline -> ONNX + card (skl2onnx), verified;
              text pipelines (string input) and LightGBM/XGBoost estimators included
    gbdt      native LightGBM / XGBoost booster -> ONNX + card (onnxmltools), verified
    hf        local Hugging Face text model -> ONNX + tokenizer + card, verified offline
    torch     nn.Module (state dict + class, TorchScript, ExportedProgram) -> ONNX + card;
              several inputs with --input NAME:DTYPE:SHAPE[:LOW..HIGH]
    verify    parity of an ONNX model against its source model; report into the card
    optimize  onnxruntime graph optimisations applied offline; session-creation times
    quantize  dynamic int8 variant; size, latency, accuracy change; refused over budget
    prune     magnitude pruning of a PyTorch model, then export; sparsity and accuracy
    publish   upload model + card (+ tokenizer) to gs:// or s3:// as NAME/VERSION/, never
              overwriting
    demo      rebuild the bundled iris model in models/ from scratch

The card schema is ``functions.card.ModelCard``, shared with the serving function.
Expected failures raise ``model_export.errors.ExportError`` subclasses (exit codes 1-7).
"""
