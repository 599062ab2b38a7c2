"""Baseline: the handler a good engineer writes in 20 lines, tuned.

functions-framework's ASGI path (uvicorn with uvloop and httptools when installed, as our
runtime pins them), the session built once at import with one intra-op thread and no idle
spinning, orjson in and out, the probabilities as one array per row. No validation, no
error contract, no readiness, no metrics. Serve with:

    MODEL_PATH=models/iris.onnx functions-framework --target predict \\
        --source benchmarks/tuned_handler.py --asgi
"""

import os

import functions_framework.aio
import numpy as np
import onnxruntime as ort
import orjson
from starlette.responses import Response

opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
session = ort.InferenceSession(os.environ.get("MODEL_PATH", "models/iris.onnx"), opts,
                               providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name


@functions_framework.aio.http
async def predict(request):
    body = orjson.loads(await request.body())
    x = np.asarray(body["instances"], dtype=np.float32)
    _, probs = session.run(None, {input_name: x})
    return Response(orjson.dumps({"predictions": probs}, option=orjson.OPT_SERIALIZE_NUMPY),
                    media_type="application/json")
