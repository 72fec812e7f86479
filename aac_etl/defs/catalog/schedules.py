"""Nightly full syncs, one schedule per source, from the cron and timezone in sources.yaml."""

from __future__ import annotations

import dagster as dg

from aac_etl.defs.catalog.assets import sync_job_name, sync_run_config
from aac_etl.lib.sources_config import SourceConfig


def build_nightly_schedule(source: SourceConfig) -> dg.ScheduleDefinition:
    """Schedule a full sync of ``source`` at its configured cron in its timezone."""
    return dg.ScheduleDefinition(
        name=f"{source.name}_nightly_full_sync",
        cron_schedule=source.schedule.cron,
        execution_timezone=source.schedule.timezone,
        job_name=sync_job_name(source.name),
        run_config=sync_run_config(source.name, "full"),
        default_status=dg.DefaultScheduleStatus.RUNNING
        if source.schedule.enabled
        else dg.DefaultScheduleStatus.STOPPED,
        description=(
            f"Nightly full sync of {source.name} (deletes documents that left the source, behind the safety gate)."
        ),
        tags={"aac_etl/source": source.name, "aac_etl/kind": "full"},
    )
