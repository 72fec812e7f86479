"""End-to-end benchmark: throughput, cost growth and memory of the real pipeline against bare Typesense.

For every size, on the same catalog and machine (the embedded Typesense restarted empty before every timed import,
see :class:`Servers`):

1. **generation**: ``generate_shop`` writes an OpenCart-schema SQLite shop (timed, not part of the sync);
2. **ceiling**: the final documents are computed (extract, normalize, validate, ``to_payloads``; untimed for the
   ceiling, but each stage's time is recorded) and their JSONL is imported into a fresh collection (schema from
   the contract) with bare ``TypesenseClient.import_frame`` calls of 1,000 lines;
3. **full**: with a fresh state dir, buffer and alias, the real Dagster sync job (mode full) then, when the buffer
   holds pending operations for the alias (what the buffer sensor checks before it launches one), the real load
   job, timed from the start of the sync to the documents being searchable;
4. **unchanged**: a nightly full sync + load of the unchanged shop (documents sent, share of the full time);
5. **changed_1pct**: ``mutate_shop(change_share=0.01)`` then a nightly full sync + load;
6. with ``--pairs N``, N - 1 more ceiling and full runs (each full one on its own alias, the full one first every
   other pair): the ratio target is judged on the median of the N pairs, as a single pair moves with whatever else
   the machine runs.

Each pipeline scenario runs in its own spawned child process (a fresh interpreter, like a Dagster run worker),
which reports its peak RSS (its own VmHWM, or, when higher, its RSS plus that of the Great Expectations worker
process it starts, sampled together every 0.1 s), the assets' metadata, the Dagster step timings from the instance's
event log and a profile of the library calls (Typesense import, buffer reads/marks/enqueue, GX suite, ...).
Results go to ``<out>/latest.json`` and ``<out>/latest.md``.

Usage::

    .venv/bin/python -m benchmarks.run_benchmark --sizes 10000 100000 [--languages en-gb] [--pairs 3] [--out DIR]

Typesense: ``--typesense-url/--typesense-key``, else ``TYPESENSE_URL``/``TYPESENSE_API_KEY``, else an embedded
server is started in a temporary state dir, restarted empty before each timed import (ceiling or full) and stopped
at the end; its RSS and CPU are then reported too. A given server is used as it is, for every run in turn.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aac_etl.lib.typesense_client import TypesenseClient

SOURCE_NAME = "bench_shop"
DSN_ENV = "AAC_ETL_BENCH_DSN"
ORGANIZATION = "bench"
COLLECTION_PREFIX = f"{ORGANIZATION}_"
"""Every collection the benchmark makes starts with this: the ceiling's and those behind its sources' aliases."""
DEFAULT_SIZES = (10_000, 100_000)
DEFAULT_LANGUAGES = ("en-gb", "de-de")
LOCALES = {"en-gb": "en", "de-de": "de", "fr-fr": "fr", "es-es": "es", "ru-ru": "ru"}
IMPORT_BATCH = 1_000
CHANGE_SHARE = 0.01
TARGET_RATIO = 0.85
TARGET_UNCHANGED_SHARE = 0.15
TARGET_TRANSFORM_RATE = 100_000
SYNC_STEP = f"{SOURCE_NAME}__sync"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
SCENARIOS = ("full", "unchanged", "changed_1pct")
ASSETS = ("extract", "normalized", "validated", "search_buffer")
STAGES = ("extract", "fingerprint", "normalize", "validate", "payloads", "buffer", "load")
RESTARTED_KEY = "typesense_restarted_for_each_timed_import"
RESTARTED_NOTE = " (restarted empty before every timed import)"


@dataclass(frozen=True)
class Endpoint:
    """The Typesense server under test (the key never reaches the output files)."""

    url: str
    api_key: str = field(repr=False)
    pid: int | None = None


class Servers:
    """The Typesense server under test: a given one, or an embedded one restarted empty before every timed import.

    One server grows slower with every import it has taken (the same bare 100k import cost it 45.7, 46.7, 47.9 and
    49.3 CPU-s in a row; on servers started empty each time, 47.0-50.6 with no trend), so whichever import of a
    pair ran second paid for the first. The embedded server is therefore stopped, its data dir removed and started
    again (same port and key) before each timed import but the first, which gets it just started. A given server
    cannot be restarted: its imports run one after another, and the report says so (``fresh_server``).
    """

    def __init__(self, endpoint: Endpoint, embedded: tuple[Path, Path] | None = None) -> None:
        """Serve ``endpoint``; ``embedded`` (its state dir and data dir) makes it restartable by :meth:`fresh`."""
        self.endpoint = endpoint
        self._embedded = embedded
        self._untouched = embedded is not None
        """The embedded server has just been started empty: the first timed import needs no restart."""

    @property
    def restartable(self) -> bool:
        """Whether :meth:`fresh` starts a new server (the embedded one) or hands back the given one."""
        return self._embedded is not None

    def fresh(self) -> Endpoint:
        """The server for the next timed import: the embedded one restarted on an empty data dir, else the same."""
        if self._embedded is None or self._untouched:
            self._untouched = False
            return self.endpoint
        from aac_etl.lib.typesense_server import ensure_local_server, stop_local_server

        state, data = self._embedded
        stop_local_server(state)
        shutil.rmtree(data)
        server = ensure_local_server(state)
        self.endpoint = Endpoint(server.url, server.api_key_value, server.pid)
        return self.endpoint


@dataclass(frozen=True)
class ScenarioSpec:
    """Where one size's pipeline scenarios run (picklable, handed to the child process)."""

    workdir: str
    db_url: str
    languages: tuple[str, ...]
    slug: str
    url: str
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class Options:
    """What to run."""

    sizes: tuple[int, ...]
    languages: tuple[str, ...]
    out: Path
    seed: int = 7
    workdir: Path | None = None
    keep: bool = False
    merge: bool = False
    pairs: int = 1


# ------------------------------------------------------------------------------------------------ helpers


def _mb(kilobytes: float) -> float:
    return round(kilobytes / 1024, 1)


def _rate(rows: float, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits)


