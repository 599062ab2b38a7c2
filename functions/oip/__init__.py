"""The Open Inference Protocol (KServe v2 / Triton REST) under /v2.

    routes.py        the /v2 routes and the protocol's error shape
    payloads.py      request bytes -> feeds (checked against the signature), outputs -> body
    tensors.py       v2 datatypes <-> numpy, JSON ``data`` and binary tensor data
    inference.py     feeds through the same core as /predict (NaN policy, dedupe, runner)
"""

from functions.oip.routes import oip_routes

__all__ = ["oip_routes"]
