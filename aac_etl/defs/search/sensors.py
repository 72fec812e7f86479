"""Sensor: launch the load job of every alias whose buffer holds pending operations.

Kept light on purpose: it imports neither Great Expectations nor the sources, opens one short buffer connection
per tick, and answers well within the sensor evaluation timeout.
"""

import json

import dagster as dg

from aac_etl.defs.resources import BufferResource
from aac_etl.defs.search.assets import load_job_name

SENSOR_INTERVAL_SECONDS = 30


def run_key_for(alias: str, max_pending_id: int, pending: int) -> str:
    """Deterministic run key: the same buffer state never launches two loads."""
    return f"load:{alias}:{max_pending_id}:{pending}"


def build_buffer_sensor(aliases: list[str], jobs: "list[dg.UnresolvedAssetJobDefinition]") -> dg.SensorDefinition:
    """Build the sensor watching the search buffer.

    The cursor is JSON: ``{alias: run_key of the last launched load}``; a new load is requested when the pending
    watermark of an alias moved since then.
    """

    @dg.sensor(
        name="search_buffer_sensor",
        jobs=jobs,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches load_<alias> when search_ingest_buffer holds pending operations for that alias.",
    )
    def search_buffer_sensor(context: dg.SensorEvaluationContext, buffer: BufferResource) -> dg.SensorResult:
        cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        store = buffer.store()
        requests: list[dg.RunRequest] = []
        for (
            alias,
            pending,
            max_id,
        ) in store.pending_summary():  # max_id moves on every enqueue and failed attempt
            if alias not in aliases or pending == 0:
                continue
            key = run_key_for(alias, max_id, pending)
            if cursor.get(alias) == key:
                continue
            cursor[alias] = key
            requests.append(dg.RunRequest(run_key=key, job_name=load_job_name(alias), tags={"aac_etl/alias": alias}))
        if not requests:
            return dg.SensorResult(
                skip_reason="no pending operations in search_ingest_buffer", cursor=json.dumps(cursor)
            )
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return search_buffer_sensor
