"""BufferStore: the search ingest buffer and its bookkeeping tables, on DuckDB or any SQLAlchemy database.

Backends (chosen by URL):

* ``duckdb:///relative/buffer.duckdb`` or ``duckdb:////absolute/buffer.duckdb`` (the default:
  ``$AAC_ETL_BUFFER_URL`` or ``<state_dir>/buffer.duckdb``): the duckdb Python API directly. Every call opens
  a short connection, runs one transaction and closes, so the sensor daemon, the run worker and the CLI can
  share the file from separate processes; lock conflicts are retried with backoff (tenacity).
* ``postgresql+psycopg://user:pass@host/db``: SQLAlchemy; bulk writes and large reads use ``COPY``.
* ``sqlite:///path.db``: SQLAlchemy; bulk writes use ``executemany`` (handy for tests).

Tables (one dialect-neutral schema, created idempotently by :meth:`BufferStore.ensure_schema`, which every
method calls once per instance): ``search_ingest_buffer`` (unique (collection_alias, external_id)),
``search_quarantine``, ``search_sync_history``, ``search_attribute_types``, ``search_index_state``,
``search_source_fingerprints`` (primary key (source, external_id), none on DuckDB) and the one-row-per-counter
``search_ingest_sequence`` that hands out buffer ids (and has a row fingerprint writers serialize on).

Buffer ids are a change sequence: every enqueue, delete, failed-attempt requeue and retry gives the row a new,
larger id. Hence ``max(id)`` of the pending rows is a watermark that moves whenever there is new work, and
``pending_batches`` (keyset pagination by id up to a snapshot) always terminates.

Public API (all frames are polars DataFrames; all methods are safe to call from several processes):

Buffer
    ``enqueue(alias, tenant, source, sync_id, docs[external_id, payload, content_hash]) -> EnqueueStats``
        Diff against the stored (content_hash, op) of the alias; only new, changed or previously deleted
        documents are written (``op=upsert, status=pending, attempts=0``). Zero writes when nothing changed;
        re-running the same enqueue is a no-op.
    ``mark_missing_as_deleted(alias, source, sync_id, seen_external_ids) -> int``
        Full sync: live rows of that source and alias not seen become ``op=delete, status=pending``.
    ``enqueue_deletes(alias, source, sync_id, external_ids) -> int``
        Delta syncs that know about deletions: those live rows become pending deletes.
    ``count_live(alias, source=None) -> int``
        Rows with ``op=upsert`` (any status): the documents the index holds once loaded.
    ``changed_external_ids(alias, docs[external_id, content_hash]) -> Series``
        Read only: the ids an enqueue of ``docs`` would write (new, changed or previously deleted).
    ``pending_batches(alias, batch_size, *, max_id=None) -> Iterator[DataFrame]``
        Pending rows ``[id, external_id, op, payload, content_hash, attempts]`` by id, up to ``max_id``
        (default: the largest pending id when iteration starts).
    ``all_live_documents(alias, batch_size) -> Iterator[DataFrame]``
        Every ``op=upsert`` row (any status), same columns, for a full reindex.
    ``mark_loaded(alias, rows[external_id, content_hash, op?]) -> int``
        ``status=loaded`` only where hash (and op, when given) still match, so a newer enqueue is never lost.
    ``mark_failed(alias, rows[external_id, content_hash, error, op?]) -> int``
        ``attempts += 1``, ``last_error`` kept (redacted); ``status=failed`` once attempts reach
        ``settings.MAX_LOAD_ATTEMPTS``, else the row stays pending with a new id (so the sensor retries it).
    ``retry_failed(alias) -> int``
        Failed rows back to pending with ``attempts=0``.
    ``pending_summary() -> list[PendingSummary(alias, pending_count, max_pending_id)]``
        One cheap aggregate over pending rows, for the sensor.
    ``status(alias=None) -> DataFrame[collection_alias, op, status, count]``
Quarantine
    ``add_quarantine(rows[source, sync_id, external_id, record_id, field, rule, value, message]) -> int``
        Replaces earlier rows of the same (source, external_id) so the table shows the current problems;
        values are truncated to ``settings.QUARANTINE_VALUE_MAX_CHARS``.
    ``clear_quarantine(source, external_ids) -> int``  (records that are valid again)
    ``list_quarantine(source=None, limit=100) -> DataFrame`` (newest first)
    ``quarantine_counts(source) -> DataFrame[field, rule, count]`` (largest first)
Source fingerprints (raw-input fingerprint per record, one row per document, so syncs can skip records)
    ``source_fingerprints(source, record_ids=None) -> DataFrame[record_id, external_id, fingerprint: UInt64]``,
    ``has_source_fingerprints(source) -> bool``,
    ``replace_source_fingerprints(source, frame) -> int`` (full sync: all rows of the source),
    ``upsert_source_fingerprints(source, record_ids, frame) -> int`` (delta sync: rows of those records),
    ``clear_source_fingerprints(source=None) -> int``. UInt64 values are stored bit for bit in a BIGINT.
Sync history
    ``start_sync(sync_id, source, kind, status="running")``, ``update_sync(sync_id, *, status=None,
    error=None, **counts)`` (sets), ``add_sync_counts(sync_id, **counts)`` (increments),
    ``finish_sync(sync_id, status="succeeded", error=None, **counts)``,
    ``last_sync(source, kind=None, status=None) -> SyncRecord | None``,
    ``sync_history(source=None, limit=20) -> list[SyncRecord]``. Counters: ``SYNC_COUNTERS``.
Attribute types
    ``get_attribute_types(alias) -> dict[str, str]``,
    ``lock_attribute_types(alias, types) -> dict[str, str]`` (first writer wins per attribute).
Index state
    ``get_index_state(alias) -> IndexState | None``,
    ``set_index_state(alias, collection, schema_hash, full_import)`` (``full_import`` is ``start``/``done``).

Errors carry no secrets: connection URLs are redacted (:func:`aac_etl.lib.redact.redact`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import duckdb
import polars as pl
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential_jitter

from aac_etl import settings
from aac_etl.lib.redact import redact

logger = logging.getLogger(__name__)

T = TypeVar("T")

BUFFER_FILE_NAME = "buffer.duckdb"
LOCK_RETRY_SECONDS = 120.0
"""How long a call keeps retrying when the database is locked by another process."""
ERROR_MAX_CHARS = 2000
SEQUENCE_NAME = "search_ingest_buffer"
FINGERPRINT_LOCK_NAME = "search_source_fingerprints"
"""Row of ``search_ingest_sequence`` that fingerprint writers update first, so they run one at a time."""
FINGERPRINT_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.Utf8(),
    "external_id": pl.Utf8(),
    "fingerprint": pl.UInt64(),
}
SYNC_COUNTERS: tuple[str, ...] = (
    "extracted",
    "valid",
    "quarantined",
    "upserted",
    "deleted",
    "unchanged",
    "loaded",
    "failed",
)

Op = Literal["upsert", "delete"]
SyncKind = Literal["full", "delta"]
SyncStatus = Literal["queued", "running", "succeeded", "failed"]

BATCH_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "external_id": pl.Utf8(),
    "op": pl.Utf8(),
    "payload": pl.Utf8(),
    "content_hash": pl.Utf8(),
    "attempts": pl.Int64(),
}
QUARANTINE_COLUMNS: tuple[str, ...] = (
    "source",
    "sync_id",
    "external_id",
    "record_id",
    "field",
    "rule",
    "value",
    "message",
)

_SCHEMA_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS search_ingest_buffer (
        id BIGINT NOT NULL,
        tenant VARCHAR(255),
        collection_alias VARCHAR(255) NOT NULL,
        source VARCHAR(255),
        external_id VARCHAR(512) NOT NULL,
        op VARCHAR(16) NOT NULL,
        payload TEXT,
        content_hash VARCHAR(64),
        status VARCHAR(16) NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        sync_id VARCHAR(255),
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        loaded_at TIMESTAMP,
        PRIMARY KEY (collection_alias, external_id)
    )""",
    """CREATE TABLE IF NOT EXISTS search_ingest_sequence (
        name VARCHAR(64) NOT NULL PRIMARY KEY,
        value BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS search_quarantine (
        source VARCHAR(255) NOT NULL,
        sync_id VARCHAR(255),
        external_id VARCHAR(512),
        record_id VARCHAR(255),
        field VARCHAR(255),
        rule VARCHAR(255),
        value TEXT,
        message TEXT,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS search_sync_history (
        sync_id VARCHAR(255) NOT NULL PRIMARY KEY,
        source VARCHAR(255) NOT NULL,
        kind VARCHAR(16) NOT NULL,
        status VARCHAR(16) NOT NULL,
        extracted BIGINT NOT NULL DEFAULT 0,
        valid BIGINT NOT NULL DEFAULT 0,
        quarantined BIGINT NOT NULL DEFAULT 0,
        upserted BIGINT NOT NULL DEFAULT 0,
        deleted BIGINT NOT NULL DEFAULT 0,
        unchanged BIGINT NOT NULL DEFAULT 0,
        loaded BIGINT NOT NULL DEFAULT 0,
        failed BIGINT NOT NULL DEFAULT 0,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        error TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS search_attribute_types (
        collection_alias VARCHAR(255) NOT NULL,
        attribute VARCHAR(255) NOT NULL,
        type VARCHAR(64) NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (collection_alias, attribute)
    )""",
    """CREATE TABLE IF NOT EXISTS search_index_state (
        collection_alias VARCHAR(255) NOT NULL PRIMARY KEY,
        collection_name VARCHAR(255) NOT NULL,
        schema_hash VARCHAR(64) NOT NULL,
        full_import VARCHAR(16) NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )""",
    f"INSERT INTO search_ingest_sequence (name, value) VALUES ('{SEQUENCE_NAME}', 0) ON CONFLICT (name) DO NOTHING",
    f"INSERT INTO search_ingest_sequence (name, value) VALUES ('{FINGERPRINT_LOCK_NAME}', 0) "
    "ON CONFLICT (name) DO NOTHING",
)
# Per-source raw-input fingerprints (see BufferStore.source_fingerprints). The fingerprint is a polars UInt64
# stored bit for bit in a signed BIGINT. DuckDB gets no primary key: deleting rows from a table with an ART
# index costs ~35 us a row (1M rows: ~38 s on DuckDB 2.0), while without it the same delete takes ~20 ms.
# Uniqueness of (source, external_id) is then kept by the only writers, the fingerprint methods, which
# de-duplicate their input, delete every row they are about to insert again, and run one at a time.
_FINGERPRINT_TABLE_DDL = """CREATE TABLE IF NOT EXISTS search_source_fingerprints (
        source VARCHAR(255) NOT NULL,
        record_id VARCHAR(255) NOT NULL,
        external_id VARCHAR(512) NOT NULL,
        fingerprint BIGINT NOT NULL{primary_key}
    )"""
