"""Benchmark: synthetic OpenCart shop generation speed into SQLite.

Usage::

    .venv/bin/python benchmarks/bench_generator.py [--sizes 10000 100000] [--languages en-gb de-de]
        [--chunk 50000] [--keep DIR]

Prints, per size, the wall time, products/s, rows written and the database file size. The shop is written
into a temporary folder (removed afterwards unless ``--keep`` names a folder).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from aac_etl.demo.generator import generate_shop


def _run(folder: Path, products: int, languages: list[str], chunk: int) -> None:
    db = folder / f"shop_{products}.sqlite"
    db.unlink(missing_ok=True)
    stats = generate_shop(f"sqlite:///{db}", products=products, languages=languages, chunk=chunk)
    rows = sum(stats.rows.values())
    print(
        f"{products:>10,} products  {stats.seconds:7.2f} s  {products / stats.seconds:>10,.0f} products/s  "
        f"{rows:>12,} rows  {rows / stats.seconds:>10,.0f} rows/s  {db.stat().st_size / 1e6:8.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Synthetic OpenCart shop generation speed into SQLite.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--languages", nargs="+", default=["en-gb", "de-de"])
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--keep", type=Path, default=None, help="Write the shops here and keep them.")
    args = parser.parse_args()
    print(f"generate_shop into SQLite, languages {', '.join(args.languages)}, chunk {args.chunk:,}")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            _run(args.keep, size, args.languages, args.chunk)
        return
    with tempfile.TemporaryDirectory(prefix="bench_generator_") as tmp:
        for size in args.sizes:
            _run(Path(tmp), size, args.languages, args.chunk)


if __name__ == "__main__":
    main()
