"""Helpers shared by the files source's reader and normalizer: DuckDB JSON kinds, issue frames, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import polars as pl

from aac_etl.sources.files import settings as fs

_NUMERIC_TYPES = "['BIGINT', 'UBIGINT', 'DOUBLE']"

_MACROS = (
    f"""
    CREATE MACRO json_array_kind(et) AS CASE
        WHEN len(et) = 0 THEN 'empty[]'
        WHEN list_has_all({_NUMERIC_TYPES}, et) THEN 'number[]'
        WHEN et = ['VARCHAR'] THEN 'string[]'
        WHEN et = ['BOOLEAN'] THEN 'boolean[]'
        WHEN et = ['OBJECT'] THEN 'object[]'
        ELSE 'mixed[]' END
    """,
    """
    CREATE MACRO json_kind(v) AS CASE json_type(v)
        WHEN 'VARCHAR' THEN 'string'
        WHEN 'BIGINT' THEN 'integer'
        WHEN 'UBIGINT' THEN 'integer'
        WHEN 'DOUBLE' THEN 'number'
        WHEN 'BOOLEAN' THEN 'boolean'
        WHEN 'OBJECT' THEN 'object'
        WHEN 'ARRAY' THEN json_array_kind(list_distinct(json_type(v, '$[*]')))
        ELSE NULL END
    """,
)

ISSUE_COLUMNS = ("_row", "field", "rule", "value", "detail")
ISSUE_SCHEMA = pl.Schema(
    {"_row": pl.Int64, "field": pl.String, "rule": pl.String, "value": pl.String, "detail": pl.String}
)


def connect() -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB connection (UTC time zone) with the ``json_kind`` macro.

    ``json_kind(json_text)`` returns the kind of a JSON value (see :data:`settings.Kind`), NULL for JSON null.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for macro in _MACROS:
        con.execute(macro)
    return con


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    """Run a read-only query and return its result as a polars frame.

    Args:
        con: Open connection.
        sql: One SELECT statement.
        params: Values of its ``?`` placeholders.

    Raises:
        RuntimeError: The statement returned no result set.
    """
    relation = con.sql(sql, params=params)
    if relation is None:
        raise RuntimeError("query returned no result set")
    return relation.pl()


def clip(expr: pl.Expr, max_chars: int) -> pl.Expr:
    """Cut a string expression to ``max_chars`` characters, marking the cut with an ellipsis."""
    return (
        pl.when(expr.str.len_chars() > max_chars)
        .then(pl.concat_str(expr.str.slice(0, max_chars - 1), pl.lit("…")))
        .otherwise(expr)
    )


def describe(kind: pl.Expr, text: pl.Expr) -> pl.Expr:
    """Describe a value for a message: ``string '2'``, ``integer 5``, ``array of numbers [1,2]``."""
    shown = clip(text, fs.MESSAGE_VALUE_MAX_CHARS)
    label = kind.replace_strict(fs.KIND_LABELS, default=kind, return_dtype=pl.String)
    return (
        pl.when(kind == "string")
        .then(pl.format("string '{}'", shown))
        .otherwise(pl.format("{} {}", label, shown))
    )


def issues(
    frame: pl.DataFrame,
    mask: pl.Expr,
    *,
    field: str | pl.Expr,
    rule: str,
    value: pl.Expr,
    detail: pl.Expr,
) -> pl.DataFrame:
    """Select the issue rows of ``frame`` (which has ``_row``) where ``mask`` holds.

    Args:
        frame: Rows to check.
        mask: Boolean expression; null counts as false.
        field: Field name (or an expression giving it per row).
        rule: Rule name (``json``, ``utf8``, ``type``, ``attribute_type``, ``unknown_field``).
        value: The offending value as found in the source.
        detail: Message text after ``rule <rule>:``.

    Returns:
        A frame with :data:`ISSUE_SCHEMA`.
    """
    field_expr = pl.lit(field) if isinstance(field, str) else field
    return (
        frame.filter(mask.fill_null(value=False))
        .select(
            pl.col("_row").cast(pl.Int64),
            field_expr.cast(pl.String).alias("field"),
            pl.lit(rule).alias("rule"),
            clip(value.cast(pl.String), fs.ISSUE_VALUE_MAX_CHARS).alias("value"),
            detail.cast(pl.String).alias("detail"),
        )
    )


def no_issues() -> pl.DataFrame:
    """Return an empty issue frame."""
    return pl.DataFrame(schema=ISSUE_SCHEMA)


def iso_strings(series: pl.Series) -> pl.Series:
    """Render a date/time column as ISO 8601 strings (datetimes in UTC with a ``Z``); strings pass through."""
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        utc = series.dt.convert_time_zone("UTC") if dtype.time_zone else series
        return utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if dtype == pl.Date:
        return series.dt.strftime("%Y-%m-%d")
    return series.cast(pl.String)


def changed_since(con: duckdb.DuckDBPyConnection, updated_at: pl.Series, since: datetime) -> pl.Series:
    """Delta filter: keep a record when its ``updated_at`` is at or after ``since``.

    Records without an ``updated_at`` (or with one that is not a timestamp) are kept, so validation sees them.

    Args:
        con: Connection from :func:`connect` (UTC time zone: naive timestamps are UTC).
        updated_at: ISO 8601 strings, one per record.
        since: Lower bound; a naive datetime is taken as UTC.

    Returns:
        A Boolean series aligned with ``updated_at``.
    """
    bound = since if since.tzinfo else since.replace(tzinfo=UTC)
    frame = pl.DataFrame({"u": updated_at.cast(pl.String)}).with_row_index("i")
    con.register("_delta_input", frame)
    try:
        kept = query(
            con,
            "SELECT coalesce(try_cast(u AS TIMESTAMPTZ) >= ?::TIMESTAMPTZ, true) AS keep "
            "FROM _delta_input ORDER BY i",
            [bound.isoformat()],
        )
    finally:
        con.unregister("_delta_input")
    return kept["keep"]