def source_config(languages: Sequence[str], slug: str) -> Any:
    """The benchmark shop's source declaration (the same for every benchmark script)."""
    from aac_etl.lib.sources_config import SourceConfig

    return SourceConfig(
        name=SOURCE_NAME,
        platform="opencart",
        dsn_env=DSN_ENV,
        organization=ORGANIZATION,
        index_slug=slug,
        languages={code: LOCALES.get(code, code.split("-")[0]) for code in languages},
        default_currency="USD",
        storefront_url="https://bench-shop.example.com",
    )


def _proc_memory(pid: int | None) -> dict[str, float] | None:
    """VmRSS and VmHWM (peak) of a process in MB, from /proc (None when unknown or not Linux)."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key.lower() + "_mb"] = _mb(float(rest.split()[0]))
    return values


def _proc_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far, from /proc (None when unknown or not Linux)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_delta(before: float | None, pid: int | None) -> float | None:
    after = _proc_cpu(pid)
    return None if before is None or after is None else _round(after - before)


class Timers:
    """Process-local profile: wraps library callables and accumulates their wall time and call counts."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.first: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        """CPU seconds of the calling thread (not of the pools it hands work to: polars', DuckDB's)."""
        self.window: dict[str, tuple[float, float]] = {}
        self.origin = time.perf_counter()
        """Calls' start and end times are reported relative to this (reset when the timed run starts)."""

    def add(self, label: str, started: float, cpu_started: float) -> None:
        """Record one call of ``label`` that has just ended; it started at these ``perf_counter``/``thread_time``."""
        ended = time.perf_counter()
        seconds = ended - started
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds
        self.cpu[label] = self.cpu.get(label, 0.0) + time.thread_time() - cpu_started
        self.calls[label] = self.calls.get(label, 0) + 1
        self.first.setdefault(label, seconds)
        first_start, _ = self.window.get(label, (started - self.origin, 0.0))
        self.window[label] = (first_start, ended - self.origin)

    def wrap(self, owner: object, attr: str, label: str) -> None:
        """Time every call of ``owner.attr``."""
        original: Callable[..., Any] = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(label, started, cpu)

        setattr(owner, attr, timed)

    def wrap_iter(self, owner: object, attr: str, label: str) -> None:
        """Time every ``next()`` of the iterators ``owner.attr`` returns (the time to produce each item)."""
        original: Callable[..., Iterator[Any]] = getattr(owner, attr)
        timers = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            iterator = iter(original(*args, **kwargs))
            while True:
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    item = next(iterator)
                except StopIteration:
                    timers.add(label, started, cpu)
                    return
                timers.add(label, started, cpu)
                yield item

        setattr(owner, attr, timed)

    def report(self) -> dict[str, dict[str, float]]:
        """Seconds, calls and first-call seconds per label."""
        return {
            label: {
                "seconds": _round(self.seconds[label]),
                "thread_cpu_seconds": _round(self.cpu[label]),
                "calls": self.calls[label],
                "first_call_seconds": _round(self.first[label]),
                "first_started_at_seconds": _round(self.window[label][0]),
                "last_ended_at_seconds": _round(self.window[label][1]),
            }
            for label in sorted(self.seconds)
        }


def _instrument() -> Timers:
    """Wrap the calls whose cost the profile splits out (only inside a benchmark child process)."""
    from aac_etl.defs.catalog import pipeline
    from aac_etl.lib import contract, staging
    from aac_etl.lib.buffer import BufferStore
    from aac_etl.lib.suite_worker import SuiteWorker
    from aac_etl.lib.typesense_client import TypesenseClient

    timers = Timers()
    timers.wrap(TypesenseClient, "import_frame", "typesense_import")
    timers.wrap(TypesenseClient, "delete_documents", "typesense_delete")
    timers.wrap(TypesenseClient, "create_collection", "typesense_create_collection")
    timers.wrap_iter(BufferStore, "all_live_documents", "buffer_read_live")
    timers.wrap_iter(BufferStore, "pending_batches", "buffer_read_pending")
    timers.wrap(BufferStore, "mark_loaded", "buffer_mark_loaded")
    timers.wrap(BufferStore, "mark_failed", "buffer_mark_failed")
    timers.wrap(BufferStore, "enqueue", "buffer_enqueue")
    timers.wrap(BufferStore, "mark_missing_as_deleted", "buffer_mark_missing")
    timers.wrap(BufferStore, "count_live", "buffer_count_live")
    timers.wrap(BufferStore, "clear_quarantine", "buffer_clear_quarantine")
    timers.wrap(BufferStore, "live_keys", "buffer_live_keys")
    timers.wrap(BufferStore, "source_fingerprints", "buffer_read_fingerprints")
    timers.wrap(BufferStore, "replace_source_fingerprints", "buffer_write_fingerprints")
    timers.wrap(pipeline, "to_payloads", "to_payloads")
    timers.wrap(pipeline.SourceSync, "prepare", "sync_prepare")
    timers.wrap(pipeline.SourceSync, "open_shadow_build", "sync_open_build")
    timers.wrap(pipeline.SourceSync, "_chunk", "sync_chunk")
    timers.wrap(pipeline.SourceSync, "enqueue", "sync_enqueue")
    timers.wrap(staging.ChunkWriter, "write", "extract_write")
    timers.wrap(pipeline, "validate_frame", "validate_frame")
    # The suite runs in its worker process: this is the wait for its answer, from the sample being sent.
    timers.wrap(SuiteWorker, "_exchange", "gx_suite")
    timers.wrap(contract, "validate_sample_with_model", "pydantic_sample")
    return timers


