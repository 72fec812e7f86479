"""Read the OpenCart 3 catalog tables into raw polars chunks (SQLAlchemy Core, short connections).

Every chunk holds the per-product tables for one ``product_id`` range of at most ``chunk_rows`` products, plus
the small lookup tables (languages, categories, options, currencies, settings...) read once per extract and
repeated by reference in every chunk. Dates are read as text (``'0000-00-00'`` is a real OpenCart value that
drivers cannot turn into a date); normalization parses them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

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


def _select(table: sa.Table, name: str) -> sa.Select[Any]:
    cols: list[sa.ColumnElement[Any]] = []
    for col_name in COLUMNS[name]:
        col = table.c[col_name]
        cols.append(sa.cast(col, sa.String(32)).label(col_name) if col_name in DATE_COLUMNS else col)
    return sa.select(*cols)


def _read(engine: sa.Engine, stmt: sa.Select[Any], name: str) -> pl.DataFrame:
    schema = dict(COLUMNS[name])
    with engine.connect() as conn:
        frame = pl.read_database(stmt, conn, schema_overrides=schema)
    return frame.select(pl.col(c).cast(t) for c, t in schema.items())


class _Reader:
    """Builds and runs the statements of one extract."""

    def __init__(self, engine: sa.Engine, config: SourceConfig) -> None:
        self.engine = engine
        self.config = config
        self.md = catalog_metadata(table_prefix(config))
        self.prefix = table_prefix(config)
        existing = set(sa.inspect(engine).get_table_names())
        self.present = {name for name in COLUMNS if f"{self.prefix}{name}" in existing}

    def table(self, name: str) -> sa.Table:
        return self.md.tables[f"{self.prefix}{name}"]

    def read(self, name: str, stmt: sa.Select[Any] | None = None) -> pl.DataFrame:
        if name not in self.present:
            return empty_frame(name)
        return _read(self.engine, stmt if stmt is not None else _select(self.table(name), name), name)

    def language_ids(self) -> list[int]:
        languages = self.read("language")
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
            frames[name] = self.read(name, stmt)
        return frames

    def seo_urls(self) -> pl.DataFrame:
        if "seo_url" not in self.present:
            return empty_frame("seo_url").with_columns(pl.lit(None, pl.Int64).alias("product_id"))
        table = self.table("seo_url")
        stmt = _select(table, "seo_url").where(
            table.c.query.like(f"{oc.SEO_QUERY_PREFIX}%"),
            table.c.language_id.in_(self.language_ids()),
        )
        frame = self.read("seo_url", stmt)
        return frame.with_columns(
            pl.col("query").str.strip_prefix(oc.SEO_QUERY_PREFIX).cast(pl.Int64, strict=False).alias("product_id")
        ).filter(pl.col("product_id").is_not_null())

    def product_ids(self, since: datetime | None) -> pl.Series:
        product = self.table("product")
        stmt = sa.select(product.c.product_id).order_by(product.c.product_id)
        if since is not None:
            stmt = stmt.where(product.c.date_modified >= since)
        with self.engine.connect() as conn:
            ids = pl.read_database(stmt, conn, schema_overrides={"product_id": _I})
        return ids["product_id"].cast(pl.Int64)

    def chunk(self, low: int, high: int, since: datetime | None, lang_ids: list[int]) -> dict[str, pl.DataFrame]:
        frames: dict[str, pl.DataFrame] = {}
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
            frames[name] = self.read(name, stmt)
        return frames


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
        seo = reader.seo_urls()
        for start in range(0, ids.len(), chunk_rows):
            window = ids.slice(start, chunk_rows)
            low, high = int(window[0]), int(window[-1])
            frames = reader.chunk(low, high, since, lang_ids)
            frames["seo_url"] = seo.filter(pl.col("product_id").is_between(low, high))
            frames.update(lookups)
            log.debug("opencart %s: chunk %d..%d (%d products)", config.name, low, high, frames["product"].height)
            yield frames
    finally:
        engine.dispose()
