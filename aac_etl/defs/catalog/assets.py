"""Per-source asset family: extract -> normalized -> validated -> search_buffer.

One asset group per source (keys prefixed with the source name), so every source has its own lineage graph,
materialization history and plots in the Dagster UI. The assets are thin: the work is done by the pure
functions of ``aac_etl.lib`` and ``aac_etl.sources``.
"""

import contextlib
import dataclasses
import importlib
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import dagster as dg
import polars as pl

from aac_etl.lib import staging
from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.contract import Contract, load_contract
from aac_etl.lib.documents import to_payloads
from aac_etl.lib.redact import redact
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.validate import (
    ValidationOutcome,
    aggregate_diagnostics,
    circuit_breaker,
    diagnostics,
    infer_attribute_types,
    summarize_outcomes,
    validate_frame,
)
from aac_etl.sources import get_source
from aac_etl.sources.base import ExtractRequest

DELTA_OVERLAP = timedelta(minutes=5)
QUARANTINE_SAMPLE_ROWS = 20
QUARANTINED_IDS_FILE = "quarantined_ids.parquet"
GX_SAMPLE_ROWS = 5_000
EMPTY_PAYLOADS = pl.DataFrame(schema={"external_id": pl.Utf8, "payload": pl.Utf8, "content_hash": pl.Utf8})
PYDANTIC_SAMPLE_ROWS = 500


class SyncConfig(dg.Config):
    """Run configuration of a sync (set by the CLI, the nightly schedule or the launchpad)."""

    mode: Literal["full", "delta"] = "delta"
    replay_run_id: str | None = None
    allow_drop: bool = False


def db_resource_key(source: SourceConfig) -> str:
    """Resource key of a source's database connection."""
    return f"db_{source.name}"


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def _fail_sync(store: BufferStore, sync_id: str, error: BaseException | str) -> None:
    store.finish_sync(sync_id, "failed", error=redact(str(error)))


