"""Per-source asset family: extract -> normalized -> validated -> search_buffer.

One asset group per source (keys prefixed with the source name), so every source has its own lineage graph,
materialization history and plots in the Dagster UI. The assets are thin: the work is done by the pure
functions of ``aac_etl.lib`` and ``aac_etl.sources``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import dagster as dg
import polars as pl

from aac_etl.defs.resources import BufferResource, SourceDatabaseResource
from aac_etl.lib import staging
from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.contract import load_contract
from aac_etl.lib.documents import to_payloads
from aac_etl.lib.redact import redact
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.validate import circuit_breaker, diagnostics, infer_attribute_types, validate_frame
from aac_etl.sources import get_source
from aac_etl.sources.base import ExtractRequest

DELTA_OVERLAP = timedelta(minutes=5)
QUARANTINE_SAMPLE_ROWS = 20


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
    store.update_sync(sync_id, status="failed", error=redact(str(error))[:2000], finished_at=datetime.now(UTC))


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
                since = last["started_at"] - DELTA_OVERLAP
        store.start_sync(sync_id, name, mode)
        started = time.perf_counter()
        try:
            if config.replay_run_id:
                replayed = staging.find_extract(config.replay_run_id, name)
                dataset = staging.StagedDataset(
                    root=replayed.root, parts=replayed.parts, rows=replayed.rows, mode=mode, run_id=sync_id
                )
                table_rows: dict[str, int] = {}
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
        store.update_sync(sync_id, extracted=dataset.rows, status="running")
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
    def validated(context: dg.AssetExecutionContext, docs: staging.StagedDataset):  # noqa: ANN202
        store: BufferStore = context.resources.buffer.store()
        contract = load_contract()
        started = time.perf_counter()
        writer = staging.PartWriter(staging.run_dir(context.run_id, name, "validated"))
        quarantine_frames: list[pl.DataFrame] = []
        rule_counts: dict[str, int] = {}
        total_in = 0
        diag_parts: list[dict[str, object]] = []
        try:
            locked = store.get_attribute_types(alias)
            for frame in docs.frames():
                outcome = validate_frame(frame, contract, source=name, sync_id=context.run_id, locked_types=locked)
                if not locked and outcome.valid.height:
                    locked = store.lock_attribute_types(alias, infer_attribute_types(outcome.valid))
                total_in += frame.height
                writer.write(outcome.valid)
                if outcome.quarantine.height:
                    quarantine_frames.append(outcome.quarantine)
                for rule, count in outcome.rule_counts.items():
                    rule_counts[rule] = rule_counts.get(rule, 0) + count
                diag_parts.append(diagnostics(frame, outcome))
                store.clear_quarantine(name, outcome.valid.get_column("external_id"))
            quarantine = pl.concat(quarantine_frames, how="diagonal_relaxed") if quarantine_frames else None
            if quarantine is not None:
                store.add_quarantine(quarantine)
        except Exception as exc:
            _fail_sync(store, context.run_id, exc)
            raise
        dataset = writer.finish(docs.mode, context.run_id)
        quarantined_records = total_in - dataset.rows
        seconds = time.perf_counter() - started
        store.update_sync(context.run_id, valid=dataset.rows, quarantined=quarantined_records)

        invalid_share = quarantined_records / total_in if total_in else 0.0
        breaker = circuit_breaker_summary(rule_counts, quarantined_records, total_in, source.max_invalid_share)
        sample = (
            quarantine.select("external_id", "field", "rule", "value", "message").head(QUARANTINE_SAMPLE_ROWS)
            if quarantine is not None
            else None
        )
        diag_markdown = "\n\n".join(str(d.get("markdown", "")) for d in diag_parts[:1])
        yield dg.Output(
            dataset,
            metadata={
                "records_in": dg.MetadataValue.int(total_in),
                "valid": dg.MetadataValue.int(dataset.rows),
                "quarantined": dg.MetadataValue.int(quarantined_records),
                "invalid_share": dg.MetadataValue.float(round(invalid_share, 6)),
                "seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(_rate(total_in, seconds)),
                **{f"rule_{r}": dg.MetadataValue.int(n) for r, n in sorted(rule_counts.items())},
                "diagnostics": dg.MetadataValue.md(diag_markdown or "no documents"),
            },
        )
        yield dg.AssetCheckResult(
            check_name="contract_invalid_share",
            passed=breaker is None,
            description=breaker,
            metadata={
                "invalid_share": dg.MetadataValue.float(round(invalid_share, 6)),
                "max_invalid_share": dg.MetadataValue.float(source.max_invalid_share),
                "quarantined": dg.MetadataValue.int(quarantined_records),
                "sample": dg.MetadataValue.md(sample.to_pandas().to_markdown(index=False))
                if sample is not None and sample.height
                else dg.MetadataValue.md("no quarantined records"),
            },
        )
        if breaker is not None:
            _fail_sync(store, context.run_id, breaker)
        yield _great_expectations_check(dataset)
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
        store.update_sync(
            context.run_id,
            upserted=result["upserted"],
            deleted=result["deleted"],
            unchanged=result["unchanged"],
            status="succeeded",
            finished_at=datetime.now(UTC),
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
            }
        )

    return [extract, normalized, validated, search_buffer]


def circuit_breaker_summary(
    rule_counts: dict[str, int], invalid: int, total: int, max_share: float
) -> str | None:
    """Return the circuit-breaker failure text, or None when the invalid share is within the limit."""
    return circuit_breaker(rule_counts, invalid, total, max_share)


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
    for frame in valid.frames():
        if frame.height == 0:
            continue
        payloads = to_payloads(frame)
        stats = store.enqueue(alias, source.organization, source.name, sync_id, payloads)
        upserted += stats.upserted
        unchanged += stats.unchanged
        seen.append(payloads.get_column("external_id"))
    deleted = 0
    if valid.mode == "full":
        seen_ids = pl.concat(seen) if seen else pl.Series("external_id", [], dtype=pl.Utf8)
        deleted = store.mark_missing_as_deleted(alias, source.name, sync_id, seen_ids)
    return {"upserted": upserted, "unchanged": unchanged, "deleted": deleted, "live_before": live_before}


def _great_expectations_check(dataset: staging.StagedDataset) -> dg.AssetCheckResult:
    from aac_etl.lib.contract import run_expectation_suite

    failures: list[str] = []
    evaluated = 0
    for frame in dataset.frames():
        if frame.height == 0:
            continue
        result = run_expectation_suite(frame)
        evaluated += len(result.results)
        if not result.success:
            failures.extend(str(r.get("expectation", r)) for r in result.results if not r.get("success", False))
    return dg.AssetCheckResult(
        check_name="great_expectations_suite",
        passed=not failures,
        description="; ".join(failures[:10]) or None,
        metadata={
            "expectations_evaluated": dg.MetadataValue.int(evaluated),
            "failed_expectations": dg.MetadataValue.int(len(failures)),
        },
    )


def _pydantic_check(dataset: staging.StagedDataset, contract: object) -> dg.AssetCheckResult:
    from aac_etl.lib.contract import validate_sample_with_model

    errors: list[str] = []
    checked = 0
    for frame in dataset.frames():
        if frame.height == 0:
            continue
        sample_errors, sample_size = validate_sample_with_model(frame, contract)
        errors.extend(sample_errors)
        checked += sample_size
    return dg.AssetCheckResult(
        check_name="pydantic_model_sample",
        passed=not errors,
        description="; ".join(errors[:10]) or None,
        metadata={"documents_checked": dg.MetadataValue.int(checked), "errors": dg.MetadataValue.int(len(errors))},
    )


def source_job(source: SourceConfig) -> dg.UnresolvedAssetJobDefinition:
    """The sync job of one source: its four assets, default config a delta sync."""
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
