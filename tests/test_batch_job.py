"""python -m functions.batch_job as a Cloud Run Job of 3 tasks over the GCS emulator:
every input row scored exactly once, shards disjoint, a re-run changes nothing."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import numpy as np

from tests.servers import ROOT


def _run_tasks(env: dict[str, str], uri: str, indexes: list[int], count: int, tmp) -> list[str]:
    procs = []
    for i in indexes:
        log = open(tmp / f"task-{i}.log", "w+")  # noqa: SIM115 - closed below, after wait()
        task_env = {**os.environ, **env, "CLOUD_RUN_TASK_INDEX": str(i),
                    "CLOUD_RUN_TASK_COUNT": str(count), "MODEL_CACHE_DIR": str(tmp / "cache")}
        procs.append((subprocess.Popen([sys.executable, "-m", "functions.batch_job", uri],
                                       cwd=ROOT, env=task_env, stdout=log,
                                       stderr=subprocess.STDOUT), log))
    logs = []
    for proc, log in procs:
        code = proc.wait(120)
        log.seek(0)
        logs.append(log.read())
        log.close()
        assert code == 0, logs[-1]
    return logs


def _inputs(bucket) -> int:
    """Seven files in three formats; every row is distinct (its first feature encodes it)."""
    n = 0
    for f in range(7):
        rows = [[4.0 + (n + r) / 1000, 3.0, 1.5, 0.2] for r in range(5 + f)]
        n += len(rows)
        if f % 3 == 0:
            body = "\n".join(json.dumps(r) for r in rows).encode()
            name = f"inputs/part-{f}.jsonl"
        elif f % 3 == 1:
            body = "\n".join(",".join(map(str, r)) for r in rows).encode()
            name = f"inputs/sub/part-{f}.csv"
        else:
            buf = io.BytesIO()
            np.save(buf, np.array(rows, dtype=np.float32))
            body, name = buf.getvalue(), f"inputs/part-{f}.npy"
        bucket.blob(name).upload_from_string(body)
    bucket.blob("inputs/README.txt").upload_from_string(b"not data")
    return n


def test_three_shards_score_every_row_exactly_once(gcs_env, gcs_bucket, tmp_path) -> None:
    total = _inputs(gcs_bucket)
    uri = f"gs://{gcs_bucket.name}/inputs/"
    logs = _run_tasks(gcs_env, uri, [0, 1, 2], 3, tmp_path)

    done = [re.search(r"task \d+ done: (\d+) files, 0 failed", log) for log in logs]
    per_task = [int(m.group(1)) for m in done]
    assert sum(per_task) == 7  # disjoint shards covering every data file
    outputs = sorted(gcs_bucket.client.list_blobs(gcs_bucket.name, prefix="outputs/"),
                     key=lambda b: b.name)
    assert len(outputs) == 7
    rows = [json.loads(line) for b in outputs for line in b.download_as_bytes().splitlines()]
    assert len(rows) == total
    for blob in outputs:  # rows of each file once, in order
        indexes = [json.loads(x)["row"] for x in blob.download_as_bytes().splitlines()]
        assert indexes == list(range(len(indexes)))

    # a retried task finds its outputs done and rewrites nothing
    before = {b.name: b.download_as_bytes() for b in outputs}
    [log] = _run_tasks(gcs_env, uri, [1], 3, tmp_path)
    assert log.count("skipped (already scored") == per_task[1]
    after = {b.name: b.download_as_bytes()
             for b in gcs_bucket.client.list_blobs(gcs_bucket.name, prefix="outputs/")}
    assert after == before


def test_the_same_task_run_twice_at_once_writes_each_output_once(gcs_env, gcs_bucket,
                                                                 tmp_path) -> None:
    total = _inputs(gcs_bucket)
    uri = f"gs://{gcs_bucket.name}/inputs/"
    _run_tasks(gcs_env, uri, [0, 0], 1, tmp_path)  # a retried task racing its first attempt
    outputs = list(gcs_bucket.client.list_blobs(gcs_bucket.name, prefix="outputs/"))
    assert len(outputs) == 7
    rows = [json.loads(x)["row"] for b in outputs for x in b.download_as_bytes().splitlines()]
    assert len(rows) == total  # whole files, never two attempts appended
