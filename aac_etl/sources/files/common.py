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
)

TYPE_KINDS: dict[str, str] = {
    "VARCHAR": "string",
    "BIGINT": "integer",
    "UBIGINT": "integer",
    "DOUBLE": "number",
    "BOOLEAN": "boolean",
    "OBJECT": "object",
}
"""DuckDB JSON type -> kind (``NULL`` has no kind; ``ARRAY`` is resolved by its elements)."""

_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_JSON_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
_ARRAY_PATTERNS: dict[str, str] = {
    "string[]": rf"^\[{_JSON_STRING}(?:,{_JSON_STRING})*\]$",
    "number[]": rf"^\[{_JSON_NUMBER}(?:,{_JSON_NUMBER})*\]$",
    "boolean[]": r"^\[(?:true|false)(?:,(?:true|false))*\]$",
}
"""Kinds of minified JSON arrays recognised without parsing; others (objects, mixed) are asked of DuckDB."""

ISSUE_SCHEMA = pl.Schema(
    {"_row": pl.Int64, "field": pl.String, "rule": pl.String, "value": pl.String, "detail": pl.String}
)


def connect() -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB connection (UTC time zone) with the ``json_array_kind`` macro.

    ``json_array_kind(list_distinct(json_type(array_json, '$[*]')))`` gives the kind of a JSON array.
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


def value_kinds(con: duckdb.DuckDBPyConnection, types: pl.Series, values: pl.Series) -> pl.Series:
    """Kind of each JSON value (see :data:`settings.Kind`) from its DuckDB JSON type and minified JSON text.

    Scalars map by type; arrays of strings, numbers or booleans are recognised by pattern on the minified
    text, and only the remaining arrays (objects, mixed elements) are inspected by DuckDB.

    Args:
        con: Connection from :func:`connect`.
        types: ``json_type`` per value (null when absent).
        values: Minified JSON text per value, aligned with ``types``.

    Returns:
        A String series; null for absent values and JSON null.

    """
    frame = pl.DataFrame({"t": types.cast(pl.String), "j": values.cast(pl.String)})
    kinds = frame.select(pl.col("t").replace_strict(TYPE_KINDS, default=None, return_dtype=pl.String))["t"]
    arrays = frame["t"] == "ARRAY"
    if not arrays.any():
        return kinds
    array_kind = pl.when(pl.col("j") == "[]").then(pl.lit("empty[]"))
    for kind, pattern in _ARRAY_PATTERNS.items():
        array_kind = array_kind.when(pl.col("j").str.contains(pattern)).then(pl.lit(kind))
    resolved = frame.select(pl.when(pl.col("t") == "ARRAY").then(array_kind).otherwise(kinds).alias("k"))["k"]
    pending = (arrays & resolved.is_null()).arg_true()
    if pending.len() == 0:
        return resolved
    hard = pl.DataFrame({"i": pending, "j": frame["j"].gather(pending)})
    con.register("_arrays", hard)
    try:
        found = query(con, "SELECT json_array_kind(list_distinct(json_type(j, '$[*]'))) AS k FROM _arrays ORDER BY i")
    finally:
        con.unregister("_arrays")
    return resolved.scatter(pending, found["k"])


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
    return pl.when(kind == "string").then(pl.format("string '{}'", shown)).otherwise(pl.format("{} {}", label, shown))


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
    return frame.filter(mask.fill_null(value=False)).select(
        pl.col("_row").cast(pl.Int64),
        field_expr.cast(pl.String).alias("field"),
        pl.lit(rule).alias("rule"),
        clip(value.cast(pl.String), fs.ISSUE_VALUE_MAX_CHARS).alias("value"),
        detail.cast(pl.String).alias("detail"),
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
            "SELECT coalesce(try_cast(u AS TIMESTAMPTZ) >= ?::TIMESTAMPTZ, true) AS keep FROM _delta_input ORDER BY i",
            [bound.isoformat()],
        )
    finally:
        con.unregister("_delta_input")
    return kept["keep"]
