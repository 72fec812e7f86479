"""End to end: the real OpenCart 3.0 demo dump in MariaDB -> real Dagster runs -> DuckDB buffer -> real Typesense."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import sqlalchemy as sa

from aac_etl.defs.catalog.assets import sync_job_name, sync_run_config
from aac_etl.defs.location import build_definitions
from aac_etl.defs.resources import default_buffer_url
from aac_etl.defs.runs import materialization_metadata
from aac_etl.defs.search.assets import load_job_name
from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.loader import LoaderError, LoadStats, ShadowBuild
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.sqldump import load_mysql_dump
from aac_etl.lib.typesense_client import TypesenseClient

pytestmark = [pytest.mark.mariadb, pytest.mark.typesense, pytest.mark.slow]


@dataclass
class Pipeline:
    """A built code location for one OpenCart source plus handles to its real backends."""

    defs: dg.Definitions
    source: SourceConfig
    db: sa.Engine
    client: TypesenseClient
    store: BufferStore
    instance: dg.DagsterInstance

    def sync(self, mode: str = "full", **kwargs: Any) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(sync_job_name(self.source.name))
        return job.execute_in_process(
            run_config=sync_run_config(self.source.name, mode, **kwargs),
            instance=self.instance,
            raise_on_error=False,
        )

    def load(self, *, reindex: bool = False) -> dg.ExecuteInProcessResult:
        alias = self.source.collection_alias
        job = self.defs.resolve_job_def(load_job_name(alias))
        config = {"ops": {f"typesense__{alias}": {"config": {"reindex": reindex}}}}
        return job.execute_in_process(run_config=config, instance=self.instance, raise_on_error=False)


def materialization(result: dg.ExecuteInProcessResult, *key: str) -> dict[str, Any]:
    """Metadata of the last materialization of the asset ``key`` (``<source>, <stage>`` or ``typesense, <alias>``)."""
    metadata = materialization_metadata(result, *key)
    assert metadata, f"no materialization of {'/'.join(key)} in run {result.run_id}"
    return metadata


def _make_pipeline(
    mariadb_url: str, dump: Path, typesense_server: Any, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> Pipeline:
    """The real OpenCart 3 dump in a fresh MariaDB database of this test's own (the test changes it)."""
    load_mysql_dump(dump, mariadb_url)
    slug = f"oc3_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OC3_E2E_DSN", mariadb_url)
    monkeypatch.setenv("TYPESENSE_URL", typesense_server.url)
    monkeypatch.setenv("TYPESENSE_API_KEY", typesense_server.api_key)
    values: dict[str, Any] = {
        "name": "oc3",
        "platform": "opencart",
        "dsn_env": "OC3_E2E_DSN",
        "organization": "acme",
        "index_slug": slug,
        "languages": {"en-gb": "en"},
        "default_currency": "USD",
        "storefront_url": "https://shop.example.com",
        **overrides,
    }
    source = SourceConfig.model_validate(values)
    defs = build_definitions([source])
    engine = sa.create_engine(mariadb_url)
    store = BufferStore(default_buffer_url())
    store.ensure_schema()
    client = TypesenseClient(typesense_server.url, typesense_server.api_key)
    return Pipeline(defs, source, engine, client, store, dg.DagsterInstance.get())


@pytest.fixture
def pipeline(
    mariadb_url: str, opencart3_dump: Path, typesense_server: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pipeline]:
    """The real OpenCart 3 dump in a fresh MariaDB database of this test's own (the test changes it)."""
    p = _make_pipeline(mariadb_url, opencart3_dump, typesense_server, monkeypatch)
    try:
        yield p
    finally:
        p.client.close()
        p.db.dispose()


def search(p: Pipeline, query: str) -> list[dict[str, Any]]:
    result = p.client.search(p.source.collection_alias, query, per_page=50)
    return [hit["document"] for hit in result["hits"]]


