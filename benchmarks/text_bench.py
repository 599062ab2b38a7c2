"""Text models: all-MiniLM-L6-v2 served through /predict vs the same model in-process.

    .venv/bin/python -m benchmarks.text_bench [--seconds 10] [--rounds 3]

The baseline is the best a good engineer does with the same tools and no server: the same
``tokenizers`` tokenizer (dynamic padding), one onnxruntime session with the function's own
session options, numpy mean pooling and L2 normalisation, one sentence per call in a tight
loop. The function is driven by wrk, one sentence per request, at 1 and 16 connections
(production server: functions-framework's command line, gunicorn + uvicorn worker).
Reported: sentences/s of each and the ratio function / in-process, median of interleaved
rounds. The export is done once into benchmarks/results/minilm/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.harness import RESULTS, ROOT, median, save, spawn, stop, wait_ready, wrk

SENTENCE = "Serverless inference should cold-start fast and cost little per prediction."


def exported() -> object:
    from tests import minilm

    folder = RESULTS / "minilm"
    path = folder / "model.onnx"
    return path if path.exists() else minilm.export(folder)


def in_process_rate(model_path, seconds: float) -> float:  # noqa: ANN001
    """Sentences/s of tokenizer + session.run + pooling, one sentence per call."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from functions.config.settings import Settings
    from functions.model.sessions import session_options

    tok = Tokenizer.from_file(str(model_path.parent / "tokenizer.json"))
    tok.enable_truncation(256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    session = ort.InferenceSession(str(model_path), session_options(Settings()),
                                   providers=["CPUExecutionProvider"])

    def embed(text: str) -> np.ndarray:
        enc = tok.encode_batch([text])
        feeds = {"input_ids": np.asarray([e.ids for e in enc], dtype=np.int64),
                 "attention_mask": np.asarray([e.attention_mask for e in enc], dtype=np.int64),
                 "token_type_ids": np.asarray([e.type_ids for e in enc], dtype=np.int64)}
        hidden = session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)

    embed(SENTENCE)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        embed(SENTENCE)
        n += 1
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    path = exported()
    body = json.dumps({"instances": [SENTENCE]}).encode()
    proc, url = spawn(str(ROOT / "main.py"), {"MODEL_URI": str(path)})
    rates: dict[str, list[float]] = {"in_process": [], "predict_c1": [], "predict_c16": []}
    try:
        wait_ready(url + "/predict", proc, body)
        for _ in range(args.rounds):
            rates["predict_c1"].append(wrk(url + "/predict", body, args.seconds, 1))
            rates["predict_c16"].append(wrk(url + "/predict", body, args.seconds, 16))
            rates["in_process"].append(in_process_rate(path, args.seconds))
    finally:
        stop(proc)
    result = {name: round(median(v), 1) for name, v in rates.items()}
    for c in ("c1", "c16"):
        ratios = [p / b for p, b in zip(rates[f"predict_{c}"], rates["in_process"])]
        result[f"ratio_{c}"] = round(median(ratios), 3)
    save("text_bench", {"rates": rates, "summary": result})
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
