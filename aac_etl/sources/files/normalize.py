"""Normalize of the files source: raw rows already in SyncProductInput shape -> the document frame.

Nothing is coerced: a value whose JSON type differs from the contract's is left null and reported in
``_issues`` (rule ``type``); unreadable lines become records with a ``json`` / ``utf8`` issue; unknown
top-level fields are reported (``unknown_field``); attributes are typed by their first occurrence
(``attribute_type`` for a later value of another kind). See docs/ARCHITECTURE.md for the frame.
"""

from __future__ import annotations

import duckdb
import polars as pl

from aac_etl.sources.base import RawChunk
from aac_etl.sources.files import attributes
from aac_etl.sources.files import settings as fs
from aac_etl.sources.files.common import (
    clip,
    connect,
    describe,
    iso_strings,
    issues,
    no_issues,
    query,
    value_kinds,
)

_EXTERNAL_ID_RE = r'"external_id"\s*:\s*"((?:[^"\\]|\\.)*)"'
_RECORD_FIELD = "record"
"""``field`` of issues about a whole record (unreadable line)."""


def document_schema() -> pl.Schema:
    """Return the schema of the fixed columns of the document frame (attribute columns come on top)."""
    columns: dict[str, pl.DataType] = {f.name: f.dtype for f in fs.scalar_fields()}
    columns[fs.RECORD_ID] = pl.String()
    columns[fs.ISSUES] = fs.ISSUES_DTYPE
    return pl.Schema(columns)


def normalize(raw: RawChunk) -> pl.DataFrame:
    """Turn one raw chunk of the files source into the document frame.

    Args:
        raw: ``documents`` (raw rows from :func:`aac_etl.sources.files.read.extract`) and optionally
            ``attribute_types`` (first kind per attribute key); without it the chunk's own first kinds apply.

    Returns:
        One row per record: the contract fields, ``attributes.<key>`` columns, ``_record_id`` and ``_issues``.

    """
    frame = raw[fs.MAIN_TABLE]
    types = raw.get(fs.ATTRIBUTE_TYPES_TABLE)
    types = attributes.empty_types() if types is None else types
    if frame.is_empty():
        return pl.DataFrame(schema=document_schema())
    con = connect()
    try:
        parts = [_normalize_format(con, part, types) for part in frame.partition_by(fs.FORMAT_COL, maintain_order=True)]
    finally:
        con.close()
    return parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal_relaxed")


def _normalize_format(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, types: pl.DataFrame) -> pl.DataFrame:
    frame = frame.with_row_index("_row").with_columns(
        pl.col("_row").cast(pl.Int64),
        pl.format("{}:{}", fs.FILE_COL, fs.LINE_COL).alias(fs.RECORD_ID),
    )
    if frame[fs.FORMAT_COL][0] == "jsonl":
        docs, columns, found = _from_jsonl(con, frame, types)
    else:
        docs, columns, found = _from_table(con, frame, types)
    return _assemble(docs, columns, found)