def test_opencart3_sync_end_to_end(pipeline: Pipeline) -> None:
    p = pipeline
    alias = p.source.collection_alias

    # First full sync: all 19 demo products become searchable.
    first = p.sync("full")
    assert first.success, first.all_events
    buffered = materialization(first, "oc3", "search_buffer")
    assert buffered["documents"] == 19
    assert buffered["enqueued_upserts"] == 19
    # The alias had no collection: the full sync built one while it ran and swapped the alias to it.
    built = materialization(first, "typesense", alias)
    assert built["reindexed"] is True
    assert built["upserted"] == 19
    assert built["failed"] == 0
    assert built["documents_in_collection"] == 19
    assert p.client.count(alias) == 19
    assert p.store.status(alias).filter(pl.col("status") == "pending").height == 0
    loaded = p.load()
    assert loaded.success
    assert materialization(loaded, "typesense", alias)["documents_sent"] == 0

    iphone = [d for d in search(p, "iphone") if d["title"] == "iPhone"]
    assert len(iphone) == 1
    assert iphone[0]["price"] == pytest.approx(101.0)
    assert "<" not in iphone[0]["description"]
    assert "&lt;" not in iphone[0]["description"]
    assert iphone[0]["description"].startswith("iPhone is a revolutionary new mobile phone")
    cinema = [d for d in search(p, "cinema") if d["id"] == "42:en"]
    assert cinema
    assert cinema[0]["title"] == 'Apple Cinema 30"'

    # Unchanged full sync: nothing enqueued, nothing sent.
    again = p.sync("full")
    assert again.success
    assert materialization(again, "oc3", "search_buffer")["enqueued_upserts"] == 0
    assert materialization(again, "oc3", "search_buffer")["enqueued_deletes"] == 0
    # Every product's raw input fingerprint matched: none was normalized again.
    assert materialization(again, "oc3", "extract")["unchanged_records_skipped"] == 19
    assert materialization(again, "oc3", "normalized")["documents"] == 0
    idle = p.load()
    assert idle.success
    assert materialization(idle, "typesense", alias)["documents_sent"] == 0

    # Change one price and delete one product at the source.
    with p.db.begin() as conn:
        conn.execute(sa.text("UPDATE oc_product SET price = 123.45, date_modified = NOW() WHERE product_id = 40"))
        conn.execute(sa.text("DELETE FROM oc_product WHERE product_id = 49"))
    changed = p.sync("full")
    assert changed.success
    meta = materialization(changed, "oc3", "search_buffer")
    assert meta["enqueued_upserts"] == 1
    assert meta["enqueued_deletes"] == 1
    assert materialization(changed, "oc3", "extract")["unchanged_records_skipped"] == 17
    applied = p.load()
    assert applied.success
    applied_meta = materialization(applied, "typesense", alias)
    assert applied_meta["documents_sent"] == 1
    assert applied_meta["deleted"] == 1
    assert p.client.count(alias) == 18
    assert [d["price"] for d in search(p, "iphone") if d["title"] == "iPhone"] == [pytest.approx(123.45)]
    assert not [d for d in search(p, "*") if d["id"] == "49:en"]

    # An emptied source stops at the safety gate; the index keeps answering with every document.
    with p.db.begin() as conn:
        conn.execute(sa.text("DELETE FROM oc_product"))
    gated = p.sync("full")
    assert not gated.success
    failure = "\n".join(
        e.step_failure_data.error.message
        for e in gated.all_events
        if e.is_step_failure and e.step_failure_data and e.step_failure_data.error
    )
    assert "Safety gate" in failure
    counts = p.store.status(alias)
    assert counts.filter(counts["status"] == "pending").height == 0
    assert p.client.count(alias) == 18
    history = p.store.last_sync("oc3")
    assert history is not None
    assert history.status == "failed"
    assert "Safety gate" in (history.error or "")