def build_source_assets(source: SourceConfig) -> list[dg.AssetsDefinition]:
    """Build the asset family of one source.

    Args:
        source: The source's declaration from sources.yaml.

    Returns:
        The four assets (extract, normalized, validated with its blocking checks, search_buffer).

    """
    name = source.name
    alias = source.collection_alias
    impl = get_source(source.platform)
    group = name
    kinds = {"python", "polars", source.platform}
    required = {"buffer"} | ({db_resource_key(source)} if source.dsn_env else set())

    @dg.asset(
        key=[name, "extract"],
        group_name=group,
        kinds=kinds | ({"sql"} if source.dsn_env else {"file"}),
        required_resource_keys=required,
        description=(
            f"Raw catalog tables of **{name}** ({source.platform}), extracted in chunks and kept as Parquet "
            "under the run's folder so the run can be replayed. Delta syncs read only records changed since the "
            "last successful sync; a delta with no earlier sync runs as a full sync."
        ),
    )
    def extract(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.Output[staging.StagedDataset]:
        store: BufferStore = context.resources.buffer.store()
        sync_id = context.run_id
        mode = config.mode
        since: datetime | None = None
        if mode == "delta":
            last = store.last_sync(name, status="succeeded")
            if last is None:
                mode = "full"
                context.log.info("No earlier successful sync of %s: running this delta as a full sync.", name)
            else:
                started_at = last.started_at or datetime.now(UTC).replace(tzinfo=None)
                since = started_at - DELTA_OVERLAP
        store.start_sync(sync_id, name, mode)
        started = time.perf_counter()
        try:
            if config.replay_run_id:
                replayed = staging.find_extract(config.replay_run_id, name)
                table_rows = staging.table_row_counts(replayed)
                dataset = staging.StagedDataset(
                    root=replayed.root,
                    parts=replayed.parts,
                    rows=table_rows.get(impl.main_table, 0),
                    mode=mode,
                    run_id=sync_id,
                    extra=table_rows,
                )
            else:
                dsn = getattr(context.resources, db_resource_key(source)).dsn if source.dsn_env else None
                writer = staging.PartWriter(staging.run_dir(sync_id, name, "extract"))
                table_rows = {}
                request = ExtractRequest(mode=mode, since=since)
                for chunk in impl.extract(source, dsn, request):
                    writer.write_chunk(chunk, impl.main_table)
                    for table, frame in chunk.items():
                        table_rows[table] = table_rows.get(table, 0) + frame.height
                dataset = writer.finish(mode, sync_id, table_rows)
        except Exception as exc:
            _fail_sync(store, sync_id, exc)
            raise
        seconds = time.perf_counter() - started
        store.update_sync(sync_id, extracted=dataset.rows)
        return dg.Output(
            dataset,
            metadata={
                "mode": mode,
                "records": dg.MetadataValue.int(dataset.rows),
                "chunks": dg.MetadataValue.int(len(dataset.parts)),
                "seconds": dg.MetadataValue.float(round(seconds, 3)),
                "records_per_second": dg.MetadataValue.float(_rate(dataset.rows, seconds)),
                "replay_of": config.replay_run_id or "",
                "path": dg.MetadataValue.path(str(dataset.root)),
                **{f"rows_{t}": dg.MetadataValue.int(n) for t, n in sorted(table_rows.items())},
            },
        )

    @dg.asset(
        key=[name, "normalized"],
        group_name=group,
        kinds={"python", "polars"},
        required_resource_keys={"buffer"},
        ins={"raw": dg.AssetIn(key=[name, "extract"])},
        description=(
            f"**{name}** normalized into SyncProductInput documents with vectorized polars: HTML stripped, "
            "prices in major units, one document per locale, categories as breadcrumb paths, variants flattened "
            "into attributes.option_*."
        ),
    )
    def normalized(context: dg.AssetExecutionContext, raw: staging.StagedDataset) -> dg.Output[staging.StagedDataset]:
        store: BufferStore = context.resources.buffer.store()
        started = time.perf_counter()
        writer = staging.PartWriter(staging.run_dir(context.run_id, name, "normalized"))
        locales: dict[str, int] = {}
        try:
            for chunk in raw.raw_chunks():
                docs = impl.normalize(chunk, source)
                writer.write(docs)
                if "locale" in docs.columns and docs.height:
                    for row in docs.group_by("locale").len().iter_rows():
                        locales[str(row[0])] = locales.get(str(row[0]), 0) + int(row[1])
        except Exception as exc:
            _fail_sync(store, context.run_id, exc)
            raise
        seconds = time.perf_counter() - started
        dataset = writer.finish(raw.mode, context.run_id, locales)
        return dg.Output(
            dataset,
            metadata={
                "documents": dg.MetadataValue.int(dataset.rows),
                "seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(_rate(dataset.rows, seconds)),
                **{f"documents_{loc}": dg.MetadataValue.int(n) for loc, n in sorted(locales.items())},
            },
        )

    @dg.asset(
        key=[name, "validated"],
        group_name=group,
        kinds={"python", "polars", "pydantic", "great_expectations"},
        required_resource_keys={"buffer"},
        ins={"docs": dg.AssetIn(key=[name, "normalized"])},
        check_specs=[
            dg.AssetCheckSpec(
                "contract_invalid_share",
                asset=[name, "validated"],
                blocking=True,
                description=(
                    "Circuit breaker: fails (and stops the sync before the buffer) when more than "
                    f"{source.max_invalid_share:.0%} of the records break the data contract."
                ),
            ),
            dg.AssetCheckSpec(
                "great_expectations_suite",
                asset=[name, "validated"],
                blocking=True,
                description="The Great Expectations suite derived from the data contract, run on the valid documents.",
            ),
            dg.AssetCheckSpec(
                "pydantic_model_sample",
                asset=[name, "validated"],
                blocking=True,
                description="The pydantic model derived from the data contract, run on a sample of valid documents.",
            ),
        ],
        description=(
            f"**{name}** documents that pass the data contract (data_contracts/sync_product_input.odcs.yaml). "
            "Invalid records go to the quarantine table with record, field, rule and value; they are counted, "
            "never dropped silently. Attribute index types are locked by the first batch of a fresh index."
        ),
    )
    def validated(context: dg.AssetExecutionContext, docs: staging.StagedDataset):
        store: BufferStore = context.resources.buffer.store()
        contract = load_contract()
        started = time.perf_counter()
        writer = staging.PartWriter(staging.run_dir(context.run_id, name, "validated"))
        outcomes: list[ValidationOutcome] = []
        diag_parts: list[dict[str, object]] = []
        changed_total = 0
        changed_sample: list[pl.DataFrame] = []
        valid_ids: list[pl.Series] = []
        try:
            stored_types = store.get_attribute_types(alias)
            locked = dict(stored_types)
            for frame in docs.frames():
                outcome = validate_frame(frame, contract, source=name, sync_id=context.run_id, locked_types=locked)
                if outcome.valid.height:
                    # The first batch of a fresh index (or a new attribute) locks the attribute's type; it is
                    # persisted below only if this sync passes the circuit breaker.
                    for key, kind in infer_attribute_types(outcome.valid).items():
                        locked.setdefault(key, kind)
                    valid_ids.append(outcome.valid.get_column("external_id"))
                part = writer.write(outcome.valid)
                # Payloads and content hashes are computed once, here; the buffer step enqueues them as they are.
                payloads = to_payloads(outcome.valid) if outcome.valid.height else EMPTY_PAYLOADS
                payloads.write_parquet(staging.payload_path(part), compression="zstd", compression_level=1)
                changed = store.changed_external_ids(alias, payloads)
                changed_total += changed.len()
                if changed.len():
                    warm_up_great_expectations()
                room = GX_SAMPLE_ROWS - sum(f.height for f in changed_sample)
                if room > 0 and changed.len():
                    changed_sample.append(outcome.valid.filter(pl.col("external_id").is_in(changed)).head(room))
                diag_parts.append(diagnostics(frame, outcome))
                outcomes.append(dataclasses.replace(outcome, valid=pl.DataFrame()))
            summary = summarize_outcomes(outcomes)
            if summary.quarantine.height:
                store.add_quarantine(summary.quarantine)
                summary.quarantine.select("external_id").unique().write_parquet(writer.root / QUARANTINED_IDS_FILE)
        except Exception as exc:
            _fail_sync(store, context.run_id, exc)
            raise
        dataset = writer.finish(docs.mode, context.run_id)
        seconds = time.perf_counter() - started
        store.update_sync(context.run_id, valid=dataset.rows, quarantined=summary.invalid_rows)
        report = aggregate_diagnostics(diag_parts)
        breaker = circuit_breaker(summary, source.max_invalid_share)
        yield dg.Output(
            dataset,
            metadata={
                "records_in": dg.MetadataValue.int(summary.input_rows),
                "valid": dg.MetadataValue.int(dataset.rows),
                "quarantined": dg.MetadataValue.int(summary.invalid_rows),
                "invalid_share": dg.MetadataValue.float(round(summary.invalid_share, 6)),
                "new_or_changed": dg.MetadataValue.int(changed_total),
                "duplicates": dg.MetadataValue.int(int(report["duplicates"])),  # type: ignore[arg-type]
                "seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(_rate(summary.input_rows, seconds)),
                **{f"rule_{r}": dg.MetadataValue.int(n) for r, n in sorted(summary.rule_counts.items())},
                **{
                    f"locale_{loc}": dg.MetadataValue.int(n)
                    for loc, n in sorted(dict(report["locales"]).items())  # type: ignore[call-overload]
                },
                "diagnostics": dg.MetadataValue.md(str(report["markdown"])),
            },
        )
        yield dg.AssetCheckResult(
            check_name="contract_invalid_share",
            passed=breaker is None,
            description=breaker,
            metadata={
                "invalid_share": dg.MetadataValue.float(round(summary.invalid_share, 6)),
                "max_invalid_share": dg.MetadataValue.float(source.max_invalid_share),
                "quarantined": dg.MetadataValue.int(summary.invalid_rows),
                "sample": dg.MetadataValue.md(quarantine_sample_markdown(summary.quarantine)),
            },
        )
        if breaker is not None:
            _fail_sync(store, context.run_id, f"Circuit breaker: {breaker}")
        else:
            new_types = {k: v for k, v in locked.items() if k not in stored_types}
            if new_types:
                store.lock_attribute_types(alias, new_types)
            if valid_ids:
                # Records that pass now (fixed at the source) leave quarantine.
                store.clear_quarantine(name, pl.concat(valid_ids))
        sample = pl.concat(changed_sample, how="diagonal_relaxed") if changed_sample else None
        yield _great_expectations_check(sample, contract)
        yield _pydantic_check(dataset, contract)

    @dg.asset(
        key=[name, "search_buffer"],
        group_name=group,
        kinds={"python", "duckdb"},
        required_resource_keys={"buffer"},
        ins={"valid": dg.AssetIn(key=[name, "validated"])},
        description=(
            f"Changed documents of **{name}** enqueued into `search_ingest_buffer` for the alias `{alias}`: "
            "only documents whose content hash changed since the last successful load; a full sync also enqueues "
            "deletes for documents that left the source, behind a safety gate against large drops."
        ),
    )
    def search_buffer(
        context: dg.AssetExecutionContext, config: SyncConfig, valid: staging.StagedDataset
    ) -> dg.MaterializeResult:
        store: BufferStore = context.resources.buffer.store()
        started = time.perf_counter()
        try:
            result = enqueue_dataset(store, source, valid, context.run_id, allow_drop=config.allow_drop)
        except Exception as exc:
            _fail_sync(store, context.run_id, exc)
            raise
        seconds = time.perf_counter() - started
        pruned = staging.prune_runs(name, current_run_id=context.run_id)
        store.finish_sync(
            context.run_id,
            "succeeded",
            upserted=result["upserted"],
            deleted=result["deleted"],
            unchanged=result["unchanged"],
        )
        return dg.MaterializeResult(
            metadata={
                "mode": valid.mode,
                "documents": dg.MetadataValue.int(valid.rows),
                "enqueued_upserts": dg.MetadataValue.int(result["upserted"]),
                "enqueued_deletes": dg.MetadataValue.int(result["deleted"]),
                "unchanged": dg.MetadataValue.int(result["unchanged"]),
                "live_before": dg.MetadataValue.int(result["live_before"]),
                "seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(_rate(valid.rows, seconds)),
                "collection_alias": alias,
                "stage_folders_pruned": dg.MetadataValue.int(pruned),
            }
        )

    return [extract, normalized, validated, search_buffer]


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


class SafetyGateError(dg.Failure):
    """A full sync would delete more documents than the configured share allows."""


def enqueue_dataset(
    store: BufferStore, source: SourceConfig, valid: staging.StagedDataset, sync_id: str, *, allow_drop: bool
) -> dict[str, int]:
    """Enqueue a validated dataset into the buffer (pure of Dagster except for the failure type).

    The safety gate runs before anything is written: a full sync whose document count drops by more than
    ``source.max_drop_share`` against what the buffer holds live for this source fails and enqueues nothing.

    Args:
        store: Buffer store.
        source: Source declaration (alias, organization, drop limit).
        valid: Validated documents.
        sync_id: The run id.
        allow_drop: Skip the safety gate (an operator's explicit decision).

    Returns:
        Counts: upserted, unchanged, deleted, live_before.

    """
    alias = source.collection_alias
    live_before = store.count_live(alias, source.name)
    if valid.mode == "full" and not allow_drop and live_before > 0:
        dropped = 1 - valid.rows / live_before
        if dropped > source.max_drop_share:
            raise SafetyGateError(
                description=(
                    f"Safety gate: full sync of {source.name!r} has {valid.rows} valid documents against "
                    f"{live_before} live in {alias!r} (a {dropped:.0%} drop, limit {source.max_drop_share:.0%}). "
                    "Nothing was enqueued and no document was deleted. If the drop is intended, re-run with "
                    "allow_drop (CLI: --allow-drop)."
                ),
                metadata={"valid": valid.rows, "live_before": live_before, "drop_share": round(dropped, 4)},
            )
    upserted = unchanged = 0
    seen: list[pl.Series] = []
    for part in valid.parts:
        payloads = pl.read_parquet(staging.payload_path(part))
        if payloads.height == 0:
            continue
        stats = store.enqueue(alias, source.organization, source.name, sync_id, payloads)
        upserted += stats.upserted
        unchanged += stats.unchanged
        seen.append(payloads.get_column("external_id"))
    deleted = 0
    if valid.mode == "full":
        # A record in quarantine is still in the source: keep its last good version searchable, do not delete it.
        quarantined = valid.root / QUARANTINED_IDS_FILE
        if quarantined.exists():
            seen.append(pl.read_parquet(quarantined).get_column("external_id"))
        seen_ids = pl.concat(seen) if seen else pl.Series("external_id", [], dtype=pl.Utf8)
        deleted = store.mark_missing_as_deleted(alias, source.name, sync_id, seen_ids)
    return {"upserted": upserted, "unchanged": unchanged, "deleted": deleted, "live_before": live_before}


def _sample(dataset: staging.StagedDataset, rows: int) -> pl.DataFrame | None:
    """Up to ``rows`` documents spread over the parts (the checks look at a bounded sample, not the catalog)."""
    per_part = max(1, rows // max(1, len(dataset.parts)))
    frames = [f.head(per_part) for f in dataset.frames() if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


_GX_WARMUP: list[threading.Thread] = []


def warm_up_great_expectations() -> None:
    """Import great_expectations in a background thread (once per process) while validation goes on.

    The import alone takes seconds; it is started only when a sync has new or changed documents (the only case
    in which the suite runs), so it overlaps the validation of the remaining chunks instead of following it.
    """
    if _GX_WARMUP:
        return

    def work() -> None:
        with contextlib.suppress(Exception):  # a real import error surfaces in the check itself
            importlib.import_module("great_expectations")

    thread = threading.Thread(target=work, name="gx-warmup", daemon=True)
    _GX_WARMUP.append(thread)
    thread.start()


def _great_expectations_check(sample: pl.DataFrame | None, contract: Contract) -> dg.AssetCheckResult:
    """Run the GX suite on a sample of the new or changed documents: only they can change the index."""
    from aac_etl.lib.contract import run_expectation_suite

    if sample is None or sample.height == 0:
        return dg.AssetCheckResult(
            check_name="great_expectations_suite",
            passed=True,
            description="No new or changed documents: nothing new reaches the index, the suite had nothing to check.",
            metadata={"rows_evaluated": dg.MetadataValue.int(0)},
        )
    result = run_expectation_suite(sample, contract, max_rows=GX_SAMPLE_ROWS)
    failures = [str(r.get("expectation", r)) for r in result.results if not r.get("success", False)]
    return dg.AssetCheckResult(
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


def _pydantic_check(dataset: staging.StagedDataset, contract: Contract) -> dg.AssetCheckResult:
    from aac_etl.lib.contract import validate_sample_with_model

    sample = _sample(dataset, PYDANTIC_SAMPLE_ROWS)
    errors, checked = (
        validate_sample_with_model(sample, contract, sample_size=PYDANTIC_SAMPLE_ROWS)
        if (sample is not None)
        else ([], 0)
    )
    return dg.AssetCheckResult(
        check_name="pydantic_model_sample",
        passed=not errors,
        description="; ".join(errors[:10]) or None,
        metadata={
            "documents_checked": dg.MetadataValue.int(checked),
            "errors": dg.MetadataValue.int(len(errors)),
        },
    )


def source_job(source: SourceConfig) -> "dg.UnresolvedAssetJobDefinition":
    """Build the sync job of one source: its four assets, default config a delta sync."""
    return dg.define_asset_job(
        name=sync_job_name(source.name),
        selection=dg.AssetSelection.groups(source.name),
        description=f"Sync {source.name}: extract, normalize, validate and enqueue changes into the search buffer.",
        tags={"aac_etl/source": source.name},
    )


def sync_job_name(source_name: str) -> str:
    """Name of a source's sync job."""
    return f"sync_{source_name}"


def sync_run_config(source_name: str, mode: str, *, replay_run_id: str | None = None, allow_drop: bool = False) -> dict:
    """Run config for a source's sync job."""
    cfg = {"mode": mode, "replay_run_id": replay_run_id, "allow_drop": allow_drop}
    return {
        "ops": {
            f"{source_name}__extract": {"config": cfg},
            f"{source_name}__search_buffer": {"config": cfg},
        }
    }