def _step_timings(instance: Any, run_id: str) -> dict[str, float]:
    """Wall seconds per step, from the STEP_START / STEP_SUCCESS events of the instance's event log."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif event.event_type_value in {"STEP_SUCCESS", "STEP_FAILURE"}:
            ends[entry.step_key] = entry.timestamp
    return {key: _round(ends[key] - starts[key]) for key in starts if key in ends}


def _stage_summary(metas: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Rows, busy seconds and rows/s per stage of the pipelined sync step, plus the load into Typesense.

    The stages of a sync overlap (the extract runs in a reader thread, the streaming import in its own), so the
    seconds are each stage's own busy time, not slices of the wall time. ``load`` counts the documents sent by
    the sync's streaming build and by the load job, over the wall time from the start of the sync to the end of
    the load (what a user waits for).
    """
    extract, normalized = metas.get("extract", {}), metas.get("normalized", {})
    validated, buffered = metas.get("validated", {}), metas.get("search_buffer", {})
    built, load = metas.get("built", {}), metas.get("load", {})
    sent = int(built.get("documents_sent", 0)) + int(load.get("documents_sent", 0))
    load_seconds = float(built.get("seconds", 0.0)) + float(load.get("seconds", 0.0))
    sources = {
        "extract": (int(extract.get("records", 0)), float(extract.get("seconds", 0.0))),
        "fingerprint": (int(extract.get("records", 0)), float(extract.get("fingerprint_seconds", 0.0))),
        "normalize": (int(normalized.get("documents", 0)), float(normalized.get("seconds", 0.0))),
        "validate": (int(validated.get("contract_rows", 0)), float(validated.get("contract_seconds", 0.0))),
        "payloads": (int(validated.get("payload_rows", 0)), float(validated.get("payload_seconds", 0.0))),
        "buffer": (int(buffered.get("documents", 0)), float(buffered.get("seconds", 0.0))),
        "load": (sent, load_seconds),
    }
    return {
        stage: {"rows": rows, "seconds": _round(seconds), "rows_per_second": _rate(rows, seconds)}
        for stage, (rows, seconds) in sources.items()
    }


def normalize_validate_rate(stages: dict[str, dict[str, float]], *, with_payloads: bool = False) -> float:
    """Documents per second through normalize + contract validation (+ payload rendering), in the sync.

    The target names normalize and validate; rendering the JSON payloads and their content hashes is the buffer's
    input and is shown both apart and added, so that neither reading hides the other.
    """
    documents = stages["normalize"]["rows"]
    counted = ("normalize", "validate", "payloads") if with_payloads else ("normalize", "validate")
    seconds = sum(stages[stage]["seconds"] for stage in counted)
    return _rate(documents, seconds)


# ------------------------------------------------------------------------------------------------ child: pipeline


