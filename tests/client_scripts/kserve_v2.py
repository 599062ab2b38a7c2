"""Run by the kserve client venv's python (tests/test_kserve_client.py): the KServe SDK's
InferenceRESTClient (protocol v2) against the function at argv[1]. Prints one JSON object
of what the SDK returned; rows to score are argv[2] (a JSON list of lists)."""

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


async def main(url: str, rows: np.ndarray) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    try:
        found = {"live": await client.is_server_live(url),
                 "ready": await client.is_server_ready(url),
                 "model_ready": await client.is_model_ready(url, "iris"),
                 "other_model_ready": await client.is_model_ready(url, "nope")}
        for binary in (False, True):
            tensor = InferInput("input", list(rows.shape), "FP32")
            tensor.set_data_from_numpy(rows, binary_data=binary)
            wanted = [RequestedOutput("probabilities", {"binary_data": binary})]
            request = InferRequest("iris", [tensor], request_id=f"kserve-{binary}",
                                   request_outputs=wanted)
            response = await client.infer(url, request, model_name="iris")
            found["binary" if binary else "json"] = {
                "id": response.id, "names": [o.name for o in response.outputs],
                "probabilities": response.outputs[0].as_numpy().tolist()}
        return found
    finally:
        await client.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], np.array(json.loads(sys.argv[2]),
                                                            dtype=np.float32)))))
