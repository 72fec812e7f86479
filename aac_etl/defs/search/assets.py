"""The Typesense collection of each tenant alias, loaded from the search buffer."""

import time
from typing import Any

import dagster as dg

from aac_etl.lib.contract import load_contract, typesense_schema
from aac_etl.lib.loader import LoadStats, load_alias
from aac_etl.lib.sources_config import SourceConfig


class LoadConfig(dg.Config):
    """Run configuration of a load: ``reindex`` rebuilds the collection and swaps the alias."""

    reindex: bool = False


def load_metadata(stats: LoadStats, documents: int, seconds: float) -> dict[str, Any]:
    """Metadata of a ``typesense/<alias>`` materialization: numbers, so the UI plots them run over run.

    Args:
        stats: What the load (or the build during a sync) did.
        documents: Documents the alias serves afterwards.
        seconds: Wall time of the load.

    """
    sent = stats.upserted + stats.failed
    return {
        "documents_sent": dg.MetadataValue.int(sent),
        "upserted": dg.MetadataValue.int(stats.upserted),
        "deleted": dg.MetadataValue.int(stats.deleted),
        "failed": dg.MetadataValue.int(stats.failed),
        "documents_in_collection": dg.MetadataValue.int(documents),
        "collection": stats.collection,
        "reindexed": stats.reindexed,
        "seconds": dg.MetadataValue.float(round(seconds, 3)),
        "docs_per_second": dg.MetadataValue.float(round(sent / seconds, 1) if seconds > 0 else 0.0),
    }


def alias_asset_key(alias: str) -> dg.AssetKey:
    """Asset key of a tenant alias' Typesense collection."""
    return dg.AssetKey(["typesense", alias])


def load_job_name(alias: str) -> str:
    """Name of the load job of an alias."""
    return f"load_{alias}"


def build_alias_asset(alias: str, sources: list[SourceConfig]) -> dg.AssetsDefinition:
    """Build the asset that loads one alias' pending buffer rows into Typesense.

    Args:
        alias: ``<organization>_<index_slug>``.
        sources: The sources that feed this alias (upstream lineage).

    """

    @dg.asset(
        key=alias_asset_key(alias),
        group_name="search",
        kinds={"typesense"},
        deps=[dg.AssetKey([s.name, "search_buffer"]) for s in sources],
        required_resource_keys={"buffer", "typesense"},
        check_specs=[
            dg.AssetCheckSpec(
                "no_failed_documents",
                asset=alias_asset_key(alias),
                description="Every document of the load was accepted by Typesense (each import result line read).",
            )
        ],
        description=(
            f"Typesense collection behind the alias `{alias}`. Pending buffer rows are imported as JSONL "
            "(action upsert, 1,000 per request), every per-document result line is read and each row is marked "
            "loaded or failed; deletes are applied. A full reindex builds a new collection and swaps the alias, so "
            "searches never see an empty or half-built index."
        ),
    )
    def search_collection(context: dg.AssetExecutionContext, config: LoadConfig):
        store = context.resources.buffer.store()
        contract = load_contract()
        started = time.perf_counter()
        with context.resources.typesense.client() as client:
            stats = load_alias(store, client, alias, typesense_schema(contract, alias), reindex=config.reindex)
            documents = client.count(alias) if stats.collection else 0
        if stats.skipped:
            context.log.warning(f"{alias}: {stats.skipped}; the pending rows stay for the next load.")
        seconds = time.perf_counter() - started
        yield dg.MaterializeResult(
            metadata={**load_metadata(stats, documents, seconds), "skipped": stats.skipped or ""}
        )
        yield dg.AssetCheckResult(
            check_name="no_failed_documents",
            passed=stats.failed == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"failed": dg.MetadataValue.int(stats.failed)},
            description=None if stats.failed == 0 else f"{stats.failed} documents rejected; see `aac-etl status`.",
        )

    return search_collection


def build_load_job(alias: str) -> "dg.UnresolvedAssetJobDefinition":
    """Build the job the sensor launches for an alias."""
    return dg.define_asset_job(
        name=load_job_name(alias),
        selection=dg.AssetSelection.assets(alias_asset_key(alias)),
        description=f"Load pending buffer rows of {alias} into Typesense.",
        tags={"aac_etl/alias": alias},
    )