_FINGERPRINT_PRIMARY_KEY = ",\n        PRIMARY KEY (source, external_id)"
# Secondary indexes: skipped on DuckDB, where ART indexes slow bulk writes and scans are fast anyway.
_INDEX_DDL: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS ix_search_ingest_buffer_status ON search_ingest_buffer (collection_alias, status, id)",
    "CREATE INDEX IF NOT EXISTS ix_search_ingest_buffer_source ON search_ingest_buffer (collection_alias, source, op)",
    "CREATE INDEX IF NOT EXISTS ix_search_quarantine_source ON search_quarantine (source, external_id)",
    "CREATE INDEX IF NOT EXISTS ix_search_sync_history_source ON search_sync_history (source, started_at)",
    "CREATE INDEX IF NOT EXISTS ix_search_source_fingerprints_record ON search_source_fingerprints (source, record_id)",
)


class BufferStoreError(RuntimeError):
    """A buffer database failure whose message has been redacted."""


@dataclass(frozen=True)
class EnqueueStats:
    """Result of :meth:`BufferStore.enqueue`.

    Attributes:
        upserted: Documents written as ``op=upsert, status=pending`` (new, changed or previously deleted).
        unchanged: Documents whose content hash matched the buffer row; not touched.

    """

    upserted: int
    unchanged: int


class PendingSummary(NamedTuple):
    """Pending work of one alias (see :meth:`BufferStore.pending_summary`)."""

    alias: str
    pending_count: int
    max_pending_id: int


@dataclass(frozen=True)
class IndexState:
    """The collection an alias is built from (see :meth:`BufferStore.get_index_state`)."""

    collection_alias: str
    collection_name: str
    schema_hash: str
    full_import: str
    updated_at: datetime | None


@dataclass(frozen=True)
class SyncRecord:
    """One row of ``search_sync_history``."""

    sync_id: str
    source: str
    kind: str
    status: str
    extracted: int
    valid: int
    quarantined: int
    upserted: int
    deleted: int
    unchanged: int
    loaded: int
    failed: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


_SYNC_COLUMNS = ("sync_id", "source", "kind", "status", *SYNC_COUNTERS, "started_at", "finished_at", "error")


def default_buffer_url() -> str:
    """Return ``$AAC_ETL_BUFFER_URL`` or the DuckDB file ``<state_dir>/buffer.duckdb``."""
    configured = os.environ.get(settings.ENV_BUFFER_URL)
    if configured:
        return configured
    return f"duckdb:///{settings.state_dir() / BUFFER_FILE_NAME}"


def _utcnow() -> datetime:
    """Return the current UTC time as a naive datetime (stored in TIMESTAMP columns)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _to_datetime(value: Any) -> datetime | None:
    """Coerce a timestamp read back from any backend (SQLite returns ISO strings)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _is_retryable(exc: BaseException) -> bool:
    """Return True for lock, busy, conflict, serialization and deadlock errors (safe to re-run the call)."""
    if isinstance(exc, duckdb.IOException):
        return "lock" in str(exc).lower()
    if isinstance(exc, duckdb.TransactionException):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in {"40001", "40P01", "55P03"}:
            return True
        message = str(exc.orig).lower()
        return "database is locked" in message or "database is busy" in message
    return False


def _retrying(func: Callable[[], T]) -> T:
    """Run ``func`` (one whole transaction) again with backoff while it fails on a lock or conflict."""
    runner = retry(
        retry=retry_if_exception(_is_retryable),
        wait=wait_exponential_jitter(initial=0.02, max=1.0),
        stop=stop_after_delay(LOCK_RETRY_SECONDS),
        reraise=True,
    )(func)
    return runner()


def _frame_from_arrow(table: Any) -> pl.DataFrame:
    """Convert an Arrow table to a polars DataFrame."""
    frame = pl.from_arrow(table)
    if not isinstance(frame, pl.DataFrame):
        raise TypeError("expected a table from the database")
    return frame


def _conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Cast a frame read from a database to the expected schema (timestamps from text when needed)."""
    exprs: list[pl.Expr] = []
    for name, dtype in schema.items():
        column = frame.get_column(name)
        if isinstance(dtype, pl.Datetime) and column.dtype == pl.Utf8:
            exprs.append(pl.col(name).str.to_datetime(time_unit="us").alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype).alias(name))
    return frame.select(exprs)


def _sql_type(dtype: pl.DataType) -> str:
    """Return the SQL type of a staging column for a polars dtype."""
    if dtype.is_integer():
        return "BIGINT"
    if dtype.is_float():
        return "DOUBLE PRECISION"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP"
    if dtype == pl.Boolean:
        return "BOOLEAN"
    return "TEXT"


class _Tx(Protocol):
    """One open transaction on one connection."""

    dialect: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; return the number of rows it affected (-1 when unknown)."""
        ...

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query; return its rows."""
        ...

    def frame(self, sql: str, params: Mapping[str, Any] | None, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        """Run a query; return its rows as a frame of the given schema."""
        ...

    def stage(self, name: str, frame: pl.DataFrame) -> None:
        """Make ``frame`` queryable as table ``name`` for the rest of the transaction."""
        ...

    def discard(self, name: str) -> None:
        """Drop a staged table before the transaction ends (frees its memory)."""
        ...


_INSERT_UPSERT = (
    "INSERT INTO search_ingest_buffer (id, tenant, collection_alias, source, external_id, op, payload, "
    "content_hash, status, attempts, last_error, sync_id, created_at, updated_at, loaded_at)"
)
"""Head of an enqueue's insert; its SELECT gives the columns in this order, :data:`_ON_CONFLICT_UPSERT` ends it."""
_ON_CONFLICT_UPSERT = (
    "ON CONFLICT (collection_alias, external_id) DO UPDATE SET id = excluded.id, tenant = excluded.tenant, "
    "source = excluded.source, op = excluded.op, payload = excluded.payload, content_hash = excluded.content_hash, "
    "status = excluded.status, attempts = 0, last_error = NULL, sync_id = excluded.sync_id, "
    "updated_at = excluded.updated_at"
)


def _last_row_per_external_id(frame: pl.DataFrame) -> pl.DataFrame:
    """Keep the last row of each ``external_id``, in row order (as ``unique(keep="last", maintain_order=True)``).

    Most frames hold every id once, which is checked first: the check took 36 MB and ``unique`` 220 MB for 960,000
    ids (a first load's fingerprints, in the sync's last, peak-setting steps). A frame with repeats is filtered.
    """
    if frame.get_column("external_id").n_unique() == frame.height:
        return frame
    return frame.filter(pl.col("external_id").is_last_distinct())


_NAMED_PARAM = re.compile(r"(?<![:\w]):(\w+)")


