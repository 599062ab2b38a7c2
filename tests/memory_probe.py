"""Peak Python memory of scoring one file, measured with tracemalloc in its own process.

Run by tests/test_events_memory.py as ``python -m tests.memory_probe BUCKET NAME...`` with
STORAGE_EMULATOR_HOST set: the emulator (the far end) lives in the test process, so only
our side of the network is measured. Prints ``{name: peak_bytes}`` as JSON; the first
name is a warm-up (imports, clients, first-call caches) and is not reported.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tracemalloc

from functions.config.settings import Settings
from functions.loading.object_store import ObjectRef
from functions.runtime import build


def main(bucket: str, names: list[str], chunk_rows: int) -> dict[str, int]:
    settings = Settings(chunk_rows=chunk_rows, read_block_bytes=64 * 1024)
    rt = build(settings)
    asyncio.run(rt.holder.get())
    uploads = rt.events().uploads
    peaks: dict[str, int] = {}
    tracemalloc.start()
    for name in names:
        blob = inst_blob(bucket, name)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        outcome = uploads.score_object(ObjectRef("gs", bucket, name, str(blob.generation)))
        assert outcome.action == "scored", outcome
        peaks[name] = tracemalloc.get_traced_memory()[1] - base
    return dict(list(peaks.items())[1:])


def inst_blob(bucket: str, name: str):  # noqa: ANN201 - a google.cloud.storage Blob
    from functions.loading.sdk_clients import gcs_client

    return gcs_client().bucket(bucket).get_blob(name)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[3:], int(sys.argv[2]))))
