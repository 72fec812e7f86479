"""Read the OpenCart 3 catalog tables into raw polars chunks (SQLAlchemy Core, short connections).

Every chunk holds the per-product tables for one ``product_id`` range of at most ``chunk_rows`` products, plus
the small lookup tables (languages, categories, options, currencies, settings...) read once per extract and
repeated by reference in every chunk. Dates are read as text (``'0000-00-00'`` is a real OpenCart value that
drivers cannot turn into a date); normalization parses them.

Queries run through connectorx (Arrow, no per-row Python) for the dialects and drivers it supports (file SQLite,
MySQL/MariaDB, PostgreSQL over TCP; see :func:`connectorx_uri`) and through the DB-API cursor otherwise, or when
connectorx is not installed. Both paths return the same frames.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import polars as pl
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine.default import DefaultDialect

from aac_etl.lib.redact import redact
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources.base import ExtractRequest, RawChunk
from aac_etl.sources.opencart import settings as oc
from aac_etl.sources.opencart.tables import catalog_metadata

log = logging.getLogger(__name__)

_I = pl.Int64()
_F = pl.Float64()
_S = pl.Utf8()

DATE_COLUMNS = frozenset({"date_added", "date_modified", "date_start", "date_end"})
"""Columns selected as ``CAST(col AS text)``: MySQL zero dates (``'0000-00-00'``) are no valid date."""

READ_ONCE = frozenset({"product_option_value"})
"""Per-product tables read whole once per extract and sliced per chunk: OpenCart has no ``product_id`` index on
them, so a range predicate per chunk would scan the whole table once per chunk (three integer columns, small).
``seo_url`` is read once too (its product id is inside the ``query`` text)."""

ColumnSpec = Mapping[str, pl.DataType]

COLUMNS: dict[str, ColumnSpec] = {
    "product": {
        "product_id": _I,
        "model": _S,
        "sku": _S,
        "quantity": _I,
        "stock_status_id": _I,
        "image": _S,
        "manufacturer_id": _I,
        "price": _F,
        "status": _I,
        "date_added": _S,
        "date_modified": _S,
    },
    "product_description": {
        "product_id": _I,
        "language_id": _I,
        "name": _S,
        "description": _S,
        "tag": _S,
    },
    "product_to_category": {"product_id": _I, "category_id": _I},
    "product_special": {
        "product_id": _I,
        "customer_group_id": _I,
        "priority": _I,
        "price": _F,
        "date_start": _S,
        "date_end": _S,
    },
    "product_discount": {
        "product_id": _I,
        "customer_group_id": _I,
        "quantity": _I,
        "priority": _I,
        "price": _F,
        "date_start": _S,
        "date_end": _S,
    },
    "product_option_value": {
        "product_id": _I,
        "option_id": _I,
        "option_value_id": _I,
    },
    "product_image": {"product_image_id": _I, "product_id": _I, "image": _S, "sort_order": _I},
    "product_attribute": {"product_id": _I, "attribute_id": _I, "language_id": _I, "text": _S},
    "seo_url": {"store_id": _I, "language_id": _I, "query": _S, "keyword": _S},
    "language": {"language_id": _I, "code": _S, "name": _S, "status": _I},
    "category": {"category_id": _I, "parent_id": _I, "status": _I},
    "category_description": {"category_id": _I, "language_id": _I, "name": _S},
    "category_path": {"category_id": _I, "path_id": _I, "level": _I},
    "manufacturer": {"manufacturer_id": _I, "name": _S},
    "stock_status": {"stock_status_id": _I, "language_id": _I, "name": _S},
    "option": {"option_id": _I, "type": _S, "sort_order": _I},
    "option_description": {"option_id": _I, "language_id": _I, "name": _S},
    "option_value": {"option_value_id": _I, "option_id": _I, "sort_order": _I},
    "option_value_description": {"option_value_id": _I, "language_id": _I, "option_id": _I, "name": _S},
    "attribute_description": {"attribute_id": _I, "language_id": _I, "name": _S},
    "currency": {"currency_id": _I, "code": _S, "value": _F, "status": _I},
    "setting": {"store_id": _I, "key": _S, "value": _S},
    "customer_group_description": {"customer_group_id": _I, "language_id": _I, "name": _S},
}
"""Columns read per table (unprefixed name) and their polars dtypes; the raw chunk schema."""


def table_prefix(config: SourceConfig) -> str:
    """Return the shop's table prefix (``options.table_prefix``, default ``oc_``)."""
    value = config.options.get(oc.OPTION_TABLE_PREFIX, oc.DEFAULT_PREFIX)
    return str(value)


