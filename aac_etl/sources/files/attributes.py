"""Attributes of the files source: one ``attributes.<key>`` column per key, typed by its first occurrence.

The type of an attribute is the JSON kind of its first non-null value in file order (CSV: the conservative
inference over the whole column). The reader carries that map across chunks as the ``attribute_types`` table,
so every chunk of a file types a key the same way. A value of another kind is never coerced: the cell is null
and an ``attribute_type`` issue names the document, the attribute, the first kind and the value's kind.
"""

from __future__ import annotations

import duckdb
import polars as pl

from aac_etl.sources.files import settings as fs
from aac_etl.sources.files.common import describe, issues, no_issues, query, value_kinds

TYPES_SCHEMA = pl.Schema({"key": pl.String, "kind": pl.String, "first_record": pl.String})
"""Schema of the ``attribute_types`` table."""

ENTRY_SCHEMA = pl.Schema({"_row": pl.Int64, "key": pl.String, "kind": pl.String, "text": pl.String, "json": pl.String})
"""Long form of JSON attributes: one row per (record, key)."""

_DETERMINING = (
    "string",
    "integer",
    "number",
    "boolean",
    "string[]",
    "number[]",
    "boolean[]",
    "object",
    "object[]",
)
_INT_RE = r"^[+-]?\d+$"
_FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_BOOL_RE = r"^(?i)(true|false)$"


def empty_types() -> pl.DataFrame:
    """Return an empty ``attribute_types`` table."""
    return pl.DataFrame(schema=TYPES_SCHEMA)


def merge_types(first: pl.DataFrame, later: pl.DataFrame) -> pl.DataFrame:
    """Merge two type maps; a key keeps the kind of ``first`` when both have it."""
    return pl.concat([first, later.select(TYPES_SCHEMA.names())]).unique("key", keep="first", maintain_order=True)


def compatible(kind: pl.Expr, first_kind: pl.Expr) -> pl.Expr:
    """Whether a value of ``kind`` fits a column of ``first_kind`` (an integer fits a number column)."""
    return (
        (kind == first_kind)
        | ((first_kind == "number") & (kind == "integer"))
        | ((kind == "empty[]") & first_kind.str.ends_with("[]"))
    )


def json_entries(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, column: str, path: str) -> pl.DataFrame:
    """Explode JSON attribute objects into one row per (record, key), in record and key order.

    Args:
        con: Connection from :func:`aac_etl.sources.files.common.connect`.
        frame: Has ``_row`` (Int64) and ``column`` (JSON text); rows whose text is not a JSON object at
            ``path`` are skipped.
        column: Column holding the JSON text.
        path: JSONPath of the attributes object inside the text (``$.attributes`` or ``$``).

    Returns:
        A frame with :data:`ENTRY_SCHEMA`; ``kind`` is null for JSON null, ``text`` is the unescaped scalar
        (or the JSON text of an array/object), ``json`` the JSON text. Duplicate keys keep their first value.

    """
    source = frame.select(pl.col("_row").cast(pl.Int64), pl.col(column).cast(pl.String).alias("obj"))
    con.register("_attribute_input", source)
    try:
        entries = query(
            con,
            """
            SELECT t._row, e.key, e.type,
                   CASE WHEN e.type = 'VARCHAR' THEN e.value ->> '$' ELSE e.value::VARCHAR END AS text,
                   e.value::VARCHAR AS json
            FROM (SELECT _row, obj FROM _attribute_input
                  WHERE obj IS NOT NULL AND json_valid(obj) AND json_type(obj, ?) = 'OBJECT') AS t,
                 json_each(t.obj, ?) AS e
            ORDER BY t._row, e.id
            """,
            [path, path],
        )
    finally:
        con.unregister("_attribute_input")
    if entries.is_empty():
        return pl.DataFrame(schema=ENTRY_SCHEMA)
    entries = entries.with_columns(value_kinds(con, entries["type"], entries["json"]).alias("kind"))
    return (
        entries.select(ENTRY_SCHEMA.names())
        .cast(ENTRY_SCHEMA)
        .unique(["_row", "key"], keep="first", maintain_order=True)
    )


def first_kinds(entries: pl.DataFrame, record_ids: pl.DataFrame) -> pl.DataFrame:
    """Type map of a chunk: the kind of each key's first column-determining value.

    Args:
        entries: Output of :func:`json_entries` (rows in file order).
        record_ids: ``_row`` -> ``_record_id`` of the same chunk.

    Returns:
        An ``attribute_types`` table in first-occurrence order.

    """
    first = (
        entries.filter(pl.col("kind").is_in(_DETERMINING))
        .unique("key", keep="first", maintain_order=True)
        .join(
            record_ids.select(pl.col("_row").cast(pl.Int64), fs.RECORD_ID), on="_row", how="left", maintain_order="left"
        )
    )
    return first.select("key", "kind", pl.col(fs.RECORD_ID).alias("first_record"))