def run_scenario(scenario: str, spec: ScenarioSpec) -> dict[str, Any]:
    """Run one sync (mode full) + load through the real Dagster jobs, in this (child) process.

    The size's folder ``spec.workdir`` holds ``state`` (AAC_ETL_HOME: buffer, run extracts) and ``dagster``
    (DAGSTER_HOME), shared by the scenarios of the size; the alias is ``bench_<spec.slug>``.

    Args:
        scenario: ``full``, ``unchanged`` or ``changed_1pct`` (a label; every scenario runs a full sync).
        spec: Shop URL, languages, slug, working folder and Typesense endpoint.

    Returns:
        Wall times, asset metadata per stage, Dagster step timings, the call profile and the peak RSS.

    """
    started_process = time.perf_counter()
    root = Path(spec.workdir)
    url, api_key = spec.url, spec.api_key
    (root / "dagster").mkdir(parents=True, exist_ok=True)
    (root / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["AAC_ETL_HOME"] = str(root / "state")
    os.environ["DAGSTER_HOME"] = str(root / "dagster")
    os.environ[DSN_ENV] = spec.db_url
    os.environ["TYPESENSE_URL"] = url
    os.environ["TYPESENSE_API_KEY"] = api_key
    os.environ.pop("AAC_ETL_BUFFER_URL", None)

    import dagster as dg

    from aac_etl.defs.catalog.assets import sync_job_name, sync_run_config
    from aac_etl.defs.location import build_definitions
    from aac_etl.defs.resources import BufferResource
    from aac_etl.defs.runs import materialization_metadata
    from aac_etl.defs.search.assets import load_job_name
    from aac_etl.lib.process import PeakTreeRss
    from aac_etl.lib.typesense_client import TypesenseClient

    source = source_config(spec.languages, spec.slug)
    alias = source.collection_alias
    defs = build_definitions([source])
    instance = dg.DagsterInstance.get()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    sync_job = defs.resolve_job_def(sync_job_name(SOURCE_NAME))
    load_job = defs.resolve_job_def(load_job_name(alias))
    load_config = {"ops": {f"typesense__{alias}": {"config": {"reindex": False}}}, **quiet}
    timers = _instrument()
    startup = time.perf_counter() - started_process

    started = timers.origin = time.perf_counter()
    cpu_started = _cpu_seconds()
    with PeakTreeRss() as tree:
        sync = sync_job.execute_in_process(
            run_config={**sync_run_config(SOURCE_NAME, "full"), **quiet}, instance=instance, raise_on_error=False
        )
        synced = time.perf_counter()
        # What the buffer sensor reads: it launches the load job only for an alias with pending operations (a
        # full sync whose streaming build loaded everything leaves none).
        pending = sum(row.pending_count for row in BufferResource().store().pending_summary() if row.alias == alias)
        load = (
            load_job.execute_in_process(run_config=load_config, instance=instance, raise_on_error=False)
            if pending
            else None
        )
        finished = time.perf_counter()
    cpu = _cpu_seconds() - cpu_started

    with TypesenseClient(url, api_key) as client:
        searchable = client.count(alias)
        collection = client.get_alias(alias)
    metas = {asset: materialization_metadata(sync, SOURCE_NAME, asset) for asset in ASSETS}
    metas["built"] = materialization_metadata(sync, "typesense", alias)
    metas["load"] = materialization_metadata(load, "typesense", alias) if load is not None else {}
    steps = {**_step_timings(instance, sync.run_id), **(_step_timings(instance, load.run_id) if load else {})}
    buffer_meta = metas["search_buffer"]
    built_meta, load_meta = metas["built"], metas["load"]
    stages = _stage_summary(metas)
    total = finished - started
    documents = int(buffer_meta.get("documents", 0))
    return {
        "scenario": scenario,
        "success": bool(sync.success and (load is None or load.success)),
        "pending_after_sync": pending,
        "load_run": load is not None,
        "documents": documents,
        "enqueued_upserts": int(buffer_meta.get("enqueued_upserts", 0)),
        "enqueued_deletes": int(buffer_meta.get("enqueued_deletes", 0)),
        "documents_sent": int(built_meta.get("documents_sent", 0)) + int(load_meta.get("documents_sent", 0)),
        "sent_by_sync": int(built_meta.get("documents_sent", 0)),
        "failed": int(built_meta.get("failed", 0)) + int(load_meta.get("failed", 0)),
        "reindexed": bool(built_meta.get("reindexed", False) or load_meta.get("reindexed", False)),
        "skipped_unchanged_records": int(metas["extract"].get("unchanged_records_skipped", 0)),
        "peak_rss_mb_by_phase": {k: v for k, v in buffer_meta.items() if k.startswith("peak_rss_mb_")},
        "streaming_build": {
            key: built_meta[key]
            for key in (
                "sync_waited_for_import_seconds",
                "finish_waited_for_import_seconds",
                "checks_passed_at_seconds",
                "buffer_written_at_seconds",
                "finish_seconds",
                "seconds",
            )
            if key in built_meta
        },
        "waited_for_great_expectations_seconds": metas["validated"].get("waited_for_great_expectations_seconds", 0.0),
        "searchable": searchable,
        "collection": collection,
        "seconds": _round(total),
        "cpu_seconds": _round(cpu),
        "sync_seconds": _round(synced - started),
        "load_seconds": _round(finished - synced),
        "docs_per_second": _rate(documents, total),
        "sync_run_overhead_seconds": _round(
            max(0.0, (synced - started) - sum(v for k, v in steps.items() if k.startswith(SOURCE_NAME)))
        ),
        "load_run_overhead_seconds": _round(
            max(0.0, (finished - synced) - sum(v for k, v in steps.items() if k.startswith("typesense__")))
        ),
        "stages": stages,
        "normalize_validate_rows_per_second": normalize_validate_rate(stages),
        "normalize_validate_payloads_rows_per_second": normalize_validate_rate(stages, with_payloads=True),
        "steps": steps,
        "profile": timers.report(),
        "process_startup_seconds": _round(startup),
        # The target's number: this process and the Great Expectations worker it starts, summed at each instant.
        "peak_rss_mb": max(_peak_rss_mb(), tree.peak_mb),
        "peak_rss_mb_process": _peak_rss_mb(),
        "peak_rss_mb_tree_sampled": tree.peak_mb,
    }


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the GX worker)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM, see :func:`aac_etl.lib.process.peak_rss_mb`), else ``ru_maxrss``."""
    from aac_etl.lib.process import peak_rss_mb

    return peak_rss_mb() or _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _in_child(func: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run ``func(*args)`` in a fresh spawned interpreter and return its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(func, *args).result()


# ------------------------------------------------------------------------------------------------ parent: steps


def _generate(db: Path, products: int, languages: Sequence[str], seed: int) -> dict[str, Any]:
    from aac_etl.demo.generator import generate_shop

    stats = generate_shop(f"sqlite:///{db}", products=products, languages=languages, seed=seed)
    return {
        "seconds": _round(stats.seconds),
        "products_per_second": _rate(products, stats.seconds),
        "rows": sum(stats.rows.values()),
        "db_mb": round(db.stat().st_size / 1e6, 1),
    }


def ceiling(db_url: str, languages: Sequence[str], endpoint: Endpoint) -> dict[str, Any]:
    """Compute the final documents (timed per stage, untimed for the ceiling), then import them bare.

    Args:
        db_url: SQLAlchemy URL of the shop.
        languages: Its languages.
        endpoint: The Typesense server.

    Returns:
        Documents, import seconds and docs/s, average payload size and the preparation stages' times.

    """
    import polars as pl

    from aac_etl.lib.contract import load_contract, typesense_schema
    from aac_etl.lib.documents import to_payloads
    from aac_etl.lib.typesense_client import TypesenseClient
    from aac_etl.lib.validate import infer_attribute_types, validate_frame
    from aac_etl.sources import get_source
    from aac_etl.sources.base import ExtractRequest

    source = source_config(languages, "ceiling")
    impl = get_source("opencart")
    contract = load_contract()
    prep = {"extract": 0.0, "normalize": 0.0, "validate": 0.0, "to_payloads": 0.0}
    # The JSONL lines stay in Arrow memory (not one Python string each: a 1M-product catalog would hold
    # 1.2 GB of str objects, whose allocation slowed the timed stages beside it).
    parts: list[pl.Series] = []
    locked: dict[str, str] = {}
    chunks = iter(impl.extract(source, db_url, ExtractRequest(mode="full")))
    while True:
        mark = time.perf_counter()
        chunk = next(chunks, None)
        prep["extract"] += time.perf_counter() - mark
        if chunk is None:
            break
        mark = time.perf_counter()
        docs = impl.normalize(chunk, source)
        prep["normalize"] += time.perf_counter() - mark
        mark = time.perf_counter()
        outcome = validate_frame(docs, contract, source=SOURCE_NAME, sync_id="ceiling", locked_types=locked)
        if outcome.valid.height and set(outcome.attribute_types) - set(locked):
            locked = {**infer_attribute_types(outcome.valid), **locked}
        prep["validate"] += time.perf_counter() - mark
        mark = time.perf_counter()
        parts.append(to_payloads(outcome.valid).get_column("payload"))
        prep["to_payloads"] += time.perf_counter() - mark
    lines = pl.concat(parts, rechunk=False) if parts else pl.Series("payload", [], dtype=pl.Utf8)
    name = f"{COLLECTION_PREFIX}ceiling_{uuid.uuid4().hex[:8]}"
    with TypesenseClient(endpoint.url, endpoint.api_key, timeout=300.0) as client:
        resident = _resident_collections(client)
        client.create_collection(typesense_schema(contract, name))
        try:
            failed = 0
            typesense_cpu = _proc_cpu(endpoint.pid)
            started = time.perf_counter()
            for offset in range(0, lines.len(), IMPORT_BATCH):
                batch = lines.slice(offset, IMPORT_BATCH)
                results = client.import_frame(name, batch, action="upsert", batch_size=IMPORT_BATCH)
                failed += results.height - int(results.get_column("success").sum())
            seconds = time.perf_counter() - started
            typesense_cpu = _cpu_delta(typesense_cpu, endpoint.pid)
            count = client.count(name)
            typesense_memory = _proc_memory(endpoint.pid)
        finally:
            client.delete_collection(name)
    documents = lines.len()
    return {
        "documents": documents,
        "failed": failed,
        "searchable": count,
        "seconds": _round(seconds),
        "docs_per_second": _rate(documents, seconds),
        "avg_payload_bytes": round(int(lines.str.len_bytes().sum() or 0) / max(1, documents)),
        "prep_seconds": {key: _round(value) for key, value in prep.items()},
        "prep_rows_per_second": {key: _rate(documents, value) for key, value in prep.items()},
        "normalize_validate_rows_per_second": _rate(documents, prep["normalize"] + prep["validate"]),
        "normalize_validate_payloads_rows_per_second": _rate(
            documents, prep["normalize"] + prep["validate"] + prep["to_payloads"]
        ),
        "typesense_memory_after_import": typesense_memory,
        "typesense_cpu_seconds": typesense_cpu,
        "resident_collections_at_start": resident,
        "typesense_pid": endpoint.pid,
    }


def _resident_collections(client: TypesenseClient) -> int:
    """How many of the benchmark's collections the server holds (a timed import should start beside none).

    An import beside a large collection ran about 10% slower than on an empty server in this project's runs.
    """
    return sum(1 for found in client.list_collections() if str(found.get("name", "")).startswith(COLLECTION_PREFIX))


def _full_sync(spec: ScenarioSpec, endpoint: Endpoint) -> dict[str, Any]:
    """Run the ``full`` scenario in a child process, noting the benchmark's collections the server held before and
    the server's CPU seconds meanwhile."""
    from aac_etl.lib.typesense_client import TypesenseClient

    with TypesenseClient(endpoint.url, endpoint.api_key) as client:
        resident = _resident_collections(client)
    typesense_cpu = _proc_cpu(endpoint.pid)
    full = _in_child(run_scenario, "full", spec)
    full["typesense_cpu_seconds"] = _cpu_delta(typesense_cpu, endpoint.pid)
    full["resident_collections_at_start"] = resident
    full["typesense_pid"] = endpoint.pid
    return full


