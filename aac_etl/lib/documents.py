"""Document frame -> Typesense JSON payloads and content hashes (vectorized, no per-row Python).

The input is the document frame described in docs/ARCHITECTURE.md: one row per document, top-level
contract columns, one ``attributes.<key>`` column per attribute, and ``_``-prefixed helper columns
that never reach the payload.

The output of :func:`to_payloads` has three Utf8 columns:

* ``external_id``: the document key.
* ``payload``: the Typesense document as compact JSON. ``"id"`` (= external_id) comes first, then the
  top-level fields in name order, with ``attributes`` a nested object whose keys (and the keys of any
  nested object) are also in name order. Null members are dropped at every depth, objects left empty
  are dropped too, null list elements are removed and NaN floats become absent. Identical content
  therefore gives byte-identical payloads whatever the column order or column set of the frame.
* ``content_hash``: lowercase hex MD5 of the payload computed by DuckDB's ``md5()``: stable across
  processes, machines and library versions (unlike Python's ``hash()`` or polars' ``hash()``).
"""

from __future__ import annotations

import os
import threading

import duckdb
import polars as pl
from polars.datatypes import DataType, DataTypeClass

AnyDataType = DataType | DataTypeClass

_Member = tuple[pl.Expr, AnyDataType]
"""A payload member: its canonical value (:func:`_canonical`) and the dtype of its column."""

_DUCKDB = threading.local()
"""Per-thread DuckDB connection of :func:`content_hashes` (a connection must not be shared by threads)."""

ATTRIBUTE_PREFIX = "attributes."
"""Prefix of attribute columns in the document frame."""

# A JSON object key as produced by the encoder for our field names. Commas, colons, brackets, braces,
# quotes, backslashes and whitespace are excluded, which makes the patterns below match structural
# JSON only: such a key cannot start right after a non-structural quote.
_KEY = r'"[^"\\,:\[\]{}\s]+"'
_EMPTY_VALUE = r"(?:null|\{\})"
_MEMBER_AFTER_COMMA = rf",{_KEY}:{_EMPTY_VALUE}"
_FIRST_MEMBER = rf"\{{{_KEY}:{_EMPTY_VALUE},?"


def _struct_depth(dtype: AnyDataType) -> int:
    """Return how many object levels a column of this dtype produces in JSON."""
    if isinstance(dtype, pl.Struct):
        return 1 + max((_struct_depth(field.dtype) for field in dtype.fields), default=0)
    if isinstance(dtype, (pl.List, pl.Array)):
        return _struct_depth(dtype.inner)
    return 0


def _holds_values(dtype: AnyDataType) -> bool:
    """Return whether a column of this dtype can hold anything but empty objects (a struct without fields)."""
    if isinstance(dtype, pl.Struct):
        return any(_holds_values(field.dtype) for field in dtype.fields)
    if isinstance(dtype, (pl.List, pl.Array)):
        return _holds_values(dtype.inner)
    return True


def _canonical(expr: pl.Expr, dtype: AnyDataType) -> pl.Expr:
    """Return ``expr`` with struct fields in name order, null list elements removed and NaN as null.

    A value that can only be empty objects (a struct without fields, a list of them) is null: it is dropped.
    """
    if not _holds_values(dtype):
        return pl.lit(None)
    if isinstance(dtype, pl.Struct):
        fields = sorted(dtype.fields, key=lambda field: field.name)
        return pl.struct([_canonical(expr.struct.field(field.name), field.dtype).alias(field.name) for field in fields])
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        listed = expr.list.filter(pl.element().is_not_null())
        if isinstance(inner, (pl.Struct, pl.List)) or inner.is_float():
            listed = listed.list.eval(_canonical(pl.element(), inner))
        return listed
    if dtype.is_float():
        return expr.fill_nan(None)
    return expr


