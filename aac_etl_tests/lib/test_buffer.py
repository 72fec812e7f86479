"""BufferStore on DuckDB, SQLite and PostgreSQL; DuckDB shared by several processes; secret redaction."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from pathlib import Path

import polars as pl
import pytest

from aac_etl import settings
from aac_etl.lib.buffer import BufferStore, BufferStoreError, EnqueueStats, PendingSummary
from aac_etl.lib.documents import to_payloads
from aac_etl.lib.redact import redact, register_secret

ALIAS = "products"
SOURCE = "shop"


def catalog(n: int, *, price_bump: float = 0.0, start: int = 0) -> pl.DataFrame:
    """A small document frame rendered to payloads."""
    ids = range(start, start + n)
    frame = pl.DataFrame(
        {
            "external_id": [f"{i}:en" for i in ids],
            "title": [f"Product {i}" for i in ids],
            "price": [10.0 + i + price_bump for i in ids],
            "attributes.color": ["red" if i % 2 else None for i in ids],
        }
    )
    return to_payloads(frame)


def counts(store: BufferStore) -> dict[tuple[str, str], int]:
    frame = store.status(ALIAS)
    return {(op, status): n for _, op, status, n in frame.iter_rows()}


def pending_rows(store: BufferStore) -> pl.DataFrame:
    batches = list(store.pending_batches(ALIAS, 1000))
    return pl.concat(batches) if batches else pl.DataFrame()


def test_schema_is_idempotent(store: BufferStore) -> None:
    store.ensure_schema()
    BufferStore(store._url).ensure_schema()  # another instance, same database
    assert store.pending_summary() == []
    assert store.count_live(ALIAS) == 0


def test_enqueue_is_idempotent_and_unchanged_rows_are_not_written(store: BufferStore) -> None:
    docs = catalog(50)
    assert store.enqueue(ALIAS, "tenant", SOURCE, "sync-1", docs) == EnqueueStats(upserted=50, unchanged=0)
    before = pending_rows(store)
    summary = store.pending_summary()
    assert summary == [PendingSummary(ALIAS, 50, int(before.get_column("id").max()))]  # type: ignore[arg-type]
    # Re-running the same enqueue (e.g. after a crash) writes nothing: same ids, same rows.
    assert store.enqueue(ALIAS, "tenant", SOURCE, "sync-2", docs) == EnqueueStats(upserted=0, unchanged=50)
    assert pending_rows(store).equals(before)
    assert store.pending_summary() == summary
    # Duplicate ids in one frame keep the last row.
    doubled = pl.concat([docs.head(1), docs.head(1)])
    assert store.enqueue(ALIAS, "tenant", SOURCE, "sync-3", doubled) == EnqueueStats(0, 1)


def test_zero_writes_when_nothing_changed_duckdb_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "buffer.duckdb"
    store = BufferStore(f"duckdb:///{path}")
    docs = catalog(2000)
    store.enqueue(ALIAS, None, SOURCE, "s1", docs)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert store.enqueue(ALIAS, None, SOURCE, "s2", docs) == EnqueueStats(upserted=0, unchanged=2000)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_changed_price_gives_exactly_one_upsert(store: BufferStore) -> None:
    docs = catalog(20)
    store.enqueue(ALIAS, None, SOURCE, "s1", docs)
    loaded = pending_rows(store)
    assert store.mark_loaded(ALIAS, loaded) == 20
    assert store.pending_summary() == []
    frame = pl.DataFrame(
        {
            "external_id": [f"{i}:en" for i in range(20)],
            "title": [f"Product {i}" for i in range(20)],
            "price": [10.0 + i + (5.0 if i == 7 else 0.0) for i in range(20)],
            "attributes.color": ["red" if i % 2 else None for i in range(20)],
        }
    )
    stats = store.enqueue(ALIAS, None, SOURCE, "s2", to_payloads(frame))
    assert stats == EnqueueStats(upserted=1, unchanged=19)
    pending = pending_rows(store)
    assert pending.get_column("external_id").to_list() == ["7:en"]
    assert pending.get_column("id")[0] > loaded.get_column("id").max()  # type: ignore[operator]
    assert '"price":22.0' in pending.get_column("payload")[0]
    assert counts(store) == {("upsert", "loaded"): 19, ("upsert", "pending"): 1}


def test_full_sync_marks_unseen_rows_of_the_same_source_as_deletes(store: BufferStore) -> None:
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(10))
    store.enqueue(ALIAS, None, "other", "s1", catalog(3, start=100))
    store.enqueue("another_alias", None, SOURCE, "s1", catalog(4))
    seen = catalog(10).filter(~pl.col("external_id").is_in(["3:en", "4:en"])).get_column("external_id")
    assert store.mark_missing_as_deleted(ALIAS, SOURCE, "s2", seen) == 2
    assert store.mark_missing_as_deleted(ALIAS, SOURCE, "s3", seen) == 0  # already deletes
    assert store.count_live(ALIAS, SOURCE) == 8
    assert store.count_live(ALIAS, "other") == 3
    assert store.count_live(ALIAS) == 11
    assert store.count_live("another_alias", SOURCE) == 4
    deletes = pending_rows(store).filter(pl.col("op") == "delete")
    assert sorted(deletes.get_column("external_id").to_list()) == ["3:en", "4:en"]
    # The deleted document comes back with the same content: it is an upsert again.
    assert store.enqueue(ALIAS, None, SOURCE, "s4", catalog(10)) == EnqueueStats(upserted=2, unchanged=8)
    assert counts(store) == {("upsert", "pending"): 13}
    # Explicit deletes (delta syncs that know about deletions).
    assert store.enqueue_deletes(ALIAS, SOURCE, "s5", ["1:en", "nope:en"]) == 1
    assert store.count_live(ALIAS, SOURCE) == 9


def test_enqueue_many_is_one_transaction_with_the_full_sync_deletes(store: BufferStore) -> None:
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(10))
    store.enqueue(ALIAS, None, "other", "s1", catalog(3, start=100))
    calls: list[int] = []

    def batches() -> list[pl.DataFrame]:
        calls.append(1)
        return [catalog(4, price_bump=1.0), catalog(3, start=4), catalog(2, start=20)]

    stats, deleted = store.enqueue_many(
        ALIAS, None, SOURCE, "s2", batches, full_sync=True, also_seen=pl.Series(["7:en", "8:en"])
    )
    # 0-3 changed, 4-6 unchanged, 20-21 new; 9:en was neither enqueued nor seen: a delete.
    assert stats == EnqueueStats(upserted=6, unchanged=3)
    assert deleted == 1
    assert calls == [1]
    deletes = pending_rows(store).filter(pl.col("op") == "delete")
    assert deletes.get_column("external_id").to_list() == ["9:en"]
    assert store.count_live(ALIAS, SOURCE) == 11
    assert store.count_live(ALIAS, "other") == 3

    def failing() -> list[pl.DataFrame]:
        return [catalog(2, start=30), pl.DataFrame({"external_id": ["x"]})]

    # A failure in the middle leaves nothing behind: the first batch is rolled back with it.
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        store.enqueue_many(ALIAS, None, SOURCE, "s3", failing)
    assert store.count_live(ALIAS, SOURCE) == 11


def test_enqueue_many_reads_parquet_batches_like_frames(store: BufferStore, tmp_path: Path) -> None:
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(10))
    store.enqueue_deletes(ALIAS, SOURCE, "s1", ["5:en"])
    first = pending_rows(store).filter(pl.col("external_id") == "6:en")
    before = int(pending_rows(store).get_column("id").max())  # type: ignore[arg-type]

    def part(name: str, frame: pl.DataFrame) -> Path:
        path = tmp_path / f"{name}.parquet"
        frame.write_parquet(path)
        return path

    # Part a: 0-1 changed, 2-3 unchanged, 5 (a delete) comes back, 30 twice (the last row wins), 31 new.
    stale = catalog(1, start=30, price_bump=5.0)
    a = part(
        "a",
        pl.concat([catalog(2, price_bump=1.0), catalog(2, start=2), catalog(1, start=5), stale, catalog(2, start=30)]),
    )
    earlier = part("earlier", catalog(2, start=6))  # enqueued by an earlier transaction of the same sync
    stats, deleted = store.enqueue_many(
        ALIAS, None, SOURCE, "s2", lambda: [a], full_sync=True, also_seen=pl.Series(["8:en"]), also_seen_parts=[earlier]
    )
    assert stats == EnqueueStats(upserted=5, unchanged=2)
    # 4 and 9 were in no part, not in also_seen: deletes; 6-7 (earlier part) and 8 (also_seen) stay.
    assert deleted == 2
    rows = pending_rows(store)
    assert sorted(rows.filter(pl.col("op") == "delete").get_column("external_id").to_list()) == ["4:en", "9:en"]
    upserts = rows.filter((pl.col("op") == "upsert") & (pl.col("id") > before))
    assert sorted(upserts.get_column("external_id").to_list()) == ["0:en", "1:en", "30:en", "31:en", "5:en"]
    latest = catalog(2, start=30).filter(pl.col("external_id") == "30:en").get_column("content_hash")[0]
    assert upserts.filter(pl.col("external_id") == "30:en").get_column("content_hash")[0] == latest
    # Fresh ids follow the file's order; rows that did not change keep theirs.
    in_file_order = upserts.sort("id").get_column("external_id").to_list()
    assert in_file_order == ["0:en", "1:en", "5:en", "30:en", "31:en"]
    assert pending_rows(store).filter(pl.col("external_id") == "6:en").equals(first)
    assert store.count_live(ALIAS, SOURCE) == 10


def test_enqueue_many_parquet_first_load_then_a_repeat_in_a_later_part(store: BufferStore, tmp_path: Path) -> None:
    # Part a holds nothing the buffer has (inserted as it is), 1 twice (the last row wins); part b repeats 2 with
    # new content (now stored: updated with a fresh id) and brings 3-4.
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pl.concat([catalog(3), catalog(1, start=1, price_bump=2.0)]).write_parquet(a)
    pl.concat([catalog(1, start=2, price_bump=3.0), catalog(2, start=3)]).write_parquet(b)
    stats, deleted = store.enqueue_many(ALIAS, None, SOURCE, "s1", lambda: [a, b], full_sync=True)
    assert stats == EnqueueStats(upserted=6, unchanged=0)
    assert deleted == 0
    rows = pending_rows(store).sort("id")
    assert rows.get_column("external_id").to_list() == ["0:en", "1:en", "2:en", "3:en", "4:en"]
    hashes = dict(zip(rows.get_column("external_id"), rows.get_column("content_hash"), strict=True))
    assert hashes["1:en"] == catalog(1, start=1, price_bump=2.0).get_column("content_hash")[0]
    assert hashes["2:en"] == catalog(1, start=2, price_bump=3.0).get_column("content_hash")[0]
    assert rows.get_column("op").unique().to_list() == ["upsert"]
    assert store.count_live(ALIAS, SOURCE) == 5


def test_enqueue_many_parquet_ids_follow_the_file_with_or_without_the_dedupe(
    store: BufferStore, tmp_path: Path
) -> None:
    # Part a: distinct keys (numbered by file row). Part b: a row without an external id is dropped, and the ids
    # stay consecutive. Part c: distinct keys again, after the ids reserved for a and b.
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    catalog(3).write_parquet(a)
    pl.concat(
        [catalog(1, start=3), catalog(1, start=4).with_columns(pl.lit(None, pl.Utf8).alias("external_id"))]
    ).write_parquet(b)
    catalog(2, start=5).write_parquet(c)
    stats, _ = store.enqueue_many(ALIAS, None, SOURCE, "s1", lambda: [a, b, c], full_sync=True)
    assert stats == EnqueueStats(upserted=6, unchanged=0)
    rows = pending_rows(store).sort("id")
    assert rows.get_column("external_id").to_list() == ["0:en", "1:en", "2:en", "3:en", "5:en", "6:en"]
    ids = rows.get_column("id").to_list()
    assert ids == list(range(ids[0], ids[0] + 6))


def test_mark_loaded_only_where_hash_and_op_still_match(store: BufferStore) -> None:
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(3))
    sent = pending_rows(store)
    # A newer version arrives while the loader is busy with the old one.
    store.enqueue(ALIAS, None, SOURCE, "s2", catalog(3, price_bump=1.0).head(1))
    assert store.mark_loaded(ALIAS, sent.select("external_id", "content_hash", "op")) == 2
    still = pending_rows(store)
    assert still.get_column("external_id").to_list() == ["0:en"]
    assert still.get_column("content_hash")[0] != sent.get_column("content_hash")[0]
    # Delete pending with the old hash; the document returns with that same hash before the delete is marked.
    assert store.mark_missing_as_deleted(ALIAS, SOURCE, "s3", ["0:en", "2:en"]) == 1
    delete_row = pending_rows(store).filter(pl.col("op") == "delete")
    store.enqueue(ALIAS, None, SOURCE, "s4", catalog(3).slice(1, 1))
    assert store.mark_loaded(ALIAS, delete_row.select("external_id", "content_hash", "op")) == 0
    assert pending_rows(store).filter(pl.col("external_id") == "1:en").get_column("op").to_list() == ["upsert"]


def test_mark_failed_counts_attempts_then_fails_and_retry(store: BufferStore) -> None:
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(2))
    row = pending_rows(store).filter(pl.col("external_id") == "0:en")
    failure = row.select(
        "external_id", "content_hash", "op", pl.lit("400: Field `price` must be a float.").alias("error")
    )
    previous_id = int(row.get_column("id")[0])
    for attempt in range(1, settings.MAX_LOAD_ATTEMPTS):
        assert store.mark_failed(ALIAS, failure) == 1
        current = pending_rows(store).filter(pl.col("external_id") == "0:en")
        assert current.get_column("attempts").to_list() == [attempt]
        assert int(current.get_column("id")[0]) > previous_id  # new id: the sensor sees new work
        previous_id = int(current.get_column("id")[0])
    assert store.mark_failed(ALIAS, failure) == 1
    assert counts(store) == {("upsert", "failed"): 1, ("upsert", "pending"): 1}
    failed = store.failed_documents(ALIAS)
    assert failed.get_column("last_error").to_list() == ["400: Field `price` must be a float."]
    assert failed.get_column("attempts").to_list() == [settings.MAX_LOAD_ATTEMPTS]
    assert store.retry_failed(ALIAS) == 1
    assert store.retry_failed(ALIAS) == 0
    assert counts(store) == {("upsert", "pending"): 2}
    assert pending_rows(store).get_column("attempts").to_list() == [0, 0]


def test_pending_batches_are_ordered_and_bounded_by_a_snapshot(store: BufferStore) -> None:
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(25))
    iterator = store.pending_batches(ALIAS, 10)
    first = next(iterator)
    assert first.columns == ["id", "external_id", "op", "payload", "content_hash", "attempts"]
    # Rows enqueued during iteration get larger ids and wait for the next run.
    store.enqueue(ALIAS, None, SOURCE, "s2", catalog(5, start=100))
    rest = list(iterator)
    ids = pl.concat([first, *rest]).get_column("id").to_list()
    assert [b.height for b in [first, *rest]] == [10, 10, 5]
    assert ids == sorted(ids)
    assert len(ids) == 25
    live = pl.concat(list(store.all_live_documents(ALIAS, 7)))
    assert live.height == 30
    assert store.max_pending_id(ALIAS) == max(live.get_column("id").to_list())


def test_quarantine_roundtrip(store: BufferStore) -> None:
    rows = pl.DataFrame(
        {
            "source": [SOURCE, SOURCE, SOURCE],
            "sync_id": ["s1", "s1", "s1"],
            "external_id": ["1:en", "1:en", "2:en"],
            "record_id": ["1", "1", "2"],
            "field": ["price", "title", "price"],
            "rule": ["minimum", "required", "minimum"],
            "value": ["-1", None, "x" * 1000],
            "message": ["price < 0", "title missing", "price < 0"],
        }
    )
    assert store.add_quarantine(rows) == 3
    listed = store.list_quarantine(SOURCE)
    assert listed.height == 3
    assert listed.get_column("value").str.len_chars().max() == settings.QUARANTINE_VALUE_MAX_CHARS
    assert store.quarantine_counts(SOURCE).rows() == [("price", "minimum", 2), ("title", "required", 1)]
    # The next sync replaces the record's old problems.
    store.add_quarantine(rows.head(1).with_columns(pl.lit("s2").alias("sync_id")))
    assert store.list_quarantine(SOURCE).height == 2
    assert store.clear_quarantine(SOURCE, ["1:en"]) == 1
    assert store.list_quarantine(SOURCE).get_column("external_id").to_list() == ["2:en"]
    assert store.list_quarantine("elsewhere").height == 0
    # Only the source's own quarantined ids among the valid ones leave; ids never quarantined change nothing.
    store.add_quarantine(rows.tail(1).with_columns(pl.lit("elsewhere").alias("source")))
    assert store.clear_quarantine(SOURCE, ["7:en", "8:de"]) == 0
    assert store.clear_quarantine(SOURCE, pl.Series(["7:en", "2:en", "2:en", None])) == 1
    assert store.list_quarantine(SOURCE).height == 0
    assert store.list_quarantine("elsewhere").get_column("external_id").to_list() == ["2:en"]
    assert store.clear_quarantine(SOURCE, ["2:en"]) == 0


def test_sync_history(store: BufferStore) -> None:
    store.start_sync("run-1", SOURCE, "full")
    store.add_sync_counts("run-1", extracted=10, valid=9)
    store.add_sync_counts("run-1", extracted=5, valid=5)
    store.update_sync("run-1", quarantined=1)
    store.finish_sync("run-1", "succeeded", upserted=14)
    time.sleep(0.01)
    store.start_sync("run-2", SOURCE, "delta")
    store.finish_sync("run-2", "failed", error="connect to postgresql://app:hunter2@db/shop failed")
    last = store.last_sync(SOURCE)
    assert last is not None
    assert (last.sync_id, last.status, last.kind) == ("run-2", "failed", "delta")
    assert last.error is not None
    assert "hunter2" not in last.error
    full = store.last_sync(SOURCE, kind="full", status="succeeded")
    assert full is not None
    assert (full.extracted, full.valid, full.quarantined, full.upserted) == (15, 14, 1, 14)
    assert full.finished_at is not None
    assert full.started_at is not None
    assert full.finished_at >= full.started_at
    assert [r.sync_id for r in store.sync_history(SOURCE)] == ["run-2", "run-1"]
    assert store.last_sync("nothing") is None
    with pytest.raises(ValueError, match="unknown sync counters"):
        store.update_sync("run-1", bogus=1)


def test_loaded_counts_go_to_the_syncs_that_wrote_the_rows(store: BufferStore) -> None:
    store.start_sync("s1", SOURCE, "full")
    store.start_sync("s2", SOURCE, "delta")
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(4))
    store.enqueue(ALIAS, None, SOURCE, "s2", catalog(2, start=10))
    first = pending_rows(store).filter(pl.col("external_id").is_in(["0:en", "10:en"]))
    assert store.mark_loaded(ALIAS, first.select("external_id", "content_hash", "op")) == 2
    # Marking the same rows again counts nothing more.
    assert store.mark_loaded(ALIAS, first.select("external_id", "content_hash", "op")) == 0
    loaded = {r.sync_id: r.loaded for r in store.sync_history(SOURCE)}
    assert loaded == {"s1": 1, "s2": 1}
    max_id = store.max_pending_id(ALIAS)
    assert max_id is not None
    assert store.mark_upserts_loaded_through(ALIAS, max_id) == 4
    loaded = {r.sync_id: r.loaded for r in store.sync_history(SOURCE)}
    assert loaded == {"s1": 4, "s2": 2}


def test_attribute_types_and_index_state(store: BufferStore) -> None:
    assert store.get_attribute_types(ALIAS) == {}
    assert store.lock_attribute_types(ALIAS, {"color": "string", "size": "float"}) == {
        "color": "string",
        "size": "float",
    }
    # First writer wins per attribute; new keys are added.
    assert store.lock_attribute_types(ALIAS, {"size": "string", "weight": "float"}) == {
        "color": "string",
        "size": "float",
        "weight": "float",
    }
    assert store.get_index_state(ALIAS) is None
    store.set_index_state(ALIAS, "products_1", "abc", "start")
    store.set_index_state(ALIAS, "products_2", "def", "done")
    state = store.get_index_state(ALIAS)
    assert state is not None
    assert (state.collection_name, state.schema_hash, state.full_import) == ("products_2", "def", "done")


def test_enqueue_100k_unchanged_and_changed_duckdb(tmp_path: Path) -> None:
    store = BufferStore(f"duckdb:///{tmp_path / 'buffer.duckdb'}")
    docs = catalog(100_000)
    assert store.enqueue(ALIAS, None, SOURCE, "s1", docs).upserted == 100_000
    started = time.perf_counter()
    assert store.enqueue(ALIAS, None, SOURCE, "s2", docs) == EnqueueStats(0, 100_000)
    unchanged_seconds = time.perf_counter() - started
    changed = catalog(100_000, price_bump=1.0)
    started = time.perf_counter()
    assert store.enqueue(ALIAS, None, SOURCE, "s3", changed) == EnqueueStats(100_000, 0)
    changed_seconds = time.perf_counter() - started
    # Generous bounds (shared CI machines); typical: ~0.3 s unchanged, ~1 s all changed.
    assert unchanged_seconds < 10
    assert changed_seconds < 20


# ---------------------------------------------------------------- DuckDB from several processes


def _writer(url: str, rounds: int) -> None:
    store = BufferStore(url)
    for round_no in range(rounds):
        store.enqueue(ALIAS, None, SOURCE, f"w{round_no}", catalog(300, price_bump=float(round_no)))
        rows = next(iter(store.pending_batches(ALIAS, 100)), None)
        if rows is not None:
            store.mark_loaded(ALIAS, rows)


def _reader(url: str, rounds: int) -> None:
    store = BufferStore(url)
    for _ in range(rounds):
        store.pending_summary()
        store.count_live(ALIAS)
        store.status(ALIAS)


def _holder(url: str, seconds: float, ready: object) -> None:
    import duckdb

    con = duckdb.connect(url.removeprefix("duckdb:///"))
    ready.set()  # type: ignore[attr-defined]
    time.sleep(seconds)
    con.close()


def test_duckdb_writer_and_reader_in_separate_processes(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'shared.duckdb'}"
    BufferStore(url).ensure_schema()
    ctx = mp.get_context("spawn")
    processes = [
        ctx.Process(target=_writer, args=(url, 10)),
        ctx.Process(target=_reader, args=(url, 40)),
        ctx.Process(target=_reader, args=(url, 40)),
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    store = BufferStore(url)
    assert store.count_live(ALIAS) == 300
    final = pl.concat(list(store.all_live_documents(ALIAS, 1000)))
    assert final.get_column("content_hash").sort().to_list() == (
        catalog(300, price_bump=9.0).get_column("content_hash").sort().to_list()
    )


def test_duckdb_lock_is_waited_for(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'locked.duckdb'}"
    store = BufferStore(url)
    store.ensure_schema()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_holder, args=(url, 1.5, ready))
    holder.start()
    assert ready.wait(60)
    started = time.perf_counter()
    assert store.enqueue(ALIAS, None, SOURCE, "s1", catalog(10)).upserted == 10
    assert time.perf_counter() - started > 0.5  # it waited for the other process to let go
    holder.join(60)
    assert holder.exitcode == 0


# ---------------------------------------------------------------- secrets


def test_redact_masks_passwords_and_known_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.ENV_TYPESENSE_API_KEY, "ts-admin-key-123")
    monkeypatch.setenv(settings.ENV_DEMO_DSN, "mysql+pymysql://shop:s3cr3t-pw@db:3306/shop")
    text = (
        "postgresql+psycopg://app:p%40ss@db:5432/x failed; host=db password=plain123 user=u; "
        "key ts-admin-key-123 and s3cr3t-pw leaked; https://example.com/path stays"
    )
    masked = redact(text)
    for secret in ("p%40ss", "plain123", "ts-admin-key-123", "s3cr3t-pw"):
        assert secret not in masked
    assert "postgresql+psycopg://app:***@db:5432/x" in masked
    assert "https://example.com/path stays" in masked
    register_secret("runtime-generated-key")
    assert redact("X-TYPESENSE-API-KEY runtime-generated-key") == "X-TYPESENSE-API-KEY ***"
    assert redact("") == ""


def test_store_errors_and_repr_do_not_leak_passwords() -> None:
    store = BufferStore("postgresql+psycopg://app:topsecret99@127.0.0.1:1/buffer")
    assert "topsecret99" not in repr(store)
    assert "topsecret99" not in store.url
    with pytest.raises(BufferStoreError) as caught:
        store.count_live(ALIAS)
    assert "topsecret99" not in str(caught.value)
    assert caught.value.__cause__ is None
    with pytest.raises(ValueError, match="needs a file path"):
        BufferStore("duckdb:///:memory:")


def test_also_seen_parts_may_have_other_columns(store: BufferStore, tmp_path: Path) -> None:
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(6))
    payloads = tmp_path / "payloads.parquet"
    catalog(2).write_parquet(payloads)
    skipped = tmp_path / "skipped.parquet"  # a sync's unchanged documents: fingerprint rows, no payload
    pl.DataFrame(
        {"record_id": ["2", "3"], "external_id": ["2:en", "3:en"], "fingerprint": [1, 2]},
        schema={"record_id": pl.Utf8, "external_id": pl.Utf8, "fingerprint": pl.UInt64},
    ).write_parquet(skipped)
    stats, deleted = store.enqueue_many(
        ALIAS, None, SOURCE, "s2", lambda: [], full_sync=True, also_seen_parts=[payloads, skipped]
    )
    assert stats == EnqueueStats(upserted=0, unchanged=0)
    assert deleted == 2
    deletes = pending_rows(store).filter(pl.col("op") == "delete").get_column("external_id").to_list()
    assert sorted(deletes) == ["4:en", "5:en"]


def test_changed_external_ids_previews_the_enqueue(store: BufferStore) -> None:
    store.enqueue(ALIAS, None, SOURCE, "s1", catalog(4))
    store.enqueue_deletes(ALIAS, SOURCE, "s1", ["3:en"])
    # 0 changed, 1 unchanged, 3 deleted before (comes back), 7 new; 2 not asked about.
    docs = pl.concat([catalog(1, price_bump=1.0), catalog(1, start=1), catalog(1, start=3), catalog(1, start=7)])
    before = counts(store)
    assert store.changed_external_ids(ALIAS, docs).to_list() == ["0:en", "3:en", "7:en"]
    assert store.changed_external_ids("other_alias", docs).to_list() == ["0:en", "1:en", "3:en", "7:en"]
    assert store.changed_external_ids(ALIAS, docs.clear()).len() == 0
    assert counts(store) == before  # read only
    assert store.enqueue(ALIAS, None, SOURCE, "s2", docs).upserted == 3