def _pair(first: str, bare: dict[str, Any], full: dict[str, Any], *, fresh: bool) -> dict[str, Any]:
    """One ceiling/full pair of the report: which ran first, both rates, their ratio, what each started beside and
    on which server process (``fresh``: each on a server restarted empty for it, see :class:`Servers`)."""
    return {
        "first": first,
        "ceiling_docs_per_second": bare["docs_per_second"],
        "full_docs_per_second": full["docs_per_second"],
        "ratio": _ratio(full, bare),
        "resident_collections_at_start": {
            "ceiling": bare["resident_collections_at_start"],
            "full": full["resident_collections_at_start"],
        },
        "fresh_server": fresh,
        "typesense_pids": {"ceiling": bare["typesense_pid"], "full": full["typesense_pid"]},
        "typesense_cpu_seconds": {"ceiling": bare["typesense_cpu_seconds"], "full": full["typesense_cpu_seconds"]},
        # The ceiling prepares the documents again each pair (extract, normalize, validate), later in the process.
        "ceiling_normalize_validate_rows_per_second": bare["normalize_validate_rows_per_second"],
    }


def _ratio(full: dict[str, Any], bare: dict[str, Any]) -> float:
    """The full sync's docs/s as a share of the bare import's (0 when the ceiling imported nothing)."""
    return round(full["docs_per_second"] / bare["docs_per_second"], 3) if bare["docs_per_second"] else 0.0


def _extra_pair(db_url: str, languages: Sequence[str], servers: Servers, workdir: Path, index: int) -> dict[str, Any]:
    """One more ceiling and full sync of the same shop, the full one first on odd ``index`` (see :func:`_pair`).

    The full sync gets its own alias and buffer (a first load, like the size's first full sync). Each import runs
    on a server holding none of the benchmark's collections: the ceiling drops its own, and the full sync's is
    dropped before the ceiling runs; the embedded server is restarted empty before each (:class:`Servers`).
    """
    folder = workdir / f"pair_{index}"
    folder.mkdir()
    slug = f"pair{index}_{uuid.uuid4().hex[:6]}"

    def full_sync() -> dict[str, Any]:
        endpoint = servers.fresh()
        spec = ScenarioSpec(str(folder), db_url, tuple(languages), slug, endpoint.url, endpoint.api_key)
        full = _full_sync(spec, endpoint)
        _drop_alias_collection(endpoint, spec, full.get("collection"))
        return full

    if index % 2:
        full = full_sync()
        bare = ceiling(db_url, languages, servers.fresh())
    else:
        bare = ceiling(db_url, languages, servers.fresh())
        full = full_sync()
    pair = _pair("full" if index % 2 else "ceiling", bare, full, fresh=servers.restartable)
    print(
        f"pair {index:<10} ceiling {bare['docs_per_second']:>10,.0f} docs/s  full {full['docs_per_second']:>10,.0f} "
        f"docs/s  ratio {pair['ratio']:.2f}",
        flush=True,
    )
    return pair


def _drop_alias_collection(endpoint: Endpoint, spec: ScenarioSpec, collection: str | None) -> None:
    """Drop a scenario's collection and its alias: a server that is not restarted keeps neither."""
    from aac_etl.lib.typesense_client import TypesenseClient

    with TypesenseClient(endpoint.url, endpoint.api_key) as client:
        if collection:
            client.delete_collection(collection)
        client.delete_alias(source_config(spec.languages, spec.slug).collection_alias)


