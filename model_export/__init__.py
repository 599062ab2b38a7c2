"""model_export: from a trained model to a verified ONNX artifact with its model card.

Subcommands (``python -m model_export COMMAND --help``), each the module of its name:

    sources/  a model in its framework -> ONNX + card, verified against the source
      sklearn   joblib/pickle estimator or Pipeline (skl2onnx); text pipelines (string
                input) and LightGBM/XGBoost estimators included
      torch     nn.Module (state dict + class, TorchScript, ExportedProgram); several
                inputs with --input NAME:DTYPE:SHAPE[:LOW..HIGH]
      gbdt      native LightGBM / XGBoost booster (onnxmltools)
      hf        local Hugging Face text model -> ONNX + tokenizer, verified offline
      demo      rebuild the bundled iris model in models/ from scratch
    steps/    an operation on an exported model (its card beside it)
      verify    parity of an ONNX model against its source model; report into the card
      optimize  onnxruntime graph optimisations applied offline; session-creation times
      quantize  dynamic int8 variant; size, latency, accuracy change; refused over budget
      prune     magnitude pruning of a PyTorch model, then export; sparsity and accuracy
      publish   upload model + card (+ tokenizer) to gs:// or s3:// as NAME/VERSION/,
                never overwriting

Beside them: ``checks/`` (parity, the source check, accuracy budgets, onnxruntime runs
and timings), ``samples/`` (the rows a check runs: files, draws from the card, the
tokenizer file), and at the top the CLI (``cli.main(argv)`` returns the exit code), the
shared options, the card files, graph edits, progress and ``exit_codes``.

Why grouped this way: a user arrives with a model of one framework and then runs steps
that do not care which framework it came from, so the tree follows that split. A new
framework is one converter and one subcommand in ``sources/``; a new operation is one
module in ``steps/``; neither touches the other. Framework imports (torch, transformers,
skl2onnx) stay inside ``sources/`` and the steps that need them, so ``--help`` and the
framework-free steps start without them.

The card schema is ``functions.config.card.ModelCard``, shared with the serving function;
model_export imports from ``functions``, never the reverse, and is not deployed with it
(deploy/gcloudignore). Expected failures raise ``exit_codes.ExportError`` subclasses
(exit codes 1-7); anything else is a bug and keeps its traceback.
"""
