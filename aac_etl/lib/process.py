"""Resources of processes: memory (Linux /proc; 0 elsewhere), detached frames and the garbage collector."""

from __future__ import annotations

import contextlib
import gc
import io
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import polars as pl

PROC = Path("/proc")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


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
    return round(_rss_kb(os.getpid() if pid is None else pid) / 1024, 1)


def _rss_kb(pid: int) -> int:
    """Resident kB of one process from ``/proc/<pid>/statm`` (one short line: cheaper than ``status``); 0 if gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE_KB
    return 0


def descendants(pid: int | None = None) -> list[int]:
    """Return the process ids of all descendants of a process (default: this one); empty where /proc is missing."""
    todo = _children(os.getpid() if pid is None else pid)
    found: list[int] = []
    while todo:
        current = todo.pop()
        if current not in found:
            found.append(current)
            todo.extend(_children(current))
    return found


def tree_rss_mb(pid: int | None = None) -> float:
    """Return the resident memory of a process and all its descendants now, in MB; 0 where /proc is missing.

    Args:
        pid: The root process; defaults to this one.

    """
    root = os.getpid() if pid is None else pid
    return _sum_rss_mb([root, *descendants(root)])


def _sum_rss_mb(pids: list[int]) -> float:
    return round(sum(_rss_kb(pid) for pid in pids) / 1024, 1)


class PeakTreeRss:
    """Sample the resident memory of this process and its descendants in a thread; ``peak_mb`` is the highest.

    A process's own VmHWM misses the memory of the processes it starts (the Great Expectations worker); this
    sums them at the same instant. Sampling can miss a spike shorter than ``interval``: report it together with
    :func:`peak_rss_mb`. The descendants are looked up every ``rescan`` seconds only: that walks
    ``/proc/<pid>/task/*/children`` of every thread, and at every 0.1 s it cost a busy sync about a CPU-second
    per 30 s, taken from the Typesense import it measures.
    """

    def __init__(self, interval: float = 0.1, rescan: float = 0.5) -> None:
        """Set the sampling interval and how often the descendants are looked up again (seconds)."""
        self.interval = interval
        self.rescan = rescan
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="tree-rss", daemon=True)

    def _sample(self) -> None:
        root = os.getpid()
        pids: list[int] = []
        scanned = -math.inf
        while True:
            now = time.monotonic()
            if now - scanned >= self.rescan:
                pids, scanned = descendants(root), now
            self.peak_mb = max(self.peak_mb, _sum_rss_mb([root, *pids]))
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
