"""Sensor: launch the load job of every alias whose buffer holds pending operations.

Kept light on purpose: it imports neither Great Expectations nor the sources, opens one short buffer connection
per tick, and answers well within the sensor evaluation timeout.
"""

import json
import time
from typing import Any

import dagster as dg

from aac_etl.defs.resources import BufferResource
from aac_etl.defs.search.assets import load_job_name

SENSOR_INTERVAL_SECONDS = 30
RELAUNCH_AFTER_SECONDS = 600
"""A load whose pending rows are still there this long after it was requested, with no load of the alias queued or
running, is requested again: a load that found the alias being rebuilt by a sync skips, and leaves the watermark
where it was."""

_ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def run_key_for(alias: str, max_pending_id: int, pending: int) -> str:
    """Deterministic run key: the same buffer state never launches two loads."""
    return f"load:{alias}:{max_pending_id}:{pending}"


def _state(value: Any) -> dict[str, Any]:
    """Cursor entry of one alias: the watermark key, when it was last requested, how many times again.

    A cursor written before re-launches existed holds only the key.
    """
    if isinstance(value, str):
        return {"key": value, "at": 0.0, "again": 0}
    if isinstance(value, dict):
        return {
            "key": str(value.get("key", "")),
            "at": float(value.get("at", 0.0)),
            "again": int(value.get("again", 0)),
        }
    return {"key": "", "at": 0.0, "again": 0}


def _load_active(instance: dg.DagsterInstance, alias: str) -> bool:
    filters = dg.RunsFilter(job_name=load_job_name(alias), statuses=_ACTIVE_STATUSES)
    return bool(instance.get_run_records(filters=filters, limit=1))


def build_buffer_sensor(aliases: list[str], jobs: "list[dg.UnresolvedAssetJobDefinition]") -> dg.SensorDefinition:
    """Build the sensor watching the search buffer.

    The cursor is JSON: ``{alias: {"key": run_key of the watermark, "at": epoch s of the last request, "again": n}}``.
    A new load is requested when the pending watermark of an alias moved; the same watermark is requested again
    (run key suffixed ``:again<n>``) when its rows are still pending :data:`RELAUNCH_AFTER_SECONDS` later and no load
    of the alias is queued or running.
    """

    @dg.sensor(
        name="search_buffer_sensor",
        jobs=jobs,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches load_<alias> when search_ingest_buffer holds pending operations for that alias.",
    )
    def search_buffer_sensor(context: dg.SensorEvaluationContext, buffer: BufferResource) -> dg.SensorResult:
        raw: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
        cursor = {alias: _state(value) for alias, value in raw.items()}
        now = time.time()
        store = buffer.store()
        requests: list[dg.RunRequest] = []
        for alias, pending, max_id in store.pending_summary():  # max_id moves on every enqueue and failed attempt
            if alias not in aliases or pending == 0:
                continue
            key = run_key_for(alias, max_id, pending)
            state = cursor.get(alias)
            if state is None or state["key"] != key:
                cursor[alias] = {"key": key, "at": now, "again": 0}
                run_key = key
            elif now - state["at"] >= RELAUNCH_AFTER_SECONDS and not _load_active(context.instance, alias):
                again = state["again"] + 1
                cursor[alias] = {"key": key, "at": now, "again": again}
                run_key = f"{key}:again{again}"
                context.log.info(f"{alias}: {pending} operations still pending since the last load request; again")
            else:
                continue
            requests.append(
                dg.RunRequest(run_key=run_key, job_name=load_job_name(alias), tags={"aac_etl/alias": alias})
            )
        encoded = json.dumps(cursor, sort_keys=True)
        if not requests:
            return dg.SensorResult(skip_reason="nothing new pending in search_ingest_buffer", cursor=encoded)
        return dg.SensorResult(run_requests=requests, cursor=encoded)

    return search_buffer_sensor
