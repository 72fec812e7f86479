"""Process resources: peak memory."""

from __future__ import annotations

from aac_etl.lib.process import peak_rss_mb


def test_peak_rss_mb_grows_with_an_allocation() -> None:
    before = peak_rss_mb()
    block = bytearray(64 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    assert peak_rss_mb() >= max(before, 64)