def payload_expression(schema: pl.Schema) -> pl.Expr:
    """Build the expression that renders one JSON payload per row of a document frame.

    This is the reference rendering: :func:`to_payloads` produces the same text faster, encoding each member
    on its own and removing null members from the few values that have any.

    Args:
        schema: Schema of the document frame (must contain ``external_id``).

    Returns:
        A Utf8 expression named ``payload``.

    """
    top: dict[str, pl.Expr] = {}
    attributes: dict[str, pl.Expr] = {}
    depth = 1
    for name, dtype in schema.items():
        if name.startswith("_"):
            continue
        depth = max(depth, 1 + _struct_depth(dtype))
        if name.startswith(ATTRIBUTE_PREFIX):
            key = name[len(ATTRIBUTE_PREFIX) :]
            if key:
                attributes[key] = _canonical(pl.col(name), dtype).alias(key)
        elif name != "id":
            top[name] = _canonical(pl.col(name), dtype).alias(name)
    if attributes:
        top["attributes"] = pl.struct([attributes[key] for key in sorted(attributes)]).alias("attributes")
        depth += 1
    fields = [pl.col("external_id").cast(pl.Utf8).alias("id")] + [top[name] for name in sorted(top)]
    encoded = pl.struct(fields).struct.json_encode()
    # Each pass removes null (or empty-object) members; an object emptied by one pass goes in the next.
    for _ in range(depth + 1):
        encoded = encoded.str.replace_all(_MEMBER_AFTER_COMMA, "").str.replace_all(_FIRST_MEMBER, "{")
    return encoded.alias("payload")


def _cleanup(encoded: pl.Expr, passes: int) -> pl.Expr:
    """Remove null (and empty-object) members; an object emptied by one pass goes in the next."""
    for _ in range(passes):
        encoded = encoded.str.replace_all(_MEMBER_AFTER_COMMA, "").str.replace_all(_FIRST_MEMBER, "{")
    return encoded


def _members(schema: pl.Schema) -> tuple[dict[str, _Member], dict[str, _Member]]:
    """Return the top-level and attribute members: JSON key -> (canonical value, dtype)."""
    top: dict[str, _Member] = {}
    attributes: dict[str, _Member] = {}
    for name, dtype in schema.items():
        if name.startswith("_"):
            continue
        if name.startswith(ATTRIBUTE_PREFIX):
            key = name[len(ATTRIBUTE_PREFIX) :]
            if key:
                attributes[key] = (_canonical(pl.col(name), dtype), dtype)
        elif name != "id":
            top[name] = (_canonical(pl.col(name), dtype), dtype)
    return top, attributes


def _is_flat_struct(dtype: AnyDataType) -> bool:
    """Return whether ``dtype`` is a struct with fields, none of which holds an object."""
    return isinstance(dtype, pl.Struct) and bool(dtype.fields) and _struct_depth(dtype) == 1


def _needs_cleanup(dtype: AnyDataType) -> bool:
    """Return whether a member of this dtype is rendered whole and cleaned by :func:`_clean_fragments`."""
    return _struct_depth(dtype) > 0 and not _is_flat_struct(dtype)


def _json_key(key: str) -> str:
    """Return ``"key":`` exactly as the JSON encoder writes it."""
    encoded = pl.select(pl.struct(pl.lit(0).alias(key)).struct.json_encode()).item()
    return str(encoded)[1:-2]


def _unwrap(wrapped: pl.Expr) -> pl.Expr:
    """Turn the one-member object ``{"key":value}`` into the fragment ``,"key":value``."""
    return wrapped.str.replace("{", ",", literal=True, n=1).str.strip_suffix("}")


def _member_fragment(key: str, value: pl.Expr, dtype: AnyDataType) -> pl.Expr:
    """Render the fragment ``,"key":value`` of one member, null when the value is null or an empty object.

    A flat struct is assembled from the fragments of its fields. Another member whose value holds objects
    (:func:`_needs_cleanup`) is rendered as the one-member object ``{"key":value}`` instead;
    :func:`_clean_fragments` removes its null members and unwraps it.
    """
    if _is_flat_struct(dtype) and isinstance(dtype, pl.Struct):
        fields = sorted(dtype.fields, key=lambda field: field.name)
        inner = pl.concat_str(
            [_member_fragment(f.name, value.struct.field(f.name), f.dtype) for f in fields], ignore_nulls=True
        )
        rendered = pl.concat_str(pl.lit("," + _json_key(key) + "{"), inner.str.slice(1), pl.lit("}"))
        return pl.when(value.is_not_null() & (inner != "")).then(rendered)
    wrapped = pl.struct(value.alias(key)).struct.json_encode()
    return pl.when(value.is_not_null()).then(wrapped if _needs_cleanup(dtype) else _unwrap(wrapped))


def _clean_fragments(fragments: pl.DataFrame, depths: dict[str, int]) -> pl.DataFrame:
    """Clean the one-member objects of :func:`_member_fragment` into fragments (null when emptied).

    The regex passes only run on the rows that hold a ``null`` or ``{}`` at all.
    """
    cleaned: list[pl.Series] = []
    for name, depth in depths.items():
        column = fragments.get_column(name)
        rows = column.str.contains(r"null|\{\}").arg_true()
        if rows.len():
            fixed = column.gather(rows).to_frame(name).select(_cleanup(pl.col(name), depth + 2)).to_series()
            column = column.scatter(rows, fixed)
        cleaned.append(column)
    if not cleaned:
        return fragments
    return fragments.with_columns(cleaned).with_columns(
        pl.when(pl.col(name) != "{}").then(_unwrap(pl.col(name))).alias(name) for name in depths
    )


