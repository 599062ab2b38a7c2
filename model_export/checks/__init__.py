"""Whether an exported model answers what it should.

``parity`` compares two sets of outputs within a tolerance; ``source_check`` runs the
source model and the ONNX model on the same rows and records the report in the card;
``budget`` is the accuracy budget a quantised or pruned variant must meet; ``onnx_runs``
runs and times ONNX graphs with the serving side's session options.
"""