def _convert(values: pl.DataFrame, kind: str) -> pl.Series:
    """Turn the ``text``/``json`` of compatible values into a column of the kind's dtype."""
    if kind == "string":
        return values["text"]
    if kind == "boolean":
        return values["text"] == "true"
    if kind in ("integer", "number"):
        return values["text"].cast(fs.KIND_DTYPES[kind], strict=False)
    if kind in fs.KIND_DTYPES:
        return values["json"].str.json_decode(fs.KIND_DTYPES[kind])
    return values["json"].str.json_decode(infer_schema_length=None)


def _mismatch_detail(field_label: pl.Expr) -> pl.Expr:
    return pl.format(
        "document '{}' attribute '{}' is {} (first occurrence {}), got {}",
        pl.col("external_id").fill_null("?"),
        field_label,
        pl.col("first_kind").replace_strict(fs.KIND_LABELS, default=pl.col("first_kind")),
        pl.col("first_record").fill_null("?"),
        describe(pl.col("kind"), pl.col("text")),
    )


def json_columns(
    entries: pl.DataFrame, types: pl.DataFrame, docs: pl.DataFrame
) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """Build ``attributes.<key>`` columns from JSON entries.

    Args:
        entries: Output of :func:`json_entries` for this chunk.
        types: The ``attribute_types`` map (already merged with this chunk's first kinds).
        docs: ``_row`` and ``external_id`` of the chunk (for messages).

    Returns:
        Per key in map order, a frame ``_row`` + ``attributes.<key>`` holding the compatible values; and the
        issue frame (``attribute_type`` for a kind other than the first, ``type`` for mixed arrays).

    """
    if entries.is_empty():
        return [], no_issues()
    valued = (
        entries.filter(pl.col("kind").is_not_null())
        .join(types.rename({"kind": "first_kind"}), on="key", how="left", maintain_order="left")
        .join(docs.select(pl.col("_row").cast(pl.Int64), "external_id"), on="_row", how="left", maintain_order="left")
    )
    field = pl.concat_str(pl.lit(fs.ATTRIBUTE_PREFIX), pl.col("key"))
    ok = compatible(pl.col("kind"), pl.col("first_kind"))
    found = [
        issues(
            valued,
            pl.col("kind") == "mixed[]",
            field=field,
            rule="type",
            value=pl.col("json"),
            detail=pl.format(
                "expected a primitive or an array of strings, numbers, booleans or objects, got {}",
                describe(pl.col("kind"), pl.col("json")),
            ),
        ),
        issues(
            valued,
            (pl.col("kind") != "mixed[]") & pl.col("first_kind").is_not_null() & ~ok,
            field=field,
            rule="attribute_type",
            value=pl.col("json"),
            detail=_mismatch_detail(pl.col("key")),
        ),
    ]
    good = valued.filter(ok.fill_null(value=False))
    by_key = {str(k[0]): part for k, part in good.partition_by("key", as_dict=True, maintain_order=True).items()}
    seen = set(valued["key"].unique().to_list())
    columns: list[pl.DataFrame] = []
    for key, kind in types.select("key", "kind").iter_rows():
        if key not in seen:
            continue
        name = f"{fs.ATTRIBUTE_PREFIX}{key}"
        part = by_key.get(key)
        if part is None:
            if kind in fs.KIND_DTYPES:
                columns.append(pl.DataFrame(schema={"_row": pl.Int64, name: fs.KIND_DTYPES[kind]}))
            continue
        converted = _convert(part, kind)
        columns.append(pl.DataFrame({"_row": part["_row"], name: converted}))
        found.append(_lost_in_cast(part, converted, name, kind))
    return columns, pl.concat(found)


def _lost_in_cast(part: pl.DataFrame, converted: pl.Series, name: str, kind: str) -> pl.DataFrame:
    """Issues for values of the right kind that still did not fit the dtype (e.g. integers beyond 64 bits)."""
    lost = part.with_columns(converted.alias("_converted"))
    return issues(
        lost,
        pl.col("text").is_not_null() & pl.col("_converted").is_null(),
        field=pl.lit(name),
        rule="type",
        value=pl.col("text"),
        detail=pl.format("value {} does not fit the {} column", pl.col("text"), pl.lit(kind)),
    )


