"""On a platform the function logs JSON lines with a severity; locally, short text.

Over a socket: the subject is what a served process writes to its stdout/stderr, and the
package configures its own log handler only where the host has none (pytest has one)."""

import json

from tests.servers import Served


def test_json_log_lines_on_cloud_run(serve) -> None:
    fn: Served = serve({"K_SERVICE": "onnx-predict"})
    fn.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
    entries = [json.loads(line) for line in fn.log().splitlines() if line.startswith("{")]
    ready = [e for e in entries if e["message"].startswith("model ready")]
    assert ready and ready[0]["severity"] == "INFO"
    assert ready[0]["logger"] == "functions.loading.holder"


def test_text_log_lines_locally(serve) -> None:
    fn: Served = serve({"LOG_FORMAT": "text"})
    assert "INFO functions.loading.holder: model ready" in fn.log()
