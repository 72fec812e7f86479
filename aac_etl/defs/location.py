"""Assemble the code location from sources.yaml: one asset family per source, one collection asset per alias."""

from __future__ import annotations

from collections import defaultdict

import dagster as dg

from aac_etl.defs.catalog.assets import build_source_assets, db_resource_key, source_job
from aac_etl.defs.catalog.schedules import build_nightly_schedule
from aac_etl.defs.resources import SourceDatabaseResource, shared_resources
from aac_etl.defs.search.assets import build_alias_asset, build_load_job
from aac_etl.defs.search.sensors import build_buffer_sensor
from aac_etl.lib.sources_config import SourceConfig, load_sources


def build_definitions(sources: list[SourceConfig] | None = None) -> dg.Definitions:
    """Build the Dagster definitions.

    Args:
        sources: Declared sources; defaults to the sources file (``$AAC_ETL_SOURCES`` or ``./sources.yaml``).

    Returns:
        Assets, checks, jobs, the nightly schedules, the buffer sensor and the resources.

    """
    declared = load_sources() if sources is None else sources
    assets: list[dg.AssetsDefinition] = []
    jobs: list[dg.UnresolvedAssetJobDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    resources: dict[str, object] = dict(shared_resources())
    by_alias: dict[str, list[SourceConfig]] = defaultdict(list)
    for source in declared:
        assets.extend(build_source_assets(source))
        jobs.append(source_job(source))
        schedules.append(build_nightly_schedule(source))
        if source.dsn_env:
            resources[db_resource_key(source)] = SourceDatabaseResource(dsn=dg.EnvVar(source.dsn_env))
        by_alias[source.collection_alias].append(source)
    load_jobs = []
    for alias, alias_sources in sorted(by_alias.items()):
        assets.append(build_alias_asset(alias, alias_sources))
        load_jobs.append(build_load_job(alias))
    jobs.extend(load_jobs)
    sensors = [build_buffer_sensor(sorted(by_alias), load_jobs)] if load_jobs else []
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules, sensors=sensors, resources=resources)
