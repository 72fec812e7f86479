"""load_alias on a real Typesense: full, incremental, failures, deletes, zero-downtime reindex, SIGKILL."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.documents import to_payloads
from aac_etl.lib.loader import STREAMING, LoaderError, ShadowBuild, load_alias, rebuild_reason, schema_hash
from aac_etl.lib.typesense_client import TypesenseClient
from aac_etl_tests.fixtures.typesense import TypesenseEndpoint, unique_collection_name

pytestmark = pytest.mark.typesense

SOURCE = "shop"
SCHEMA: dict[str, Any] = {
    "fields": [
        {"name": "external_id", "type": "string"},
        {"name": "title", "type": "string"},
        {"name": "price", "type": "float", "optional": True},
        {"name": "locale", "type": "string", "facet": True, "optional": True},
        {"name": "attributes", "type": "object", "optional": True},
    ],
    "enable_nested_fields": True,
}


def documents(ids: Sequence[int], *, version: int = 1, bad: Sequence[int] = ()) -> pl.DataFrame:
    """Payload frame; ``bad`` ids get a string price that Typesense rejects."""
    frame = pl.DataFrame(
        {
            "external_id": [f"{i}:en" for i in ids],
            "title": [f"Product {i} v{version}" for i in ids],
            "price": [f"not-a-number-{i}" if i in bad else str(10.0 + i + version) for i in ids],
            "locale": ["en"] * len(ids),
            "attributes.color": ["red" if i % 2 else None for i in ids],
        }
    )
    if not bad:
        frame = frame.with_columns(pl.col("price").cast(pl.Float64))
    return to_payloads(frame)


class SpyClient(TypesenseClient):
    """A real client that records what it sends."""

    def __init__(self, url: str, api_key: str) -> None:
        super().__init__(url, api_key)
        self.imported: list[str] = []
        self.deleted: list[str] = []

    def import_frame(
        self, collection: str, payloads: pl.Series, *, action: str = "upsert", batch_size: int = 1000
    ) -> pl.DataFrame:
        self.imported.extend(payloads.to_list())
        return super().import_frame(collection, payloads, action=action, batch_size=batch_size)

    def delete_documents(self, collection: str, ids: Sequence[str]) -> int:
        self.deleted.extend(ids)
        return super().delete_documents(collection, ids)


@pytest.fixture
def client(typesense_server: TypesenseEndpoint) -> Iterator[SpyClient]:
    with SpyClient(typesense_server.url, typesense_server.api_key) as spy:
        yield spy


@pytest.fixture
def alias(client: SpyClient) -> Iterator[str]:
    name = unique_collection_name("load")
    yield name
    for info in client.list_collections():
        if str(info.get("name", "")).startswith(f"{name}_"):
            client.delete_collection(str(info["name"]))


@pytest.fixture
def store(tmp_path: Path) -> BufferStore:
    buffer = BufferStore(f"duckdb:///{tmp_path / 'buffer.duckdb'}")
    buffer.ensure_schema()
    return buffer


def ids_in(client: TypesenseClient, alias: str) -> list[str]:
    found: list[str] = []
    page = 1
    while True:
        result = client.search(alias, "*", query_by="title", per_page=250, page=page, include_fields="id")
        hits = result.get("hits", [])
        found.extend(hit["document"]["id"] for hit in hits)
        if len(hits) < 250:
            return sorted(found)
        page += 1


def collections_of(client: TypesenseClient, alias: str) -> list[str]:
    return sorted(str(c["name"]) for c in client.list_collections() if str(c["name"]).startswith(f"{alias}_"))


def expected_ids(ids: Sequence[int]) -> list[str]:
    return sorted(f"{i}:en" for i in ids)


def test_full_load_then_incremental_sends_only_pending_rows(store: BufferStore, client: SpyClient, alias: str) -> None:
    store.enqueue(alias, None, SOURCE, "s1", documents(range(250)))
    progress: list[int] = []
    stats = load_alias(store, client, alias, SCHEMA, batch_size=100, progress=progress.append)
    assert stats.reindexed
    assert (stats.upserted, stats.deleted, stats.failed) == (250, 0, 0)
    assert stats.collection.startswith(f"{alias}_")
    assert client.get_alias(alias) == stats.collection
    assert ids_in(client, alias) == expected_ids(range(250))
    assert sum(progress) == 250
    assert store.pending_summary() == []
    state = store.get_index_state(alias)
    assert state is not None
    assert (state.collection_name, state.full_import, state.schema_hash) == (
        stats.collection,
        "done",
        schema_hash(SCHEMA),
    )
    assert len(client.imported) == 250

    # Nothing pending: nothing sent.
    client.imported.clear()
    again = load_alias(store, client, alias, SCHEMA, batch_size=100)
    assert (again.upserted, again.deleted, again.failed, again.reindexed) == (0, 0, 0, False)
    assert client.imported == []

    # Three changed, two new, one gone (full sync): exactly those rows travel.
    changed = documents([1, 2, 3], version=2)
    store.enqueue(alias, None, SOURCE, "s2", pl.concat([documents(range(250)).slice(4), changed]))
    store.enqueue(alias, None, SOURCE, "s2", documents([300, 301]))
    seen = [f"{i}:en" for i in range(1, 250)] + ["300:en", "301:en"]
    assert store.mark_missing_as_deleted(alias, SOURCE, "s2", seen) == 1
    incremental = load_alias(store, client, alias, SCHEMA, batch_size=100)
    assert (incremental.upserted, incremental.deleted, incremental.failed) == (5, 1, 0)
    assert not incremental.reindexed
    assert incremental.collection == stats.collection
    assert sorted(client.imported) == sorted(
        changed.get_column("payload").to_list() + documents([300, 301]).get_column("payload").to_list()
    )
    assert client.deleted == ["0:en"]
    assert ids_in(client, alias) == expected_ids([*range(1, 250), 300, 301])
    hit = client.search(alias, "*", query_by="title", filter_by="id:=2:en")["hits"][0]["document"]
    assert hit["title"] == "Product 2 v2"
    assert store.pending_summary() == []


def test_failed_lines_are_marked_failed_with_the_error(store: BufferStore, client: SpyClient, alias: str) -> None:
    store.enqueue(alias, None, SOURCE, "s1", documents(range(20)))
    load_alias(store, client, alias, SCHEMA, batch_size=8)
    store.enqueue(alias, None, SOURCE, "s2", documents([3], version=2, bad=[3]))
    store.enqueue(alias, None, SOURCE, "s2", documents([21], version=2))
    stats = load_alias(store, client, alias, SCHEMA, batch_size=8)
    assert (stats.upserted, stats.failed) == (1, 1)
    failed = store.failed_documents(alias)
    assert failed.get_column("external_id").to_list() == ["3:en"]
    assert failed.get_column("status").to_list() == ["pending"]
    assert failed.get_column("attempts").to_list() == [1]
    error = failed.get_column("last_error")[0]
    assert "price" in error
    assert error.startswith("400")
    # Still the old version in the index; the new document made it.
    assert "21:en" in ids_in(client, alias)
    # Fixing the record at the source: the next load sends it and clears the error.
    store.enqueue(alias, None, SOURCE, "s3", documents([3], version=3))
    fixed = load_alias(store, client, alias, SCHEMA, batch_size=8)
    assert (fixed.upserted, fixed.failed) == (1, 0)
    assert store.failed_documents(alias).height == 0
    assert store.pending_summary() == []


def test_reindex_swaps_alias_with_zero_downtime(store: BufferStore, client: SpyClient, alias: str) -> None:
    store.enqueue(alias, None, SOURCE, "s1", documents(range(200)))
    first = load_alias(store, client, alias, SCHEMA, batch_size=50)
    observed: list[int] = []

    def check_search(_: int) -> None:
        # Between every import request of the rebuild, searches through the alias see the full old index.
        result = client.search(alias, "*", query_by="title", per_page=1)
        observed.append(int(result["found"]))
        assert client.get_alias(alias) == first.collection

    second = load_alias(store, client, alias, SCHEMA, batch_size=50, reindex=True, progress=check_search)
    assert second.reindexed
    assert second.collection != first.collection
    assert observed == [200, 200, 200, 200]
    assert client.get_alias(alias) == second.collection
    assert collections_of(client, alias) == [second.collection]  # the old collection is gone
    assert ids_in(client, alias) == expected_ids(range(200))

    # A schema change rebuilds automatically.
    wider = {**SCHEMA, "fields": [*SCHEMA["fields"], {"name": "brand", "type": "string", "optional": True}]}
    third = load_alias(store, client, alias, wider, batch_size=50)
    assert third.reindexed
    assert collections_of(client, alias) == [third.collection]
    assert ids_in(client, alias) == expected_ids(range(200))
    assert store.pending_summary() == []


def test_failed_rebuild_keeps_the_old_collection(store: BufferStore, client: SpyClient, alias: str) -> None:
    store.enqueue(alias, None, SOURCE, "s1", documents(range(30)))
    first = load_alias(store, client, alias, SCHEMA, batch_size=10)
    broken = {**SCHEMA, "fields": [{"name": "title", "type": "int32"}, *SCHEMA["fields"][2:]]}
    with pytest.raises(LoaderError, match="abandoned"):
        load_alias(store, client, alias, broken, batch_size=10)
    assert client.get_alias(alias) == first.collection
    assert collections_of(client, alias) == [first.collection]
    assert ids_in(client, alias) == expected_ids(range(30))
    state = store.get_index_state(alias)
    assert state is not None
    assert (state.collection_name, state.full_import) == (first.collection, "done")
    # Nothing was marked: the buffer still considers the good collection current.
    assert store.pending_summary() == []
    assert not load_alias(store, client, alias, SCHEMA, batch_size=10).reindexed


def test_empty_buffer_never_replaces_a_populated_collection(
    store: BufferStore, client: SpyClient, alias: str, tmp_path: Path
) -> None:
    store.enqueue(alias, None, SOURCE, "s1", documents(range(5)))
    first = load_alias(store, client, alias, SCHEMA)
    fresh = BufferStore(f"duckdb:///{tmp_path / 'lost.duckdb'}")
    with pytest.raises(LoaderError, match="refusing"):
        load_alias(fresh, client, alias, SCHEMA)
    assert client.get_alias(alias) == first.collection
    assert ids_in(client, alias) == expected_ids(range(5))


# ---------------------------------------------------------------- crash safety


def _load_slowly(buffer_url: str, ts_url: str, api_key: str, alias: str, marker: str) -> None:
    """Run a load that pauses after every request and records its progress in ``marker``."""
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        staged = Path(f"{marker}.tmp")
        staged.write_text(str(done))
        staged.replace(marker)  # atomic: the watching test never reads a half-written count
        time.sleep(0.3)

    with TypesenseClient(ts_url, api_key) as ts:
        load_alias(BufferStore(buffer_url), ts, alias, SCHEMA, batch_size=50, progress=progress)


def _run_and_kill(buffer_url: str, endpoint: TypesenseEndpoint, alias: str, marker: Path, after_rows: int) -> None:
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_load_slowly, args=(buffer_url, endpoint.url, endpoint.api_key, alias, str(marker)))
    child.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if marker.exists() and int(marker.read_text()) >= after_rows:
            break
        if not child.is_alive():
            pytest.fail(f"loader exited early with {child.exitcode}")
        time.sleep(0.05)
    child.kill()  # SIGKILL: no cleanup of any kind
    child.join(30)
    assert child.exitcode == -9


@pytest.mark.parametrize("phase", ["first_build", "incremental"])
def test_sigkill_mid_load_then_rerun_is_exact(
    *,
    phase: str,
    store: BufferStore,
    client: SpyClient,
    alias: str,
    typesense_server: TypesenseEndpoint,
    tmp_path: Path,
) -> None:
    buffer_url = store._url
    if phase == "first_build":
        store.enqueue(alias, None, SOURCE, "s1", documents(range(400)))
        wanted = list(range(400))
    else:
        store.enqueue(alias, None, SOURCE, "s1", documents(range(400)))
        load_alias(store, client, alias, SCHEMA, batch_size=100)
        store.enqueue(alias, None, SOURCE, "s2", documents(range(400), version=2).slice(0, 380))
        store.enqueue(alias, None, SOURCE, "s2", documents(range(400, 450)))
        seen = [f"{i}:en" for i in [*range(380), *range(400, 450)]]
        assert store.mark_missing_as_deleted(alias, SOURCE, "s2", seen) == 20
        wanted = [*range(380), *range(400, 450)]
    _run_and_kill(buffer_url, typesense_server, alias, tmp_path / "progress.txt", after_rows=150)
    assert store.pending_summary() != []  # the killed run left work behind

    stats = load_alias(store, client, alias, SCHEMA, batch_size=100)
    assert stats.failed == 0
    assert store.pending_summary() == []
    assert client.count(alias) == len(wanted)
    assert ids_in(client, alias) == expected_ids(wanted)
    assert collections_of(client, alias) == [stats.collection]  # no half-built collection left behind
    if phase == "incremental":
        doc = client.search(alias, "*", query_by="title", filter_by="id:=7:en")["hits"][0]["document"]
        assert doc["title"] == "Product 7 v2"
    assert _count_status(store, alias) == {("upsert", "loaded"): len(wanted)} | (
        {("delete", "loaded"): 20} if phase == "incremental" else {}
    )


def _count_status(store: BufferStore, alias: str) -> dict[tuple[str, str], int]:
    return {(op, status): n for _, op, status, n in store.status(alias).iter_rows()}


def test_build_that_swapped_but_died_before_recording_is_adopted(
    store: BufferStore, client: SpyClient, alias: str
) -> None:
    store.enqueue(alias, None, SOURCE, "s1", documents(range(10)))
    first = load_alias(store, client, alias, SCHEMA)
    # As if the process died right after the alias swap: state still says "start" for the serving collection.
    store.set_index_state(alias, first.collection, schema_hash(SCHEMA), "start")
    again = load_alias(store, client, alias, SCHEMA)
    assert not again.reindexed
    assert again.collection == first.collection
    state = store.get_index_state(alias)
    assert state is not None
    assert state.full_import == "done"


def test_prefetch_keeps_order_and_raises_the_readers_error() -> None:
    from aac_etl.lib.loader import prefetch

    def pages() -> Iterator[pl.DataFrame]:
        for i in range(5):
            yield pl.DataFrame({"id": [i]})
        raise RuntimeError("buffer read failed")

    seen: list[int] = []

    def consume() -> None:
        seen.extend(int(page["id"][0]) for page in prefetch(pages(), depth=2))

    with pytest.raises(RuntimeError, match="buffer read failed"):
        consume()
    assert seen == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("partition_rows", [1_000_000, 400, 7], ids=["one-pass", "partitioned", "many-parts"])
def test_unacknowledged_is_the_exact_set_difference(monkeypatch: pytest.MonkeyPatch, partition_rows: int) -> None:
    from aac_etl.lib import loader

    monkeypatch.setattr(loader, "KEY_PARTITION_ROWS", partition_rows)
    live = pl.DataFrame(
        {
            "id": list(range(1, 1501)),
            "external_id": [f"{n}:en" for n in range(1500)],
            "content_hash": [f"h{n % 7}" for n in range(1500)],
        }
    )
    # Sent: every third live row exactly, every fifth with another version, twice some, plus ids never live.
    sent_pairs = [(f"{n}:en", f"h{n % 7}") for n in range(0, 1500, 3)]
    sent_pairs += [(f"{n}:en", "other") for n in range(0, 1500, 5)]
    sent_pairs += sent_pairs[:40] + [(f"gone-{n}", "h0") for n in range(60)]
    sent = pl.DataFrame(sent_pairs, schema={"external_id": pl.Utf8, "content_hash": pl.Utf8}, orient="row")

    missing, orphans = loader.unacknowledged(live, sent)

    sent_set = set(sent_pairs)
    expected_missing = {row for row in live.iter_rows() if (row[1], row[2]) not in sent_set}
    assert set(missing.iter_rows()) == expected_missing
    assert missing.height == len(expected_missing) == 1000
    assert missing.columns == ["id", "external_id", "content_hash"]
    assert sorted(orphans.to_list()) == sorted(f"gone-{n}" for n in range(60))


# --------------------------------------------------------------------------------------------------------
# ShadowBuild: a rebuild fed by a running full sync
# --------------------------------------------------------------------------------------------------------


def test_shadow_build_streams_then_imports_the_rest_and_swaps(
    store: BufferStore, client: SpyClient, alias: str
) -> None:
    # Another source of the same alias already has documents in the buffer (never streamed by this sync).
    store.enqueue(alias, None, "other", "s0", documents(range(500, 520)))
    old = load_alias(store, client, alias, SCHEMA, batch_size=10)
    reason, current = rebuild_reason(store, client, alias, SCHEMA, reindex=True)
    assert (reason, current) == ("reindex requested", old.collection)

    build = ShadowBuild(store, client, alias, SCHEMA, current=current, batch_size=7)
    build.start()
    state = store.get_index_state(alias)
    assert state is not None
    assert (state.collection_name, state.full_import) == (build.name, STREAMING)
    # A load launched meanwhile leaves the alias and the build alone.
    skipped = load_alias(store, client, alias, SCHEMA)
    assert skipped.skipped == "rebuild in progress"
    assert client.get_collection(build.name) is not None

    first = documents(range(40))
    second = pl.concat([documents(range(40, 45)), documents([45], bad=[45]), documents(range(46, 60))])
    build.feed(first)
    build.feed(second)
    # The sync enqueues what it streamed (after its checks passed), and one record turns into a delete.
    store.enqueue(alias, None, SOURCE, "s1", pl.concat([first, second]))
    assert store.mark_missing_as_deleted(alias, "other", "s1", [f"{i}:en" for i in range(500, 519)]) == 1
    client.imported.clear()
    stats = build.finish()

    assert stats.reindexed
    assert client.get_alias(alias) == build.name
    assert collections_of(client, alias) == [build.name]
    # The rejected document stays pending for a retry, which the final incremental pass makes once.
    assert (stats.upserted, stats.failed, stats.deleted) == (59 + 19, 2, 1)
    assert ids_in(client, alias) == sorted(
        [*expected_ids([i for i in range(60) if i != 45]), *expected_ids(range(500, 519))]
    )
    # The other source's live rows came from the buffer, not from the stream (streamed lines may still be arriving
    # after the clear above, so only the other source's ids, 500 and up, are compared).
    imported = [json.loads(line)["id"] for line in client.imported]
    assert sorted(i for i in imported if int(i.split(":")[0]) >= 500) == expected_ids(range(500, 519))
    state = store.get_index_state(alias)
    assert state is not None
    assert (state.collection_name, state.full_import) == (build.name, "done")
    # Only the rejected document waits for a retry.
    assert [summary.pending_count for summary in store.pending_summary()] == [1]
    failed = store.failed_documents(alias)
    assert failed.get_column("external_id").to_list() == ["45:en"]
    assert not load_alias(store, client, alias, SCHEMA).reindexed


@pytest.mark.parametrize("heartbeat", [(0, 4), (3600, 0)], ids=["every-chunk", "throttled"])
def test_shadow_build_heartbeat_is_written_at_most_every_interval(
    store: BufferStore, client: SpyClient, alias: str, monkeypatch: pytest.MonkeyPatch, heartbeat: tuple[int, int]
) -> None:
    from aac_etl.lib import loader

    interval, beats = heartbeat
    monkeypatch.setattr(loader, "HEARTBEAT_SECONDS", interval)
    states: list[str] = []
    write_state = store.set_index_state

    def recording(alias_: str, name: str, schema: str, full_import: str) -> None:
        states.append(full_import)
        write_state(alias_, name, schema, full_import)

    monkeypatch.setattr(store, "set_index_state", recording)
    build = ShadowBuild(store, client, alias, SCHEMA, current=None, batch_size=10)
    build.start()
    chunks = [documents(range(start, start + 10)) for start in range(0, 40, 10)]
    for chunk in chunks:
        build.feed(chunk)
    store.enqueue(alias, None, SOURCE, "s1", pl.concat(chunks))
    build.finish()
    # One write when the build starts, one per imported chunk when the interval allows it, one when it is done.
    assert states == [STREAMING, *[STREAMING] * beats, "done"]
    assert ids_in(client, alias) == expected_ids(range(40))


def test_shadow_build_abort_keeps_the_alias_and_the_buffer(store: BufferStore, client: SpyClient, alias: str) -> None:
    store.enqueue(alias, None, SOURCE, "s0", documents(range(10)))
    old = load_alias(store, client, alias, SCHEMA)
    build = ShadowBuild(store, client, alias, SCHEMA, current=old.collection)
    build.start()
    build.feed(documents(range(10), version=2))
    build.abort()
    assert client.get_alias(alias) == old.collection
    assert collections_of(client, alias) == [old.collection]
    state = store.get_index_state(alias)
    assert state is not None
    assert (state.collection_name, state.full_import) == (old.collection, "done")
    hit = client.search(alias, "*", query_by="title", filter_by="id:=2:en")["hits"][0]["document"]
    assert hit["title"] == "Product 2 v1"


def test_shadow_build_of_a_fresh_alias_abandoned_on_failures_then_load_rebuilds(
    store: BufferStore, client: SpyClient, alias: str
) -> None:
    build = ShadowBuild(store, client, alias, SCHEMA, current=None, max_failed_share=0.5)
    build.start()
    rows = documents(range(10), bad=range(8))
    build.feed(rows)
    store.enqueue(alias, None, SOURCE, "s1", rows)
    with pytest.raises(LoaderError, match="abandoned"):
        build.finish()
    assert client.get_alias(alias) is None
    assert collections_of(client, alias) == []
    state = store.get_index_state(alias)
    assert state is not None
    assert state.full_import == "aborted"
    # Nothing was marked: the next load rebuilds from the buffer (and finds the same rejections).
    with pytest.raises(LoaderError, match="abandoned"):
        load_alias(store, client, alias, SCHEMA)
