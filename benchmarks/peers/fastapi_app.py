"""Peer: the FastAPI service people write first (and the shape this project started from).

A pydantic request model, onnxruntime's default session, ``tolist()`` back; served by
uvicorn with the same uvloop and httptools as the function. Serve with:

    MODEL_PATH=models/iris.onnx uvicorn benchmarks.peers.fastapi_app:app --port 8000
"""

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
session = ort.InferenceSession(os.environ.get("MODEL_PATH", "models/iris.onnx"),
                               providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name


class PredictRequest(BaseModel):
    instances: list[list[float]]


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    x = np.asarray(request.instances, dtype=np.float32)
    _, probs = session.run(None, {input_name: x})
    return {"predictions": probs.tolist()}
