"""Peer: LitServe serving the same model (one CPU worker, its own HTTP server).

    MODEL_PATH=models/iris.onnx python -m benchmarks.peers.litserve_app 8000
"""

import os
import sys

import litserve as ls
import numpy as np
import onnxruntime as ort


class IrisAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.session = ort.InferenceSession(os.environ.get("MODEL_PATH", "models/iris.onnx"),
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def decode_request(self, request: dict) -> np.ndarray:
        return np.asarray(request["instances"], dtype=np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[1]

    def encode_response(self, output: np.ndarray) -> dict:
        return {"predictions": output.tolist()}


if __name__ == "__main__":
    ls.LitServer(IrisAPI(), accelerator="cpu", workers_per_device=1).run(
        port=int(sys.argv[1]), generate_client_file=False)
