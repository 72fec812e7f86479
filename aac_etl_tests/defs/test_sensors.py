"""The buffer sensor: JSON cursor, deterministic run keys, one request per watermark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl

from aac_etl.defs.location import build_definitions
from aac_etl.defs.resources import BufferResource
from aac_etl.defs.search.assets import load_job_name
from aac_etl.defs.search.sensors import RELAUNCH_AFTER_SECONDS
from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.documents import to_payloads
from aac_etl.lib.sources_config import SourceConfig

SOURCE = SourceConfig(
    name="shop",
    platform="files",
    path="/nonexistent/catalog.jsonl",
    organization="acme",
    index_slug="products",
    storefront_url="https://shop.example.com",
)


def _docs(n: int, price: float = 10.0) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "external_id": [f"{i}:en" for i in range(n)],
            "title": [f"Product {i}" for i in range(n)],
            "price": [price] * n,
            "locale": ["en"] * n,
        }
    )
    return to_payloads(frame)


def _evaluate(tmp_path: Path, cursor: str | None, instance: dg.DagsterInstance | None = None) -> dg.SensorResult:
    defs = build_definitions([SOURCE])
    sensor = defs.resolve_sensor_def("search_buffer_sensor")
    url = f"duckdb:///{tmp_path / 'buffer.duckdb'}"
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"buffer": BufferResource(url=url)},
        instance=instance or dg.DagsterInstance.ephemeral(),
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_sensor_requests_one_load_per_buffer_watermark(tmp_path: Path) -> None:
    store = BufferStore(f"duckdb:///{tmp_path / 'buffer.duckdb'}")
    store.ensure_schema()

    idle = _evaluate(tmp_path, None)
    assert not idle.run_requests
    assert idle.skip_reason is not None

    store.enqueue("acme_products", "acme", "shop", "run-1", _docs(3))
    first = _evaluate(tmp_path, None)
    assert first.run_requests is not None
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.job_name == load_job_name("acme_products")
    assert request.run_key is not None
    assert request.run_key.startswith("load:acme_products:")
    assert first.cursor is not None
    state = json.loads(first.cursor)["acme_products"]
    assert state["key"] == request.run_key
    assert state["again"] == 0

    # Same buffer state, fresh cursor: the same deterministic key (Dagster dedupes it).
    assert _evaluate(tmp_path, None).run_requests[0].run_key == request.run_key  # type: ignore[index]
    # Same buffer state, advanced cursor: nothing new.
    assert not _evaluate(tmp_path, first.cursor).run_requests

    store.enqueue("acme_products", "acme", "shop", "run-2", _docs(5, price=11.0))
    moved = _evaluate(tmp_path, first.cursor)
    assert moved.run_requests is not None
    assert len(moved.run_requests) == 1
    assert moved.run_requests[0].run_key != request.run_key


def test_sensor_requests_a_stuck_watermark_again_when_no_load_is_active(tmp_path: Path) -> None:
    store = BufferStore(f"duckdb:///{tmp_path / 'buffer.duckdb'}")
    store.ensure_schema()
    store.enqueue("acme_products", "acme", "shop", "run-1", _docs(3))
    instance = dg.DagsterInstance.ephemeral()
    first = _evaluate(tmp_path, None, instance)
    assert first.run_requests is not None
    assert first.cursor is not None
    key = first.run_requests[0].run_key

    # Requested a moment ago: not again, even though the rows are still pending.
    assert not _evaluate(tmp_path, first.cursor, instance).run_requests
    # Requested long ago (the load skipped: the alias was being rebuilt) and the watermark has not moved.
    stale = json.loads(first.cursor)
    stale["acme_products"]["at"] -= RELAUNCH_AFTER_SECONDS + 1
    again = _evaluate(tmp_path, json.dumps(stale), instance)
    assert again.run_requests is not None
    assert [r.run_key for r in again.run_requests] == [f"{key}:again1"]
    assert again.cursor is not None
    assert json.loads(again.cursor)["acme_products"]["again"] == 1
    # A load of the alias queued or running: no second one.
    instance.add_run(
        dg.DagsterRun(job_name=load_job_name("acme_products"), run_id="active-load", status=dg.DagsterRunStatus.STARTED)
    )
    assert not _evaluate(tmp_path, json.dumps(stale), instance).run_requests
    # A cursor from before re-launches existed (the bare key) is read as requested long ago.
    legacy = _evaluate(tmp_path, json.dumps({"acme_products": key}), dg.DagsterInstance.ephemeral())
    assert [r.run_key for r in legacy.run_requests or []] == [f"{key}:again1"]


def test_code_location_import_stays_light() -> None:
    code = (
        "import sys, aac_etl.definitions, aac_etl.defs.search.sensors; "
        "heavy = [m for m in ('great_expectations', 'pandas') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if 'great_expectations' in heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
