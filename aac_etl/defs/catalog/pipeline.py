"""One sync of one source, chunk by chunk: extract -> skip unchanged -> normalize -> validate -> payloads.

The stages of a chunk run one after the other, but the chunks overlap: the extract of the next chunk runs in a
reader thread while the current one is normalized and validated, and when the alias needs a new collection, a
:class:`~aac_etl.lib.loader.ShadowBuild` imports the payloads into it while the next chunks are made. Memory is
bounded by a few chunks whatever the catalog size: the raw chunks go to Parquet (for replays), the payloads to
Parquet parts the buffer stage reads back one at a time, and only bounded samples stay for the checks.

Nothing here decides what a Dagster asset is: :mod:`aac_etl.defs.catalog.assets` calls :class:`SourceSync` and
yields what it returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import polars as pl

from aac_etl import settings
from aac_etl.defs.search.assets import load_metadata
from aac_etl.lib import staging
from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.contract import Contract, SuiteResult, load_contract, typesense_schema
from aac_etl.lib.documents import to_payloads
from aac_etl.lib.loader import LoadStats, ShadowBuild, build_in_progress, prefetch, rebuild_reason
from aac_etl.lib.process import detached, peak_rss_mb, rss_mb
from aac_etl.lib.redact import redact
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.suite_worker import SuiteWorker
from aac_etl.lib.typesense_client import TypesenseClient
from aac_etl.lib.validate import (
    ValidationOutcome,
    aggregate_diagnostics,
    circuit_breaker,
    diagnostics,
    infer_attribute_types,
    summarize_outcomes,
    validate_frame,
)
from aac_etl.sources.base import ExtractRequest, RawChunk, Source

DELTA_OVERLAP = timedelta(minutes=5)
QUARANTINE_SAMPLE_ROWS = 20
GX_SAMPLE_ROWS = 2_000
"""Rows of new or changed documents the suite runs on (every row passes the contract's own vectorized checks first).
The worker peaks at about 380 MB on 2,000 rows, 409 MB on 5,000: its run overlaps the first chunks of a first load,
where the sync's memory peaks."""
GX_MIN_SAMPLE_ROWS = 500
"""A sample this large goes to the suite as soon as its worker is ready, instead of waiting for GX_SAMPLE_ROWS: a
nightly sync with few changes would otherwise keep the idle worker (about 260 MB) for most of the run."""
PYDANTIC_SAMPLE_ROWS = 500
PYDANTIC_ROWS_PER_CHUNK = 100
EXTRACT_READ_AHEAD = 2
ENQUEUE_TRANSACTION_ROWS = 100_000
"""Payload rows per buffer transaction: few checkpoints, yet a DuckDB transaction's memory stays bounded."""
EMPTY_PAYLOADS = pl.DataFrame(schema={"external_id": pl.Utf8, "payload": pl.Utf8, "content_hash": pl.Utf8})
FINGERPRINT_SCHEMA = {"record_id": pl.Utf8, "external_id": pl.Utf8, "fingerprint": pl.UInt64}
TRANSFORM_MODULES = ("contract.py", "documents.py", "normalize.py", "text.py", "validate.py")
"""Modules of ``aac_etl/lib`` whose code shapes the documents (folded into :func:`code_salt`)."""
STAGES = ("extract", "fingerprint", "normalize", "validate", "payloads", "buffer")


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


@cache
def code_salt() -> int:
    """Return the 64-bit salt folded into every stored fingerprint: the contract and the transform code.

    Any edit of the contract file or of the code that turns raw rows into payloads (``aac_etl/sources`` and
    :data:`TRANSFORM_MODULES`) changes the salt, so every record is normalized again after an upgrade instead of
    keeping documents made by older code.
    """
    package = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256(settings.contract_path().read_bytes())
    paths = [*sorted((package / "sources").rglob("*.py")), *(package / "lib" / name for name in TRANSFORM_MODULES)]
    for path in paths:
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return int.from_bytes(digest.digest()[:8], "little")


class SafetyGateError(dg.Failure):
    """A full sync would delete more documents than the configured share allows."""


@dataclasses.dataclass
class StageClock:
    """Busy seconds and rows of one stage over the whole sync."""

    seconds: float = 0.0
    rows: int = 0


class SourceSync:
    """State and steps of one sync run of one source (see the module docstring)."""

    def __init__(
        self,
        source: SourceConfig,
        impl: Source,
        store: BufferStore,
        sync_id: str,
        *,
        mode: Literal["full", "delta"],
        replay_run_id: str | None = None,
        allow_drop: bool = False,
        skip_unchanged: bool = True,
        log: Any = None,
    ) -> None:
        """Set up a sync; nothing is read or written before :meth:`prepare`."""
        self.source = source
        self.impl = impl
        self.store = store
        self.sync_id = sync_id
        self.mode: Literal["full", "delta"] = mode
        self.replay_run_id = replay_run_id
        self.allow_drop = allow_drop
        self.skip_unchanged = skip_unchanged
        self.log = log
        self.alias = source.collection_alias
        self.validated_key = dg.AssetKey([source.name, "validated"])
        self.contract: Contract = load_contract()
        self.since: datetime | None = None
        self.clocks = {stage: StageClock() for stage in STAGES}
        self.table_rows: dict[str, int] = {}
        self.chunks = 0
        self.extract_root: Path | None = None
        self.payload_parts: list[tuple[Path, int]] = []
        """Payload Parquet files with their row counts, in chunk order."""
        self.payload_rows = 0
        self._payload_root = staging.stage_path(sync_id, source.name, "validated")
        self.locales: dict[str, int] = {}
        self.documents = 0
        self.outcomes: list[ValidationOutcome] = []
        self.diag_parts: list[dict[str, object]] = []
        self.changed_total = 0
        self.gx_sample: list[pl.DataFrame] = []
        self.pydantic_sample: list[pl.DataFrame] = []
        self.valid_ids: list[pl.Series] = []
        self.stored_types: dict[str, str] = {}
        self.locked: dict[str, str] = {}
        self.fingerprinted: bool | None = None
        """Whether the source has stored fingerprints (None: unchanged records are not skipped). They stay in the
        buffer database; each chunk reads its own records' (see :meth:`_skip_unchanged`)."""
        self.skipped_records = 0
        self.skipped_parts: list[Path] = []
        """Parquet files of the stored fingerprint rows (record_id, external_id, fingerprint) of the documents skipped
        as unchanged, one per chunk: catalog-sized at a nightly sync, so on disk rather than in memory."""
        self.skipped_documents = 0
        self.new_fingerprints: list[pl.DataFrame] = []
        self.processed_records: list[pl.Series] = []
        self.shadow: ShadowBuild | None = None
        self.shadow_reason: str | None = None
        self.summary: ValidationOutcome | None = None
        self._client: TypesenseClient | None = None
        self._gx_worker: SuiteWorker | None = None
        self._gx_future: Future[SuiteResult] | None = None
        self.gx_wait_seconds = 0.0
        self._started = time.perf_counter()
        self._checked_at = 0.0
        self._buffered_at = 0.0
        self.peaks: dict[str, float] = {}
        """Peak RSS (MB) reached by the end of each phase: where memory goes, in the run's metadata."""
        self._alias_empty = False
        """Whether the alias held no live document when the sync started: then every payload is new."""
        self._finished = False

    # ------------------------------------------------------------------ setup

    def _info(self, message: str, *args: object) -> None:
        if self.log is not None:
            self.log.info(message % args if args else message)

    def _warning(self, message: str, *args: object) -> None:
        if self.log is not None:
            self.log.warning(message % args if args else message)

    def prepare(self) -> None:
        """Resolve the mode (a delta without an earlier success runs full), record the start, load fingerprints."""
        name = self.source.name
        if self.mode == "delta":
            last = self.store.last_sync(name, status="succeeded")
            if last is None:
                self.mode = "full"
                self._info("No earlier successful sync of %s: running this delta as a full sync.", name)
            else:
                started_at = last.started_at or datetime.now(UTC).replace(tzinfo=None)
                self.since = started_at - DELTA_OVERLAP
        self.store.start_sync(self.sync_id, name, self.mode)
        staging.run_dir(self.sync_id, name, "validated")
        self.stored_types = self.store.get_attribute_types(self.alias)
        self.locked = dict(self.stored_types)
        if self.skip_unchanged and hasattr(self.impl, "fingerprints"):
            self.fingerprinted = self.store.has_source_fingerprints(name)
        self._alias_empty = self.store.count_live(self.alias) == 0

    def open_shadow_build(self, client_factory: Callable[[], TypesenseClient], *, reindex: bool) -> None:
        """Start building a new collection alongside the sync when a full sync finds the alias needs one.

        Args:
            client_factory: Returns a Typesense client (the resource's ``client``).
            reindex: Build a new collection even when the current one is up to date.

        """
        if self.mode != "full":
            return
        try:
            client = client_factory()
            schema = typesense_schema(self.contract, self.alias)
            reason, current = rebuild_reason(self.store, client, self.alias, schema, reindex=reindex)
        except Exception as exc:
            self._warning(
                "Typesense is not reachable (%s): this sync only fills the buffer; the load job builds the index.",
                redact(str(exc)),
            )
            return
        if reason is None or build_in_progress(self.store.get_index_state(self.alias), current):
            client.close()
            return
        self._client = client
        self.shadow = ShadowBuild(self.store, client, self.alias, schema, current=current)
        self.shadow.start()
        self.shadow_reason = reason
        self._info("%s: %s; building %s while the sync runs.", self.alias, reason, self.shadow.name)

    # ------------------------------------------------------------------ chunks

    def _extracted(self, dsn: str | None) -> Iterator[RawChunk]:
        """Yield raw chunks (from the source, or from an earlier run's extract for a replay), timing the stage."""
        clock = self.clocks["extract"]
        if self.replay_run_id:
            replayed = staging.find_extract(self.replay_run_id, self.source.name)
            self.extract_root = replayed.root
            for raw in replayed.raw_chunks():
                self._count(raw)
                yield raw
            return
        writer = staging.ChunkWriter(staging.run_dir(self.sync_id, self.source.name, "extract"))
        self.extract_root = writer.root
        request = ExtractRequest(mode=self.mode, since=self.since, chunk_rows=settings.SYNC_CHUNK_ROWS)
        chunks = iter(self.impl.extract(self.source, dsn, request))
        while True:
            started = time.perf_counter()
            raw = next(chunks, None)
            if raw is None:
                clock.seconds += time.perf_counter() - started
                return
            writer.write(raw)
            clock.seconds += time.perf_counter() - started
            self._count(raw)
            yield raw

    def _count(self, raw: RawChunk) -> None:
        self.chunks += 1
        for table, frame in raw.items():
            self.table_rows[table] = self.table_rows.get(table, 0) + frame.height
        main = raw.get(self.impl.main_table)
        self.clocks["extract"].rows += main.height if main is not None else 0

    def process(self, dsn: str | None) -> None:
        """Run every chunk through the stages, then summarize the validation (quarantine written here).

        Args:
            dsn: The source database's connection string (None for file sources).

        """
        self.peaks["prepared"] = peak_rss_mb()
        if self.mode == "full" and self.fingerprinted is False:
            # A first load: every document is new, so the suite will run. Its worker starts now, while this
            # process is still small, and is gone (with its memory) before the chunks in flight peak.
            self._gx_worker = SuiteWorker()
        for raw in prefetch(self._extracted(dsn), depth=EXTRACT_READ_AHEAD, name=f"extract-{self.source.name}"):
            self._chunk(raw)
        self.peaks["chunks_done"] = peak_rss_mb()
        self.store.update_sync(self.sync_id, extracted=self.clocks["extract"].rows)
        summary = self._summary()
        if summary.quarantine.height:
            self.store.add_quarantine(summary.quarantine)
        self.store.update_sync(
            self.sync_id, valid=self.payload_rows + self._skipped_doc_count(), quarantined=summary.invalid_rows
        )

    def _skip_unchanged(self, raw: RawChunk) -> tuple[RawChunk, pl.DataFrame | None]:
        """Drop records whose fingerprint matches the stored one; return the rest and their fingerprints."""
        if self.fingerprinted is None:
            return raw, None
        clock = self.clocks["fingerprint"]
        started = time.perf_counter()
        fingerprint = getattr(self.impl, "fingerprints")  # noqa: B009 (optional protocol method)
        prints: pl.DataFrame = fingerprint(raw, self.source).with_columns(
            pl.col("fingerprint").cast(pl.UInt64) ^ pl.lit(code_salt(), dtype=pl.UInt64)
        )
        clock.rows += prints.height
        known = (
            self.store.source_fingerprints(self.source.name, prints.get_column("record_id"))
            if self.fingerprinted
            else pl.DataFrame(schema=FINGERPRINT_SCHEMA)
        )
        same = prints.join(known.select("record_id", "fingerprint"), on=["record_id", "fingerprint"], how="semi")
        if same.height:
            same = same.unique("record_id")
            skipped = known.join(same.select("record_id"), on="record_id", how="semi")
            path = self._payload_root / f"skipped-{len(self.skipped_parts):05d}.parquet"
            skipped.write_parquet(path, compression="zstd", compression_level=1, statistics=False)
            self.skipped_parts.append(path)
            self.skipped_documents += skipped.height
            self.skipped_records += same.height
            prints = prints.join(same.select("record_id"), on="record_id", how="anti")
            raw = getattr(self.impl, "subset")(raw, prints.get_column("record_id"))  # noqa: B009
        clock.seconds += time.perf_counter() - started
        return raw, prints

    def _tend_suite_worker(self) -> None:
        """Send a big-enough sample to a ready worker; wait for its result while the two exceed the memory budget.

        The worker's import takes a few seconds and about 260 MB; the chunk pipeline (read-ahead, import queue)
        fills meanwhile. Over ``settings.SUITE_OVERLAP_BUDGET_MB`` together, the sync lets the worker finish (and
        give its memory back) first, also while the worker is still importing (the sample then goes to it at once:
        it answers when its import is done); below it, both go on side by side. A failed suite is reported by the
        check.
        """
        worker = self._gx_worker
        if worker is None:
            return
        enough = sum(f.height for f in self.gx_sample) >= GX_MIN_SAMPLE_ROWS
        over = rss_mb() + rss_mb(worker.pid) > settings.SUITE_OVERLAP_BUDGET_MB
        if self._gx_future is None and enough and (over or worker.ready()):
            self._start_gx()
        future = self._gx_future
        if future is None or future.done() or not over:
            return
        started = time.perf_counter()
        wait([future])
        self.gx_wait_seconds += time.perf_counter() - started

    def _chunk(self, raw: RawChunk) -> None:
        self._tend_suite_worker()
        raw, prints = self._skip_unchanged(raw)
        if prints is not None and prints.height == 0:
            return
        clocks = self.clocks
        started = time.perf_counter()
        docs = self.impl.normalize(raw, self.source)
        clocks["normalize"].seconds += time.perf_counter() - started
        clocks["normalize"].rows += docs.height
        self.documents += docs.height
        if "locale" in docs.columns and docs.height:
            for locale, count in docs.group_by("locale").len().iter_rows():
                self.locales[str(locale)] = self.locales.get(str(locale), 0) + int(count)

        started = time.perf_counter()
        outcome = validate_frame(
            docs, self.contract, source=self.source.name, sync_id=self.sync_id, locked_types=self.locked
        )
        valid = outcome.valid
        if valid.height:
            # The first batch of a fresh index (or a new attribute) locks the attribute's type; it is persisted
            # only if this sync passes its checks.
            for key, kind in infer_attribute_types(valid).items():
                self.locked.setdefault(key, kind)
            self.valid_ids.append(valid.get_column("external_id"))
        self.diag_parts.append(diagnostics(docs, outcome))
        kept = dataclasses.replace(outcome, valid=pl.DataFrame(), quarantine=detached(outcome.quarantine))
        self.outcomes.append(kept)
        clocks["validate"].seconds += time.perf_counter() - started
        clocks["validate"].rows += docs.height

        started = time.perf_counter()
        payloads = to_payloads(valid) if valid.height else EMPTY_PAYLOADS
        if payloads.height:
            if self.shadow is not None:
                # Not timed as payload work: waiting here is Typesense's back-pressure (see the build's metadata).
                clocks["payloads"].seconds += time.perf_counter() - started
                self.shadow.feed(payloads)
                started = time.perf_counter()
            path = self._payload_root / f"payload-{len(self.payload_parts):05d}.parquet"
            payloads.write_parquet(path, compression="zstd", compression_level=1, statistics=False)
            self.payload_parts.append((path, payloads.height))
            self.payload_rows += payloads.height
        clocks["payloads"].seconds += time.perf_counter() - started
        clocks["payloads"].rows += payloads.height

        if payloads.height:
            changed = self._changed_ids(payloads)
            self.changed_total += changed.len()
            self._sample_for_checks(valid, changed)
        if prints is not None and "_record_id" in docs.columns:
            self._remember_fingerprints(docs, valid, prints)

    def _changed_ids(self, payloads: pl.DataFrame) -> pl.Series:
        """External ids of payloads the buffer does not hold live with the same content (new or changed).

        The buffer compares the chunk's keys in the database (one query per chunk): a copy of the alias's live
        keys in this process cost about 200 MB at a million documents. The enqueue makes the authoritative
        comparison in its own transaction. An alias without live documents (a first load) needs no query.
        """
        if self._alias_empty:
            return payloads.get_column("external_id")
        return self.store.changed_external_ids(self.alias, payloads)

    def _sample_for_checks(self, valid: pl.DataFrame, changed: pl.Series) -> None:
        """Keep bounded samples: changed documents for Great Expectations, any valid ones for pydantic."""
        have = sum(frame.height for frame in self.pydantic_sample)
        if have < PYDANTIC_SAMPLE_ROWS:
            self.pydantic_sample.append(detached(valid.head(min(PYDANTIC_ROWS_PER_CHUNK, PYDANTIC_SAMPLE_ROWS - have))))
        if changed.len() == 0 or self._gx_future is not None:
            return
        room = GX_SAMPLE_ROWS - sum(frame.height for frame in self.gx_sample)
        if room <= 0:
            return
        self.gx_sample.append(detached(valid.filter(pl.col("external_id").is_in(changed.implode())).head(room)))
        # The worker process imports great_expectations from the first changed chunk on, and runs the suite as
        # soon as the sample is full (or big enough once the worker is ready, see _tend_suite_worker).
        if self._gx_worker is None:
            self._gx_worker = SuiteWorker()
        if room - self.gx_sample[-1].height <= 0:
            self._start_gx()

    def _start_gx(self) -> None:
        """Send the sample to the suite worker (started by :meth:`_sample_for_checks`)."""
        if self._gx_future is not None or self._gx_worker is None or not self.gx_sample:
            return
        sample = pl.concat(self.gx_sample, how="diagonal_relaxed")
        self.gx_sample = []
        self._gx_future = self._gx_worker.submit(sample, self.contract, max_rows=GX_SAMPLE_ROWS)

    def _remember_fingerprints(self, docs: pl.DataFrame, valid: pl.DataFrame, prints: pl.DataFrame) -> None:
        """Keep the fingerprints of records whose every document passed (the others are processed again)."""
        status = docs.select(
            pl.col("_record_id").alias("record_id"),
            pl.col("external_id"),
            pl.col("external_id").is_in(valid.get_column("external_id").implode()).fill_null(False).alias("ok"),
        )
        failing = status.filter(~pl.col("ok")).select("record_id").unique()
        kept = status.join(failing, on="record_id", how="anti").join(prints, on="record_id", how="inner")
        self.new_fingerprints.append(kept.select(FINGERPRINT_SCHEMA.keys()).cast(FINGERPRINT_SCHEMA))  # type: ignore[arg-type]
        self.processed_records.append(prints.get_column("record_id"))

    def _skipped_doc_count(self) -> int:
        return self.skipped_documents

    # ------------------------------------------------------------------ results

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started

    def extract_result(self) -> dg.MaterializeResult:
        """Materialization of the extract asset."""
        clock = self.clocks["extract"]
        records = clock.rows
        return dg.MaterializeResult(
            asset_key=[self.source.name, "extract"],
            metadata={
                "mode": self.mode,
                "records": dg.MetadataValue.int(records),
                "chunks": dg.MetadataValue.int(self.chunks),
                "seconds": dg.MetadataValue.float(round(clock.seconds, 3)),
                "records_per_second": dg.MetadataValue.float(_rate(records, clock.seconds)),
                "unchanged_records_skipped": dg.MetadataValue.int(self.skipped_records),
                "fingerprint_seconds": dg.MetadataValue.float(round(self.clocks["fingerprint"].seconds, 3)),
                "replay_of": self.replay_run_id or "",
                "path": dg.MetadataValue.path(str(self.extract_root or "")),
                **{f"rows_{t}": dg.MetadataValue.int(n) for t, n in sorted(self.table_rows.items())},
            },
        )

    def normalized_result(self) -> dg.MaterializeResult:
        """Materialization of the normalized asset (documents made by this run; skipped records excluded)."""
        clock = self.clocks["normalize"]
        return dg.MaterializeResult(
            asset_key=[self.source.name, "normalized"],
            metadata={
                "documents": dg.MetadataValue.int(self.documents),
                "documents_unchanged_skipped": dg.MetadataValue.int(self._skipped_doc_count()),
                "seconds": dg.MetadataValue.float(round(clock.seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(_rate(clock.rows, clock.seconds)),
                **{f"documents_{loc}": dg.MetadataValue.int(n) for loc, n in sorted(self.locales.items())},
            },
        )

    def validated_result(self) -> dg.MaterializeResult:
        """Materialization of the validated asset."""
        summary = self._summary()
        report = aggregate_diagnostics(self.diag_parts)
        validate, payloads = self.clocks["validate"], self.clocks["payloads"]
        both = validate.seconds + payloads.seconds
        return dg.MaterializeResult(
            asset_key=self.validated_key,
            metadata={
                "records_in": dg.MetadataValue.int(summary.input_rows),
                "valid": dg.MetadataValue.int(self.payload_rows + self._skipped_doc_count()),
                "valid_unchanged_skipped": dg.MetadataValue.int(self._skipped_doc_count()),
                "quarantined": dg.MetadataValue.int(summary.invalid_rows),
                "invalid_share": dg.MetadataValue.float(round(summary.invalid_share, 6)),
                "new_or_changed": dg.MetadataValue.int(self.changed_total),
                "duplicates": dg.MetadataValue.int(int(report["duplicates"])),
                "seconds": dg.MetadataValue.float(round(both, 3)),
                "rows_per_second": dg.MetadataValue.float(_rate(validate.rows, both)),
                "contract_rows": dg.MetadataValue.int(validate.rows),
                "contract_seconds": dg.MetadataValue.float(round(validate.seconds, 3)),
                "payload_rows": dg.MetadataValue.int(payloads.rows),
                "payload_seconds": dg.MetadataValue.float(round(payloads.seconds, 3)),
                "waited_for_great_expectations_seconds": dg.MetadataValue.float(round(self.gx_wait_seconds, 3)),
                **{f"rule_{r}": dg.MetadataValue.int(n) for r, n in sorted(summary.rule_counts.items())},
                **{f"locale_{loc}": dg.MetadataValue.int(int(n)) for loc, n in sorted(dict(report["locales"]).items())},
                "diagnostics": dg.MetadataValue.md(str(report["markdown"])),
            },
        )

    def _summary(self) -> ValidationOutcome:
        """All chunks' outcomes merged; documents of records skipped as unchanged count as valid input.

        They passed the contract when they were made and nothing about them changed, so the circuit breaker's
        share is over the whole catalog, not over the few records that were normalized again.
        """
        if self.summary is None:
            merged = summarize_outcomes(self.outcomes)
            self.summary = dataclasses.replace(merged, input_rows=merged.input_rows + self._skipped_doc_count())
        return self.summary

    def check_results(self) -> list[dg.AssetCheckResult]:
        """Evaluate the three blocking checks of the validated asset; persist attribute types when all pass."""
        summary = self._summary()
        breaker = circuit_breaker(summary, self.source.max_invalid_share)
        results = [
            dg.AssetCheckResult(
                asset_key=self.validated_key,
                check_name="contract_invalid_share",
                passed=breaker is None,
                description=breaker,
                metadata={
                    "invalid_share": dg.MetadataValue.float(round(summary.invalid_share, 6)),
                    "max_invalid_share": dg.MetadataValue.float(self.source.max_invalid_share),
                    "quarantined": dg.MetadataValue.int(summary.invalid_rows),
                    "sample": dg.MetadataValue.md(quarantine_sample_markdown(summary.quarantine)),
                },
            )
        ]
        self._start_gx()
        if self._gx_future is not None and self._gx_worker is not None:
            suite = self._gx_future.result()
            self._gx_worker.close()
            results.append(self._great_expectations_check(suite))
        else:
            if self._gx_worker is not None:  # started for a first load that produced no valid document
                self._gx_worker.close()
            results.append(self._great_expectations_check(None))
        results.append(self._pydantic_check())
        self._checked_at = self._elapsed()
        self.peaks["checked"] = peak_rss_mb()
        if all(result.passed for result in results):
            new_types = {k: v for k, v in self.locked.items() if k not in self.stored_types}
            if new_types:
                self.store.lock_attribute_types(self.alias, new_types)
            if self.valid_ids:
                # Records that pass now (fixed at the source) leave quarantine.
                self.store.clear_quarantine(self.source.name, pl.concat(self.valid_ids))
        return results

    def _great_expectations_check(self, result: SuiteResult | None) -> dg.AssetCheckResult:
        """Report the GX suite's outcome on a sample of the new or changed documents (only they reach the index)."""
        if result is None:
            return dg.AssetCheckResult(
                asset_key=self.validated_key,
                check_name="great_expectations_suite",
                passed=True,
                description="No new or changed documents: nothing new reaches the index, the suite had nothing to "
                "check.",
                metadata={"rows_evaluated": dg.MetadataValue.int(0)},
            )
        failures = [str(r.get("expectation", r)) for r in result.results if not r.get("success", False)]
        return dg.AssetCheckResult(
            asset_key=self.validated_key,
            check_name="great_expectations_suite",
            passed=result.success,
            description="; ".join(failures[:10]) or None,
            metadata={
                "suite": result.suite_name,
                "expectations_evaluated": dg.MetadataValue.int(len(result.results)),
                "failed_expectations": dg.MetadataValue.int(len(failures)),
                "rows_evaluated": dg.MetadataValue.int(result.evaluated_rows),
            },
        )

    def _pydantic_check(self) -> dg.AssetCheckResult:
        from aac_etl.lib.contract import validate_sample_with_model

        frames = [frame for frame in self.pydantic_sample if frame.height]
        sample = pl.concat(frames, how="diagonal_relaxed") if frames else None
        errors, checked = (
            validate_sample_with_model(sample, self.contract, sample_size=PYDANTIC_SAMPLE_ROWS)
            if sample is not None
            else ([], 0)
        )
        return dg.AssetCheckResult(
            asset_key=self.validated_key,
            check_name="pydantic_model_sample",
            passed=not errors,
            description="; ".join(errors[:10]) or None,
            metadata={
                "documents_checked": dg.MetadataValue.int(checked),
                "errors": dg.MetadataValue.int(len(errors)),
            },
        )

    # ------------------------------------------------------------------ buffer and index

    def enqueue(self) -> dict[str, Any]:
        """Safety gate, then enqueue every payload part and (full syncs) turn missing documents into deletes.

        Returns:
            Metadata of the search_buffer materialization.

        Raises:
            SafetyGateError: A full sync would delete more than ``max_drop_share`` of the source's documents.

        """
        clock = self.clocks["buffer"]
        started = time.perf_counter()
        seen: list[pl.Series] = []
        if self.summary is not None and self.summary.quarantine.height:
            # A record in quarantine is still in the source: keep its last good version, do not delete it.
            seen.append(self.summary.quarantine.get_column("external_id").drop_nulls().unique())
        valid_docs = self.payload_rows + self._skipped_doc_count()
        result = enqueue_parts(
            self.store,
            self.source,
            self.payload_parts,
            self.sync_id,
            mode=self.mode,
            valid_docs=valid_docs,
            seen=seen,
            seen_parts=self.skipped_parts,
            allow_drop=self.allow_drop,
        )
        clock.seconds += time.perf_counter() - started
        clock.rows += self.payload_rows
        self._buffered = result
        self._buffered_at = self._elapsed()
        self.peaks["buffered"] = peak_rss_mb()
        return {
            "mode": self.mode,
            "documents": dg.MetadataValue.int(valid_docs),
            "enqueued_upserts": dg.MetadataValue.int(result["upserted"]),
            "enqueued_deletes": dg.MetadataValue.int(result["deleted"]),
            "unchanged": dg.MetadataValue.int(result["unchanged"] + self._skipped_doc_count()),
            "unchanged_records_skipped": dg.MetadataValue.int(self.skipped_records),
            "live_before": dg.MetadataValue.int(result["live_before"]),
            "seconds": dg.MetadataValue.float(round(clock.seconds, 3)),
            "rows_per_second": dg.MetadataValue.float(_rate(self.payload_rows, clock.seconds)),
            "collection_alias": self.alias,
            "sync_seconds": dg.MetadataValue.float(round(self._elapsed(), 3)),
            **{f"peak_rss_mb_{phase}": dg.MetadataValue.float(mb) for phase, mb in self.peaks.items()},
        }

    def finish_shadow_build(self) -> dict[str, Any] | None:
        """Complete the collection built alongside the sync; return the metadata of its materialization."""
        if self.shadow is None:
            return None
        started = time.perf_counter()
        stats: LoadStats = self.shadow.finish()
        seconds = time.perf_counter() - started
        documents = 0
        with contextlib.suppress(Exception):
            documents = self._client.count(self.alias) if self._client is not None else 0
        self._close_client()
        elapsed = self._elapsed()
        return {
            **load_metadata(stats, documents, elapsed),
            "reason": self.shadow_reason or "",
            "built_by_sync": self.sync_id,
            "finish_seconds": dg.MetadataValue.float(round(seconds, 3)),
            "sync_waited_for_import_seconds": dg.MetadataValue.float(round(self.shadow.feed_wait_seconds, 3)),
            "finish_waited_for_import_seconds": dg.MetadataValue.float(round(self.shadow.finish_wait_seconds, 3)),
            "checks_passed_at_seconds": dg.MetadataValue.float(round(self._checked_at, 3)),
            "buffer_written_at_seconds": dg.MetadataValue.float(round(self._buffered_at, 3)),
            "peak_rss_mb": dg.MetadataValue.float(peak_rss_mb()),
        }

    def record_fingerprints(self) -> None:
        """Store the fingerprints of the records this sync put in the buffer (after :meth:`enqueue`).

        A fingerprint says the buffer holds the record's current documents, whether or not Typesense has them yet
        (a load job sends what is pending): a sync that builds its collection while it runs records them before it
        waits for the last imports, not after.
        """
        name = self.source.name
        if self.fingerprinted is not None:
            new = [frame for frame in self.new_fingerprints if frame.height]
            if self.mode == "full":
                skipped = [pl.read_parquet(self.skipped_parts)] if self.skipped_parts else []
                fresh = [*skipped, *new]
                rows = pl.concat(fresh) if fresh else pl.DataFrame(schema=FINGERPRINT_SCHEMA)
                self.store.replace_source_fingerprints(name, rows)
            elif self.processed_records:
                rows = pl.concat(new) if new else pl.DataFrame(schema=FINGERPRINT_SCHEMA)
                self.store.upsert_source_fingerprints(name, pl.concat(self.processed_records), rows)

    def finish(self) -> None:
        """Mark the sync succeeded (after :meth:`record_fingerprints`) and free the run's intermediate files."""
        name = self.source.name
        result = getattr(self, "_buffered", {"upserted": 0, "deleted": 0, "unchanged": 0})
        self.store.finish_sync(
            self.sync_id,
            "succeeded",
            upserted=result["upserted"],
            deleted=result["deleted"],
            unchanged=result["unchanged"] + self._skipped_doc_count(),
        )
        self._finished = True
        staging.prune_runs(name, current_run_id=self.sync_id)

    def abort(self, error: BaseException | str) -> None:
        """Drop a collection being built, record the sync as failed (redacted) and stop background work."""
        if self.shadow is not None:
            self.shadow.abort()
        self._close_client()
        if self._gx_worker is not None:
            self._gx_worker.kill()
        if not self._finished:
            self.store.finish_sync(self.sync_id, "failed", error=redact(str(error)))

    def _close_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def stage_seconds(self) -> dict[str, float]:
        """Busy seconds per stage (extract runs in its own thread and overlaps the others)."""
        return {stage: round(clock.seconds, 3) for stage, clock in self.clocks.items()}


def quarantine_sample_markdown(quarantine: pl.DataFrame, rows: int = QUARANTINE_SAMPLE_ROWS) -> str:
    """Render the first quarantined rows as a markdown table for the Dagster UI."""
    if quarantine.height == 0:
        return "no quarantined records"
    columns = ["external_id", "field", "rule", "value", "message"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in quarantine.select(columns).head(rows).iter_rows():
        cells = [str(v if v is not None else "").replace("|", "\\|").replace("\n", " ")[:160] for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def enqueue_parts(
    store: BufferStore,
    source: SourceConfig,
    parts: list[tuple[Path, int]],
    sync_id: str,
    *,
    mode: Literal["full", "delta"],
    valid_docs: int,
    seen: list[pl.Series],
    seen_parts: Sequence[Path] = (),
    allow_drop: bool,
) -> dict[str, int]:
    """Enqueue payload parts into the buffer (pure of Dagster except for the failure type).

    The safety gate runs before anything is written: a full sync whose document count drops by more than
    ``source.max_drop_share`` against what the buffer holds live for this source fails and enqueues nothing.

    Args:
        store: Buffer store.
        source: Source declaration (alias, organization, drop limit).
        parts: Payload Parquet files (external_id, payload, content_hash) with their row counts.
        sync_id: The run id.
        mode: ``full`` turns live documents of the source that were not seen into deletes.
        valid_docs: Valid documents of the sync (enqueued or skipped as unchanged), for the gate.
        seen: External ids that are still in the source but not in ``parts`` (quarantined records).
        seen_parts: Parquet files with an ``external_id`` column of more such ids (documents skipped as
            unchanged); the buffer reads them where it computes the deletes.
        allow_drop: Skip the safety gate (an operator's explicit decision).

    Returns:
        Counts: upserted, unchanged, deleted, live_before.

    """
    alias = source.collection_alias
    live_before = store.count_live(alias, source.name)
    if mode == "full" and not allow_drop and live_before > 0:
        dropped = 1 - valid_docs / live_before
        if dropped > source.max_drop_share:
            raise SafetyGateError(
                description=(
                    f"Safety gate: full sync of {source.name!r} has {valid_docs} valid documents against "
                    f"{live_before} live in {alias!r} (a {dropped:.0%} drop, limit {source.max_drop_share:.0%}). "
                    "Nothing was enqueued and no document was deleted. If the drop is intended, re-run with "
                    "allow_drop (CLI: --allow-drop)."
                ),
                metadata={"valid": valid_docs, "live_before": live_before, "drop_share": round(dropped, 4)},
            )
    groups: list[list[Path]] = [[]]
    rows = 0
    for part, height in parts:
        if rows >= ENQUEUE_TRANSACTION_ROWS:
            groups.append([])
            rows = 0
        groups[-1].append(part)
        rows += height
    upserted = unchanged = deleted = 0
    for number, group in enumerate(groups, start=1):
        last = number == len(groups)
        stats, gone = store.enqueue_many(
            alias,
            source.organization,
            source.name,
            sync_id,
            lambda group=group: iter(group),
            # The deletes go with the last transaction, which also sees every id enqueued before it.
            full_sync=mode == "full" and last,
            also_seen=pl.concat(seen) if last and seen else (),
            also_seen_parts=[*(part for earlier in groups[: number - 1] for part in earlier), *seen_parts]
            if last
            else (),
        )
        upserted, unchanged, deleted = upserted + stats.upserted, unchanged + stats.unchanged, deleted + gone
    return {"upserted": upserted, "unchanged": unchanged, "deleted": deleted, "live_before": live_before}
