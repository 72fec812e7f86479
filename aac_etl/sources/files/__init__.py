"""Files source: JSONL/NDJSON, CSV and Parquet files already in the SyncProductInput shape.

For custom connectors: ``config.path`` is a file, a folder (searched recursively) or a glob. Nothing is
coerced silently: values of the wrong JSON type, unreadable lines and unknown fields are reported per record
in the ``_issues`` column (docs/ARCHITECTURE.md) and turned into quarantine rows by validation.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.text import clean_text
from aac_etl.sources.base import ExtractRequest, RawChunk
from aac_etl.sources.files import settings
from aac_etl.sources.files.normalize import normalize
from aac_etl.sources.files.read import extract, resolve_files


class FilesSource:
    """Source of platform ``files``: SyncProductInput-shaped JSONL, CSV or Parquet files."""

    platform = "files"
    main_table = settings.MAIN_TABLE

    def extract(self, config: SourceConfig, dsn: str | None, request: ExtractRequest) -> Iterator[RawChunk]:
        """Yield raw chunks ``{"documents": rows, "attribute_types": map}`` of at most ``chunk_rows`` records.

        Args:
            config: The source's declaration; ``config.path`` names the files.
            dsn: Unused (file sources have no connection).
            request: Full or delta (``updated_at >= since``; records without one are kept), and chunk size.

        Raises:
            ValueError: ``config.path`` is missing or names an unsupported file.
            FileNotFoundError: No supported file at ``config.path``.

        """
        del dsn
        if not config.path:
            raise ValueError(f"source {config.name!r}: platform 'files' needs 'path'")
        return extract(config.path, request)

    def normalize(self, raw: RawChunk, config: SourceConfig) -> pl.DataFrame:
        """Turn one raw chunk into the document frame (``_record_id`` is ``<file>:<line>``).

        Typed values are taken as they are (never coerced); title and description still go through the shared
        plain-text rule (HTML, shortcodes and rich-text JSON rendered to text), as for every other source.
        """
        del config
        docs = normalize(raw)
        if docs.height == 0:
            return docs
        text = [c for c in ("title", "description") if c in docs.columns and docs.schema[c] == pl.Utf8]
        # A value that was sent but renders to nothing stays "" so validation reports it as empty_string.
        return docs.with_columns(
            pl.when(pl.col(c).is_not_null()).then(clean_text(docs.get_column(c)).fill_null("")).alias(c) for c in text
        )


__all__ = ["FilesSource", "resolve_files"]
