"""BufferStore source fingerprints on DuckDB, SQLite and PostgreSQL: round trip, replace, upsert, clear."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pytest

from aac_etl.lib.buffer import FINGERPRINT_SCHEMA, BufferStore

SOURCE = "shop"
OTHER = "other_shop"
HIGH = 2**63  # the first value whose bits are negative as a signed BIGINT
MAX = 2**64 - 1


def fingerprints(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    """A fingerprint frame from ``(record_id, external_id, fingerprint)`` tuples."""
    return pl.DataFrame(rows, schema=FINGERPRINT_SCHEMA, orient="row")


def stored(store: BufferStore, source: str = SOURCE) -> pl.DataFrame:
    """The stored fingerprints of a source, sorted for comparison."""
    frame = store.source_fingerprints(source)
    assert frame.schema == pl.Schema(FINGERPRINT_SCHEMA)
    return frame.sort("external_id")


def as_rows(frame: pl.DataFrame) -> list[tuple[str, str, int]]:
    return sorted(frame.iter_rows())


def test_round_trip_keeps_every_uint64_bit(store: BufferStore) -> None:
    frame = fingerprints(
        [
            ("1", "1:en", 0),
            ("1", "1:de", 0),
            ("2", "2:en", 1),
            ("3", "3:en", HIGH - 1),
            ("4", "4:en", HIGH),
            ("4", "4:de", HIGH),
            ("5", "5:en", HIGH + 12345),
            ("6", "6:en", MAX),
        ]
    )
    assert store.replace_source_fingerprints(SOURCE, frame) == 8
    assert stored(store).equals(frame.sort("external_id"))
    values = set(stored(store).get_column("fingerprint").to_list())
    assert {0, HIGH - 1, HIGH, MAX} <= values


def test_empty_frames(store: BufferStore) -> None:
    empty = store.source_fingerprints("unknown")
    assert empty.height == 0
    assert empty.schema == pl.Schema(FINGERPRINT_SCHEMA)
    assert store.replace_source_fingerprints(SOURCE, fingerprints([])) == 0
    assert store.upsert_source_fingerprints(SOURCE, pl.Series([], dtype=pl.Utf8), fingerprints([])) == 0
    assert store.clear_source_fingerprints(SOURCE) == 0
    assert store.clear_source_fingerprints() == 0
    # An empty full sync leaves the source without fingerprints.
    store.replace_source_fingerprints(SOURCE, fingerprints([("1", "1:en", 7)]))
    assert store.replace_source_fingerprints(SOURCE, fingerprints([])) == 0
    assert stored(store).height == 0


def test_replace_drops_old_rows_of_the_source_only(store: BufferStore) -> None:
    store.replace_source_fingerprints(
        SOURCE,
        fingerprints([("1", "1:en", 10), ("1", "1:de", 10), ("2", "2:en", 20), ("3", "3:en", 30), ("9", "9:en", 90)]),
    )
    other = fingerprints([("1", "1:en", 11), ("2", "2:en", HIGH)])
    store.replace_source_fingerprints(OTHER, other)
    new = fingerprints(
        [
            ("1", "1:en", 10),  # unchanged
            ("2", "2:en", MAX),  # changed fingerprint
            ("3", "3:de", 30),  # other document, same fingerprint
            ("8", "9:en", 90),  # same document and fingerprint, other record
            ("4", "4:en", 0),  # new record
        ]
    )
    assert store.replace_source_fingerprints(SOURCE, new) == 5
    assert as_rows(stored(store)) == as_rows(new)
    assert as_rows(stored(store, OTHER)) == as_rows(other)
    # Running the same replace again changes nothing.
    assert store.replace_source_fingerprints(SOURCE, new) == 5
    assert as_rows(stored(store)) == as_rows(new)


def test_input_is_normalized(store: BufferStore) -> None:
    frame = pl.DataFrame(
        {
            "record_id": [1, 1, 2, None, 3],
            "external_id": ["1:en", "1:en", "2:en", "x:en", None],
            "fingerprint": pl.Series([5, 6, HIGH, 1, 1], dtype=pl.UInt64),
            "ignored": ["a", "b", "c", "d", "e"],
        }
    )
    # Integer record ids become text, a duplicated external id keeps its last row, rows with nulls are skipped.
    assert store.replace_source_fingerprints(SOURCE, frame) == 2
    assert as_rows(stored(store)) == [("1", "1:en", 6), ("2", "2:en", HIGH)]
    with pytest.raises(pl.exceptions.InvalidOperationError):
        store.replace_source_fingerprints(
            SOURCE, pl.DataFrame({"record_id": ["1"], "external_id": ["1"], "fingerprint": [-1]})
        )
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        store.replace_source_fingerprints(SOURCE, pl.DataFrame({"record_id": ["1"], "external_id": ["1"]}))
    assert as_rows(stored(store)) == [("1", "1:en", 6), ("2", "2:en", HIGH)]


def test_upsert_replaces_the_processed_records_only(store: BufferStore) -> None:
    store.replace_source_fingerprints(
        SOURCE,
        fingerprints(
            [
                ("1", "1:en", 10),
                ("1", "1:de", 10),
                ("2", "2:en", 20),
                ("2", "2:de", 20),
                ("3", "3:en", 30),
                ("5", "5:en", 50),
                ("6", "6:en", 60),
            ]
        ),
    )
    other = fingerprints([("1", "1:en", 99), ("2", "2:en", 98)])
    store.replace_source_fingerprints(OTHER, other)
    written = store.upsert_source_fingerprints(
        SOURCE,
        pl.Series(["1", "2", "4", None]),
        fingerprints(
            [
                ("1", "1:en", HIGH + 1),  # record 1 lost its German document and changed
                ("4", "4:en", 40),  # new record
                ("5", "5:de", 51),  # not listed in record_ids, but in the frame: replaced as a whole
                ("7", "6:en", 70),  # a document that moved from record 6 to record 7
            ]
        ),
    )
    assert written == 4
    # Record 2 was processed and produced nothing: its fingerprints are gone; record 3 is untouched.
    assert as_rows(stored(store)) == [
        ("1", "1:en", HIGH + 1),
        ("3", "3:en", 30),
        ("4", "4:en", 40),
        ("5", "5:de", 51),
        ("7", "6:en", 70),
    ]
    assert as_rows(stored(store, OTHER)) == as_rows(other)
    # Record ids given as integers are compared as text.
    assert store.upsert_source_fingerprints(SOURCE, pl.Series([3]), fingerprints([])) == 0
    assert [row[0] for row in as_rows(stored(store))] == ["1", "4", "5", "7"]


def test_clear_one_source_or_all(store: BufferStore) -> None:
    store.replace_source_fingerprints(SOURCE, fingerprints([("1", "1:en", 1), ("1", "1:de", 1), ("2", "2:en", 2)]))
    store.replace_source_fingerprints(OTHER, fingerprints([("1", "1:en", HIGH)]))
    assert store.clear_source_fingerprints(SOURCE) == 3
    assert stored(store).height == 0
    assert as_rows(stored(store, OTHER)) == [("1", "1:en", HIGH)]
    store.replace_source_fingerprints(SOURCE, fingerprints([("1", "1:en", 1)]))
    assert store.clear_source_fingerprints() == 2
    assert stored(store).height == 0
    assert stored(store, OTHER).height == 0


def test_fingerprints_leave_the_buffer_alone(store: BufferStore) -> None:
    store.replace_source_fingerprints(SOURCE, fingerprints([("1", "1:en", 1)]))
    store.clear_source_fingerprints()
    assert store.pending_summary() == []
    assert store.max_pending_id("products") is None
    assert store.count_live("products") == 0


def test_concurrent_writers_never_duplicate_rows(store: BufferStore) -> None:
    frames = [fingerprints([(str(i), f"{i}:en", i * 10 + worker) for i in range(300)]) for worker in range(2)]
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for _ in range(3):
                store.replace_source_fingerprints(SOURCE, frames[worker])
                store.upsert_source_fingerprints(SOURCE, pl.Series(["1", "2"]), frames[worker].head(3))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = stored(store)
    assert result.height == 300
    assert result.get_column("external_id").n_unique() == 300


def test_200k_rows_write_and_read_duckdb(tmp_path: Path) -> None:
    store = BufferStore(f"duckdb:///{tmp_path / 'buffer.duckdb'}")
    n = 200_000
    index = pl.int_range(0, n, eager=True)
    frame = pl.DataFrame(
        {
            "record_id": (index // 2).cast(pl.Utf8),
            "external_id": index.cast(pl.Utf8) + ":en",
            "fingerprint": (index // 2).cast(pl.UInt64).hash(seed=1),
        }
    )
    assert (frame.get_column("fingerprint") >= HIGH).any()
    assert store.replace_source_fingerprints(SOURCE, frame) == n
    assert stored(store).equals(frame.sort("external_id"))
    # A nightly full sync: 1% of the records changed, 1000 documents are gone.
    changed = frame.with_columns(
        pl.when(index % 100 == 0)
        .then(pl.col("fingerprint") ^ MAX)
        .otherwise(pl.col("fingerprint"))
        .alias("fingerprint")
    ).slice(1000)
    assert store.replace_source_fingerprints(SOURCE, changed) == n - 1000
    assert stored(store).equals(changed.sort("external_id"))
    # A delta sync over 10k records.
    records = changed.get_column("record_id").unique().head(10_000)
    delta = changed.filter(pl.col("record_id").is_in(records.implode())).with_columns(
        pl.lit(HIGH, pl.UInt64).alias("fingerprint")
    )
    assert store.upsert_source_fingerprints(SOURCE, records, delta) == delta.height
    expected = pl.concat([changed.filter(~pl.col("record_id").is_in(records.implode())), delta])
    assert stored(store).equals(expected.sort("external_id"))
    assert store.clear_source_fingerprints(SOURCE) == n - 1000


def test_fingerprints_of_some_records(store: BufferStore) -> None:
    assert not store.has_source_fingerprints(SOURCE)
    rows = [("1", "1:en", 1), ("1", "1:de", 1), ("2", "2:en", HIGH), ("3", "3:en", MAX)]
    store.replace_source_fingerprints(SOURCE, fingerprints(rows))
    store.replace_source_fingerprints(OTHER, fingerprints([("2", "2:en", 5)]))
    assert store.has_source_fingerprints(SOURCE)
    assert not store.has_source_fingerprints("unknown")
    some = store.source_fingerprints(SOURCE, pl.Series(["2", "1", None, "9", "2"]))
    assert some.schema == pl.Schema(FINGERPRINT_SCHEMA)
    assert as_rows(some) == sorted([("1", "1:en", 1), ("1", "1:de", 1), ("2", "2:en", HIGH)])
    none = store.source_fingerprints(SOURCE, pl.Series([], dtype=pl.Utf8))
    assert none.height == 0
    assert none.schema == pl.Schema(FINGERPRINT_SCHEMA)
    assert as_rows(store.source_fingerprints(SOURCE, pl.Series([3]))) == [("3", "3:en", MAX)]