def empty_frame(name: str) -> pl.DataFrame:
    """Return an empty frame with the raw schema of one table (for tests and absent optional tables)."""
    return pl.DataFrame(schema=dict(COLUMNS[name]))


CONNECTORX_DRIVERS: dict[str, frozenset[str]] = {
    "sqlite": frozenset({"pysqlite"}),
    "mysql": frozenset({"pymysql", "mysqldb", "mysqlconnector"}),
    "mariadb": frozenset({"pymysql", "mysqldb", "mysqlconnector"}),
    "postgresql": frozenset({"psycopg", "psycopg2"}),
}
"""SQLAlchemy backends and drivers read through connectorx; any other URL uses the DB-API path."""

_MYSQL_CHARSETS = frozenset({"utf8mb4", "utf8"})


def _load_connectorx() -> ModuleType | None:
    """Return the ``connectorx`` module, or ``None`` when it is not installed."""
    try:
        return importlib.import_module("connectorx")
    except ModuleNotFoundError:
        return None


def connectorx_uri(url: sa.URL) -> str | None:
    """Return the connectorx connection URI for a SQLAlchemy URL, or ``None`` to use the DB-API path.

    Supported: ``sqlite`` (pysqlite) on a file without URL options, ``mysql``/``mariadb`` (pymysql, mysqldb,
    mysqlconnector) over TCP with at most a ``utf8mb4``/``utf8`` charset option, ``postgresql`` (psycopg,
    psycopg2) over TCP without options. The password is kept (percent-encoded): never log the result.

    Args:
        url: The shop's SQLAlchemy URL.

    Returns:
        ``sqlite:///abs/path``, ``mysql://user:password@host:port/db`` or
        ``postgresql://user:password@host:port/db``; ``None`` for anything else.

    """
    backend = url.get_backend_name()
    if url.get_driver_name() not in CONNECTORX_DRIVERS.get(backend, frozenset()):
        return None
    if backend == "sqlite":
        database = url.database or ""
        if url.query or database in {"", ":memory:"} or database.startswith("file:"):
            return None
        return "sqlite://" + quote(str(Path(database).resolve()))
    if not url.host or not url.database:
        return None
    options = dict(url.query)
    if backend in {"mysql", "mariadb"}:
        charset = options.pop("charset", "utf8mb4")
        if charset not in _MYSQL_CHARSETS:
            return None
        backend = "mysql"
    if options:
        return None
    return url.set(drivername=backend, query={}).render_as_string(hide_password=False)


def _select(table: sa.Table, name: str) -> sa.Select[Any]:
    cols: list[sa.ColumnElement[Any]] = []
    for col_name in COLUMNS[name]:
        col = table.c[col_name]
        cols.append(sa.cast(col, sa.String(32)).label(col_name) if col_name in DATE_COLUMNS else col)
    return sa.select(*cols)