def run_size(products: int, options: Options, servers: Servers, base: Path) -> dict[str, Any]:
    """Every measurement for one catalog size.

    Args:
        products: Products in the generated shop.
        options: Languages, seed.
        servers: The Typesense server (restarted empty before each timed import when it is the embedded one).
        base: Working folder (the size gets its own subfolder).

    Returns:
        One entry of the ``sizes`` list of the JSON report.

    """
    from aac_etl.demo.generator import mutate_shop

    workdir = base / f"size_{products}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    db = workdir / "shop.sqlite"
    db_url = f"sqlite:///{db}"
    languages = list(options.languages)
    print(f"\n== {products:,} products, languages {', '.join(languages)}", flush=True)

    generation = _generate(db, products, languages, options.seed)
    print(f"generation      {generation['seconds']:8.2f} s  ({generation['rows']:,} rows, {generation['db_mb']} MB)")

    bare = ceiling(db_url, languages, servers.fresh())
    print(
        f"ceiling         {bare['seconds']:8.2f} s  {bare['docs_per_second']:>10,.0f} docs/s  "
        f"({bare['documents']:,} docs, {bare['avg_payload_bytes']} B avg)",
        flush=True,
    )

    slug = f"p{products}_{uuid.uuid4().hex[:6]}"
    endpoint = servers.fresh()
    spec = ScenarioSpec(str(workdir), db_url, tuple(languages), slug, endpoint.url, endpoint.api_key)
    full = _full_sync(spec, endpoint)
    full["ratio_to_ceiling"] = _ratio(full, bare)
    full["typesense_memory_after_load"] = _proc_memory(endpoint.pid)
    _print_scenario(full, full["seconds"])

    unchanged = _in_child(run_scenario, "unchanged", spec)
    unchanged["share_of_full"] = round(unchanged["seconds"] / full["seconds"], 3)
    _print_scenario(unchanged, full["seconds"])

    mark = time.perf_counter()
    changed_products = mutate_shop(db_url, change_share=CHANGE_SHARE)
    mutate_seconds = time.perf_counter() - mark
    changed = _in_child(run_scenario, "changed_1pct", spec)
    changed["share_of_full"] = round(changed["seconds"] / full["seconds"], 3)
    changed["changed_products"] = changed_products
    changed["expected_documents_sent"] = changed_products * len(languages)
    changed["mutate_seconds"] = _round(mutate_seconds)
    _print_scenario(changed, full["seconds"])

    _drop_alias_collection(endpoint, spec, full.get("collection"))
    # The ratio moves with whatever else the machine runs: more pairs, alternating which runs first, give a median.
    # They come last, on the shop as the 1% change left it.
    pairs = [_pair("ceiling", bare, full, fresh=servers.restartable)]
    pairs += [_extra_pair(db_url, languages, servers, workdir, index) for index in range(1, options.pairs)]
    ratios = [pair["ratio"] for pair in pairs]
    ratio_pairs = {
        "pairs": pairs,
        "ratios": ratios,
        "median": round(statistics.median(ratios), 3),
        "min": min(ratios),
        "max": max(ratios),
    }
    if not options.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "products": products,
        "languages": languages,
        "generation": generation,
        "ceiling": bare,
        "full": full,
        "unchanged": unchanged,
        "changed_1pct": changed,
        "ratio_pairs": ratio_pairs,
        "targets": {
            "ratio_to_ceiling": {"target": f">= {TARGET_RATIO}", "value": ratio_pairs["median"], "pairs": ratios},
            "unchanged_documents_sent": {"target": "== 0", "value": unchanged["documents_sent"]},
            "unchanged_share_of_full": {"target": f"<= {TARGET_UNCHANGED_SHARE}", "value": unchanged["share_of_full"]},
            # The stages' own throughput: normalize and validate on the same documents with the CPU to themselves.
            # In the sync their busy time also holds the time the cores spend on the Typesense import beside them.
            "normalize_validate_rows_per_second": {
                "target": f">= {TARGET_TRANSFORM_RATE}",
                "value": bare["normalize_validate_rows_per_second"],
                "in_sync": full["normalize_validate_rows_per_second"],
                "pairs": [pair["ceiling_normalize_validate_rows_per_second"] for pair in pairs],
            },
        },
    }


def _print_scenario(result: dict[str, Any], full_seconds: float) -> None:
    share = result["seconds"] / full_seconds if full_seconds else 0.0
    stages = "  ".join(f"{k} {v['rows_per_second']:,.0f}/s" for k, v in result["stages"].items())
    extra = f"ratio {result['ratio_to_ceiling']:.2f}" if "ratio_to_ceiling" in result else f"{share:.0%} of full"
    print(
        f"{result['scenario']:<15} {result['seconds']:8.2f} s  {result['docs_per_second']:>10,.0f} docs/s  "
        f"sent {result['documents_sent']:,}  {extra}  peak {result['peak_rss_mb']:,.0f} MB",
        flush=True,
    )
    print(f"                {stages}", flush=True)


# ------------------------------------------------------------------------------------------------ report


