"""Score every data file under a prefix, sharded across the tasks of a Cloud Run Job.

    python -m functions.batch_job [gs://bucket/inputs/]     (default: BATCH_INPUT_URI)

Task ``CLOUD_RUN_TASK_INDEX`` of ``CLOUD_RUN_TASK_COUNT`` scores the files whose name
hashes (crc32) to its index: a stable assignment, independent of listing order and of
files added later, so the shards never overlap and a retried task redoes only its own
files. Outputs are those of the storage trigger (``outputs/<name>.<generation>.jsonl``),
so a file already scored by an event or an earlier attempt is skipped, never duplicated.
Exit status: 0 when every file of the shard was scored or acknowledged as poison, 1 when a
file failed in a way worth retrying (Cloud Run then retries the task), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
import zlib

from functions.events.dispatch import ack_or_redeliver
from functions.events.formats import format_of
from functions.loading.object_store import ObjectRef
from functions.loading.stores import Stores
from functions.runtime import runtime

log = logging.getLogger("functions.batch_job")


def shard_of(name: str, count: int) -> int:
    """The task index that owns object ``name``."""
    return zlib.crc32(name.encode()) % count


def my_files(stores: Stores, input_uri: str, index: int, count: int) -> list[ObjectRef]:
    """This shard's data files under ``input_uri``, in name order."""
    refs = [r for r in stores.for_uri(input_uri).list_objects(input_uri)
            if format_of(r.name) and shard_of(r.name, count) == index]
    return sorted(refs, key=lambda r: r.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.batch_job", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input_uri", nargs="?", help="gs:// or s3:// prefix (BATCH_INPUT_URI)")
    args = parser.parse_args(argv)
    rt = runtime()
    s = rt.settings
    input_uri = args.input_uri or s.batch_input_uri
    if not input_uri or not input_uri.startswith(("gs://", "s3://")):
        parser.error("give a gs:// or s3:// input prefix (or set BATCH_INPUT_URI)")
    if s.cloud_run_task_index >= s.cloud_run_task_count:
        parser.error(f"CLOUD_RUN_TASK_INDEX {s.cloud_run_task_index} is not below "
                     f"CLOUD_RUN_TASK_COUNT {s.cloud_run_task_count}")
    files = my_files(rt.stores, input_uri, s.cloud_run_task_index, s.cloud_run_task_count)
    log.info("task %d/%d: %d files under %s", s.cloud_run_task_index, s.cloud_run_task_count,
             len(files), input_uri)
    failed = 0
    uploads = rt.events().uploads
    for ref in files:
        try:
            ack_or_redeliver(lambda r=ref: uploads.score_object(r), "batch_job", ref.name)
        except Exception:  # logged by ack_or_redeliver; the other files still get scored
            failed += 1
    log.info("task %d done: %d files, %d failed", s.cloud_run_task_index, len(files), failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
