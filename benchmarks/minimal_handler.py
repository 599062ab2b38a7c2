"""Baseline: the smallest honest functions-framework ASGI handler for the same model.

What a user writes by hand: load the session at import, parse the JSON body with
Starlette, call the session, return the probabilities. No validation, no dedupe, no
readiness, no error contract. Serve with:

    MODEL_PATH=models/iris.onnx functions-framework --target predict \
        --source benchmarks/minimal_handler.py --asgi
"""

import os

import functions_framework.aio
import numpy as np
import onnxruntime as ort
from starlette.responses import JSONResponse

session = ort.InferenceSession(os.environ.get("MODEL_PATH", "models/iris.onnx"),
                               providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name


@functions_framework.aio.http
async def predict(request):
    body = await request.json()
    x = np.asarray(body["instances"], dtype=np.float32)
    label, probs = session.run(None, {input_name: x})
    return JSONResponse({"predictions": probs.tolist()})