def _render_payloads(frame: pl.DataFrame) -> pl.Series:
    """Render the payload of every row of a document frame (the same text as :func:`payload_expression`).

    Every member is encoded on its own (``,"key":value``, null for a null value), members holding objects
    are cleaned of null members only in the rows that have any, and the fragments are joined in key order.

    Args:
        frame: The document frame (must contain ``external_id``).

    Returns:
        A Utf8 series named ``payload``.

    """
    top, attributes = _members(frame.schema)
    if attributes:
        top.pop("attributes", None)
    columns = {f"t:{key}": top[key] for key in sorted(top)}
    columns |= {f"a:{key}": attributes[key] for key in sorted(attributes)}
    # Lazy: an eager select would compute each value twice (null test and encoding), having no CSE.
    fragments = (
        frame.lazy()
        .select(
            pl.struct(pl.col("external_id").cast(pl.Utf8).alias("id")).struct.json_encode().str.strip_suffix("}"),
            *(_member_fragment(name[2:], value, dtype).alias(name) for name, (value, dtype) in columns.items()),
        )
        .collect()
    )
    depths = {name: _struct_depth(dtype) for name, (_, dtype) in columns.items() if _needs_cleanup(dtype)}
    fragments = _clean_fragments(fragments, depths)
    members = {key: pl.col(f"t:{key}") for key in top}
    if attributes:
        inner = pl.concat_str([pl.col(f"a:{key}") for key in sorted(attributes)], ignore_nulls=True)
        members["attributes"] = pl.when(inner != "").then(
            pl.concat_str(pl.lit(',"attributes":{'), inner.str.slice(1), pl.lit("}"))
        )
    parts = [pl.col("id"), *(members[key] for key in sorted(members)), pl.lit("}")]
    return fragments.lazy().select(pl.concat_str(parts, ignore_nulls=True).alias("payload")).collect().to_series()


def _connection() -> duckdb.DuckDBPyConnection:
    """Return this thread's in-memory DuckDB connection (opened on first use, reused by every call).

    A forked child process opens its own: DuckDB's threads do not survive a fork.
    """
    con: duckdb.DuckDBPyConnection | None = getattr(_DUCKDB, "connection", None)
    if con is None or getattr(_DUCKDB, "pid", None) != os.getpid():
        con = duckdb.connect()
        _DUCKDB.connection = con
        _DUCKDB.pid = os.getpid()
    return con


def content_hashes(payloads: pl.Series) -> pl.Series:
    """Return the lowercase hex MD5 of each payload, computed by DuckDB (vectorized, version-stable).

    Args:
        payloads: Utf8 series of JSON payloads.

    Returns:
        A Utf8 series named ``content_hash``, same length and order.

    """
    if payloads.len() == 0:
        return pl.Series("content_hash", [], dtype=pl.Utf8)
    table = pl.DataFrame({"payload": payloads}).to_arrow()
    con = _connection()
    con.register("payloads", table)
    try:
        hashed = con.sql("SELECT md5(payload) AS content_hash FROM payloads").to_arrow_table()
    finally:
        con.unregister("payloads")
    result = pl.from_arrow(hashed)
    if not isinstance(result, pl.DataFrame):
        raise TypeError("DuckDB returned no table")
    return result.to_series().cast(pl.Utf8)


def to_payloads(frame: pl.DataFrame) -> pl.DataFrame:
    """Render a document frame into Typesense payloads with content hashes.

    Args:
        frame: The document frame (docs/ARCHITECTURE.md). ``external_id`` is required; ``_``-prefixed
            columns are ignored; ``attributes.<key>`` columns become members of a nested ``attributes``
            object.

    Returns:
        A frame with Utf8 columns ``external_id``, ``payload`` (compact JSON, null members dropped,
        deterministic key order, ``"id"`` = external_id) and ``content_hash`` (hex MD5 of the payload).

    Raises:
        ValueError: When ``external_id`` is missing or null in some row.

    """
    if "external_id" not in frame.columns:
        raise ValueError("document frame has no external_id column")
    if frame.get_column("external_id").null_count():
        raise ValueError("document frame has rows without external_id")
    payloads = _render_payloads(frame)
    return pl.DataFrame([frame.get_column("external_id").cast(pl.Utf8), payloads, content_hashes(payloads)])
