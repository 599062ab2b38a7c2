"""The Open Inference Protocol (KServe v2 / Triton REST) under /v2.

    routes.py        the /v2 routes and the protocol's error shape

Its wire format is a codec like any other: functions.codecs.v2 (request and response
bodies) and functions.codecs.v2_tensors (datatypes, JSON and binary tensor data); the
decoded tensors go through the same service as /predict (dedupe, runner, metrics).
"""

from functions.oip.routes import oip_routes

__all__ = ["oip_routes"]
