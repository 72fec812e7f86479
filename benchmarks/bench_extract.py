"""Micro-benchmark: OpenCart extract throughput (products/s) per chunk size on a generated SQLite shop.

Run: ``.venv/bin/python -m benchmarks.bench_extract --products 100000 --chunks 10000 20000 50000 --repeat 3``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from aac_etl.demo.generator import generate_shop
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources.base import ExtractRequest
from aac_etl.sources.opencart import OpenCartSource
from benchmarks.run_benchmark import source_config


def _config() -> SourceConfig:
    return source_config(("en-gb", "de-de"), "products")


def _run(url: str, chunk_rows: int) -> tuple[float, int]:
    start = time.perf_counter()
    products = 0
    for chunk in OpenCartSource().extract(_config(), url, ExtractRequest(chunk_rows=chunk_rows)):
        products += chunk["product"].height
    return time.perf_counter() - start, products


def main() -> None:
    """Generate (or reuse) a shop and print the extract's products/s per chunk size (median of repeats)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 20_000, 50_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None, help="reuse this SQLite file (generated when missing)")
    parser.add_argument("--url", default=None, help="benchmark an existing shop at this SQLAlchemy URL instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url
        if url is None:
            db = args.db or Path(tmp) / "shop.sqlite"
            url = f"sqlite:///{db}"
            if not db.exists():
                t0 = time.perf_counter()
                generate_shop(url, products=args.products, languages=("en-gb", "de-de"))
                print(f"generated {args.products} products in {time.perf_counter() - t0:.1f} s")
        for chunk_rows in args.chunks:
            times: list[float] = []
            products = 0
            for _ in range(args.repeat):
                elapsed, products = _run(url, chunk_rows)
                times.append(elapsed)
            median = statistics.median(times)
            print(
                f"chunk_rows={chunk_rows:>6}: {products} products, median {median:.2f} s "
                f"({products / median:,.0f} products/s; runs {', '.join(f'{t:.2f}' for t in times)})"
            )


if __name__ == "__main__":
    main()
