"""Project-wide constants: environment variable names, defaults and state paths."""

from __future__ import annotations

import os
from pathlib import Path

# Environment variables (names only; values are read at run time, never logged).
ENV_HOME = "AAC_ETL_HOME"
ENV_SOURCES_FILE = "AAC_ETL_SOURCES"
ENV_BUFFER_URL = "AAC_ETL_BUFFER_URL"
ENV_TYPESENSE_URL = "TYPESENSE_URL"
ENV_TYPESENSE_API_KEY = "TYPESENSE_API_KEY"
ENV_DEMO_DSN = "AAC_ETL_DEMO_DSN"

DEFAULT_SOURCES_FILE = "sources.yaml"
DEFAULT_STATE_DIR = ".aac_etl"

CONTRACT_DIR = Path(__file__).resolve().parent.parent / "data_contracts"
CONTRACT_FILE_NAME = "sync_product_input.odcs.yaml"

# Pipeline defaults.
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "de", "es", "fr", "ru")
DEFAULT_LOCALE = "en"
CHUNK_ROWS = 50_000
SYNC_CHUNK_ROWS = 10_000
"""Products per chunk of a sync: the first documents reach Typesense within seconds, and the chunks in flight stay
bounded. 5,000 used about 200 MB less at 100k products (two languages) but about 2.5 CPU-s more per 100k products
(per-chunk costs of normalize and extract), which a CPU-bound machine pays in import speed."""
SUITE_OVERLAP_BUDGET_MB = 700
"""While the Great Expectations worker runs (a few seconds at the start of a sync with changes), a sync holding more
than this together with it waits for the suite's result before its next chunk (defs/catalog/pipeline.py). The two
still grow by about 200 MB while the sync waits (read-ahead, imports in flight, the worker's own import): 900 let a
1M-product sync reach 1,000 MB, and 800 did too (1,017 MB) once the machine ran the sync faster."""
IMPORT_BATCH_SIZE = 1_000
DEFAULT_MAX_DROP_SHARE = 0.5
DEFAULT_MAX_INVALID_SHARE = 0.05
MAX_LOAD_ATTEMPTS = 5
KEEP_EXTRACTS = 5
DUCKDB_MEMORY_LIMIT = "256MB"
DUCKDB_THREADS = 1
"""Threads of a DuckDB buffer connection: its writes are checkpoint-bound, and a sync's buffer write runs beside the
Typesense import, which needs the cores more (benchmarks/results: same wall time, less CPU than the default)."""
DUCKDB_COMPRESSION = "zstd"
"""Compression of the DuckDB buffer's columns: ZSTD keeps the JSON payloads about 2.7x smaller than DuckDB's
automatic choice (FSST/dictionary) and costs about 40% less CPU at checkpoint."""
QUARANTINE_VALUE_MAX_CHARS = 200


def state_dir() -> Path:
    """Return the folder that holds local state (buffer, extracts, embedded Typesense, Dagster home).

    Returns:
        ``$AAC_ETL_HOME`` when set, else ``./.aac_etl`` (relative to the working directory), created on demand.

    """
    root = Path(os.environ.get(ENV_HOME) or DEFAULT_STATE_DIR).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def contract_path() -> Path:
    """Return the path of the SyncProductInput data contract file."""
    packaged = Path(__file__).resolve().parent / "data_contracts" / CONTRACT_FILE_NAME
    if packaged.exists():
        return packaged
    return CONTRACT_DIR / CONTRACT_FILE_NAME