def _read(conn: sa.Connection, stmt: sa.Select[Any], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Run ``stmt`` and build the frame straight from the DB-API rows.

    SQLAlchemy compiles the statement and binds the parameters (expanding ``IN`` lists), but the rows are fetched
    from the driver cursor with one ``fetchall()``: no ``Row`` objects and no per-value result processing, which
    was most of the extract's time. Driver values (``Decimal`` from MariaDB/PostgreSQL ``NUMERIC``, integers
    stored in a SQLite ``NUMERIC`` column) are converted by polars into the raw schema's dtypes.
    """
    result = conn.execute(stmt)
    try:
        cursor = result.cursor
        rows = cursor.fetchall() if cursor is not None else []
    finally:
        result.close()
    return _frame(rows, dict(schema))


def _frame(rows: Sequence[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Build a frame column by column (faster than polars' row-wise constructor on wide text rows)."""
    if not rows:
        return pl.DataFrame(schema=schema)
    columns = zip(*rows, strict=True)
    return pl.DataFrame(
        [
            pl.Series(name, values, dtype=dtype, strict=False)
            for (name, dtype), values in zip(schema.items(), columns, strict=True)
        ]
    )


def _arrow_column(column: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Cast one connectorx column to its raw dtype the way the DB-API path converts driver values.

    Decimals go through their exact text so that the float is the correctly rounded value, as ``float(Decimal)``.
    """
    if column.dtype == dtype:
        return column
    if isinstance(column.dtype, pl.Decimal):
        column = column.cast(pl.Utf8)
    return column.cast(dtype, strict=False)


def _sqlite_sentinel(dtype: pl.DataType) -> str:
    """Return a non-NULL SQLite literal of the storage class connectorx should infer for ``dtype``."""
    if dtype == pl.Int64:
        return "0"
    if dtype == pl.Float64:
        return "0.5"
    if dtype == pl.Utf8:
        return "''"
    raise TypeError(f"no SQLite sentinel for {dtype}")


def _sqlite_typed(sql: str, schema: Mapping[str, pl.DataType]) -> str:
    """Put one typed sentinel row before the rows of ``sql`` (the caller drops it).

    connectorx types SQLite columns without a usable declared type (``CAST`` expressions, ``NUMERIC``) from the
    first row's values and fails when that row holds NULL, or when a ``NUMERIC`` column stores an integer first
    and a real later. With the sentinel first, every column gets the storage class of its raw dtype (``REAL``
    also reads stored integers) whatever the data. ``sql`` must not rely on ``ORDER BY``.
    """
    literals = ", ".join(f"{_sqlite_sentinel(dtype)} AS c{i}" for i, dtype in enumerate(schema.values()))
    return f"SELECT {literals} UNION ALL SELECT * FROM ({sql})"


def _read_arrow(
    cx: ModuleType, uri: str, sql: str, schema: Mapping[str, pl.DataType], *, skip_first: bool = False
) -> pl.DataFrame | None:
    """Run compiled ``sql`` through connectorx and return a frame with exactly ``schema``.

    Args:
        cx: The ``connectorx`` module.
        uri: connectorx connection URI (holds the password: never logged).
        sql: The statement, parameters rendered as literals.
        schema: Raw column names and dtypes, in select order.
        skip_first: Drop the first row (the sentinel of :func:`_sqlite_typed`).

    Returns:
        The rows, converted to ``schema`` like the DB-API path does; ``None`` when a column came back as a
        single-precision float (MySQL ``FLOAT``, PostgreSQL ``real``): the servers send DB-API drivers a rounded
        text form of those (MariaDB ``0.8842`` for the stored ``0.88420004``) that Arrow values cannot reproduce,
        so the caller reads that statement through the DB-API path.

    Raises:
        RuntimeError: connectorx failed; the message is redacted and the original exception (whose text may
            hold the connection URI) is neither chained nor kept as context.

    """
    result: Any = None
    error: str | None = None
    try:
        result = cx.read_sql(uri, sql, return_type="arrow")
    except Exception as exc:
        error = redact(str(exc)).replace(uri, "<connection uri>")
    if error is not None:
        raise RuntimeError(f"connectorx query failed: {error}")
    if not isinstance(result, pa.Table):
        raise RuntimeError(f"connectorx returned {type(result).__name__}, expected a pyarrow Table")
    table = result
    if any(pa.types.is_float32(field.type) or pa.types.is_float16(field.type) for field in table.schema):
        return None
    skip = 1 if skip_first else 0
    if table.num_rows <= skip:
        return pl.DataFrame(schema=dict(schema))
    frame = pl.from_arrow(table, rechunk=False)
    if not isinstance(frame, pl.DataFrame) or frame.width != len(schema):
        raise RuntimeError(f"connectorx returned columns {table.column_names}, expected {list(schema)}")
    frame = frame.slice(skip)
    return pl.DataFrame(
        [_arrow_column(frame.to_series(i), dtype).alias(name) for i, (name, dtype) in enumerate(schema.items())]
    )


def _literal_safe(since: datetime | None) -> bool:
    """Return True when ``since`` renders as a SQL literal exactly as the DB-API drivers bind it.

    A timezone-aware value renders with its offset, which MySQL drivers drop and PostgreSQL compares as
    ``timestamptz``: statements filtering on it stay on the DB-API path.
    """
    return since is None or since.tzinfo is None


class _Reader:
    """Builds and runs the statements of one extract (connectorx when supported, else the DB-API cursor)."""

    def __init__(self, engine: sa.Engine, config: SourceConfig) -> None:
        self.engine = engine
        self.config = config
        self.md = catalog_metadata(table_prefix(config))
        self.prefix = table_prefix(config)
        existing = set(sa.inspect(engine).get_table_names())
        self.present = {name for name in COLUMNS if f"{self.prefix}{name}" in existing}
        self.cx = _load_connectorx()
        self.cx_uri: str | None = None
        self.cx_dialect: DefaultDialect | None = None
        uri = connectorx_uri(engine.url) if self.cx is not None else None
        if uri is not None and isinstance(engine.dialect, DefaultDialect):
            self.cx_uri = uri
            # Compile-only dialect with a non-format paramstyle: literal ``%`` stays ``%`` instead of ``%%``.
            self.cx_dialect = type(engine.dialect)(paramstyle="named")
        log.debug(
            "opencart extract via %s (%s+%s)",
            "connectorx" if self.cx_uri is not None else "DB-API cursor",
            engine.url.get_backend_name(),
            engine.url.get_driver_name(),
        )

    def table(self, name: str) -> sa.Table:
        return self.md.tables[f"{self.prefix}{name}"]

    def query(
        self,
        stmt: sa.Select[Any],
        schema: Mapping[str, pl.DataType],
        conn: sa.Connection | None = None,
        *,
        fast: bool = True,
    ) -> pl.DataFrame:
        """Run ``stmt`` into a frame of ``schema``.

        Args:
            stmt: The statement.
            schema: Raw column names and dtypes, in select order.
            conn: Connection to reuse on the DB-API path (connectorx opens its own).
            fast: Use connectorx when the shop's dialect supports it (``False`` for the small lookup tables).

        Returns:
            The frame, identical whichever path read it.

        """
        if fast and self.cx is not None and self.cx_uri is not None and self.cx_dialect is not None:
            sql = str(stmt.compile(dialect=self.cx_dialect, compile_kwargs={"literal_binds": True}))
            try:
                if self.engine.url.get_backend_name() == "sqlite":
                    frame = _read_arrow(self.cx, self.cx_uri, _sqlite_typed(sql, schema), schema, skip_first=True)
                else:
                    frame = _read_arrow(self.cx, self.cx_uri, sql, schema)
            except RuntimeError as exc:
                # SQLite keeps text that does not convert in a numeric column, which connectorx refuses: the
                # DB-API path reads the same rows (such a value becomes null, as it does for any driver).
                tables = ", ".join(str(getattr(f, "name", f)) for f in stmt.get_final_froms())
                log.warning("connectorx could not read %s (%s); reading it through the DB-API cursor", tables, exc)
                frame = None
            else:
                if frame is None:
                    log.debug("single-precision column in %s: read through the DB-API cursor", list(schema))
            if frame is not None:
                return frame
        if conn is not None:
            return _read(conn, stmt, schema)
        with self.engine.connect() as own:
            return _read(own, stmt, schema)

    def _dbapi_connection(self) -> AbstractContextManager[sa.Connection | None]:
        """Return one shared connection for a chunk's DB-API reads (none needed for connectorx)."""
        if self.cx_uri is not None:
            return nullcontext()
        return self.engine.connect()

    def read(
        self,
        name: str,
        stmt: sa.Select[Any] | None = None,
        conn: sa.Connection | None = None,
        *,
        fast: bool = True,
    ) -> pl.DataFrame:
        if name not in self.present:
            return empty_frame(name)
        query = stmt if stmt is not None else _select(self.table(name), name)
        return self.query(query, COLUMNS[name], conn, fast=fast)

    def language_ids(self) -> list[int]:
        languages = self.read("language", fast=False)
        wanted = languages.filter(pl.col("code").is_in(list(self.config.languages)))
        return wanted["language_id"].to_list()

    def lookups(self) -> dict[str, pl.DataFrame]:
        lang_ids = self.language_ids()
        frames: dict[str, pl.DataFrame] = {}
        for name in oc.LOOKUP_TABLES:
            if name not in self.present:
                frames[name] = empty_frame(name)
                continue
            table = self.table(name)
            stmt = _select(table, name)
            if "language_id" in COLUMNS[name]:
                stmt = stmt.where(table.c.language_id.in_(lang_ids))
            if name == "setting":
                stmt = stmt.where(table.c.code == "config", table.c.key.in_(oc.SETTING_KEYS))
            frames[name] = self.read(name, stmt, fast=False)
        return frames

    def seo_urls(self) -> pl.DataFrame:
        if "seo_url" not in self.present:
            return empty_frame("seo_url").with_columns(pl.lit(None, pl.Int64).alias("product_id"))
        table = self.table("seo_url")
        stmt = _select(table, "seo_url").where(
            table.c.query.like(f"{oc.SEO_QUERY_PREFIX}%"),
            table.c.language_id.in_(self.language_ids()),
        )
        if "seo_url_id" in table.c:
            # A product with several keywords in a language gets the first (normalize): the lowest id, as OpenCart's
            # storefront reads it, and the same every sync (without an order, PostgreSQL returns an updated row last).
            stmt = stmt.order_by(table.c.seo_url_id)
        frame = self.read("seo_url", stmt)
        return frame.with_columns(
            pl.col("query").str.strip_prefix(oc.SEO_QUERY_PREFIX).cast(pl.Int64, strict=False).alias("product_id")
        ).filter(pl.col("product_id").is_not_null())

    def product_ids(self, since: datetime | None) -> pl.Series:
        product = self.table("product")
        stmt = sa.select(product.c.product_id)
        if since is not None:
            stmt = stmt.where(product.c.date_modified >= since)
        return self.query(stmt, {"product_id": _I}, fast=_literal_safe(since))["product_id"].sort()

    def chunk(self, low: int, high: int, since: datetime | None, lang_ids: list[int]) -> dict[str, pl.DataFrame]:
        frames: dict[str, pl.DataFrame] = {}
        with self._dbapi_connection() as conn:
            for name in oc.PRODUCT_TABLES:
                if name == "seo_url":
                    continue
                if name not in self.present:
                    frames[name] = empty_frame(name)
                    continue
                table = self.table(name)
                stmt = _select(table, name).where(table.c.product_id.between(low, high))
                if name == "product" and since is not None:
                    stmt = stmt.where(table.c.date_modified >= since)
                if "language_id" in COLUMNS[name]:
                    stmt = stmt.where(table.c.language_id.in_(lang_ids))
                frames[name] = self.read(name, stmt, conn, fast=name != "product" or _literal_safe(since))
        return frames


class _HeldTable:
    """A per-product table held for the whole extract, compact, and cut into the chunks' windows.

    Held sorted by ``product_id`` (stable: rows of one product keep their order) with every integer column that
    fits narrowed to Int32 (OpenCart's ids are 32-bit), and, with ``rebuilt_query``, without ``seo_url.query``
    when every value is the ``product_id=<id>`` it was parsed from: a window is then rebuilt exactly as read.
    At a million products this holds the SEO keywords and option links in about half the memory.
    """

    def __init__(self, frame: pl.DataFrame, *, rebuilt_query: bool = False) -> None:
        self.schema = frame.schema
        frame = frame.filter(pl.col("product_id").is_not_null())  # in no window
        self.rebuilt_query = rebuilt_query and bool(
            frame.select(
                (pl.col("query") == pl.lit(oc.SEO_QUERY_PREFIX) + pl.col("product_id").cast(pl.Utf8))
                .fill_null(value=False)
                .all()
            ).item()
        )
        if self.rebuilt_query:
            frame = frame.drop("query")
        narrow = [
            pl.col(name).cast(pl.Int32)
            for name, dtype in frame.schema.items()
            if dtype == pl.Int64 and frame.height and _fits_int32(frame.get_column(name))
        ]
        self.frame = frame.with_columns(narrow).sort("product_id", maintain_order=True)

    def window(self, low: int, high: int) -> pl.DataFrame:
        """Return the rows of products ``low..high`` in the schema they were read with."""
        ids = self.frame.get_column("product_id")
        start = int(ids.search_sorted(low, side="left"))
        rows = self.frame.slice(start, int(ids.search_sorted(high, side="right")) - start)
        if self.rebuilt_query:
            rows = rows.with_columns((pl.lit(oc.SEO_QUERY_PREFIX) + pl.col("product_id").cast(pl.Utf8)).alias("query"))
        return rows.select([pl.col(name).cast(dtype) for name, dtype in self.schema.items()])


def _fits_int32(values: pl.Series) -> bool:
    return bool(values.is_between(-(2**31), 2**31 - 1).fill_null(value=True).all())


def extract_catalog(config: SourceConfig, dsn: str, request: ExtractRequest) -> Iterator[RawChunk]:
    """Yield raw chunks of an OpenCart 3 catalog.

    Args:
        config: The source declaration (languages, ``options.table_prefix``).
        dsn: SQLAlchemy URL of the shop database.
        request: ``full`` or ``delta`` (products with ``date_modified >= since``) and the chunk size.

    Yields:
        One dict per chunk of products: unprefixed table name -> polars frame (schemas in :data:`COLUMNS`;
        ``seo_url`` carries an extra parsed ``product_id``). Nothing is yielded when no product matches.

    """
    since = request.since if request.mode == "delta" else None
    if request.mode == "delta" and since is None:
        raise ValueError("delta extract needs request.since")
    chunk_rows = max(1, int(request.chunk_rows))
    engine = sa.create_engine(dsn, pool_pre_ping=True)
    try:
        reader = _Reader(engine, config)
        if "product" not in reader.present:
            raise LookupError(f"no {reader.prefix}product table in the shop database (check options.table_prefix)")
        ids = reader.product_ids(since)
        if ids.is_empty():
            log.info("opencart %s: no products to extract (%s)", config.name, request.mode)
            return
        lookups = reader.lookups()
        lang_ids = lookups["language"].filter(pl.col("code").is_in(list(config.languages)))["language_id"].to_list()
        whole = {name: _HeldTable(reader.read(name)) for name in READ_ONCE}
        whole["seo_url"] = _HeldTable(reader.seo_urls(), rebuilt_query=True)
        for start in range(0, ids.len(), chunk_rows):
            window = ids.slice(start, chunk_rows)
            low, high = int(window[0]), int(window[-1])
            frames = reader.chunk(low, high, since, lang_ids)
            for name, held in whole.items():
                frames[name] = held.window(low, high)
            frames.update(lookups)
            log.debug("opencart %s: chunk %d..%d (%d products)", config.name, low, high, frames["product"].height)
            yield frames
    finally:
        engine.dispose()
