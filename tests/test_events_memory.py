"""Scoring a file streams it: a file 10x the chunk size does not need 10x the memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.servers import ROOT

CHUNK = 2_000


def _upload_rows(bucket, name: str, n: int) -> None:
    rows = "".join(f"[{4.3 + (i % 36) / 10:.1f}, 3.0, {1.0 + (i % 59) / 10:.1f}, 1.2]\n"
                   for i in range(n))
    bucket.blob(name).upload_from_string(rows.encode())


def test_peak_memory_does_not_grow_with_the_file(gcs_env, gcs_bucket, tmp_path) -> None:
    sizes = {"warmup": 0.05, "x1": 1, "x10": 10, "x20": 20}
    for name, chunks in sizes.items():
        _upload_rows(gcs_bucket, f"inputs/{name}.jsonl", int(chunks * CHUNK))
    env = {**os.environ, **gcs_env, "MODEL_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "tests.memory_probe", gcs_bucket.name, str(CHUNK),
                          *(f"inputs/{name}.jsonl" for name in sizes)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    peaks = {k.split("/")[1].split(".")[0]: v
             for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    print("peak bytes by file size (in chunks):", peaks)
    # 10x the rows is far from 10x the memory: the only extra over one chunk is the upload
    # buffer (1 MiB) that a large output fills and a one-chunk output does not ...
    assert peaks["x10"] < 3 * peaks["x1"], peaks
    # ... and from there memory is flat: twice the file, the same peak
    assert peaks["x20"] < 1.15 * peaks["x10"], peaks
    [blob] = gcs_bucket.client.list_blobs(gcs_bucket.name, prefix="outputs/x20.jsonl")
    assert blob.download_as_bytes().count(b"\n") == 20 * CHUNK
