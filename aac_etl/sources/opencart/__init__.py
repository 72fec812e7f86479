"""OpenCart 3 source: extract the catalog tables with SQLAlchemy, normalize them with polars."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources.base import ExtractRequest, RawChunk
from aac_etl.sources.opencart import fingerprint
from aac_etl.sources.opencart.extract import extract_catalog
from aac_etl.sources.opencart.normalize import normalize_chunk

__all__ = ["OpenCartSource"]


class OpenCartSource:
    """The OpenCart 3 catalog (MariaDB/MySQL in production; any SQLAlchemy database with the same tables)."""

    platform: str = "opencart"
    main_table: str = "product"

    def extract(self, config: SourceConfig, dsn: str | None, request: ExtractRequest) -> Iterator[RawChunk]:
        """Yield raw chunks of the catalog, ``request.chunk_rows`` products each.

        Args:
            config: The source's declaration.
            dsn: SQLAlchemy URL of the shop database.
            request: Full or delta, and the chunk size.

        Raises:
            ValueError: No DSN was given.

        """
        if not dsn:
            raise ValueError(f"source {config.name!r}: OpenCart needs a DSN (environment variable {config.dsn_env})")
        return extract_catalog(config, dsn, request)

    def normalize(self, raw: RawChunk, config: SourceConfig) -> pl.DataFrame:
        """Turn one raw chunk into the document frame (docs/ARCHITECTURE.md), one row per product x locale."""
        return normalize_chunk(raw, config)

    def fingerprints(self, raw: RawChunk, config: SourceConfig) -> pl.DataFrame:
        """Return one raw-input fingerprint per product of the chunk (pure, vectorized).

        Args:
            raw: One raw chunk as yielded by :meth:`extract`.
            config: The source's declaration (folded into every fingerprint).

        Returns:
            Columns ``record_id`` (Utf8, equal to the normalizer's ``_record_id``) and ``fingerprint`` (UInt64),
            one row per product of the ``product`` table. A fingerprint changes when any of the product's rows in
            any per-product table, any lookup table, the config or the polars version
            (:data:`aac_etl.sources.opencart.fingerprint.FINGERPRINT_SALT`) changes.

        """
        return fingerprint.fingerprints(raw, config, self.main_table)

    def subset(self, raw: RawChunk, record_ids: pl.Series) -> RawChunk:
        """Return the chunk restricted to the given products (lookup tables kept as they are).

        Args:
            raw: One raw chunk.
            record_ids: Record ids (product ids as text, as in :meth:`fingerprints`).

        Returns:
            A chunk such that ``normalize(subset(raw, ids))`` equals ``normalize(raw)`` filtered to those products.

        """
        return fingerprint.subset(raw, record_ids)
