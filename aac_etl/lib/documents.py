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

import duckdb
import polars as pl
from polars.datatypes import DataType, DataTypeClass

AnyDataType = DataType | DataTypeClass

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


def _canonical(expr: pl.Expr, dtype: AnyDataType) -> pl.Expr:
    """Return ``expr`` with struct fields in name order, null list elements removed and NaN as null."""
    if isinstance(dtype, pl.Struct):
        fields = sorted(dtype.fields, key=lambda field: field.name)
        return pl.struct([_canonical(expr.struct.field(field.name), field.dtype).alias(field.name) for field in fields])
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        listed = expr.list.drop_nulls()
        if isinstance(inner, (pl.Struct, pl.List)) or inner.is_float():
            listed = listed.list.eval(_canonical(pl.element(), inner))
        return listed
    if dtype.is_float():
        return expr.fill_nan(None)
    return expr


def payload_expression(schema: pl.Schema) -> pl.Expr:
    """Build the expression that renders one JSON payload per row of a document frame.

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
    with duckdb.connect() as con:
        con.register("payloads", table)
        hashed = con.sql("SELECT md5(payload) AS content_hash FROM payloads").to_arrow_table()
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
    rendered = frame.select(pl.col("external_id").cast(pl.Utf8), payload_expression(frame.schema))
    return rendered.with_columns(content_hashes(rendered.get_column("payload")))
