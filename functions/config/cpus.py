"""The CPUs this process may use: affinity, then the container's CPU quota."""

from __future__ import annotations

import math
import os
from pathlib import Path


def cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this container in CPUs (cgroup v2 ``cpu.max`` or v1 CFS), if any.

    Cloud Run and Lambda limit CPU time with a quota, not with affinity: a 1-vCPU instance
    may still see every CPU of its host in ``sched_getaffinity``.
    """
    for quota_file, period_file in ((root / "cpu.max", None),
                                    (root / "cpu" / "cpu.cfs_quota_us",
                                     root / "cpu" / "cpu.cfs_period_us")):
        try:
            if period_file is None:
                quota, _, period = quota_file.read_text().strip().partition(" ")
            else:
                quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
            if quota not in ("max", "-1") and int(period) > 0:
                return int(quota) / int(period)
        except (OSError, ValueError):
            continue
    return None


def default_threads() -> int:
    """CPUs this process may use (affinity, then the cgroup quota), capped: serverless gets
    1-4; a fractional quota (0.5 vCPU) still gets one thread."""
    try:
        n = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        n = float(os.cpu_count() or 1)
    quota = cgroup_cpus()
    if quota is not None:
        n = min(n, quota)
    return max(1, min(math.ceil(n), 4))
