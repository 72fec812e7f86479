"""Process resources: peak memory of this process and of the processes it starts."""

from __future__ import annotations

import subprocess
import sys
import time

import polars as pl

from aac_etl.lib.process import PeakTreeRss, detached, peak_rss_mb, rss_mb, tree_rss_mb

CHILD_MB = 96
HOLD = f"b = bytearray({CHILD_MB} * 2**20); b[::4096] = b'x' * len(b[::4096]); print('ready', flush=True); input()"


def test_peak_rss_mb_grows_with_an_allocation() -> None:
    before = peak_rss_mb()
    block = bytearray(64 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    assert peak_rss_mb() >= max(before, 64)


def _buffers(frame: pl.DataFrame) -> int:
    return frame.to_arrow(compat_level=pl.CompatLevel.newest()).get_total_buffer_size()


def test_detached_copy_holds_only_its_rows() -> None:
    chunk = pl.select(
        (pl.lit("<p>long description</p>" * 200) + pl.int_range(0, 4000).cast(pl.String)).alias("description"),
        pl.int_range(0, 4000).alias("id"),
    )
    sample = chunk.filter(pl.col("id") % 1000 == 0).head(3)
    # The slice shares the chunk's string buffers; the detached copy does not, and has the same rows.
    assert _buffers(sample) > _buffers(chunk) // 2
    copy = detached(sample)
    assert copy.equals(sample)
    assert _buffers(copy) < 3 * 5_000


def test_tree_rss_counts_a_child_process_and_the_sampler_keeps_its_peak() -> None:
    alone = tree_rss_mb()
    with PeakTreeRss(interval=0.02, rescan=0.02) as tree:
        child = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        with_child = tree_rss_mb()
        time.sleep(0.1)
        child.communicate("\n")
    assert with_child >= alone + CHILD_MB
    assert tree.peak_mb >= alone + CHILD_MB
    assert tree_rss_mb() < with_child - CHILD_MB / 2
    assert rss_mb(child.pid) == 0.0  # gone
    assert 0 < rss_mb() <= tree_rss_mb()
