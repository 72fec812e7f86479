"""Process resources: peak memory of this process and of the processes it starts."""

from __future__ import annotations

import subprocess
import sys
import time

from aac_etl.lib.process import PeakTreeRss, peak_rss_mb, tree_rss_mb

CHILD_MB = 96
HOLD = f"b = bytearray({CHILD_MB} * 2**20); b[::4096] = b'x' * len(b[::4096]); print('ready', flush=True); input()"


def test_peak_rss_mb_grows_with_an_allocation() -> None:
    before = peak_rss_mb()
    block = bytearray(64 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    assert peak_rss_mb() >= max(before, 64)


def test_tree_rss_counts_a_child_process_and_the_sampler_keeps_its_peak() -> None:
    alone = tree_rss_mb()
    with PeakTreeRss(interval=0.02) as tree:
        child = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        with_child = tree_rss_mb()
        time.sleep(0.1)
        child.communicate("\n")
    assert with_child >= alone + CHILD_MB
    assert tree.peak_mb >= alone + CHILD_MB
    assert tree_rss_mb() < with_child - CHILD_MB / 2
