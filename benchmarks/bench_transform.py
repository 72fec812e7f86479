"""Micro-benchmark: OpenCart normalize, validate_frame and to_payloads throughput (document rows/s).

A generated SQLite shop (cached under the work dir) is extracted once into memory (chunks of
``aac_etl.settings.CHUNK_ROWS`` products; the raw chunks are cached as Parquet too), then every stage is timed
per chunk (wall and process CPU time). ``--save`` writes the payloads (external_id, payload, content_hash) of
the last repeat to Parquet, ``--compare`` checks them for exact equality against such a file.

Run: ``.venv/bin/python -m benchmarks.bench_transform --products 100000 --repeat 3``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from aac_etl import settings
from aac_etl.demo.generator import generate_shop
from aac_etl.lib.contract import load_contract
from aac_etl.lib.documents import to_payloads
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.validate import infer_attribute_types, validate_frame
from aac_etl.sources.base import ExtractRequest, RawChunk
from aac_etl.sources.opencart import OpenCartSource
from benchmarks.run_benchmark import source_config

STAGES = ("normalize", "validate_frame", "to_payloads")


def _config() -> SourceConfig:
    return source_config(("en-gb", "de-de"), "products")


def _chunks(workdir: Path, products: int) -> list[RawChunk]:
    """Return the raw chunks of a ``products``-product shop, generating and extracting it when not cached."""
    cache = workdir / f"chunks_{products}"
    if not cache.exists():
        db = workdir / f"shop_{products}.sqlite"
        url = f"sqlite:///{db}"
        if not db.exists():
            started = time.perf_counter()
            generate_shop(url, products=products, languages=("en-gb", "de-de"))
            print(f"generated {products} products in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        request = ExtractRequest(chunk_rows=settings.CHUNK_ROWS)
        for number, chunk in enumerate(OpenCartSource().extract(_config(), url, request)):
            target = cache / f"{number:04d}"
            target.mkdir(parents=True)
            for table, frame in chunk.items():
                frame.write_parquet(target / f"{table}.parquet")
        print(f"extracted in {time.perf_counter() - started:.1f} s")
    return [
        {path.stem: pl.read_parquet(path) for path in sorted(directory.glob("*.parquet"))}
        for directory in sorted(cache.iterdir())
    ]


def _run(chunks: list[RawChunk]) -> tuple[dict[str, float], dict[str, float], int, pl.DataFrame]:
    """Time every stage over all chunks; return wall and CPU seconds per stage, document rows and the payloads."""
    source = OpenCartSource()
    config = _config()
    contract = load_contract()
    seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    locked: dict[str, str] = {}
    rows = 0
    outputs: list[pl.DataFrame] = []
    for chunk in chunks:
        mark, cpu_mark = time.perf_counter(), time.process_time()
        docs = source.normalize(chunk, config)
        seconds["normalize"] += time.perf_counter() - mark
        cpu["normalize"] += time.process_time() - cpu_mark
        rows += docs.height
        mark, cpu_mark = time.perf_counter(), time.process_time()
        outcome = validate_frame(docs, contract, source="bench", sync_id="bench", locked_types=locked)
        seconds["validate_frame"] += time.perf_counter() - mark
        cpu["validate_frame"] += time.process_time() - cpu_mark
        if outcome.valid.height and set(outcome.attribute_types) - set(locked):
            locked = {**infer_attribute_types(outcome.valid), **locked}
        mark, cpu_mark = time.perf_counter(), time.process_time()
        outputs.append(to_payloads(outcome.valid))
        seconds["to_payloads"] += time.perf_counter() - mark
        cpu["to_payloads"] += time.process_time() - cpu_mark
    return seconds, cpu, rows, pl.concat(outputs)


def main() -> None:
    """Print rows/s per stage and combined (median of repeats); optionally save or compare the payloads."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "aac_etl_bench_transform")
    parser.add_argument("--save", type=Path, default=None, help="write the payloads to this Parquet file")
    parser.add_argument("--compare", type=Path, default=None, help="compare the payloads with this Parquet file")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    chunks = _chunks(args.workdir, args.products)
    runs: list[dict[str, float]] = []
    cpu_runs: list[dict[str, float]] = []
    rows = 0
    payloads = pl.DataFrame()
    for _ in range(args.repeat):
        seconds, cpu, rows, payloads = _run(chunks)
        runs.append(seconds)
        cpu_runs.append(cpu)
        print("  run: " + ", ".join(f"{stage} {seconds[stage]:.3f} s" for stage in STAGES))
    print(f"{args.products} products, {rows} document rows, {len(chunks)} chunks; median of {args.repeat}:")
    total = cpu_total = 0.0
    for stage in STAGES:
        median = statistics.median(run[stage] for run in runs)
        cpu_median = statistics.median(run[stage] for run in cpu_runs)
        total += median
        cpu_total += cpu_median
        print(f"  {stage:<15} {median:7.3f} s  {rows / median:>12,.0f} rows/s  (CPU {cpu_median:.3f} s)")
    print(f"  {'combined':<15} {total:7.3f} s  {rows / total:>12,.0f} rows/s  (CPU {cpu_total:.3f} s)")
    if args.save is not None:
        payloads.write_parquet(args.save)
        print(f"saved {payloads.height} payloads to {args.save}")
    if args.compare is not None:
        expected = pl.read_parquet(args.compare)
        equal = payloads.equals(expected)
        print(f"payloads equal to {args.compare}: {equal} ({payloads.height} vs {expected.height} rows)")
        if not equal:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