class _DuckTx:
    """A transaction on a short-lived DuckDB connection."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._staged: list[str] = []

    @staticmethod
    def _sql(sql: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """Rewrite ``:name`` placeholders to DuckDB's ``$name`` and keep only the parameters used."""
        used = set(_NAMED_PARAM.findall(sql))
        return _NAMED_PARAM.sub(r"$\1", sql), {k: v for k, v in (params or {}).items() if k in used}

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        result = self._con.execute(*self._sql(sql, params))
        row = result.fetchone() if result.description else None
        return int(row[0]) if row and isinstance(row[0], int) else -1

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._con.execute(*self._sql(sql, params)).fetchall()

    def frame(self, sql: str, params: Mapping[str, Any] | None, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        query, values = self._sql(sql, params)
        relation = self._con.sql(query, params=values)
        if relation is None:
            return pl.DataFrame(schema=dict(schema))
        return _conform(_frame_from_arrow(relation.to_arrow_table()), schema)

    def stage(self, name: str, frame: pl.DataFrame) -> None:
        self._con.register(name, frame.to_arrow())
        self._staged.append(name)

    def discard(self, name: str) -> None:
        if name in self._staged:
            self._staged.remove(name)
            self._con.unregister(name)

    def release(self) -> None:
        for name in self._staged:
            with contextlib.suppress(duckdb.Error):
                self._con.unregister(name)


class _SqlTx:
    """A transaction on a SQLAlchemy connection (COPY on PostgreSQL, executemany elsewhere)."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect.name
        self._staged: list[str] = []

    def _params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        values = dict(params or {})
        if self.dialect == "sqlite":
            # sqlite3's implicit datetime adapter is deprecated; store ISO text explicitly.
            values = {k: v.isoformat(sep=" ") if isinstance(v, datetime) else v for k, v in values.items()}
        return values

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        result = self._conn.execute(sa.text(sql), self._params(params))
        return int(result.rowcount)

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._conn.execute(sa.text(sql), self._params(params)).fetchall()]

    def _driver(self) -> Any:
        return self._conn.connection.driver_connection

    def frame(self, sql: str, params: Mapping[str, Any] | None, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        text_schema = {k: pl.Utf8() if isinstance(v, pl.Datetime) else v for k, v in schema.items()}
        if self.dialect == "postgresql":
            query = _NAMED_PARAM.sub(r"%(\1)s", sql)
            copy_sql = f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER false)"
            with self._driver().cursor() as cursor, cursor.copy(copy_sql, dict(params or {})) as copy:
                data = b"".join(bytes(chunk) for chunk in copy)
            if not data:
                return pl.DataFrame(schema=dict(schema))
            frame = pl.read_csv(data, has_header=False, schema=text_schema, infer_schema=False)
            return _conform(frame, schema)
        rows = self.rows(sql, params)
        frame = pl.DataFrame(rows, schema=text_schema, orient="row")
        return _conform(frame, schema)

    def stage(self, name: str, frame: pl.DataFrame) -> None:
        columns = ", ".join(f"{col} {_sql_type(dtype)}" for col, dtype in frame.schema.items())
        self._conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        suffix = " ON COMMIT DROP" if self.dialect == "postgresql" else ""
        self._conn.execute(sa.text(f"CREATE TEMPORARY TABLE {name} ({columns}){suffix}"))
        self._staged.append(name)
        if frame.height == 0:
            return
        if self.dialect == "postgresql":
            data = frame.write_csv(include_header=False).encode()
            copy_sql = f"COPY {name} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)"
            with self._driver().cursor() as cursor, cursor.copy(copy_sql) as copy:
                copy.write(data)
            return
        if self.dialect == "sqlite":
            frame = frame.with_columns(
                pl.col(col).dt.to_string("%Y-%m-%d %H:%M:%S%.f")
                for col, dtype in frame.schema.items()
                if isinstance(dtype, pl.Datetime)
            )
        placeholders = ", ".join(f":{col}" for col in frame.columns)
        self._conn.execute(sa.text(f"INSERT INTO {name} VALUES ({placeholders})"), frame.to_dicts())

    def discard(self, name: str) -> None:
        if name in self._staged:
            self._staged.remove(name)
            self._conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))

    def release(self) -> None:
        if self.dialect != "postgresql":
            for name in self._staged:
                self._conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


_STAGE_COUNTER = itertools.count()


_DUCKDB_LOCK = threading.RLock()


def _stage_name(prefix: str) -> str:
    """Return a staging table name unique within this process."""
    return f"_stage_{prefix}_{os.getpid()}_{next(_STAGE_COUNTER)}"


class BufferStore:
    """The search ingest buffer plus quarantine, sync history, attribute types and index state.

    See the module docstring for the full API. Instances are cheap, hold no open connection between calls
    and can be passed to other processes (each process creates its own SQLAlchemy engine).
    """

    def __init__(self, url: str | None = None) -> None:
        """Create a store.

        Args:
            url: ``duckdb:///path`` (three slashes + relative path, four for an absolute path), or any
                SQLAlchemy URL (PostgreSQL and SQLite are supported). Defaults to :func:`default_buffer_url`.

        Raises:
            ValueError: When the URL cannot be parsed (message redacted).

        """
        self._url = url or default_buffer_url()
        self._duck_path: Path | None = None
        self._sa_url: sa.URL | None = None
        if self._url.startswith("duckdb://"):
            location = self._url[len("duckdb://") :]
            if not location.startswith("/") or location in {"/", "/:memory:"}:
                raise ValueError(f"DuckDB buffer URL needs a file path: {redact(self._url)}")
            # SQLAlchemy/SQLite convention: duckdb:///relative.duckdb, duckdb:////absolute.duckdb.
            self._duck_path = Path(location[1:])
        else:
            try:
                self._sa_url = sa.make_url(self._url)
            except (sa_exc.ArgumentError, ValueError):
                raise ValueError(f"invalid buffer URL: {redact(self._url)}") from None
        self._engine: sa.Engine | None = None
        self._engine_pid: int | None = None
        self._schema_ready = False

    def __repr__(self) -> str:
        return f"BufferStore({redact(self._url)!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_engine"] = None
        state["_engine_pid"] = None
        return state

    @classmethod
    def from_env(cls) -> BufferStore:
        """Return a store for :func:`default_buffer_url`."""
        return cls(default_buffer_url())

    @property
    def url(self) -> str:
        """The buffer URL with any password masked (safe to log)."""
        return redact(self._url)

    @property
    def backend(self) -> str:
        """``duckdb``, or the SQLAlchemy dialect name (``postgresql``, ``sqlite``, ...)."""
        if self._duck_path is not None:
            return "duckdb"
        return self._sa_url.get_backend_name() if self._sa_url is not None else "unknown"

    # ------------------------------------------------------------------ plumbing

    def _get_engine(self) -> sa.Engine:
        if self._engine is None or self._engine_pid != os.getpid():
            if self._sa_url is None:
                raise BufferStoreError("not a SQLAlchemy buffer")
            kwargs: dict[str, Any] = {"pool_pre_ping": True}
            if self._sa_url.get_backend_name() == "sqlite":
                kwargs["connect_args"] = {"timeout": 30}
            self._engine = sa.create_engine(self._sa_url, **kwargs)
            self._engine_pid = os.getpid()
        return self._engine

    def _once(self, work: Callable[[_Tx], T]) -> T:
        """Run ``work`` in one transaction on a fresh connection (no retry)."""
        if self._duck_path is not None:
            self._duck_path.parent.mkdir(parents=True, exist_ok=True)
            # One DuckDB transaction at a time per process: threads of one sync (extract reader, streaming import,
            # prefetch) would otherwise open and close the same database concurrently, which DuckDB's Python
            # replacement scans do not survive.
            with _DUCKDB_LOCK:
                # A bounded working set: DuckDB spills joins and sorts to disk instead of growing with the catalog.
                con = duckdb.connect(
                    str(self._duck_path),
                    config={"memory_limit": settings.DUCKDB_MEMORY_LIMIT, "threads": settings.DUCKDB_THREADS},
                )
                con.execute(f"SET force_compression = '{settings.DUCKDB_COMPRESSION}'")
                tx = _DuckTx(con)
                try:
                    con.begin()
                    result = work(tx)
                    con.commit()
                    return result
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        con.rollback()
                    raise
                finally:
                    tx.release()
                    con.close()
        with self._get_engine().begin() as conn:
            sql_tx = _SqlTx(conn)
            result = work(sql_tx)
            sql_tx.release()
            return result

    def _run(self, work: Callable[[_Tx], T], *, schema: bool = True) -> T:
        """Run ``work`` in one transaction, retrying lock errors; redact connection errors."""
        if schema and not self._schema_ready:
            self.ensure_schema()
        try:
            return _retrying(lambda: self._once(work))
        except (sa_exc.OperationalError, sa_exc.InterfaceError, duckdb.IOException) as exc:
            raise BufferStoreError(redact(f"buffer database error ({self.url}): {exc}")) from None

    def ensure_schema(self) -> None:
        """Create all tables, indexes and the id counter when missing (idempotent, concurrent-safe)."""

        def work(tx: _Tx) -> None:
            if tx.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(715517)")
            for statement in _SCHEMA_DDL:
                tx.execute(statement)
            primary_key = "" if tx.dialect == "duckdb" else _FINGERPRINT_PRIMARY_KEY
            tx.execute(_FINGERPRINT_TABLE_DDL.format(primary_key=primary_key))
            if tx.dialect != "duckdb":
                for statement in _INDEX_DDL:
                    tx.execute(statement)

        self._run(work, schema=False)
        self._schema_ready = True

    @staticmethod
    def _reserve_ids(tx: _Tx, count: int) -> int:
        """Reserve ``count`` consecutive buffer ids in this transaction; return the first one."""
        rows = tx.rows(
            "UPDATE search_ingest_sequence SET value = value + :n WHERE name = :name RETURNING value",
            {"n": count, "name": SEQUENCE_NAME},
        )
        return int(rows[0][0]) - count + 1

    @staticmethod
    def _with_ids(tx: _Tx, frame: pl.DataFrame) -> pl.DataFrame:
        """Prepend a fresh, increasing ``id`` column to ``frame``."""
        first = BufferStore._reserve_ids(tx, frame.height)
        return frame.select(pl.int_range(first, first + frame.height, dtype=pl.Int64).alias("id"), pl.all())

    # ------------------------------------------------------------------ buffer: writes

    def enqueue(
        self,
        alias: str,
        tenant: str | None,
        source: str,
        sync_id: str | None,
        docs: pl.DataFrame,
    ) -> EnqueueStats:
        """Enqueue new and changed documents for loading.

        A document is written (``op=upsert, status=pending, attempts=0``, new id) only when the buffer has no
        row for it, its content hash differs, or the row is a delete. Unchanged documents are not touched;
        when nothing changed nothing is written. Duplicate external ids keep the last row.

        Args:
            alias: Typesense collection alias the documents belong to.
            tenant: Tenant (project) identifier stored with the rows.
            source: Source name (full syncs delete only their own source's rows).
            sync_id: Id of the sync (Dagster run id) that produced the documents.
            docs: Frame with Utf8 columns ``external_id``, ``payload``, ``content_hash``.

        Returns:
            How many documents were upserted and how many were unchanged.

        """
        now = _utcnow()
        return self._run(
            lambda tx: self._enqueue_tx(tx, docs, alias=alias, tenant=tenant, source=source, sync_id=sync_id, now=now)
        )

    def enqueue_many(
        self,
        alias: str,
        tenant: str | None,
        source: str,
        sync_id: str | None,
        batches: Callable[[], Iterable[pl.DataFrame | Path]],
        *,
        full_sync: bool = False,
        also_seen: pl.Series | Sequence[str] = (),
        also_seen_parts: Sequence[Path] = (),
    ) -> tuple[EnqueueStats, int]:
        """Enqueue many batches (and, for a full sync, the deletes of what it did not see) in ONE transaction.

        One transaction instead of one per batch: a sync's changes land together or not at all, and a DuckDB
        buffer checkpoints (rewrites its key index) once instead of once per batch.

        Args:
            alias: Typesense collection alias the documents belong to.
            tenant: Tenant (project) identifier stored with the rows.
            source: Source name.
            sync_id: Id of the sync that produced the documents.
            batches: Returns the batches (``external_id``, ``payload``, ``content_hash``) afresh on each call:
                a transaction retried after a lock error reads them again. A batch may be a Parquet file of
                those columns: DuckDB then reads it itself (no Arrow copy of the payloads in this process).
            full_sync: The batches are the whole source: its live rows that are neither in a batch nor in
                ``also_seen`` become pending deletes.
            also_seen: External ids still in the source but not in the batches (records skipped as unchanged,
                quarantined records whose last good version stays).
            also_seen_parts: Parquet files (an ``external_id`` column, other columns may differ) of more such ids:
                the batches of the earlier transactions of a sync, the documents it skipped as unchanged; read where
                the deletes are computed instead of held in memory.

        Returns:
            The enqueue counts and the number of rows turned into deletes.

        """
        now = _utcnow()

        def work(tx: _Tx) -> tuple[EnqueueStats, int]:
            upserted = unchanged = 0
            seen = [pl.Series("external_id", also_seen, dtype=pl.Utf8)]
            seen_parts = list(also_seen_parts)
            for docs in batches():
                if isinstance(docs, Path):
                    seen_parts.append(docs)
                else:
                    seen.append(docs.get_column("external_id").cast(pl.Utf8))
                stats = self._enqueue_tx(tx, docs, alias=alias, tenant=tenant, source=source, sync_id=sync_id, now=now)
                upserted += stats.upserted
                unchanged += stats.unchanged
            deleted = 0
            if full_sync:
                deleted = self._delete_unseen(
                    tx, pl.concat(seen), seen_parts, alias=alias, source=source, sync_id=sync_id, now=now
                )
            return EnqueueStats(upserted=upserted, unchanged=unchanged), deleted

        return self._run(work)

    @staticmethod
    def _enqueue_parquet(tx: _Tx, part: Path, params: dict[str, Any]) -> EnqueueStats:
        """DuckDB: enqueue one Parquet batch with statements that read the file themselves.

        The statements do what :meth:`_enqueue_tx` does with a frame (last row per external id, only new, changed
        or deleted documents written, fresh ids in file order), without handing DuckDB an Arrow copy of the
        payloads: that copy, not DuckDB's own working set, was most of a large sync's memory while it wrote the
        buffer. A batch none of whose documents the buffer holds (a first load, new products) is inserted as it
        is: ``INSERT ... ON CONFLICT`` costs DuckDB an index probe per row even when nothing conflicts, about 2.2
        times the CPU of the plain insert at a first load of 192,000 documents. A batch whose external ids are
        all present and distinct (what a sync writes) is numbered by its row number in the file: the window
        that keeps the last row per external id sorts the payloads along, and doubled the CPU of the insert.
        ``params`` holds ``alias``, ``tenant``, ``source``, ``sync_id`` and ``now``.
        """
        rows, keyed, distinct = tx.rows(
            "SELECT count(*), count(external_id), count(DISTINCT external_id) FROM read_parquet(:part)",
            {"part": str(part)},
        )[0]
        if rows == keyed == distinct:
            incoming = (
                "SELECT external_id, payload, content_hash, file_row_number + 1 AS n "
                "FROM read_parquet(:part, file_row_number = true)"
            )
        else:
            # Numbered after the last row per external id was kept: the ids stay within the range reserved.
            incoming = (
                "SELECT external_id, payload, content_hash, row_number() OVER (ORDER BY file_row_number) AS n FROM ("
                "SELECT external_id, payload, content_hash, file_row_number "
                "FROM read_parquet(:part, file_row_number = true) WHERE external_id IS NOT NULL "
                "QUALIFY row_number() OVER (PARTITION BY external_id ORDER BY file_row_number DESC) = 1)"
            )
        # One pass gives the batch's size and how many of its documents the buffer holds already.
        count, stored = tx.rows(
            f"SELECT count(*), count(b.external_id) FROM ({incoming}) s LEFT JOIN search_ingest_buffer b "
            "ON b.collection_alias = :alias AND b.external_id = s.external_id",
            {"alias": params["alias"], "part": str(part)},
        )[0]
        if not count:
            return EnqueueStats(upserted=0, unchanged=0)
        values = {**params, "part": str(part), "first": BufferStore._reserve_ids(tx, int(count))}
        new_rows = (
            "SELECT :first + s.n - 1, :tenant, :alias, :source, s.external_id, 'upsert', s.payload, "
            f"s.content_hash, 'pending', 0, NULL, :sync_id, :now, :now, NULL FROM ({incoming}) s"
        )
        if not stored:
            return EnqueueStats(upserted=tx.execute(f"{_INSERT_UPSERT} {new_rows}", values), unchanged=0)
        written = tx.execute(
            f"{_INSERT_UPSERT} {new_rows} "
            "LEFT JOIN search_ingest_buffer b ON b.collection_alias = :alias AND b.external_id = s.external_id "
            "WHERE b.external_id IS NULL OR b.content_hash IS DISTINCT FROM s.content_hash OR b.op = 'delete' "
            f"{_ON_CONFLICT_UPSERT}",
            values,
        )
        return EnqueueStats(upserted=written, unchanged=int(count) - written)

    def _enqueue_tx(
        self,
        tx: _Tx,
        docs: pl.DataFrame | Path,
        *,
        alias: str,
        tenant: str | None,
        source: str,
        sync_id: str | None,
        now: datetime,
    ) -> EnqueueStats:
        """Enqueue one batch: a frame, or a Parquet file of one (read by DuckDB itself, elsewhere into a frame)."""
        if isinstance(docs, Path):
            if tx.dialect == "duckdb":
                params = {"alias": alias, "tenant": tenant, "source": source, "sync_id": sync_id, "now": now}
                return self._enqueue_parquet(tx, docs, params)
            docs = pl.read_parquet(docs)
        incoming = (
            docs.select(
                pl.col("external_id").cast(pl.Utf8),
                pl.col("payload").cast(pl.Utf8),
                pl.col("content_hash").cast(pl.Utf8),
            )
            .filter(pl.col("external_id").is_not_null())
            .pipe(_last_row_per_external_id)
        )
        if incoming.height == 0:
            return EnqueueStats(upserted=0, unchanged=0)
        changed = self._changed(tx, alias, incoming).select("external_id", "payload", "content_hash")
        if changed.height == 0:
            return EnqueueStats(upserted=0, unchanged=incoming.height)
        rows_name = _stage_name("upsert")
        tx.stage(rows_name, self._with_ids(tx, changed))
        tx.execute(
            f"{_INSERT_UPSERT} "
            f"SELECT s.id, :tenant, :alias, :source, s.external_id, 'upsert', s.payload, s.content_hash, "
            f"'pending', 0, NULL, :sync_id, :now, :now, NULL FROM {rows_name} s WHERE 1 = 1 "
            f"{_ON_CONFLICT_UPSERT}",
            {"tenant": tenant, "alias": alias, "source": source, "sync_id": sync_id, "now": now},
        )
        tx.discard(rows_name)  # frees the batch now: a many-batch transaction holds one batch at a time
        return EnqueueStats(upserted=changed.height, unchanged=incoming.height - changed.height)

    @staticmethod
    def _changed(tx: _Tx, alias: str, incoming: pl.DataFrame) -> pl.DataFrame:
        """Rows of ``incoming`` that enqueue would write: new, changed hash, or currently a delete."""
        ids_name = _stage_name("ids")
        tx.stage(ids_name, incoming.select("external_id"))
        existing = tx.frame(
            f"SELECT b.external_id, b.content_hash, b.op FROM search_ingest_buffer b "
            f"JOIN {ids_name} s ON b.external_id = s.external_id WHERE b.collection_alias = :alias",
            {"alias": alias},
            {"external_id": pl.Utf8(), "content_hash": pl.Utf8(), "op": pl.Utf8()},
        )
        tx.discard(ids_name)
        return incoming.join(existing, on="external_id", how="left", suffix="_stored", maintain_order="left").filter(
            pl.col("content_hash_stored").is_null()
            | (pl.col("content_hash") != pl.col("content_hash_stored")).fill_null(True)
            | (pl.col("op") == "delete").fill_null(False)
        )

    def mark_missing_as_deleted(
        self, alias: str, source: str, sync_id: str | None, seen_external_ids: pl.Series | Sequence[str]
    ) -> int:
        """Turn live rows of ``source`` that a full sync did not see into pending deletes.

        Args:
            alias: Collection alias.
            source: Source whose rows are considered (other sources of the alias are left alone).
            sync_id: The full sync's id, stored on the delete rows.
            seen_external_ids: Every external id the full sync produced (valid or not: quarantined records
                should usually be included so a temporarily invalid record is not deleted from search).

        Returns:
            Number of rows turned into ``op=delete, status=pending``.

        """
        seen = pl.Series("external_id", seen_external_ids, dtype=pl.Utf8)
        now = _utcnow()

        return self._run(
            lambda tx: self._delete_unseen(tx, seen, (), alias=alias, source=source, sync_id=sync_id, now=now)
        )

    def _delete_unseen(
        self,
        tx: _Tx,
        seen: pl.Series,
        seen_parts: Sequence[Path],
        *,
        alias: str,
        source: str,
        sync_id: str | None,
        now: datetime,
    ) -> int:
        """Turn live rows of ``source`` whose external id is neither in ``seen`` nor in ``seen_parts`` into deletes."""
        if tx.dialect == "duckdb":
            # DuckDB anti-joins in its bounded working set and reads the parts' ids itself: neither the source's
            # live ids (the whole catalog) nor the sync's own ids are copied into this process.
            name = _stage_name("seen")
            tx.stage(name, pl.DataFrame({"external_id": seen}).unique())
            in_parts = (
                "AND NOT EXISTS (SELECT 1 FROM read_parquet(:parts, union_by_name = true) p "
                "WHERE p.external_id = b.external_id) "
                if seen_parts
                else ""
            )
            gone = tx.frame(
                "SELECT b.external_id FROM search_ingest_buffer b WHERE b.collection_alias = :alias "
                "AND b.source = :source AND b.op = 'upsert' "
                f"AND NOT EXISTS (SELECT 1 FROM {name} s WHERE s.external_id = b.external_id) {in_parts}",
                {"alias": alias, "source": source, "parts": [str(part) for part in seen_parts]},
                {"external_id": pl.Utf8()},
            )
            tx.discard(name)
            return self._turn_into_deletes(tx, alias, sync_id, now, gone)
        from_parts = [pl.read_parquet(part, columns=["external_id"]).get_column("external_id") for part in seen_parts]
        # Not made unique first: the anti join does not need it, and unique() over 960,000 ids took 156 MB.
        every = pl.DataFrame({"external_id": pl.concat([seen, *from_parts]).cast(pl.Utf8)})
        live = tx.frame(
            "SELECT external_id FROM search_ingest_buffer "
            "WHERE collection_alias = :alias AND source = :source AND op = 'upsert'",
            {"alias": alias, "source": source},
            {"external_id": pl.Utf8()},
        )
        return self._turn_into_deletes(tx, alias, sync_id, now, live.join(every, on="external_id", how="anti"))

    def _turn_into_deletes(self, tx: _Tx, alias: str, sync_id: str | None, now: datetime, rows: pl.DataFrame) -> int:
        """Turn live upsert rows (``rows[external_id]``) into pending deletes with new ids; return how many."""
        if rows.height == 0:
            return 0
        name = _stage_name("delete")
        tx.stage(name, self._with_ids(tx, rows))
        tx.execute(
            "UPDATE search_ingest_buffer SET id = s.id, op = 'delete', status = 'pending', "
            f"attempts = 0, last_error = NULL, sync_id = :sync_id, updated_at = :now FROM {name} s "
            "WHERE search_ingest_buffer.collection_alias = :alias "
            "AND search_ingest_buffer.external_id = s.external_id AND search_ingest_buffer.op = 'upsert'",
            {"alias": alias, "sync_id": sync_id, "now": now},
        )
        return rows.height

    def enqueue_deletes(
        self, alias: str, source: str | None, sync_id: str | None, external_ids: pl.Series | Sequence[str]
    ) -> int:
        """Turn the given documents into pending deletes (delta syncs that know about deletions).

        Args:
            alias: Collection alias.
            source: Only rows of this source when given.
            sync_id: Stored on the delete rows.
            external_ids: Documents to delete; ids without a live row are ignored.

        Returns:
            Number of rows turned into ``op=delete, status=pending``.

        """
        wanted = pl.DataFrame({"external_id": pl.Series(external_ids, dtype=pl.Utf8)}).unique()
        if wanted.height == 0:
            return 0
        now = _utcnow()

        def work(tx: _Tx) -> int:
            ids_name = _stage_name("ids")
            tx.stage(ids_name, wanted)
            source_clause = " AND b.source = :source" if source is not None else ""
            live = tx.frame(
                f"SELECT b.external_id FROM search_ingest_buffer b JOIN {ids_name} s "
                "ON b.external_id = s.external_id "
                f"WHERE b.collection_alias = :alias AND b.op = 'upsert'{source_clause}",
                {"alias": alias, "source": source},
                {"external_id": pl.Utf8()},
            )
            return self._turn_into_deletes(tx, alias, sync_id, now, live)

        return self._run(work)

    @staticmethod
    def _result_keys(rows: pl.DataFrame, extra: Sequence[str] = ()) -> pl.DataFrame:
        """Normalize loader result rows to external_id, content_hash, op (+ extra columns)."""
        op = pl.col("op").cast(pl.Utf8) if "op" in rows.columns else pl.lit(None, dtype=pl.Utf8).alias("op")
        return rows.select(
            pl.col("external_id").cast(pl.Utf8),
            pl.col("content_hash").cast(pl.Utf8),
            op,
            *(pl.col(name) for name in extra),
        ).pipe(_last_row_per_external_id)

    def mark_loaded(self, alias: str, rows: pl.DataFrame) -> int:
        """Mark rows loaded where the buffer still holds exactly what the loader sent.

        Args:
            alias: Collection alias.
            rows: Frame with ``external_id``, ``content_hash`` and optionally ``op``. A row is marked only
                when its stored hash (and op, when given) still match, so a newer enqueue stays pending.

        Returns:
            Number of rows marked loaded.

        """
        keys = self._result_keys(rows)
        if keys.height == 0:
            return 0
        now = _utcnow()

        def work(tx: _Tx) -> int:
            name = _stage_name("loaded")
            tx.stage(name, keys)
            self._count_loaded(
                tx,
                f"search_ingest_buffer b JOIN {name} s ON b.external_id = s.external_id "
                "AND b.content_hash = s.content_hash AND (s.op IS NULL OR b.op = s.op) "
                "WHERE b.collection_alias = :alias AND b.status <> 'loaded'",
                {"alias": alias},
            )
            return tx.execute(
                f"UPDATE search_ingest_buffer SET status = 'loaded', attempts = 0, last_error = NULL, "
                f"loaded_at = :now, updated_at = :now FROM {name} s "
                "WHERE search_ingest_buffer.collection_alias = :alias "
                "AND search_ingest_buffer.external_id = s.external_id "
                "AND search_ingest_buffer.content_hash = s.content_hash "
                "AND (s.op IS NULL OR search_ingest_buffer.op = s.op) "
                "AND search_ingest_buffer.status <> 'loaded'",
                {"alias": alias, "now": now},
            )

        return self._run(work)

    def mark_upserts_loaded_through(self, alias: str, max_id: int) -> int:
        """Mark every not-yet-loaded upsert row with ``id <= max_id`` loaded, in one set-based statement.

        Safe after a rebuild that imported every live row up to ``max_id``: any later change of a row (enqueue,
        retry, failed attempt) gives it a new id above ``max_id``, so exactly the rows whose version was sent
        match. Record failures with :meth:`mark_failed` first (it moves those rows past ``max_id``).

        Args:
            alias: Collection alias.
            max_id: Largest buffer id the loader read and imported.

        Returns:
            Number of rows marked loaded.

        """
        now = _utcnow()
        params = {"alias": alias, "max_id": max_id, "now": now}

        def work(tx: _Tx) -> int:
            self._count_loaded(
                tx,
                "search_ingest_buffer b WHERE b.collection_alias = :alias AND b.op = 'upsert' "
                "AND b.status <> 'loaded' AND b.id <= :max_id",
                params,
            )
            return tx.execute(
                "UPDATE search_ingest_buffer SET status = 'loaded', attempts = 0, last_error = NULL, "
                "loaded_at = :now, updated_at = :now WHERE collection_alias = :alias AND op = 'upsert' "
                "AND status <> 'loaded' AND id <= :max_id",
                params,
            )

        return self._run(work)

    @staticmethod
    def _count_loaded(tx: _Tx, rows: str, params: Mapping[str, Any]) -> None:
        """Add the buffer rows about to be marked loaded to the ``loaded`` counter of the syncs that wrote them.

        Args:
            tx: The transaction that marks them (same snapshot, so the counts are exactly the rows marked).
            rows: ``FROM`` clause (with ``WHERE``) selecting those rows as ``b``.
            params: Its parameters.

        """
        tx.execute(
            "UPDATE search_sync_history SET loaded = loaded + c.n FROM "
            f"(SELECT b.sync_id AS sync_id, count(*) AS n FROM {rows} AND b.sync_id IS NOT NULL "
            "GROUP BY b.sync_id) c WHERE search_sync_history.sync_id = c.sync_id",
            params,
        )

    def mark_failed(self, alias: str, rows: pl.DataFrame) -> int:
        """Record a failed load attempt.

        ``attempts`` grows by one and ``last_error`` keeps the (redacted, truncated) error. Rows that reach
        ``settings.MAX_LOAD_ATTEMPTS`` become ``status=failed`` (see :meth:`retry_failed`); the others stay
        pending with a new id, so the sensor's watermark moves and the load is retried.

        Args:
            alias: Collection alias.
            rows: Frame with ``external_id``, ``content_hash``, ``error`` and optionally ``op``; rows whose
                stored hash (or op) changed since are left alone.

        Returns:
            Number of rows updated.

        """
        keys = self._result_keys(rows, extra=("error",))
        if keys.height == 0:
            return 0
        errors = keys.get_column("error").cast(pl.Utf8).fill_null("").to_list()
        # Redaction is per message (regexes + secret values); failures are few, so this stays cheap.
        redacted = pl.Series("error", [redact(e)[:ERROR_MAX_CHARS] for e in errors], dtype=pl.Utf8)
        keys = keys.with_columns(redacted)
        now = _utcnow()

        def work(tx: _Tx) -> int:
            name = _stage_name("failed")
            tx.stage(name, self._with_ids(tx, keys))
            return tx.execute(
                "UPDATE search_ingest_buffer SET "
                "id = CASE WHEN attempts + 1 >= :max_attempts THEN search_ingest_buffer.id ELSE s.id END, "
                "attempts = attempts + 1, last_error = s.error, updated_at = :now, "
                "status = CASE WHEN attempts + 1 >= :max_attempts THEN 'failed' ELSE 'pending' END "
                f"FROM {name} s WHERE search_ingest_buffer.collection_alias = :alias "
                "AND search_ingest_buffer.external_id = s.external_id "
                "AND search_ingest_buffer.content_hash = s.content_hash "
                "AND (s.op IS NULL OR search_ingest_buffer.op = s.op) "
                "AND search_ingest_buffer.status <> 'loaded'",
                {"alias": alias, "now": now, "max_attempts": settings.MAX_LOAD_ATTEMPTS},
            )

        return self._run(work)

    def retry_failed(self, alias: str) -> int:
        """Put every ``status=failed`` row of the alias back to pending with ``attempts=0`` and a new id.

        Returns:
            Number of rows requeued.

        """
        now = _utcnow()

        def work(tx: _Tx) -> int:
            failed = tx.frame(
                "SELECT external_id FROM search_ingest_buffer "
                "WHERE collection_alias = :alias AND status = 'failed' ORDER BY id",
                {"alias": alias},
                {"external_id": pl.Utf8()},
            )
            if failed.height == 0:
                return 0
            name = _stage_name("retry")
            tx.stage(name, self._with_ids(tx, failed))
            tx.execute(
                f"UPDATE search_ingest_buffer SET id = s.id, status = 'pending', attempts = 0, "
                f"updated_at = :now FROM {name} s WHERE search_ingest_buffer.collection_alias = :alias "
                "AND search_ingest_buffer.external_id = s.external_id "
                "AND search_ingest_buffer.status = 'failed'",
                {"alias": alias, "now": now},
            )
            return failed.height

        return self._run(work)

    # ------------------------------------------------------------------ buffer: reads

    def count_live(self, alias: str, source: str | None = None) -> int:
        """Return how many documents of the alias (and source) are currently ``op=upsert``, any status."""
        source_clause = " AND source = :source" if source is not None else ""
        rows = self._run(
            lambda tx: tx.rows(
                "SELECT count(*) FROM search_ingest_buffer "
                f"WHERE collection_alias = :alias AND op = 'upsert'{source_clause}",
                {"alias": alias, "source": source},
            )
        )
        return int(rows[0][0])

    def max_pending_id(self, alias: str) -> int | None:
        """Return the largest pending id of the alias, or None when nothing is pending."""
        rows = self._run(
            lambda tx: tx.rows(
                "SELECT max(id) FROM search_ingest_buffer WHERE collection_alias = :alias AND status = 'pending'",
                {"alias": alias},
            )
        )
        return None if rows[0][0] is None else int(rows[0][0])

    def _batches(self, where: str, alias: str, batch_size: int, max_id: int | None) -> Iterator[pl.DataFrame]:
        """Keyset-paginate buffer rows matching ``where`` by id, one short transaction per batch."""
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if max_id is None:
            rows = self._run(
                lambda tx: tx.rows(
                    f"SELECT max(id) FROM search_ingest_buffer WHERE collection_alias = :alias AND {where}",
                    {"alias": alias},
                )
            )
            if rows[0][0] is None:
                return
            max_id = int(rows[0][0])
        last_id = -1
        while True:
            params = {"alias": alias, "last_id": last_id, "max_id": max_id, "limit": batch_size}
            batch = self._run(
                lambda tx, params=params: tx.frame(
                    "SELECT id, external_id, op, payload, content_hash, attempts FROM search_ingest_buffer "
                    f"WHERE collection_alias = :alias AND {where} AND id > :last_id AND id <= :max_id "
                    "ORDER BY id LIMIT :limit",
                    params,
                    BATCH_SCHEMA,
                )
            )
            if batch.height == 0:
                return
            last_id = int(batch.get_column("id").max())  # type: ignore[arg-type]
            yield batch
            if batch.height < batch_size:
                return

    def pending_batches(
        self, alias: str, batch_size: int = settings.IMPORT_BATCH_SIZE, *, max_id: int | None = None
    ) -> Iterator[pl.DataFrame]:
        """Yield pending rows in id order, ``batch_size`` at a time.

        Each batch is read in its own short transaction, so callers may mark rows between batches. Rows
        enqueued after iteration starts have larger ids and are left for the next run.

        Args:
            alias: Collection alias.
            batch_size: Rows per batch.
            max_id: Last id to include; default: the largest pending id when iteration starts.

        Yields:
            Frames ``[id, external_id, op, payload, content_hash, attempts]``.

        """
        yield from self._batches("status = 'pending'", alias, batch_size, max_id)

    def all_live_documents(
        self, alias: str, batch_size: int = settings.IMPORT_BATCH_SIZE, *, max_id: int | None = None
    ) -> Iterator[pl.DataFrame]:
        """Yield every ``op=upsert`` row (any status) in id order, for a full reindex.

        Args:
            alias: Collection alias.
            batch_size: Rows per batch.
            max_id: Last id to include; default: the largest id when iteration starts.

        Yields:
            Frames ``[id, external_id, op, payload, content_hash, attempts]``.

        """
        yield from self._batches("op = 'upsert'", alias, batch_size, max_id)

    def live_keys(self, alias: str) -> pl.DataFrame:
        """Return ``id``, ``external_id`` and ``content_hash`` of every live (``op=upsert``) row, without payloads.

        Args:
            alias: Collection alias.

        Returns:
            One row per live document of the alias (cheap: no payload is read).

        """
        return self._run(
            lambda tx: tx.frame(
                "SELECT id, external_id, content_hash FROM search_ingest_buffer "
                "WHERE collection_alias = :alias AND op = 'upsert'",
                {"alias": alias},
                {"id": pl.Int64(), "external_id": pl.Utf8(), "content_hash": pl.Utf8()},
            )
        )

    def changed_external_ids(self, alias: str, docs: pl.DataFrame) -> pl.Series:
        """Return the external ids of ``docs`` that an enqueue would write: new, changed hash, or now a delete.

        A read-only preview of :meth:`enqueue`'s comparison for one batch: the buffer's keys stay in the database
        instead of a copy of the whole alias's keys in this process.

        Args:
            alias: Collection alias.
            docs: Frame with Utf8 columns ``external_id`` and ``content_hash`` (other columns are ignored).

        Returns:
            The ``external_id`` of each such row of ``docs``, in the order of ``docs``.

        """
        incoming = docs.select(pl.col("external_id").cast(pl.Utf8), pl.col("content_hash").cast(pl.Utf8))
        if incoming.height == 0:
            return incoming.get_column("external_id")
        return self._run(lambda tx: self._changed(tx, alias, incoming)).get_column("external_id")

    def pending_summary(self) -> list[PendingSummary]:
        """Return, per alias with pending rows, the pending count and the largest pending id (cheap)."""
        rows = self._run(
            lambda tx: tx.rows(
                "SELECT collection_alias, count(*), max(id) FROM search_ingest_buffer "
                "WHERE status = 'pending' GROUP BY collection_alias ORDER BY collection_alias"
            )
        )
        return [PendingSummary(str(a), int(n), int(m)) for a, n, m in rows]

    def status(self, alias: str | None = None) -> pl.DataFrame:
        """Return row counts by alias, op and status.

        Args:
            alias: Only this alias when given.

        Returns:
            Frame ``[collection_alias, op, status, count]`` sorted by alias, op, status.

        """
        clause = " WHERE collection_alias = :alias" if alias is not None else ""
        return self._run(
            lambda tx: tx.frame(
                f"SELECT collection_alias, op, status, count(*) AS count FROM search_ingest_buffer{clause} "
                "GROUP BY collection_alias, op, status ORDER BY collection_alias, op, status",
                {"alias": alias},
                {"collection_alias": pl.Utf8(), "op": pl.Utf8(), "status": pl.Utf8(), "count": pl.Int64()},
            )
        )

    def failed_documents(self, alias: str, limit: int = 100) -> pl.DataFrame:
        """Return rows with load errors (failed, or pending after a failed attempt), newest first.

        Returns:
            Frame ``[external_id, op, status, attempts, last_error, updated_at]``.

        """
        return self._run(
            lambda tx: tx.frame(
                "SELECT external_id, op, status, attempts, last_error, updated_at FROM search_ingest_buffer "
                "WHERE collection_alias = :alias AND last_error IS NOT NULL AND status <> 'loaded' "
                "ORDER BY updated_at DESC LIMIT :limit",
                {"alias": alias, "limit": limit},
                {
                    "external_id": pl.Utf8(),
                    "op": pl.Utf8(),
                    "status": pl.Utf8(),
                    "attempts": pl.Int64(),
                    "last_error": pl.Utf8(),
                    "updated_at": pl.Datetime("us"),
                },
            )
        )

    # ------------------------------------------------------------------ quarantine

    def add_quarantine(self, rows: pl.DataFrame) -> int:
        """Store quarantined records, replacing earlier rows of the same (source, external_id).

        Args:
            rows: Frame with ``source, sync_id, external_id, record_id, field, rule, value, message``
                (missing columns are stored as null; ``value`` is cast to text and truncated).

        Returns:
            Number of rows stored.

        """
        if rows.height == 0:
            return 0
        frame = rows.select(
            (pl.col(name) if name in rows.columns else pl.lit(None)).cast(pl.Utf8).alias(name)
            for name in QUARANTINE_COLUMNS
        ).with_columns(
            pl.col("value").str.slice(0, settings.QUARANTINE_VALUE_MAX_CHARS),
            pl.lit(_utcnow()).dt.cast_time_unit("us").alias("created_at"),
        )
        columns = ", ".join((*QUARANTINE_COLUMNS, "created_at"))

        def work(tx: _Tx) -> int:
            name = _stage_name("quarantine")
            tx.stage(name, frame)
            tx.execute(
                f"DELETE FROM search_quarantine WHERE EXISTS (SELECT 1 FROM {name} s "
                "WHERE s.source = search_quarantine.source "
                "AND (s.external_id = search_quarantine.external_id OR (s.external_id IS NULL "
                "AND search_quarantine.external_id IS NULL AND s.record_id = search_quarantine.record_id)) "
                "AND (s.sync_id IS NULL OR search_quarantine.sync_id IS NULL "
                "OR s.sync_id <> search_quarantine.sync_id))"
            )
            tx.execute(f"INSERT INTO search_quarantine ({columns}) SELECT {columns} FROM {name}")
            return frame.height

        return self._run(work)

    def clear_quarantine(self, source: str, external_ids: pl.Series | Sequence[str]) -> int:
        """Remove quarantine rows of records that are valid again.

        Args:
            source: Source name.
            external_ids: External ids that passed validation in the latest sync.

        Returns:
            Number of quarantine rows removed.

        """
        ids = pl.Series("external_id", external_ids, dtype=pl.Utf8)
        if ids.len() == 0:
            return 0

        def work(tx: _Tx) -> int:
            # The quarantine holds a few records of a source, the ids a whole catalog: the quarantined ids are read
            # and matched here, and only the matches go to the database (960,000 ids made unique and staged for the
            # DELETE took about 180 MB at a first load's peak; staged alone, 55 MB against 34 MB matched here).
            quarantined = tx.frame(
                "SELECT DISTINCT external_id FROM search_quarantine WHERE source = :source AND external_id IS NOT NULL",
                {"source": source},
                {"external_id": pl.Utf8()},
            ).get_column("external_id")
            if quarantined.len() == 0:
                return 0
            cleared = ids.filter(ids.is_in(quarantined.implode())).unique()
            if cleared.len() == 0:
                return 0
            name = _stage_name("clear")
            tx.stage(name, cleared.to_frame())
            return tx.execute(
                "DELETE FROM search_quarantine WHERE source = :source AND external_id IN "
                f"(SELECT external_id FROM {name})",
                {"source": source},
            )

        return self._run(work)

    def list_quarantine(self, source: str | None = None, limit: int = 100) -> pl.DataFrame:
        """Return quarantine rows, newest first.

        Args:
            source: Only this source when given.
            limit: Maximum rows.

        Returns:
            Frame ``[source, sync_id, external_id, record_id, field, rule, value, message, created_at]``.

        """
        clause = " WHERE source = :source" if source is not None else ""
        columns = ", ".join((*QUARANTINE_COLUMNS, "created_at"))
        schema: dict[str, pl.DataType] = {name: pl.Utf8() for name in QUARANTINE_COLUMNS}
        schema["created_at"] = pl.Datetime("us")
        return self._run(
            lambda tx: tx.frame(
                f"SELECT {columns} FROM search_quarantine{clause} "
                "ORDER BY created_at DESC, external_id, field LIMIT :limit",
                {"source": source, "limit": limit},
                schema,
            )
        )

    def quarantine_counts(self, source: str) -> pl.DataFrame:
        """Return quarantine counts of a source by field and rule.

        Returns:
            Frame ``[field, rule, count]``, largest count first.

        """
        return self._run(
            lambda tx: tx.frame(
                "SELECT field, rule, count(*) AS count FROM search_quarantine WHERE source = :source "
                "GROUP BY field, rule ORDER BY count(*) DESC, field, rule",
                {"source": source},
                {"field": pl.Utf8(), "rule": pl.Utf8(), "count": pl.Int64()},
            )
        )

    # ------------------------------------------------------------------ source fingerprints

    @staticmethod
    def _fingerprint_rows(frame: pl.DataFrame) -> pl.DataFrame:
        """Normalize fingerprint rows for storage: text ids, the UInt64 fingerprint's bits as Int64.

        Rows with a null in any column are dropped (their records simply count as changed next time) and a
        duplicated ``external_id`` keeps its last row.

        Raises:
            polars.exceptions.ColumnNotFoundError: When a column is missing.
            polars.exceptions.InvalidOperationError: When a fingerprint does not fit UInt64 (e.g. negative).

        """
        return (
            frame.select(
                pl.col("record_id").cast(pl.Utf8),
                pl.col("external_id").cast(pl.Utf8),
                pl.col("fingerprint").cast(pl.UInt64).reinterpret(signed=True),
            )
            .drop_nulls()
            .pipe(_last_row_per_external_id)
        )

    @staticmethod
    def _lock_fingerprints(tx: _Tx) -> None:
        """Serialize fingerprint writers by updating one counter row first.

        On PostgreSQL a second writer blocks until the first commits; on DuckDB it fails with a conflict and is
        retried; SQLite serializes writers anyway. So no two writers interleave their deletes and inserts.
        """
        tx.execute(
            "UPDATE search_ingest_sequence SET value = value + 1 WHERE name = :name", {"name": FINGERPRINT_LOCK_NAME}
        )

    @staticmethod
    def _insert_fingerprints(tx: _Tx, source: str, rows: pl.DataFrame) -> None:
        """Insert normalized rows (see :meth:`_fingerprint_rows`) staged as one bulk load."""
        if rows.height == 0:
            return
        name = _stage_name("fingerprints")
        tx.stage(name, rows)
        tx.execute(
            "INSERT INTO search_source_fingerprints (source, record_id, external_id, fingerprint) "
            f"SELECT :source, record_id, external_id, fingerprint FROM {name}",
            {"source": source},
        )

    def source_fingerprints(self, source: str, record_ids: pl.Series | None = None) -> pl.DataFrame:
        """Return the stored raw-input fingerprints of a source, or of some of its records.

        A fingerprint vouches that the documents of its record in the buffer were built from raw input with
        that fingerprint, so a sync may skip a record whose new fingerprint is the same. A sync asks for the
        records of one chunk at a time: the whole source's fingerprints stay in the database.

        Args:
            source: Source name.
            record_ids: Only the rows of these records (text; nulls ignored); every row of the source when None.

        Returns:
            Frame ``[record_id (Utf8), external_id (Utf8), fingerprint (UInt64)]``, one row per document, in no
            particular order; empty (same schema) when there is none.

        """
        schema = {"record_id": pl.Utf8(), "external_id": pl.Utf8(), "fingerprint": pl.Int64()}
        columns = "f.record_id, f.external_id, f.fingerprint FROM search_source_fingerprints f"
        wanted = None
        if record_ids is not None:
            wanted = record_ids.cast(pl.Utf8).alias("record_id").drop_nulls().unique().to_frame()
            if wanted.height == 0:
                return pl.DataFrame(schema={**schema, "fingerprint": pl.UInt64()})

        def work(tx: _Tx) -> pl.DataFrame:
            if wanted is None:
                return tx.frame(f"SELECT {columns} WHERE f.source = :source", {"source": source}, schema)
            name = _stage_name("fingerprint_records")
            tx.stage(name, wanted)
            frame = tx.frame(
                f"SELECT {columns} JOIN {name} s ON f.record_id = s.record_id WHERE f.source = :source",
                {"source": source},
                schema,
            )
            tx.discard(name)
            return frame

        return self._run(work).with_columns(pl.col("fingerprint").reinterpret(signed=False))

    def has_source_fingerprints(self, source: str) -> bool:
        """Return whether any fingerprint of ``source`` is stored (a sync with none is the source's first load)."""
        query = "SELECT 1 FROM search_source_fingerprints WHERE source = :source LIMIT 1"
        return bool(self._run(lambda tx: tx.rows(query, {"source": source})))

    def replace_source_fingerprints(self, source: str, frame: pl.DataFrame) -> int:
        """Replace all fingerprints of a source, in one transaction (after a successful full sync).

        Args:
            source: Source name.
            frame: Columns ``record_id``, ``external_id`` (text) and ``fingerprint`` (UInt64), one row per
                document; a record's documents share its fingerprint. Rows with a null are skipped and a
                duplicated ``external_id`` keeps its last row.

        Returns:
            Number of rows written.

        Raises:
            polars.exceptions.ColumnNotFoundError: When a column is missing.
            polars.exceptions.InvalidOperationError: When a fingerprint does not fit UInt64.

        """
        rows = self._fingerprint_rows(frame)

        def work(tx: _Tx) -> int:
            self._lock_fingerprints(tx)
            if rows.height == 0:
                tx.execute("DELETE FROM search_source_fingerprints WHERE source = :source", {"source": source})
                return 0
            # A diff rather than delete-all + insert-all: a nightly full sync changes few fingerprints, and
            # rows left alone cost no index maintenance and leave no dead tuples behind (PostgreSQL).
            name = _stage_name("fingerprints")
            tx.stage(name, rows)
            tx.execute(
                "DELETE FROM search_source_fingerprints WHERE source = :source AND NOT EXISTS (SELECT 1 "
                f"FROM {name} s WHERE s.external_id = search_source_fingerprints.external_id "
                "AND s.record_id = search_source_fingerprints.record_id "
                "AND s.fingerprint = search_source_fingerprints.fingerprint)",
                {"source": source},
            )
            tx.execute(
                "INSERT INTO search_source_fingerprints (source, record_id, external_id, fingerprint) "
                f"SELECT :source, s.record_id, s.external_id, s.fingerprint FROM {name} s WHERE NOT EXISTS "
                "(SELECT 1 FROM search_source_fingerprints f WHERE f.source = :stored_source "
                "AND f.external_id = s.external_id)",
                # Two names: PostgreSQL infers one parameter's type once (text vs varchar here).
                {"source": source, "stored_source": source},
            )
            return rows.height

        return self._run(work)

    def upsert_source_fingerprints(self, source: str, record_ids: pl.Series, frame: pl.DataFrame) -> int:
        """Replace the fingerprints of some records of a source, in one transaction (after a delta sync).

        Every stored row of the source whose ``record_id`` is in ``record_ids`` or in ``frame`` is deleted (so a
        record keeps exactly the documents ``frame`` lists), as is any row of an ``external_id`` in ``frame``
        (a document that moved to another record); then ``frame`` is inserted. Records in ``record_ids`` but
        not in ``frame`` end up without fingerprints.

        Args:
            source: Source name.
            record_ids: The records the delta sync processed (text; nulls ignored).
            frame: Columns ``record_id``, ``external_id`` (text) and ``fingerprint`` (UInt64), as for
                :meth:`replace_source_fingerprints`.

        Returns:
            Number of rows written.

        Raises:
            polars.exceptions.ColumnNotFoundError: When a column is missing.
            polars.exceptions.InvalidOperationError: When a fingerprint does not fit UInt64.

        """
        rows = self._fingerprint_rows(frame)
        records = (
            pl.concat([record_ids.cast(pl.Utf8).alias("record_id").to_frame(), rows.select("record_id")])
            .drop_nulls()
            .unique()
        )
        if records.height == 0:
            return 0

        def work(tx: _Tx) -> int:
            self._lock_fingerprints(tx)
            name = _stage_name("fingerprint_records")
            tx.stage(name, records)
            tx.execute(
                "DELETE FROM search_source_fingerprints WHERE source = :source "
                f"AND record_id IN (SELECT record_id FROM {name})",
                {"source": source},
            )
            if rows.height:
                ids_name = _stage_name("fingerprint_ids")
                tx.stage(ids_name, rows.select("external_id"))
                tx.execute(
                    "DELETE FROM search_source_fingerprints WHERE source = :source "
                    f"AND external_id IN (SELECT external_id FROM {ids_name})",
                    {"source": source},
                )
            self._insert_fingerprints(tx, source, rows)
            return rows.height

        return self._run(work)

    def clear_source_fingerprints(self, source: str | None = None) -> int:
        """Delete the fingerprints of a source, or of every source (the next sync processes every record).

        Args:
            source: Source name; all sources when None.

        Returns:
            Number of rows deleted.

        """
        clause = " WHERE source = :source" if source is not None else ""

        def work(tx: _Tx) -> int:
            self._lock_fingerprints(tx)
            return tx.execute(f"DELETE FROM search_source_fingerprints{clause}", {"source": source})

        return self._run(work)

    # ------------------------------------------------------------------ sync history

    def start_sync(self, sync_id: str, source: str, kind: SyncKind | str, status: SyncStatus | str = "running") -> None:
        """Record the start of a sync (a re-run of the same sync id resets its row).

        Args:
            sync_id: Dagster run id (or any unique id).
            source: Source name.
            kind: ``full`` or ``delta``.
            status: Initial status, ``running`` by default (``queued`` for a requested sync).

        """
        zeros = ", ".join("0" for _ in SYNC_COUNTERS)
        resets = ", ".join(f"{name} = 0" for name in SYNC_COUNTERS)
        self._run(
            lambda tx: tx.execute(
                "INSERT INTO search_sync_history (sync_id, source, kind, status, "
                f"{', '.join(SYNC_COUNTERS)}, started_at, finished_at, error) "
                f"VALUES (:sync_id, :source, :kind, :status, {zeros}, :now, NULL, NULL) "
                "ON CONFLICT (sync_id) DO UPDATE SET source = excluded.source, "
                f"kind = excluded.kind, status = excluded.status, {resets}, "
                "started_at = excluded.started_at, finished_at = NULL, error = NULL",
                {"sync_id": sync_id, "source": source, "kind": kind, "status": status, "now": _utcnow()},
            )
        )

    @staticmethod
    def _check_counts(counts: Mapping[str, int]) -> None:
        unknown = set(counts) - set(SYNC_COUNTERS)
        if unknown:
            raise ValueError(f"unknown sync counters: {sorted(unknown)}; known: {SYNC_COUNTERS}")

    def update_sync(
        self, sync_id: str, *, status: SyncStatus | str | None = None, error: str | None = None, **counts: int
    ) -> None:
        """Set the status, error and/or counters of a sync (only the given ones).

        Args:
            sync_id: The sync.
            status: New status when given.
            error: Error text when given (redacted and truncated).
            **counts: Counter values to set (names in ``SYNC_COUNTERS``).

        """
        self._set_sync(sync_id, status=status, error=error, counts=counts, finished=False, increment=False)

    def add_sync_counts(self, sync_id: str, **counts: int) -> None:
        """Add to counters of a sync (for chunked processing).

        Args:
            sync_id: The sync.
            **counts: Amounts to add (names in ``SYNC_COUNTERS``).

        """
        self._set_sync(sync_id, status=None, error=None, counts=counts, finished=False, increment=True)

    def finish_sync(
        self, sync_id: str, status: SyncStatus | str = "succeeded", error: str | None = None, **counts: int
    ) -> None:
        """Record the end of a sync: status, ``finished_at``, optional error and counter values.

        Args:
            sync_id: The sync.
            status: ``succeeded`` or ``failed``.
            error: Error text (redacted and truncated).
            **counts: Counter values to set.

        """
        self._set_sync(sync_id, status=status, error=error, counts=counts, finished=True, increment=False)

    def _set_sync(
        self,
        sync_id: str,
        *,
        status: str | None,
        error: str | None,
        counts: Mapping[str, int],
        finished: bool,
        increment: bool,
    ) -> None:
        self._check_counts(counts)
        params: dict[str, Any] = {"sync_id": sync_id}
        sets: list[str] = []
        for name, value in counts.items():
            sets.append(f"{name} = {name} + :{name}" if increment else f"{name} = :{name}")
            params[name] = int(value)
        if status is not None:
            sets.append("status = :status")
            params["status"] = status
        if error is not None:
            sets.append("error = :error")
            params["error"] = redact(error)[:ERROR_MAX_CHARS]
        if finished:
            sets.append("finished_at = :now")
            params["now"] = _utcnow()
        if not sets:
            return
        self._run(
            lambda tx: tx.execute(f"UPDATE search_sync_history SET {', '.join(sets)} WHERE sync_id = :sync_id", params)
        )

    @staticmethod
    def _sync_record(row: Sequence[Any]) -> SyncRecord:
        values: dict[str, Any] = dict(zip(_SYNC_COLUMNS, row, strict=True))
        return SyncRecord(
            sync_id=str(values["sync_id"]),
            source=str(values["source"]),
            kind=str(values["kind"]),
            status=str(values["status"]),
            started_at=_to_datetime(values["started_at"]),
            finished_at=_to_datetime(values["finished_at"]),
            error=values["error"],
            **{name: int(values[name]) for name in SYNC_COUNTERS},
        )

    def last_sync(
        self, source: str, kind: SyncKind | str | None = None, status: SyncStatus | str | None = None
    ) -> SyncRecord | None:
        """Return the most recently started sync of a source, optionally of a kind and/or status."""
        clauses = ["source = :source"]
        if kind is not None:
            clauses.append("kind = :kind")
        if status is not None:
            clauses.append("status = :status")
        rows = self._run(
            lambda tx: tx.rows(
                f"SELECT {', '.join(_SYNC_COLUMNS)} FROM search_sync_history WHERE {' AND '.join(clauses)} "
                "ORDER BY started_at DESC, sync_id DESC LIMIT 1",
                {"source": source, "kind": kind, "status": status},
            )
        )
        return self._sync_record(rows[0]) if rows else None

    def sync_history(self, source: str | None = None, limit: int = 20) -> list[SyncRecord]:
        """Return the latest syncs (of a source when given), newest first."""
        clause = " WHERE source = :source" if source is not None else ""
        rows = self._run(
            lambda tx: tx.rows(
                f"SELECT {', '.join(_SYNC_COLUMNS)} FROM search_sync_history{clause} "
                "ORDER BY started_at DESC, sync_id DESC LIMIT :limit",
                {"source": source, "limit": limit},
            )
        )
        return [self._sync_record(row) for row in rows]

    # ------------------------------------------------------------------ attribute types

    def get_attribute_types(self, alias: str) -> dict[str, str]:
        """Return the locked index type of each attribute of the alias."""
        rows = self._run(
            lambda tx: tx.rows(
                "SELECT attribute, type FROM search_attribute_types WHERE collection_alias = :alias ORDER BY attribute",
                {"alias": alias},
            )
        )
        return {str(attribute): str(kind) for attribute, kind in rows}

    def lock_attribute_types(self, alias: str, types: Mapping[str, str]) -> dict[str, str]:
        """Lock attribute types: keys already locked keep their type, new keys are inserted.

        Args:
            alias: Collection alias.
            types: Proposed type per attribute (e.g. inferred from the first batch).

        Returns:
            The effective map after locking (all attributes of the alias).

        """
        frame = pl.DataFrame(
            {"attribute": list(types), "type": [str(v) for v in types.values()]},
            schema={"attribute": pl.Utf8, "type": pl.Utf8},
        )
        now = _utcnow()

        def work(tx: _Tx) -> dict[str, str]:
            if frame.height:
                name = _stage_name("attrs")
                tx.stage(name, frame)
                tx.execute(
                    "INSERT INTO search_attribute_types (collection_alias, attribute, type, created_at) "
                    f"SELECT :alias, attribute, type, :now FROM {name} WHERE 1 = 1 "
                    "ON CONFLICT (collection_alias, attribute) DO NOTHING",
                    {"alias": alias, "now": now},
                )
            rows = tx.rows(
                "SELECT attribute, type FROM search_attribute_types WHERE collection_alias = :alias ORDER BY attribute",
                {"alias": alias},
            )
            return {str(attribute): str(kind) for attribute, kind in rows}

        return self._run(work)

    # ------------------------------------------------------------------ index state

    def get_index_state(self, alias: str) -> IndexState | None:
        """Return the recorded collection, schema hash and full-import state of an alias, if any."""
        rows = self._run(
            lambda tx: tx.rows(
                "SELECT collection_alias, collection_name, schema_hash, full_import, updated_at "
                "FROM search_index_state WHERE collection_alias = :alias",
                {"alias": alias},
            )
        )
        if not rows:
            return None
        alias_name, collection, schema_hash, full_import, updated_at = rows[0]
        return IndexState(
            str(alias_name), str(collection), str(schema_hash), str(full_import), _to_datetime(updated_at)
        )

    def set_index_state(self, alias: str, collection: str, schema_hash: str, full_import: str) -> None:
        """Record the collection an alias is being built into (``start``) or serves from (``done``).

        Args:
            alias: Collection alias.
            collection: Physical collection name.
            schema_hash: Hash of the schema the collection was created with.
            full_import: ``start`` while a full import runs, ``done`` once the alias points at it.

        """
        self._run(
            lambda tx: tx.execute(
                "INSERT INTO search_index_state (collection_alias, collection_name, schema_hash, "
                "full_import, updated_at) VALUES (:alias, :collection, :schema_hash, :full_import, :now) "
                "ON CONFLICT (collection_alias) DO UPDATE SET collection_name = excluded.collection_name, "
                "schema_hash = excluded.schema_hash, full_import = excluded.full_import, "
                "updated_at = excluded.updated_at",
                {
                    "alias": alias,
                    "collection": collection,
                    "schema_hash": schema_hash,
                    "full_import": full_import,
                    "now": _utcnow(),
                },
            )
        )
