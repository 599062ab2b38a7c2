"""A trained model in its own framework -> ONNX + card, verified against that model.

Per framework, the subcommand is the module of its name (``sklearn``, ``torch``, ``gbdt``,
``hf``, and ``demo``, which rebuilds the bundled iris model the ``sklearn`` way) and the
conversion is ``<framework>_convert`` (plus ``torch_files``/``hf_files`` where loading a
model is a job of its own). Each converter offers a source model (``SklearnSource``,
``TorchSource``, ``BoosterSource``) that answers with the graph's output names, for
``checks.source_check``. Every export ends in ``write_and_verify``.
"""