def csv_cell_kind(cell: pl.Expr) -> pl.Expr:
    """Kind of a CSV cell under the conservative inference: integer, number, boolean or string."""
    stripped = cell.str.strip_chars()
    return (
        pl.when(cell.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(stripped.str.contains(_INT_RE))
        .then(pl.lit("integer"))
        .when(stripped.str.contains(_FLOAT_RE))
        .then(pl.lit("number"))
        .when(stripped.str.contains(_BOOL_RE))
        .then(pl.lit("boolean"))
        .otherwise(pl.lit("string"))
    )


def infer_csv_kinds(frame: pl.DataFrame, record_ids: pl.Series) -> pl.DataFrame:
    """Conservative inference of the ``attributes.<key>`` columns of a CSV file.

    All-integer columns are ``integer``, integers mixed with decimals ``number``, all true/false ``boolean``,
    anything else ``string``; all-empty columns get no type.

    Args:
        frame: The CSV rows (String columns).
        record_ids: ``_record_id`` per row, for ``first_record``.

    Returns:
        An ``attribute_types`` table in column order.

    """
    keys: list[str] = []
    kinds: list[str] = []
    firsts: list[str] = []
    for name in frame.columns:
        if not name.startswith(fs.ATTRIBUTE_PREFIX) or frame.schema[name] != pl.String:
            continue
        cell_kinds = frame.select(csv_cell_kind(pl.col(name)).alias("k"))["k"]
        distinct = set(cell_kinds.drop_nulls().unique().to_list())
        if not distinct:
            continue
        if distinct == {"integer"}:
            kind = "integer"
        elif distinct <= {"integer", "number"}:
            kind = "number"
        elif distinct == {"boolean"}:
            kind = "boolean"
        else:
            kind = "string"
        first_index = cell_kinds.is_not_null().arg_true()[0]
        keys.append(name.removeprefix(fs.ATTRIBUTE_PREFIX))
        kinds.append(kind)
        firsts.append(str(record_ids[first_index]))
    return pl.DataFrame({"key": keys, "kind": kinds, "first_record": firsts}, schema=TYPES_SCHEMA)


def csv_columns(
    frame: pl.DataFrame, types: pl.DataFrame, docs: pl.DataFrame
) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """Type the ``attributes.<key>`` String columns of CSV rows by the type map.

    Args:
        frame: CSV rows with ``_row`` and ``attributes.<key>`` String columns.
        types: The ``attribute_types`` map (extract's whole-file inference, merged with this chunk's).
        docs: ``_row`` and ``external_id`` (for messages).

    Returns:
        Typed columns (with ``_row``) and the issue frame.

    """
    kinds = dict(types.select("key", "kind").iter_rows())
    firsts = dict(types.select("key", "first_record").iter_rows())
    columns: list[pl.DataFrame] = []
    found = [no_issues()]
    for name in frame.columns:
        key = name.removeprefix(fs.ATTRIBUTE_PREFIX)
        if not name.startswith(fs.ATTRIBUTE_PREFIX) or key not in kinds:
            continue
        kind = kinds[key]
        cells = frame.select(
            pl.col("_row").cast(pl.Int64),
            pl.col(name).alias("text"),
            csv_cell_kind(pl.col(name)).alias("kind"),
            pl.lit(kind).alias("first_kind"),
            pl.lit(firsts.get(key)).alias("first_record"),
        ).join(docs.select(pl.col("_row").cast(pl.Int64), "external_id"), on="_row", how="left")
        ok = (pl.lit(kind) == "string") | compatible(pl.col("kind"), pl.col("first_kind"))
        stripped = pl.col("text").str.strip_chars()
        typed = {
            "string": pl.col("text"),
            "integer": stripped.cast(pl.Int64, strict=False),
            "number": stripped.cast(pl.Float64, strict=False),
            "boolean": stripped.str.to_lowercase() == "true",
        }[kind]
        cells = cells.with_columns(pl.when(ok).then(typed).alias(name))
        found.append(
            issues(
                cells,
                pl.col("text").is_not_null() & ~ok,
                field=pl.lit(name),
                rule="attribute_type",
                value=pl.col("text"),
                detail=_mismatch_detail(pl.lit(key)),
            )
        )
        found.append(
            issues(
                cells,
                pl.col("text").is_not_null() & ok & pl.col(name).is_null(),
                field=pl.lit(name),
                rule="type",
                value=pl.col("text"),
                detail=pl.format("value {} does not fit the {} column", pl.col("text"), pl.lit(kind)),
            )
        )
        columns.append(cells.select("_row", name))
    return columns, pl.concat(found)


def dtype_kind(dtype: pl.DataType) -> str | None:
    """Kind of a typed (Parquet) column, or None when the dtype has no JSON kind (dates, decimals, null)."""
    if dtype == pl.String:
        return "string"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "number"
    if dtype == pl.Boolean:
        return "boolean"
    if isinstance(dtype, pl.Struct):
        return "object"
    if isinstance(dtype, pl.List | pl.Array):
        inner = dtype.inner
        if inner == pl.String:
            return "string[]"
        if inner.is_numeric():
            return "number[]"
        if inner == pl.Boolean:
            return "boolean[]"
        if isinstance(inner, pl.Struct):
            return "object[]"
    return None


def typed_kinds(frame: pl.DataFrame, record_ids: pl.Series) -> pl.DataFrame:
    """Type map of typed (Parquet) ``attributes.<key>`` columns: the kind of each column's dtype.

    Args:
        frame: Rows with typed ``attributes.<key>`` columns.
        record_ids: ``_record_id`` per row, for ``first_record``.

    """
    keys: list[str] = []
    kinds: list[str] = []
    firsts: list[str] = []
    for name, dtype in frame.schema.items():
        kind = dtype_kind(dtype) if name.startswith(fs.ATTRIBUTE_PREFIX) else None
        if kind is None or frame[name].null_count() == frame.height:
            continue
        keys.append(name.removeprefix(fs.ATTRIBUTE_PREFIX))
        kinds.append(kind)
        firsts.append(str(record_ids[frame[name].is_not_null().arg_true()[0]]))
    return pl.DataFrame({"key": keys, "kind": kinds, "first_record": firsts}, schema=TYPES_SCHEMA)


def as_text(series: pl.Series) -> pl.Series:
    """Render any column as text for issue values (nested values as JSON)."""
    if series.dtype.is_nested():
        encoded = pl.struct("v").struct.json_encode().str.slice(5, None).str.strip_suffix("}")
        frame = pl.DataFrame({"v": series})
        return frame.select(pl.when(pl.col("v").is_not_null()).then(encoded).alias(series.name))[series.name]
    return series.cast(pl.String)


def typed_columns(
    frame: pl.DataFrame, types: pl.DataFrame, docs: pl.DataFrame
) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """Check typed (Parquet) ``attributes.<key>`` columns against the type map.

    A column whose dtype is compatible with the key's first kind is cast to that kind's dtype; otherwise every
    non-null value is an ``attribute_type`` issue (or ``type`` when the dtype has no JSON kind).

    Args:
        frame: Rows with ``_row`` and typed ``attributes.<key>`` columns.
        types: The ``attribute_types`` map.
        docs: ``_row`` and ``external_id`` (for messages).

    """
    kinds = dict(types.select("key", "kind").iter_rows())
    firsts = dict(types.select("key", "first_record").iter_rows())
    columns: list[pl.DataFrame] = []
    found = [no_issues()]
    for name, dtype in frame.schema.items():
        if not name.startswith(fs.ATTRIBUTE_PREFIX) or dtype == pl.Null:
            continue
        key = name.removeprefix(fs.ATTRIBUTE_PREFIX)
        own = dtype_kind(dtype)
        first = kinds.get(key)
        cells = frame.select(pl.col("_row").cast(pl.Int64), name).with_columns(
            as_text(frame[name]).alias("text"),
            pl.lit(own).alias("kind"),
            pl.lit(first).alias("first_kind"),
            pl.lit(firsts.get(key)).alias("first_record"),
        )
        cells = cells.join(docs.select(pl.col("_row").cast(pl.Int64), "external_id"), on="_row", how="left")
        present = pl.col(name).is_not_null()
        if own is None or first is None:
            found.append(
                issues(
                    cells,
                    present,
                    field=pl.lit(name),
                    rule="type",
                    value=pl.col("text"),
                    detail=pl.format("unsupported attribute column type {}", pl.lit(str(dtype))),
                )
            )
            continue
        if not (own == first or (first == "number" and own == "integer")):
            found.append(
                issues(
                    cells,
                    present,
                    field=pl.lit(name),
                    rule="attribute_type",
                    value=pl.col("text"),
                    detail=_mismatch_detail(pl.lit(key)),
                )
            )
            continue
        target = fs.KIND_DTYPES.get(first)
        column = frame[name] if target is None else frame[name].cast(target)
        columns.append(pl.DataFrame({"_row": frame["_row"].cast(pl.Int64), name: column}))
    return columns, pl.concat(found)
