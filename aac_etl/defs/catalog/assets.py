"""Per-source asset family: extract -> normalized -> validated -> search_buffer, run as one pipelined step.

One asset group per source (keys prefixed with the source name), so every source has its own lineage graph,
materialization history and plots in the Dagster UI. The four assets are materialized by one step that streams
chunks through the stages (see :mod:`aac_etl.defs.catalog.pipeline`); the work itself is done by the pure
functions of ``aac_etl.lib`` and ``aac_etl.sources``.
"""

from typing import Literal

import dagster as dg

from aac_etl.defs.catalog.pipeline import SourceSync
from aac_etl.defs.search.assets import alias_asset_key
from aac_etl.lib.process import frozen_gc
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources import get_source


class SyncConfig(dg.Config):
    """Run configuration of a sync (set by the CLI, the nightly schedule or the launchpad)."""

    mode: Literal["full", "delta"] = "delta"
    replay_run_id: str | None = None
    allow_drop: bool = False
    reindex: bool = False
    """Full syncs only: build a new collection while syncing and swap the alias (zero downtime)."""
    skip_unchanged: bool = True
    """Skip normalizing records whose raw input fingerprint did not change since the last successful sync."""


def db_resource_key(source: SourceConfig) -> str:
    """Resource key of a source's database connection."""
    return f"db_{source.name}"


def sync_op_name(source_name: str) -> str:
    """Name of the step that materializes a source's four assets."""
    return f"{source_name}__sync"