def test_delta_sync_and_reindex_swap_alias(pipeline: Pipeline) -> None:
    p = pipeline
    alias = p.source.collection_alias
    first = p.sync("full")
    assert first.success
    assert p.load().success
    first_collection = p.client.get_alias(alias)

    # The run's extract was kept as Parquet: replaying it reproduces the same documents (nothing to send).
    replay = p.sync("full", replay_run_id=first.run_id)
    assert replay.success
    assert materialization(replay, "oc3", "extract")["replay_of"] == first.run_id
    assert materialization(replay, "oc3", "search_buffer")["documents"] == 19
    assert materialization(replay, "oc3", "search_buffer")["enqueued_upserts"] == 0

    with p.db.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE oc_product SET quantity = 0, date_modified = NOW() + INTERVAL 1 MINUTE WHERE product_id = 43"
            )
        )
    delta = p.sync("delta")
    assert delta.success
    assert materialization(delta, "oc3", "extract")["mode"] == "delta"
    assert materialization(delta, "oc3", "search_buffer")["documents"] < 19
    assert materialization(delta, "oc3", "search_buffer")["enqueued_upserts"] == 1
    assert materialization(delta, "oc3", "search_buffer")["enqueued_deletes"] == 0
    assert p.load().success

    rebuilt = p.load(reindex=True)
    assert rebuilt.success
    assert materialization(rebuilt, "typesense", alias)["reindexed"] is True
    second_collection = p.client.get_alias(alias)
    assert second_collection != first_collection
    assert p.client.get_collection(str(first_collection)) is None
    assert p.client.count(alias) == 19
    macbook = [d for d in search(p, "macbook") if d["id"] == "43:en"]
    assert macbook
    assert macbook[0]["stock_quantity"] == 0


def test_records_skipped_as_unchanged_count_for_the_circuit_breaker(
    mariadb_url: str, opencart3_dump: Path, typesense_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = _make_pipeline(mariadb_url, opencart3_dump, typesense_server, monkeypatch, max_invalid_share=0.1)
    try:
        with p.db.begin() as conn:
            conn.execute(sa.text("UPDATE oc_product SET price = -5 WHERE product_id = 40"))
        first = p.sync("full")
        assert first.success
        assert materialization(first, "oc3", "validated")["quarantined"] == 1
        # Nothing changed: 18 products are skipped by fingerprint and only the quarantined one is validated
        # again. Its share is 1 of 19 documents, not 1 of the 1 re-validated: the breaker must not trip.
        again = p.sync("full")
        assert again.success, again.all_events
        validated = materialization(again, "oc3", "validated")
        assert (validated["records_in"], validated["valid"], validated["quarantined"]) == (19, 18, 1)
        assert validated["valid_unchanged_skipped"] == 18
        assert materialization(again, "oc3", "extract")["unchanged_records_skipped"] == 18
        assert materialization(again, "oc3", "search_buffer")["enqueued_deletes"] == 0
        assert p.client.count(p.source.collection_alias) == 18
    finally:
        p.client.close()
        p.db.dispose()


def test_full_sync_failing_while_its_build_finishes_is_rerun_exactly(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first full sync builds the alias's collection while it runs. It fails while the last imports are being
    # indexed: after its buffer write and fingerprints, before the alias swap.
    p = pipeline
    alias = p.source.collection_alias
    finish = ShadowBuild.finish

    def fail(self: ShadowBuild, **_: Any) -> LoadStats:
        self._join()
        raise LoaderError("simulated failure while the last imports were indexed")

    monkeypatch.setattr(ShadowBuild, "finish", fail)
    first = p.sync("full")
    assert not first.success
    assert p.client.get_alias(alias) is None
    assert [row.pending_count for row in p.store.pending_summary() if row.alias == alias] == [19]

    # The re-run finds every record unchanged (the buffer holds their documents) and builds the collection from
    # the buffer: all 19 documents, each once.
    monkeypatch.setattr(ShadowBuild, "finish", finish)
    again = p.sync("full")
    assert again.success, again.all_events
    assert materialization(again, "oc3", "extract")["unchanged_records_skipped"] == 19
    assert materialization(again, "oc3", "search_buffer")["enqueued_upserts"] == 0
    built = materialization(again, "typesense", alias)
    assert built["documents_sent"] == 19
    assert p.client.count(alias) == 19
    assert len({doc["id"] for doc in search(p, "*")}) == 19
    assert not [row for row in p.store.pending_summary() if row.alias == alias and row.pending_count]
