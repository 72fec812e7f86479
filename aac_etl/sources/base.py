"""The small interface every source implements (one folder per source, dlt verified-sources style)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import polars as pl

from aac_etl import settings
from aac_etl.lib.sources_config import SourceConfig

RawChunk = dict[str, pl.DataFrame]
"""Raw tables of one chunk of the catalog, by table name (small lookup tables repeated in every chunk)."""


@dataclass(frozen=True)
class ExtractRequest:
    """What to extract.

    Attributes:
        mode: ``full`` reads the whole catalog; ``delta`` only records changed at or after ``since``.
        since: Lower bound of the change window for ``delta``.
        chunk_rows: Products per chunk; bounds memory.

    """

    mode: Literal["full", "delta"] = "full"
    since: datetime | None = None
    chunk_rows: int = settings.CHUNK_ROWS


class Source(Protocol):
    """A catalog source: extract raw chunks, normalize one chunk into the document frame."""

    platform: str
    main_table: str
    """Raw table whose rows are the source records (counted as "extracted")."""

    def extract(self, config: SourceConfig, dsn: str | None, request: ExtractRequest) -> Iterator[RawChunk]:
        """Yield raw chunks of the catalog.

        Args:
            config: The source's declaration.
            dsn: Connection string (from the environment variable the config names), or None for file sources.
            request: Full or delta, and the chunk size.

        """
        ...

    def normalize(self, raw: RawChunk, config: SourceConfig) -> pl.DataFrame:
        """Turn one raw chunk into the document frame (docs/ARCHITECTURE.md), one row per document."""
        ...


class FingerprintingSource(Source, Protocol):
    """Optional extension of :class:`Source`: per-record raw fingerprints, for skipping unchanged records.

    Not every source implements it (the files source does not); callers check with
    ``hasattr(source, "fingerprints")``.
    """

    def fingerprints(self, raw: RawChunk, config: SourceConfig) -> pl.DataFrame:
        """Return ``record_id`` (Utf8, the documents' ``_record_id``) and ``fingerprint`` (UInt64) per record.

        The fingerprint changes whenever any raw input that could change any document of the record changes.
        """
        ...

    def subset(self, raw: RawChunk, record_ids: pl.Series) -> RawChunk:
        """Return the chunk restricted to those records; ``normalize`` of it equals the filtered ``normalize``."""
        ...
