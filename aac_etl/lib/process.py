"""Resources of the current process: peak memory (Linux /proc; 0 elsewhere)."""

from __future__ import annotations

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