def cost_growth(sizes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Full-sync seconds, docs/s and peak MB per size, with growth factors against the previous size."""
    rows: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for entry in sorted(sizes, key=lambda e: e["products"]):
        full = entry["full"]
        row: dict[str, Any] = {
            "products": entry["products"],
            "documents": full["documents"],
            "seconds": full["seconds"],
            "docs_per_second": full["docs_per_second"],
            "peak_rss_mb": full["peak_rss_mb"],
            "unchanged_seconds": entry["unchanged"]["seconds"],
            "size_growth": None,
            "seconds_growth": None,
            "peak_rss_growth": None,
        }
        if previous is not None:
            row["size_growth"] = round(row["documents"] / max(1, previous["documents"]), 2)
            row["seconds_growth"] = round(row["seconds"] / previous["seconds"], 2) if previous["seconds"] else None
            row["peak_rss_growth"] = (
                round(row["peak_rss_mb"] / previous["peak_rss_mb"], 2) if previous["peak_rss_mb"] else None
            )
        rows.append(row)
        previous = row
    return rows


def _ratio_pairs(entry: dict[str, Any]) -> str | None:
    pairs = entry.get("ratio_pairs")
    if not pairs:
        return None
    return f"{pairs['median']:.3f} ({', '.join(f'{r:.3f}' for r in pairs['ratios'])})"


def _sync_load_seconds(entry: dict[str, Any]) -> str:
    full = entry["full"]
    load = f"{full['load_seconds']:.1f}" if full.get("load_run", True) else "none"
    return f"{full['sync_seconds']:.1f} / {load}"


def _typesense_cpu(entry: dict[str, Any]) -> str | None:
    """Typesense's CPU seconds while it imported the ceiling and the full sync (same documents)."""
    bare, full = entry["ceiling"].get("typesense_cpu_seconds"), entry["full"].get("typesense_cpu_seconds")
    return None if bare is None or full is None else f"{bare:.1f} / {full:.1f}"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows)
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The markdown summary of a report."""
    meta = report["meta"]
    sizes = sorted(report["sizes"], key=lambda e: e["products"])
    restarted = RESTARTED_NOTE if meta.get(RESTARTED_KEY) else ""
    out = [
        "# aac_etl benchmark: pipeline vs bare Typesense",
        "",
        f"{meta['finished_at']} · {meta['host']['cpus']} cores · {meta['host']['memory_gb']} GB RAM · "
        f"Python {meta['host']['python']} · Typesense at {meta['typesense_url']}{restarted} · "
        f"import batches of {IMPORT_BATCH:,}",
        "",
        "## Results",
        "",
    ]
    header = ["metric", *(f"{e['products']:,} products ({'+'.join(e['languages'])})" for e in sizes)]
    metric_rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("documents", lambda e: e["full"]["documents"]),
        ("generation s (not in sync)", lambda e: e["generation"]["seconds"]),
        ("ceiling: bare import s", lambda e: e["ceiling"]["seconds"]),
        ("ceiling: docs/s", lambda e: e["ceiling"]["docs_per_second"]),
        ("full sync+load s", lambda e: e["full"]["seconds"]),
        ("… sync job s / load job s (none: nothing pending)", _sync_load_seconds),
        ("full: docs/s", lambda e: e["full"]["docs_per_second"]),
        (f"full: ratio to ceiling (target ≥ {TARGET_RATIO})", lambda e: e["full"]["ratio_to_ceiling"]),
        ("full: ratio, median of the ceiling/full pairs (each pair)", _ratio_pairs),
        ("Typesense CPU s: bare import / full sync+load", _typesense_cpu),
        ("full: CPU s of the sync+load process and its GX worker", lambda e: e["full"].get("cpu_seconds")),
        ("full: peak RSS MB (sync+load process and its GX worker)", lambda e: e["full"]["peak_rss_mb"]),
        ("full: peak RSS MB of the sync+load process alone", lambda e: e["full"].get("peak_rss_mb_process")),
        (
            "full: s the sync waited for the GX suite (memory budget)",
            lambda e: e["full"].get("waited_for_great_expectations_seconds"),
        ),
        ("full: documents sent by the sync's streaming build", lambda e: e["full"].get("sent_by_sync", 0)),
        (
            f"normalize+validate rows/s on their own (target ≥ {TARGET_TRANSFORM_RATE:,})",
            lambda e: e["ceiling"].get("normalize_validate_rows_per_second"),
        ),
        (
            "normalize+validate rows/s on their own, each pair's ceiling (the first: the value above)",
            lambda e: ", ".join(
                f"{rate:,.0f}" for rate in e["targets"]["normalize_validate_rows_per_second"].get("pairs", [])
            ),
        ),
        (
            "normalize+validate rows/s in the sync (busy time, the import running beside)",
            lambda e: e["full"].get("normalize_validate_rows_per_second"),
        ),
        (
            "normalize+validate+payloads rows/s in the sync",
            lambda e: e["full"].get("normalize_validate_payloads_rows_per_second"),
        ),
        (
            "normalize+validate+payloads rows/s, bare library",
            lambda e: e["ceiling"].get("normalize_validate_payloads_rows_per_second"),
        ),
        ("unchanged: documents sent (target 0)", lambda e: e["unchanged"]["documents_sent"]),
        ("unchanged: s", lambda e: e["unchanged"]["seconds"]),
        (
            f"unchanged: share of full (target ≤ {TARGET_UNCHANGED_SHARE:.0%})",
            lambda e: f"{e['unchanged']['share_of_full']:.1%}",
        ),
        ("unchanged: peak RSS MB", lambda e: e["unchanged"]["peak_rss_mb"]),
        ("unchanged: products skipped by fingerprint", lambda e: e["unchanged"].get("skipped_unchanged_records", 0)),
        ("1% changed: products changed", lambda e: e["changed_1pct"]["changed_products"]),
        (
            "1% changed: documents sent (expected)",
            lambda e: f"{e['changed_1pct']['documents_sent']:,} ({e['changed_1pct']['expected_documents_sent']:,})",
        ),
        ("1% changed: s", lambda e: e["changed_1pct"]["seconds"]),
        ("1% changed: share of full", lambda e: f"{e['changed_1pct']['share_of_full']:.1%}"),
        ("1% changed: peak RSS MB (process and its GX worker)", lambda e: e["changed_1pct"]["peak_rss_mb"]),
        ("1% changed: peak RSS MB of the process alone", lambda e: e["changed_1pct"].get("peak_rss_mb_process")),
        (
            "Typesense RSS after full load MB",
            lambda e: (e["full"].get("typesense_memory_after_load") or {}).get("vmrss_mb"),
        ),
    ]
    out += _table(header, [[label, *(get(e) for e in sizes)] for label, get in metric_rows])
    out += ["", "## Cost growth (full sync + load)", ""]
    out += _table(
        ["products", "documents", "seconds", "docs/s", "peak MB", "× size", "× seconds", "× peak MB"],
        [
            [
                r["products"],
                r["documents"],
                r["seconds"],
                r["docs_per_second"],
                r["peak_rss_mb"],
                r["size_growth"],
                r["seconds_growth"],
                r["peak_rss_growth"],
            ]
            for r in report["cost_growth"]
        ],
    )
    for entry in sizes:
        out += ["", f"## Stages of the full sync, {entry['products']:,} products", ""]
        rows: list[list[Any]] = []
        for scenario in SCENARIOS:
            for stage, values in entry[scenario]["stages"].items():
                rows.append(
                    [
                        scenario,
                        stage,
                        values["rows"],
                        values["seconds"],
                        values["rows_per_second"],
                    ]
                )
        out += _table(["run", "stage", "rows", "busy s", "rows/s"], rows)
        out += [
            "",
            "Stages overlap inside the one sync step (extract in a reader thread, the streaming import in its "
            "own), so busy seconds do not add up to the wall time. Sync step wall s: "
            + ", ".join(f"{s} {entry[s]['steps'].get(SYNC_STEP, 0.0):.2f}" for s in SCENARIOS)
            + ".",
        ]
        prep = entry["ceiling"]["prep_seconds"]
        out += [
            "",
            "Bare library, same documents (ceiling preparation): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in prep.items())
            + ".",
            "",
            "Call profile (seconds / calls; first call in parentheses):",
            "",
        ]
        labels = sorted({label for scenario in SCENARIOS for label in entry[scenario]["profile"]})
        prof_rows: list[list[Any]] = []
        for label in labels:
            cells: list[Any] = [label]
            for scenario in SCENARIOS:
                item = entry[scenario]["profile"].get(label)
                cells.append(
                    "-"
                    if item is None
                    else f"{item['seconds']:.2f} / {item['calls']} ({item['first_call_seconds']:.2f})"
                )
            prof_rows.append(cells)
        out += _table(["call", *SCENARIOS], prof_rows)
        out += [
            "",
            "Run overhead outside steps (s): "
            + ", ".join(
                f"{s} sync {entry[s]['sync_run_overhead_seconds']:.2f} / "
                f"load {entry[s]['load_run_overhead_seconds']:.2f}"
                for s in SCENARIOS
            ),
        ]
    return "\n".join(out) + "\n"


def _merge(out: Path, sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    path = out / "latest.json"
    if not path.exists():
        return sizes
    fresh = {entry["products"] for entry in sizes}
    kept = [entry for entry in json.loads(path.read_text()).get("sizes", []) if entry["products"] not in fresh]
    return [*kept, *sizes]


def write_report(out: Path, sizes: list[dict[str, Any]], servers: Servers, *, merge: bool) -> dict[str, Any]:
    """Write ``latest.json`` and ``latest.md`` into ``out`` and return the report."""
    out.mkdir(parents=True, exist_ok=True)
    endpoint = servers.endpoint
    all_sizes = sorted(_merge(out, sizes) if merge else sizes, key=lambda e: e["products"])
    report = {
        "meta": {
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "host": {
                "cpus": os.cpu_count(),
                "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "typesense_url": endpoint.url,
            "typesense_pid_known": endpoint.pid is not None,
            RESTARTED_KEY: servers.restartable,
            "typesense_memory_end": _proc_memory(endpoint.pid),
            "import_batch": IMPORT_BATCH,
            "change_share": CHANGE_SHARE,
        },
        "sizes": all_sizes,
        "cost_growth": cost_growth(all_sizes),
    }
    (out / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "latest.md").write_text(render_markdown(report))
    return report


# ------------------------------------------------------------------------------------------------ entry point


@contextlib.contextmanager
def typesense_servers(url: str | None, api_key: str | None) -> Iterator[Servers]:
    """The server under test: the given one, ``TYPESENSE_URL``, or an embedded one started for the run (restartable)."""
    url = url or os.environ.get("TYPESENSE_URL")
    if url:
        yield Servers(Endpoint(url.rstrip("/"), api_key or os.environ.get("TYPESENSE_API_KEY", "")))
        return
    from aac_etl.lib.typesense_server import ensure_local_server, stop_local_server

    with tempfile.TemporaryDirectory(prefix="bench_typesense_") as state:
        server = ensure_local_server(Path(state))
        try:
            yield Servers(Endpoint(server.url, server.api_key_value, server.pid), (Path(state), server.data_dir))
        finally:
            stop_local_server(Path(state))


def run(options: Options, servers: Servers) -> dict[str, Any]:
    """Run every size and write the report.

    Args:
        options: Sizes, languages, output folder.
        servers: The Typesense server.

    Returns:
        The report written to ``latest.json``.

    """
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if options.workdir is not None:
            base = options.workdir
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aac_etl_bench_")))
        for products in options.sizes:
            results.append(run_size(products, options, servers, base))
            write_report(options.out, results, servers, merge=options.merge)
    report = write_report(options.out, results, servers, merge=options.merge)
    print(f"\nwrote {options.out / 'latest.json'} and {options.out / 'latest.md'}")
    return report


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, str | None, str | None]:
    """Parse the command line into options and the Typesense URL/key (None: environment or embedded)."""
    parser = argparse.ArgumentParser(description="aac_etl end-to-end benchmark against bare Typesense.")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="products per shop")
    parser.add_argument("--languages", nargs="+", default=list(DEFAULT_LANGUAGES), help="OpenCart language codes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of latest.json / latest.md")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep each size's shop, buffer and run extracts")
    parser.add_argument("--merge", action="store_true", help="merge into the sizes already in latest.json")
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="ceiling/full pairs per size for the ratio, alternating which runs first (the median is the result)",
    )
    parser.add_argument("--typesense-url", default=None, help="a running Typesense (default: TYPESENSE_URL)")
    parser.add_argument(
        "--typesense-key",
        default=None,
        help="its admin key, as --typesense-key=KEY (default: TYPESENSE_API_KEY, kept out of the process list)",
    )
    args = parser.parse_args(argv)
    if any(size < 1 for size in args.sizes):
        parser.error("sizes must be positive")
    if args.pairs < 1:
        parser.error("pairs must be positive")
    options = Options(
        sizes=tuple(args.sizes),
        languages=tuple(args.languages),
        out=args.out,
        seed=args.seed,
        workdir=args.workdir,
        keep=args.keep,
        merge=args.merge,
        pairs=args.pairs,
    )
    return options, args.typesense_url, args.typesense_key


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line entry point."""
    options, url, api_key = parse_args(argv)
    with typesense_servers(url, api_key) as servers:
        restarted = RESTARTED_NOTE if servers.restartable else ""
        sizes = ", ".join(f"{s:,}" for s in options.sizes)
        print(f"Typesense {servers.endpoint.url}{restarted}; sizes {sizes}", flush=True)
        return run(options, servers)


if __name__ == "__main__":
    main(sys.argv[1:])
