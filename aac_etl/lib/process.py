"""Resources of the current process: peak memory (Linux /proc; 0 elsewhere) and the garbage collector."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path


def peak_rss_mb() -> float:
    """Return the peak resident memory of this process so far (VmHWM) in MB; 0 where /proc is not available.

    VmHWM, not ``ru_maxrss``: on Linux a spawned child inherits its parent's ``ru_maxrss``, while VmHWM starts
    afresh at exec.
    """
    status = Path("/proc/self/status")
    if not status.exists():
        return 0.0
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


@contextlib.contextmanager
def frozen_gc() -> Iterator[None]:
    """Keep the objects alive now (imported modules, Dagster definitions) out of the cyclic collector's passes.

    A sync allocates many short-lived containers; each full collection would otherwise walk the few million
    long-lived objects that Dagster, polars and Great Expectations hold (a few CPU seconds per 100k products).
    Objects made inside the block are collected as usual; the frozen ones return to the collector on exit.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
