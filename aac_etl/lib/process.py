"""Resources of processes: memory (Linux /proc; 0 elsewhere), detached frames and the garbage collector."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import polars as pl

PROC = Path("/proc")


def peak_rss_mb() -> float:
    """Return the peak resident memory of this process so far (VmHWM) in MB; 0 where /proc is not available.

    VmHWM, not ``ru_maxrss``: on Linux a spawned child inherits its parent's ``ru_maxrss``, while VmHWM starts
    afresh at exec.
    """
    return round(_status_kb(os.getpid(), "VmHWM") / 1024, 1)


def detached(frame: pl.DataFrame) -> pl.DataFrame:
    """Return a copy of ``frame`` that holds only its own rows' data.

    A slice, filter or sample of a frame shares the frame's string buffers: keeping 100 rows of a chunk keeps the
    whole chunk's descriptions in memory. Samples kept for the length of a sync are detached with this (an Arrow
    IPC round trip, which writes only the referenced data).
    """
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    buffer.seek(0)
    return pl.read_ipc(buffer)


def _status_kb(pid: int, field: str) -> int:
    """One ``kB`` field of ``/proc/<pid>/status``; 0 when the process or /proc is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def rss_mb(pid: int | None = None) -> float:
    """Return the resident memory of one process now (default: this one), in MB; 0 when it is gone."""
    return round(_status_kb(os.getpid() if pid is None else pid, "VmRSS") / 1024, 1)


def tree_rss_mb(pid: int | None = None) -> float:
    """Return the resident memory of a process and all its descendants now, in MB; 0 where /proc is missing.

    Args:
        pid: The root process; defaults to this one.

    """
    todo = [os.getpid() if pid is None else pid]
    seen: set[int] = set()
    total_kb = 0
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        total_kb += _status_kb(current, "VmRSS")
        todo.extend(_children(current))
    return round(total_kb / 1024, 1)


class PeakTreeRss:
    """Sample :func:`tree_rss_mb` of this process in a thread while the block runs; ``peak_mb`` is the highest.

    A process's own VmHWM misses the memory of the processes it starts (the Great Expectations worker); this
    sums them at the same instant. Sampling can miss a spike shorter than ``interval``: report it together with
    :func:`peak_rss_mb`.
    """

    def __init__(self, interval: float = 0.1) -> None:
        """Set the sampling interval (seconds)."""
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="tree-rss", daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, tree_rss_mb())
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakTreeRss:
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Stop sampling (one last sample is taken)."""
        self._stop.set()
        self._thread.join()


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
