"""Per-product fingerprints of the raw OpenCart input, and chunk subsets, for skipping unchanged products.

A product's fingerprint folds together:

- its rows in every per-product table of the chunk (every table with a ``product_id`` column: ``product``,
  descriptions, category links, specials, discounts, options, images, attributes, SEO URLs...), each table
  hashed order-independently (the sorted list of its row hashes, so duplicates count and row order does not);
- one hash of all the shared lookup tables of the chunk (every table without ``product_id``: languages,
  categories and their paths and descriptions, manufacturers, options, stock statuses, currencies, settings...),
  so any change there changes every fingerprint;
- a hash of the source config (``model_dump_json()``) together with :data:`FINGERPRINT_SALT`.

Polars hashes are only stable within one polars version (and the same build): :data:`FINGERPRINT_SALT` carries
the polars version and this module's format version, and is folded into every fingerprint, so an upgrade changes
every fingerprint (a full re-normalize) instead of comparing incomparable hashes. Callers that store fingerprints
may also store the salt and treat a different salt as "everything changed".
"""

from __future__ import annotations

import polars as pl

from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources.base import RawChunk

__all__ = ["FINGERPRINT_SALT", "FINGERPRINT_VERSION", "KEY", "fingerprints", "subset"]

KEY = "product_id"
"""Column that marks a raw table as per-product (and keys it)."""

FINGERPRINT_VERSION = "opencart-fingerprint-1"
"""Format version of the fingerprint; bump it when the way it is computed changes."""

FINGERPRINT_SALT = f"{FINGERPRINT_VERSION};polars={pl.__version__}"
"""Folded into every fingerprint: polars hashes are only stable within one polars version."""

_SEED = 0x0A0C_E71


def _text_hash(text: str) -> int:
    value = pl.Series([text], dtype=pl.Utf8).hash(seed=_SEED)[0]
    return int(value)


def _schema_text(name: str, frame: pl.DataFrame) -> str:
    return name + "(" + ",".join(f"{c}:{t}" for c, t in frame.schema.items()) + ")"


def _table_hash(name: str, frame: pl.DataFrame) -> int:
    """One order-independent hash of a whole table (its name, schema and the multiset of its rows)."""
    rows = frame.hash_rows(seed=_SEED).sort() if frame.width else pl.Series([], dtype=pl.UInt64)
    listed = pl.Series([rows.to_list()], dtype=pl.List(pl.UInt64)).hash(seed=_SEED)[0]
    return int(pl.Series([[_text_hash(_schema_text(name, frame)), int(listed)]], dtype=pl.List(pl.UInt64)).hash()[0])


def _is_per_product(frame: pl.DataFrame) -> bool:
    return KEY in frame.columns


def shared_hash(raw: RawChunk, config: SourceConfig) -> int:
    """Return one hash of the chunk's lookup tables, the source config and :data:`FINGERPRINT_SALT`.

    Args:
        raw: One raw chunk.
        config: The source's declaration.

    Returns:
        A 64-bit hash that changes when any lookup table (a table without ``product_id``) or the config changes.

    """
    parts = [_text_hash(FINGERPRINT_SALT), _text_hash(config.model_dump_json())]
    for name in sorted(raw):
        frame = raw[name]
        if not _is_per_product(frame):
            parts.append(_table_hash(name, frame))
    return int(pl.Series([parts], dtype=pl.List(pl.UInt64)).hash(seed=_SEED)[0])


def _per_product(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Per product id: one hash of the sorted row hashes of its rows in ``frame`` (duplicates count)."""
    column = f"h:{name}"
    if frame.is_empty():
        return pl.DataFrame(schema={KEY: pl.Int64, column: pl.UInt64})
    hashed = frame.select(pl.col(KEY).cast(pl.Int64), frame.hash_rows(seed=_SEED).alias("_h"))
    grouped = hashed.group_by(KEY).agg(pl.col("_h").sort())
    return grouped.select(KEY, pl.col("_h").hash(seed=_SEED).alias(column))


def fingerprints(raw: RawChunk, config: SourceConfig, main_table: str = "product") -> pl.DataFrame:
    """Return one raw-input fingerprint per product of the chunk's main table.

    Pure and vectorized. The fingerprint changes whenever any of the product's rows in any per-product table of
    the chunk changes (row order within a table does not matter, duplicate rows count), whenever any lookup
    table of the chunk changes (for every product), and whenever the source config or :data:`FINGERPRINT_SALT`
    (polars version) changes. Stable across processes for one polars version.

    Args:
        raw: One raw chunk as yielded by the extract.
        config: The source's declaration (its JSON dump is folded in).
        main_table: Table whose rows are the records.

    Returns:
        Columns ``record_id`` (Utf8, the product id as text, equal to the normalizer's ``_record_id``) and
        ``fingerprint`` (UInt64), one row per distinct product id of the main table, in first-seen order.

    """
    ids = raw[main_table].select(pl.col(KEY).cast(pl.Int64)).unique(maintain_order=True)
    combined = ids
    names: list[str] = []
    for name in sorted(raw):
        frame = raw[name]
        if not _is_per_product(frame):
            continue
        names.append(f"h:{name}")
        combined = combined.join(_per_product(name, frame), on=KEY, how="left", maintain_order="left")
    shared = shared_hash(raw, config)
    return combined.select(
        pl.col(KEY).cast(pl.Utf8).alias("record_id"),
        pl.struct(
            pl.lit(shared, dtype=pl.UInt64).alias("_shared"),
            *(pl.col(n).fill_null(0) for n in names),
        )
        .hash(seed=_SEED)
        .alias("fingerprint"),
    )


def subset(raw: RawChunk, record_ids: pl.Series) -> RawChunk:
    """Return the chunk restricted to some products.

    Per-product tables (every table with a ``product_id`` column) keep only the rows of those products; lookup
    tables are kept as they are (the same frames). ``normalize(subset(raw, ids))`` equals ``normalize(raw)``
    filtered to those products' documents.

    Args:
        raw: One raw chunk.
        record_ids: Record ids as returned in ``fingerprints()["record_id"]`` (product ids as text or integers).

    Returns:
        A new chunk dict; the input is not modified.

    """
    wanted = record_ids.cast(pl.Int64, strict=False).drop_nulls().unique()
    return {
        name: frame.filter(pl.col(KEY).is_in(wanted.implode())) if _is_per_product(frame) else frame
        for name, frame in raw.items()
    }