def build_source_assets(source: SourceConfig) -> list[dg.AssetsDefinition]:
    """Build the asset family of one source: one pipelined step materializing four assets.

    Args:
        source: The source's declaration from sources.yaml.

    Returns:
        One multi-asset (extract, normalized, validated with its blocking checks, search_buffer). Chunks flow
        through extract -> normalize -> validate -> payloads as they are read, so the stages overlap instead of
        waiting for each other, and a full sync that needs a new collection streams it to Typesense meanwhile.

    """
    name = source.name
    alias = source.collection_alias
    impl = get_source(source.platform)
    kinds = {"python", "polars", source.platform}
    required = {"buffer", "typesense"} | ({db_resource_key(source)} if source.dsn_env else set())
    validated_key = dg.AssetKey([name, "validated"])
    specs = [
        dg.AssetSpec(
            [name, "extract"],
            group_name=name,
            kinds=kinds | ({"sql"} if source.dsn_env else {"file"}),
            description=(
                f"Raw catalog tables of **{name}** ({source.platform}), extracted in chunks and kept as Parquet "
                "under the run's folder so the run can be replayed. Delta syncs read only records changed since "
                "the last successful sync; a delta with no earlier sync runs as a full sync. Records whose raw "
                "input fingerprint did not change since the last successful sync are not normalized again."
            ),
        ),
        dg.AssetSpec(
            [name, "normalized"],
            group_name=name,
            kinds={"python", "polars"},
            deps=[dg.AssetKey([name, "extract"])],
            description=(
                f"**{name}** normalized into SyncProductInput documents with vectorized polars: HTML stripped, "
                "prices in major units, one document per locale, categories as breadcrumb paths, variants "
                "flattened into attributes.option_*."
            ),
        ),
        dg.AssetSpec(
            validated_key,
            group_name=name,
            kinds={"python", "polars", "pydantic", "great_expectations"},
            deps=[dg.AssetKey([name, "normalized"])],
            description=(
                f"**{name}** documents that pass the data contract (data_contracts/sync_product_input.odcs.yaml). "
                "Invalid records go to the quarantine table with record, field, rule and value; they are counted, "
                "never dropped silently. Attribute index types are locked by the first batch of a fresh index."
            ),
        ),
        dg.AssetSpec(
            [name, "search_buffer"],
            group_name=name,
            kinds={"python", "duckdb"},
            deps=[validated_key],
            description=(
                f"Changed documents of **{name}** enqueued into `search_ingest_buffer` for the alias `{alias}`: "
                "only documents whose content hash changed since the last successful load; a full sync also "
                "enqueues deletes for documents that left the source, behind a safety gate against large drops. "
                "A full sync that finds the alias in need of a new collection builds it while it runs and swaps "
                "the alias once every check passed."
            ),
        ),
    ]
    check_specs = [
        dg.AssetCheckSpec(
            "contract_invalid_share",
            asset=validated_key,
            blocking=True,
            description=(
                "Circuit breaker: fails (and stops the sync before the buffer) when more than "
                f"{source.max_invalid_share:.0%} of the records break the data contract."
            ),
        ),
        dg.AssetCheckSpec(
            "great_expectations_suite",
            asset=validated_key,
            blocking=True,
            description="The Great Expectations suite derived from the data contract, run on the valid documents.",
        ),
        dg.AssetCheckSpec(
            "pydantic_model_sample",
            asset=validated_key,
            blocking=True,
            description="The pydantic model derived from the data contract, run on a sample of valid documents.",
        ),
    ]

    @dg.multi_asset(
        name=sync_op_name(name),
        specs=specs,
        check_specs=check_specs,
        can_subset=False,
        required_resource_keys=required,
    )
    def sync(context: dg.AssetExecutionContext, config: SyncConfig):
        store = context.resources.buffer.store()
        dsn = getattr(context.resources, db_resource_key(source)).dsn if source.dsn_env else None
        run = SourceSync(
            source,
            impl,
            store,
            context.run_id,
            mode=config.mode,
            replay_run_id=config.replay_run_id,
            allow_drop=config.allow_drop,
            skip_unchanged=config.skip_unchanged,
            log=context.log,
        )
        # Long-lived objects stay out of the collector's passes while the sync allocates (lib/process.py).
        with frozen_gc():
            try:
                run.prepare()
                run.open_shadow_build(context.resources.typesense.client, reindex=config.reindex)
                run.process(dsn)
                yield run.extract_result()
                yield run.normalized_result()
                yield run.validated_result()
                checks = run.check_results()
                yield from checks
                failed = [c for c in checks if not c.passed]
                if failed:
                    reasons = "; ".join(
                        f"{'Circuit breaker' if c.check_name == 'contract_invalid_share' else c.check_name}: "
                        f"{c.description or 'failed'}"
                        for c in failed
                    )
                    raise dg.Failure(
                        description=f"{name}: {reasons}. Nothing was enqueued; the search index is untouched.",
                        metadata={"failed_checks": ", ".join(c.check_name or "" for c in failed)},
                    )
                buffered = run.enqueue()
                run.record_fingerprints()
                loaded = run.finish_shadow_build()
                run.finish()
            except Exception as exc:
                # Drops a collection being built, stops background work, records the sync as failed (redacted).
                run.abort(exc.description if isinstance(exc, dg.Failure) and exc.description else exc)
                raise
        yield dg.MaterializeResult(asset_key=[name, "search_buffer"], metadata=buffered)
        if loaded is not None:
            context.log_event(dg.AssetMaterialization(asset_key=alias_asset_key(alias), metadata=loaded))

    return [sync]


def source_job(source: SourceConfig) -> "dg.UnresolvedAssetJobDefinition":
    """Build the sync job of one source: its four assets, default config a delta sync."""
    return dg.define_asset_job(
        name=sync_job_name(source.name),
        selection=dg.AssetSelection.groups(source.name),
        description=f"Sync {source.name}: extract, normalize, validate and enqueue changes into the search buffer.",
        # The alias tag serializes the sync with the loads of its alias (a full sync may build the collection).
        tags={"aac_etl/source": source.name, "aac_etl/alias": source.collection_alias},
    )


def sync_job_name(source_name: str) -> str:
    """Name of a source's sync job."""
    return f"sync_{source_name}"


def sync_run_config(
    source_name: str,
    mode: str,
    *,
    replay_run_id: str | None = None,
    allow_drop: bool = False,
    reindex: bool = False,
    skip_unchanged: bool = True,
) -> dict:
    """Run config for a source's sync job."""
    cfg = {
        "mode": mode,
        "replay_run_id": replay_run_id,
        "allow_drop": allow_drop,
        "reindex": reindex,
        "skip_unchanged": skip_unchanged,
    }
    return {"ops": {sync_op_name(source_name): {"config": cfg}}}