def _assemble(docs: pl.DataFrame, columns: list[pl.DataFrame], found: list[pl.DataFrame]) -> pl.DataFrame:
    """Join attribute columns and the ``_issues`` lists onto the document rows."""
    out = docs
    names = set(out.columns)
    for column in columns:
        name = column.columns[1]
        if name in names:
            continue
        names.add(name)
        out = out.join(column, on="_row", how="left", maintain_order="left")
    record_ids = docs.select("_row", fs.RECORD_ID)
    issue_rows = pl.concat(found).join(record_ids, on="_row", how="left", maintain_order="left")
    grouped = (
        issue_rows.with_columns(
            pl.format(
                "record {} field {} rule {}: {}",
                fs.RECORD_ID,
                pl.col("field"),
                pl.col("rule"),
                pl.col("detail"),
            ).alias("message")
        )
        .group_by("_row", maintain_order=True)
        .agg(pl.struct("field", "rule", "value", "message").alias(fs.ISSUES))
    )
    out = out.join(grouped, on="_row", how="left", maintain_order="left").with_columns(
        pl.col(fs.ISSUES).fill_null(pl.lit([], dtype=fs.ISSUES_DTYPE)).cast(fs.ISSUES_DTYPE)
    )
    attribute_names = [c for c in out.columns if c.startswith(fs.ATTRIBUTE_PREFIX)]
    scalar = [f.name for f in fs.scalar_fields()]
    return out.sort("_row").select(*scalar, *attribute_names, fs.RECORD_ID, fs.ISSUES)


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _parse_jsonl(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> pl.DataFrame:
    """One DuckDB pass: validity, root kind, unknown keys and (kind, text, json) of every contract field."""
    fields = fs.contract_fields()
    paths = _sql_list([f"$.{f.name}" for f in fields])
    known = _sql_list([f.name for f in fields])
    con.register("_chunk", frame.select("_row", fs.RAW_COL))
    try:
        parsed = query(
            con,
            f"""
            WITH v AS (
                SELECT _row, _raw, json_valid(_raw) AS _ok FROM _chunk
            ), r AS (
                SELECT _row, _raw, _ok, CASE WHEN _ok THEN json_type(_raw) END AS _root FROM v
            )
            SELECT _row, _ok, _root,
                   CASE WHEN _root = 'OBJECT' THEN
                       list_filter(json_keys(_raw), lambda k: NOT list_contains({known}, k)) END AS _unknown,
                   CASE WHEN _root = 'OBJECT' THEN json_type(_raw, {paths}) END AS _types,
                   CASE WHEN _root = 'OBJECT' THEN json_extract(_raw, {paths})::VARCHAR[] END AS _vals,
                   CASE WHEN _root = 'OBJECT' THEN json_extract_string(_raw, {paths}) END AS _texts
            FROM r ORDER BY _row
            """,
        )
    finally:
        con.unregister("_chunk")
    columns: list[pl.Series] = []
    for i, field in enumerate(fields):
        values = parsed.select(
            pl.col("_types").list.get(i, null_on_oob=True).alias("t"),
            pl.col("_vals").list.get(i, null_on_oob=True).alias(f"json:{field.name}"),
            pl.col("_texts").list.get(i, null_on_oob=True).alias(f"text:{field.name}"),
        )
        columns.append(value_kinds(con, values["t"], values[f"json:{field.name}"]).alias(f"kind:{field.name}"))
        columns.extend([values[f"json:{field.name}"], values[f"text:{field.name}"]])
    return parsed.drop("_types", "_vals", "_texts").with_columns(columns)


def _unknown_fields(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, parsed: pl.DataFrame) -> pl.DataFrame:
    """``unknown_field`` issues: every top-level key that is not a contract field, with its value."""
    rows = parsed.filter(pl.col("_unknown").list.len() > 0).select("_row")
    if rows.is_empty():
        return no_issues()
    subset = frame.join(rows, on="_row", how="semi").select("_row", fs.RAW_COL)
    known = _sql_list(sorted(fs.field_names()))
    con.register("_unknown_input", subset)
    try:
        found = query(
            con,
            f"""SELECT t._row, e.key, e.value::VARCHAR AS json
                FROM _unknown_input AS t, json_each(t._raw) AS e
                WHERE NOT list_contains({known}, e.key) ORDER BY t._row, e.id""",
        )
    finally:
        con.unregister("_unknown_input")
    return issues(
        found,
        pl.lit(value=True),
        field=pl.col("key"),
        rule="unknown_field",
        value=pl.col("json"),
        detail=pl.format("'{}' is not a SyncProductInput field (custom fields go into attributes)", "key"),
    )


def _typed_value(field: fs.FieldSpec) -> pl.Expr:
    """Column of one contract field from the parsed JSON (only values of an accepted kind)."""
    kind, text, raw_json = (
        pl.col(f"kind:{field.name}"),
        pl.col(f"text:{field.name}"),
        pl.col(f"json:{field.name}"),
    )
    accepted = kind.is_in(field.accepts())
    if field.kind == "string[]":
        value = raw_json.str.json_decode(field.dtype)
    elif field.kind == "string":
        value = text if field.required else pl.when(text != "").then(text)
    else:
        value = text.cast(field.dtype, strict=False)
    return pl.when(accepted).then(value).cast(field.dtype).alias(field.name)


def _field_issues(parsed: pl.DataFrame, docs: pl.DataFrame) -> list[pl.DataFrame]:
    found: list[pl.DataFrame] = []
    checked = parsed.join(docs, on="_row", how="left", maintain_order="left")
    for field in fs.contract_fields():
        kind, text = pl.col(f"kind:{field.name}"), pl.col(f"text:{field.name}")
        expected = fs.KIND_LABELS.get(field.kind, field.kind)
        found.append(
            issues(
                checked,
                kind.is_not_null() & ~kind.is_in(field.accepts()),
                field=field.name,
                rule="type",
                value=pl.col(f"json:{field.name}"),
                detail=pl.format("expected {}, got {}", pl.lit(expected), describe(kind, text)),
            )
        )
        if field.kind in ("number", "integer"):
            found.append(
                issues(
                    checked,
                    kind.is_in(field.accepts()) & pl.col(field.name).is_null(),
                    field=field.name,
                    rule="type",
                    value=text,
                    detail=pl.format("value {} does not fit the {} field", text, pl.lit(expected)),
                )
            )
    return found


def _from_jsonl(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, types: pl.DataFrame
) -> tuple[pl.DataFrame, list[pl.DataFrame], list[pl.DataFrame]]:
    parsed = _parse_jsonl(con, frame).with_columns(pl.col("_row").cast(pl.Int64))
    lines = frame.select("_row", fs.RECORD_ID, fs.LINE_COL, fs.RAW_COL, fs.UTF8_ERROR_COL)
    parsed = parsed.join(lines, on="_row", how="left", maintain_order="left")
    readable = (pl.col("_root") == "OBJECT").fill_null(value=False)
    recovered = pl.coalesce(pl.col(fs.RAW_COL).str.extract(_EXTERNAL_ID_RE, 1), pl.format("line:{}", fs.LINE_COL))
    typed = [_typed_value(f) for f in fs.scalar_fields()]
    docs = parsed.select("_row", *typed, fs.RECORD_ID, readable.alias("_readable"), recovered.alias("_recovered"))
    docs = docs.with_columns(
        pl.when("_readable").then(pl.col("external_id")).otherwise(pl.col("_recovered")).alias("external_id")
    ).drop("_readable", "_recovered")
    line = clip(pl.col(fs.RAW_COL), fs.ISSUE_VALUE_MAX_CHARS)
    found = [
        issues(
            parsed,
            pl.col(fs.UTF8_ERROR_COL).is_not_null(),
            field=_RECORD_FIELD,
            rule="utf8",
            value=line,
            detail=pl.col(fs.UTF8_ERROR_COL),
        ),
        issues(
            parsed,
            ~pl.col("_ok"),
            field=_RECORD_FIELD,
            rule="json",
            value=line,
            detail=pl.lit("the line is not valid JSON"),
        ),
        issues(
            parsed,
            pl.col("_ok") & ~readable,
            field=_RECORD_FIELD,
            rule="json",
            value=line,
            detail=pl.format(
                "expected a JSON object, got {}",
                pl.col("_root").str.to_lowercase().replace({"varchar": "string", "ubigint": "integer"}),
            ),
        ),
    ]
    found.extend(_field_issues(parsed, docs.select("_row", *[f.name for f in fs.scalar_fields()])))
    found.append(_unknown_fields(con, frame, parsed))
    entries = attributes.json_entries(
        con,
        parsed.filter(pl.col(f"kind:{fs.ATTRIBUTES_FIELD}") == "object"),
        f"json:{fs.ATTRIBUTES_FIELD}",
        "$",
    )
    types = attributes.merge_types(types, attributes.first_kinds(entries, frame.select("_row", fs.RECORD_ID)))
    columns, attribute_issues = attributes.json_columns(entries, types, docs.select("_row", "external_id"))
    found.append(attribute_issues)
    return docs, columns, found


def _wrong_type(frame: pl.DataFrame, name: str, expected: str) -> pl.DataFrame:
    """Every non-null value of a column whose dtype cannot hold the field is a ``type`` issue."""
    column = frame[name]
    kind = attributes.dtype_kind(column.dtype)
    label = fs.KIND_LABELS.get(kind, str(column.dtype)) if kind else str(column.dtype)
    checked = frame.select("_row", attributes.as_text(column).alias("text"))
    return issues(
        checked,
        pl.col("text").is_not_null() & pl.lit(column.is_not_null()),
        field=name,
        rule="type",
        value=pl.col("text"),
        detail=pl.format("expected {}, got {} {}", pl.lit(expected), pl.lit(label), pl.col("text")),
    )


def _csv_value(field: fs.FieldSpec) -> tuple[pl.Expr, pl.Expr]:
    """(value, acceptable) of a CSV cell for a contract field: the cell must parse as the field's kind."""
    cell = pl.col(field.name)
    stripped = cell.str.strip_chars()
    cell_kind = attributes.csv_cell_kind(cell)
    if field.kind == "string[]":
        items = (
            stripped.str.split(fs.LIST_SEPARATOR)
            .list.eval(pl.element().str.strip_chars())
            .list.eval(pl.element().filter(pl.element() != ""))
        )
        return pl.when(stripped != "").then(items), pl.lit(value=True)
    if field.kind == "number":
        return stripped.cast(pl.Float64, strict=False), cell_kind.is_in(field.accepts())
    if field.kind == "integer":
        return stripped.cast(pl.Int64, strict=False), cell_kind == "integer"
    return (cell if field.required else pl.when(cell != "").then(cell)), pl.lit(value=True)


def _table_field(frame: pl.DataFrame, field: fs.FieldSpec, file_format: str) -> tuple[pl.Series, pl.DataFrame]:
    """Typed column of one contract field from CSV/Parquet rows, and its ``type`` issues."""
    name, expected = field.name, fs.KIND_LABELS.get(field.kind, field.kind)
    if name not in frame.columns:
        return pl.Series(name, [None] * frame.height, dtype=field.dtype), no_issues()
    column = frame[name]
    dtype = column.dtype
    if file_format == "csv" and dtype == pl.String:
        value, acceptable = _csv_value(field)
        checked = frame.select("_row", pl.col(name).alias("text"), acceptable.alias("_ok"), value.alias(name))
        cell_kind = attributes.csv_cell_kind(pl.col("text"))
        found = pl.concat(
            [
                issues(
                    checked,
                    pl.col("text").is_not_null() & ~pl.col("_ok"),
                    field=name,
                    rule="type",
                    value=pl.col("text"),
                    detail=pl.format("expected {}, got {}", pl.lit(expected), describe(cell_kind, pl.col("text"))),
                ),
                issues(
                    checked,
                    pl.col("text").is_not_null()
                    & pl.col("_ok")
                    & (pl.col("text").str.strip_chars() != "")
                    & pl.col(name).is_null(),
                    field=name,
                    rule="type",
                    value=pl.col("text"),
                    detail=pl.format("value {} does not fit the {} field", pl.col("text"), pl.lit(expected)),
                ),
            ]
        )
        typed = checked.select(pl.when("_ok").then(pl.col(name)).cast(field.dtype).alias(name))[name]
        return typed, found
    kind = attributes.dtype_kind(dtype)
    if field.kind == "string" and field.logical == "date" and (isinstance(dtype, pl.Datetime) or dtype == pl.Date):
        return iso_strings(column).alias(name), no_issues()
    if kind is not None and kind in field.accepts():
        if field.kind == "string" and not field.required:
            column = frame.select(pl.when(pl.col(name) != "").then(pl.col(name)).alias(name))[name]
        cast = column.cast(field.dtype, strict=False)
        lost = frame.select("_row", attributes.as_text(column).alias("text"), cast.alias("_cast"))
        found = issues(
            lost,
            pl.lit(field.kind in ("number", "integer")) & pl.col("text").is_not_null() & pl.col("_cast").is_null(),
            field=name,
            rule="type",
            value=pl.col("text"),
            detail=pl.format("value {} does not fit the {} field", pl.col("text"), pl.lit(expected)),
        )
        return cast.alias(name), found
    if dtype == pl.Null:
        return pl.Series(name, [None] * frame.height, dtype=field.dtype), no_issues()
    return pl.Series(name, [None] * frame.height, dtype=field.dtype), _wrong_type(frame, name, expected)


def _from_table(
    con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, types: pl.DataFrame
) -> tuple[pl.DataFrame, list[pl.DataFrame], list[pl.DataFrame]]:
    file_format = str(frame[fs.FORMAT_COL][0])
    ids = frame.select("_row", fs.RECORD_ID)
    found: list[pl.DataFrame] = []
    if fs.UTF8_ERROR_COL in frame.columns:
        found.append(
            issues(
                frame,
                pl.col(fs.UTF8_ERROR_COL).is_not_null(),
                field=_RECORD_FIELD,
                rule="utf8",
                value=pl.lit(None, dtype=pl.String),
                detail=pl.col(fs.UTF8_ERROR_COL),
            )
        )
    values: list[pl.Series] = []
    for field in fs.scalar_fields():
        value, field_issues = _table_field(frame, field, file_format)
        values.append(value)
        found.append(field_issues)
    docs = pl.DataFrame([frame["_row"], *values, frame[fs.RECORD_ID]])
    docs_ids = docs.select("_row", "external_id")
    known = fs.field_names()
    for name in frame.columns:
        if name.startswith(("_", fs.ATTRIBUTE_PREFIX)) or name in known:
            continue
        checked = frame.select("_row", attributes.as_text(frame[name]).alias("text"))
        found.append(
            issues(
                checked,
                pl.col("text").is_not_null() & (pl.col("text") != ""),
                field=name,
                rule="unknown_field",
                value=pl.col("text"),
                detail=pl.lit(f"'{name}' is not a SyncProductInput field (custom fields go into attributes)"),
            )
        )
    columns: list[pl.DataFrame] = []
    packed = frame.schema.get(fs.ATTRIBUTES_FIELD)
    if packed == pl.String:
        entries = attributes.json_entries(con, frame, fs.ATTRIBUTES_FIELD, "$")
        types = attributes.merge_types(types, attributes.first_kinds(entries, ids))
        json_cols, json_issues = attributes.json_columns(entries, types, docs_ids)
        columns.extend(json_cols)
        found.append(_packed_issues(con, frame))
        found.append(json_issues)
    elif isinstance(packed, pl.Struct):
        frame = frame.with_columns(pl.col(fs.ATTRIBUTES_FIELD).struct.unnest().name.prefix(fs.ATTRIBUTE_PREFIX))
    elif packed is not None and packed != pl.Null:
        found.append(_wrong_type(frame, fs.ATTRIBUTES_FIELD, "object"))
    if file_format == "csv":
        types = attributes.merge_types(types, attributes.infer_csv_kinds(frame, frame[fs.RECORD_ID]))
        table_cols, table_issues = attributes.csv_columns(frame, types, docs_ids)
    else:
        types = attributes.merge_types(types, attributes.typed_kinds(frame, frame[fs.RECORD_ID]))
        table_cols, table_issues = attributes.typed_columns(frame, types, docs_ids)
    columns.extend(table_cols)
    found.append(table_issues)
    return docs, columns, found


def _packed_issues(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> pl.DataFrame:
    """Issues of a JSON ``attributes`` column: text that is not JSON, or JSON that is not an object."""
    con.register("_packed", frame.select("_row", pl.col(fs.ATTRIBUTES_FIELD).alias("a")))
    try:
        checked = query(
            con,
            """SELECT _row, a, json_valid(a) AS ok,
                      CASE WHEN json_valid(a) THEN json_type(a) END AS type
               FROM _packed WHERE a IS NOT NULL AND trim(a) <> '' ORDER BY _row""",
        )
    finally:
        con.unregister("_packed")
    checked = checked.with_columns(value_kinds(con, checked["type"], checked["a"]).alias("kind"))
    return pl.concat(
        [
            issues(
                checked,
                ~pl.col("ok"),
                field=fs.ATTRIBUTES_FIELD,
                rule="json",
                value=pl.col("a"),
                detail=pl.lit("attributes is not valid JSON"),
            ),
            issues(
                checked,
                pl.col("ok") & (pl.col("kind").fill_null("null") != "object"),
                field=fs.ATTRIBUTES_FIELD,
                rule="type",
                value=pl.col("a"),
                detail=pl.format("expected object, got {}", describe(pl.col("kind").fill_null("null"), pl.col("a"))),
            ),
        ]
    )
