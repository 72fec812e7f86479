"""Vectorized contract checks on a document frame: (valid frame, quarantine frame).

Every check is a polars expression derived from :class:`aac_etl.lib.contract.Contract`; no Python object is
built per row. A record that fails any check is removed from ``valid`` and gets one quarantine row per
(failing field, rule). Rule names recorded in the quarantine:

=================  ===========================================================================================
``required``       required field null or missing (also a required item field of a map attribute)
``type``           value of the wrong type for the field (whole column of a wrong dtype, or one variant row)
``empty_string``   empty or blank string where the field's constraints reject it (drop the field instead)
``utf8``           text contains U+FFFD: the source bytes were not valid UTF-8 (see "Invalid UTF-8" below)
``control_chars``  text contains C0 control characters other than tab, newline and carriage return
``min_length``     ``max_length``     string length (characters) outside the declared bounds
``pattern``        value does not match the field's pattern (URLs: absolute http(s))
``iso8601``        value of a ``format: iso8601`` field is not an ISO 8601 date(-time) or calendar date
``iso4217``        value (or map key) is not in the code list the contract names
``valid_values``   value not among the declared ``validValues``
``finite``         NaN or infinity in a number field
``minimum``        ``maximum``        number outside the declared range
``empty_item``     null or blank entry in an array of strings
``unique``         ``external_id`` shared by several rows of the batch (every one of them is quarantined)
``key_pattern``    attribute key not lowercase snake_case
``reserved_key``   attribute key is a top-level field name (``title`` belongs at the top level)
``number_array``   attribute value is an array of numbers
``nested_object``  attribute value is an object (or array of objects) other than a documented map attribute
``type_lock``      attribute type differs from the type the index locked (or, in a fresh index, from the type
                   most documents of this batch send)
``unknown_field``  top-level column the contract does not declare (extra fields are forbidden)
quality rules      schema-level rules by their contract name: ``sale_price_below_price``,
                   ``category_ids_aligned``, ``price_major_units``
=================  ===========================================================================================

plus any rule a source reported itself through the ``_issues`` column (docs/ARCHITECTURE.md).

Mixed JSON types (file sources):
    A polars column has one dtype, but a JSON file may send ``42`` in one record and ``"42"`` in the next.
    Such a column is represented as a *variant* column: a ``Struct`` whose fields are ``json:<kind>`` with
    exactly one non-null per row (``json:string`` String, ``json:int64`` Int64, ``json:float`` Float64,
    ``json:bool`` Boolean, ``json:string[]`` List(String); ``json:number[]``, ``json:object``,
    ``json:object[]``, ``json:other`` hold the JSON text). :func:`variant_series` builds one from raw values;
    it survives parquet and stays vectorized. For a top-level field, rows of the wrong kind fail ``type``; for
    an attribute, every row's kind is checked and compared to the type lock. In ``valid`` the column is
    resolved to a plain column of the one surviving type. A source may also read the ``attributes`` object as
    one ``Struct`` column named ``attributes``; it is split into ``attributes.<key>`` columns first.

Invalid UTF-8:
    A polars string cannot hold invalid UTF-8 or lone surrogates, so the defect surfaces where bytes are read:
    file sources decode with :func:`decode_source_bytes` (invalid sequences become U+FFFD) or repair Python
    strings with :func:`repair_text`, and this module quarantines any text containing U+FFFD (rule ``utf8``).

Type lock:
    ``locked_types`` maps attribute key (without the ``attributes.`` prefix) to its index type (``string``,
    ``int64``, ``float``, ``bool``, ``string[]``, ``object``, ``object[]``). Exact match is required, except
    that ``int64`` values are accepted for a ``float`` attribute (Typesense stores integers in float fields).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import polars as pl
from pydantic import ValidationError

from aac_etl import settings
from aac_etl.lib.contract import (
    ATTRIBUTE_PREFIX,
    ATTRIBUTE_TYPES,
    ATTRIBUTES,
    CODE_LIST_LABELS,
    VARIANT_PREFIX,
    Contract,
    ContractField,
    MapAttribute,
    QualityRule,
    attribute_value_type,
    code_list_values,
    frame_documents,
    pydantic_model,
)
from aac_etl.lib.text import ByteProfile

VARIANT_KINDS: Mapping[str, pl.DataType] = {
    "string": pl.String(),
    "int64": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "string[]": pl.List(pl.String()),
    "number[]": pl.String(),
    "object": pl.String(),
    "object[]": pl.String(),
    "other": pl.String(),
}
"""Fields of a variant column, by value kind (:func:`aac_etl.lib.contract.attribute_value_type`)."""
VARIANT_DTYPE = pl.Struct({VARIANT_PREFIX + kind: dtype for kind, dtype in VARIANT_KINDS.items()})

ISSUES_COLUMN = "_issues"
RECORD_ID_COLUMN = "_record_id"

QUARANTINE_SCHEMA: Mapping[str, pl.DataType] = {
    name: pl.String() for name in ("source", "sync_id", "external_id", "record_id", "field", "rule", "value", "message")
}
"""Columns of the quarantine frame (the buffer adds ``created_at``)."""

_ROW = "__row"
_ORIG = "__orig:"
_MASK = "__mask:"
_EXTRA = "__extra:"
_TYPEFAIL = "__typefail:"
_MESSAGE_VALUE_CHARS = 80
_BLANK = r"^\s*$"
# A pattern's tail that any whitespace-free rest of a value matches (``[^\s]*$``, ``\S*$``), not escaped.
_FREE_TAIL = re.compile(r"(?<!\\)(?:\\\\)*(?P<tail>\[\^\\s\]\*|\\S\*)\$$")
_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"
_REPLACEMENT = "\ufffd"
_SURROGATES = re.compile("[\ud800-\udfff]")
_EXPECTED_KIND: Mapping[str, tuple[str, ...]] = {
    "string": ("string",),
    "date": ("string",),
    "number": ("float", "int64"),
    "integer": ("int64",),
    "boolean": ("bool",),
    "array": ("string[]",),
}
_TARGET_DTYPE: Mapping[str, pl.DataType] = {
    "string": pl.String(),
    "date": pl.String(),
    "number": pl.Float64(),
    "integer": pl.Int64(),
    "boolean": pl.Boolean(),
    "array": pl.List(pl.String()),
}


# ----------------------------------------------------------------------------------------------------
# Public data types


@dataclass(frozen=True)
class ValidationIssue:
    """One failed rule of one record, as found by the pydantic model (single-record checks)."""

    field: str
    rule: str
    message: str
    value: str | None = None


@dataclass(frozen=True)
class ValidationOutcome:
    """Result of :func:`validate_frame`.

    Attributes:
        valid: Records that passed every check (variant columns resolved, missing optional columns added as
            nulls, ``_issues`` and undeclared columns dropped).
        quarantine: One row per (record, failing rule), columns :data:`QUARANTINE_SCHEMA`.
        rule_counts: Quarantine rows per rule.
        input_rows: Rows of the input frame.
        invalid_rows: Distinct records quarantined; ``input_rows == valid.height + invalid_rows``.
        attribute_types: Index type of each attribute in ``valid`` (what a fresh index would lock).
        model_disagreements: Pydantic-model errors on a sample of ``valid`` (should be empty: the vectorized
            checks and the model are derived from the same file).
        source: Source name.
        sync_id: Sync (run) id.

    """

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    rule_counts: dict[str, int]
    input_rows: int
    invalid_rows: int
    attribute_types: dict[str, str] = field(default_factory=dict[str, str])
    model_disagreements: tuple[str, ...] = ()
    source: str = ""
    sync_id: str = ""

    @property
    def invalid_share(self) -> float:
        """Share of input records that were quarantined (0 for an empty input)."""
        return self.invalid_rows / self.input_rows if self.input_rows else 0.0


@dataclass
class _Check:
    field: str
    rule: str
    fails: pl.Expr
    message: pl.Expr
    value: pl.Expr


# ----------------------------------------------------------------------------------------------------
# Text helpers for sources


def decode_source_bytes(raw: bytes) -> tuple[str, bool]:
    """Decode bytes read by a file source as UTF-8, replacing invalid sequences with U+FFFD.

    Args:
        raw: The bytes of a line, cell or file.

    Returns:
        The text and whether any invalid sequence was replaced (the record will fail rule ``utf8``).

    """
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def repair_text(value: str) -> str:
    """Replace lone surrogates (from ``surrogateescape`` decoding or broken JSON escapes) with U+FFFD.

    Polars refuses strings with lone surrogates; after this repair the record reaches the validator and is
    quarantined with rule ``utf8`` instead of crashing the frame construction.
    """
    return _SURROGATES.sub(_REPLACEMENT, value)


def is_variant_dtype(dtype: pl.DataType) -> bool:
    """Return whether ``dtype`` is a variant column (a Struct whose fields all start with ``json:``)."""
    if not isinstance(dtype, pl.Struct) or not dtype.fields:
        return False
    return all(f.name.startswith(VARIANT_PREFIX) for f in dtype.fields)


def variant_series(name: str, values: Sequence[object]) -> pl.Series:
    """Build a variant column from raw JSON-decoded values of mixed types (see the module docstring).

    Args:
        name: Column name, e.g. ``attributes.weight``.
        values: One raw value per row (``None`` for absent).

    Returns:
        A Series of dtype :data:`VARIANT_DTYPE`.

    """
    rows: list[dict[str, object] | None] = []
    for raw in values:
        kind = attribute_value_type(raw)
        if kind == "null":
            rows.append(None)
            continue
        value: object = raw
        if VARIANT_KINDS[kind] == pl.String() and kind != "string":
            value = json.dumps(raw, ensure_ascii=False)
        elif isinstance(raw, str):
            value = repair_text(raw)
        rows.append({VARIANT_PREFIX + kind: value})
    return pl.Series(name, rows, dtype=VARIANT_DTYPE)


# ----------------------------------------------------------------------------------------------------
# Rendering helpers (evaluated on failing rows only)


def _truncate(expr: pl.Expr, limit: int) -> pl.Expr:
    return pl.when(expr.str.len_chars() > limit).then(expr.str.slice(0, limit) + "…").otherwise(expr)


def _render(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Render any value as text: strings as-is, scalars with cast, nested values as JSON."""
    if dtype == pl.String():
        return expr
    if isinstance(dtype, pl.Struct) and is_variant_dtype(dtype):
        parts = [_render(expr.struct.field(f.name), cast(pl.DataType, f.dtype)) for f in dtype.fields]
        return pl.coalesce(parts)
    if dtype.is_numeric() or dtype == pl.Boolean() or dtype.is_temporal() or dtype == pl.Null():
        return expr.cast(pl.String)
    encoded = pl.struct(expr.alias("v")).struct.json_encode()
    return encoded.str.strip_prefix('{"v":').str.strip_suffix("}")


def _quoted(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Render a value for a message: strings in quotes, long values cut with their length."""
    text = _render(expr, dtype)
    cut = _truncate(text, _MESSAGE_VALUE_CHARS)
    if dtype == pl.String():
        cut = pl.format("'{}'", cut)
    elif isinstance(dtype, pl.Struct) and any(f.name == VARIANT_PREFIX + "string" for f in dtype.fields):
        string = expr.struct.field(VARIANT_PREFIX + "string")
        cut = pl.coalesce(pl.format("'{}'", _truncate(string, _MESSAGE_VALUE_CHARS)), cut)
    long_note = (
        pl.when(text.str.len_chars() > _MESSAGE_VALUE_CHARS)
        .then(pl.format(" ({} chars)", text.str.len_chars()))
        .otherwise(pl.lit(""))
    )
    return pl.coalesce(cut + long_note, pl.lit("null"))


def _lit(text: str) -> pl.Expr:
    return pl.lit(text, dtype=pl.String)


def _fmt(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def _dtype_label(dtype: pl.DataType | type[pl.DataType]) -> str:
    return str(dtype)


# ----------------------------------------------------------------------------------------------------
# Per-field checks


def _variant_kind(expr: pl.Expr, dtype: pl.Struct) -> pl.Expr:
    return pl.coalesce(
        [
            pl.when(expr.struct.field(f.name).is_not_null()).then(_lit(f.name.removeprefix(VARIANT_PREFIX)))
            for f in dtype.fields
        ]
    )


def _variant_value(expr: pl.Expr, dtype: pl.Struct, kinds: Sequence[str], target: pl.DataType) -> pl.Expr:
    names = {f.name for f in dtype.fields}
    parts = [expr.struct.field(VARIANT_PREFIX + kind).cast(target) for kind in kinds if VARIANT_PREFIX + kind in names]
    return pl.coalesce(parts) if parts else pl.lit(None, dtype=target)


def _resolve_field(
    name: str, dtype: pl.DataType | None, spec: ContractField
) -> tuple[pl.Expr | None, pl.Expr | None, pl.Expr | None]:
    """Return (typed column or None when unchanged, type-failure mask or None, failure message or None)."""
    target = _TARGET_DTYPE[spec.logical_type]
    expected = spec.logical_type
    if dtype is None or dtype == pl.Null():
        return pl.lit(None, dtype=target), None, None
    orig = pl.col(_ORIG + name)
    if isinstance(dtype, pl.Struct) and is_variant_dtype(dtype):
        kinds = _EXPECTED_KIND[spec.logical_type]
        kind = _variant_kind(orig, dtype)
        fails = orig.is_not_null() & ~kind.is_in(list(kinds))
        message = pl.format("{} is a JSON {}, expected {}", _quoted(orig, dtype), kind, _lit(expected))
        return _variant_value(pl.col(name), dtype, kinds, target), fails, message
    wrong = pl.format("{} is {}, expected {}", _quoted(orig, dtype), _lit(_dtype_label(dtype)), _lit(expected))
    if spec.logical_type in {"string", "date"}:
        if dtype == pl.String():
            return None, None, None
        if isinstance(dtype, pl.Categorical | pl.Enum):
            return pl.col(name).cast(pl.String), None, None
    elif spec.logical_type == "number":
        if dtype.is_numeric():
            return (None if dtype == pl.Float64() else pl.col(name).cast(pl.Float64)), None, None
    elif spec.logical_type == "integer":
        if dtype.is_integer():
            return (None if dtype == pl.Int64() else pl.col(name).cast(pl.Int64, strict=False)), None, None
        if dtype.is_float():
            col = pl.col(name)
            integral = col.is_finite() & (col == col.floor())
            message = pl.format("{} is not an integer", _quoted(orig, dtype))
            return (
                pl.when(integral).then(col.cast(pl.Int64, strict=False)),
                orig.is_not_null() & ~(orig.is_finite() & (orig == orig.floor())),
                message,
            )
    elif spec.logical_type == "boolean":
        if dtype == pl.Boolean():
            return None, None, None
    elif spec.logical_type == "array" and isinstance(dtype, pl.List):
        inner = dtype.inner
        if inner == pl.String():
            return None, None, None
        if inner == pl.Null() or isinstance(inner, pl.Categorical | pl.Enum):
            return pl.col(name).cast(target), None, None
        fails = orig.is_not_null() & (orig.list.len() > 0)
        return pl.when(pl.col(name).list.len() == 0).then(pl.lit([], dtype=target)), fails, wrong
    return pl.lit(None, dtype=target), orig.is_not_null(), wrong


@dataclass(frozen=True)
class _ByteFacts:
    """What one look at a String column's bytes (:class:`~aac_etl.lib.text.ByteProfile`) rules out.

    A byte scan of the whole column instead of a regex search through every value: the control-character search
    cost about a third of a frame's validation (most of it in ``description``), the URL patterns a fifth.
    """

    control_free: bool = False
    """No byte below 0x20 nor 0x7F: no value fails ``control_chars`` (tab and newlines count too)."""
    whitespace_free: bool = False
    """No whitespace character (regex ``\\s``): blank means empty, and a ``[^\\s]*$`` tail always matches."""
    replacement_free: bool = False
    """No byte 0xEF, the first of U+FFFD's three: no value fails ``utf8`` (text below U+F000 has none at all)."""

    @classmethod
    def of(cls, series: pl.Series) -> _ByteFacts:
        """Profile a String column or the items of a List(String) column (another dtype: nothing is ruled out)."""
        if isinstance(series.dtype, pl.List) and series.dtype.inner == pl.String:
            series = series.explode()
        profile = ByteProfile.of(series)
        if profile is None:
            return cls()
        return cls(
            control_free=not profile.may_hold(below=0x20, among=(0x7F,)),
            whitespace_free=not profile.may_hold_whitespace(),
            replacement_free=not profile.may_hold(below=0, among=(_REPLACEMENT.encode()[0],)),
        )


def _whitespace_free_pattern(pattern: str) -> str:
    r"""``pattern`` for values holding no whitespace: a trailing ``[^\s]*$`` or ``\S*$`` is dropped.

    Such a tail matches the whole rest of a value without whitespace, so the pattern matches exactly where its
    head does. The head's search stops at its first match, where the tail made the regex read every value to its
    end (the URL checks were a fifth of a frame's validation).
    """
    tail = _FREE_TAIL.search(pattern)
    if tail is None:
        return pattern
    return pattern[: tail.start("tail")]


def _string_checks(spec: ContractField, col: pl.Expr, facts: _ByteFacts) -> list[_Check]:
    name = spec.name
    value = col
    quoted = _quoted(col, pl.String())
    # Without whitespace in the column, only the empty string is blank: no regex search through every value.
    blank = col.str.len_bytes() == 0 if facts.whitespace_free else col.str.contains(_BLANK)
    checks: list[_Check] = []
    not_blank = ~blank if spec.rejects_empty else pl.lit(value=True)
    if spec.rejects_empty:
        checks.append(
            _Check(name, "empty_string", blank, _lit("empty string: drop the field instead of sending ''"), value)
        )
    if not facts.replacement_free:
        checks.append(
            _Check(
                name,
                "utf8",
                col.str.contains(_REPLACEMENT, literal=True),
                pl.format("{} contains U+FFFD: the source bytes were not valid UTF-8", quoted),
                value,
            )
        )
    if not facts.control_free:
        checks.append(
            _Check(
                name,
                "control_chars",
                col.str.contains(_CONTROL),
                pl.format("{} contains control characters", quoted),
                value,
            )
        )
    length = col.str.len_chars()
    if spec.min_length is not None and spec.min_length > 1:
        checks.append(
            _Check(
                name,
                "min_length",
                not_blank & (length < spec.min_length),
                pl.format("{} is shorter than {} characters", quoted, pl.lit(spec.min_length)),
                value,
            )
        )
    if spec.max_length is not None:
        checks.append(
            _Check(
                name,
                "max_length",
                length > spec.max_length,
                pl.format("{} is longer than {} characters", quoted, pl.lit(spec.max_length)),
                value,
            )
        )
    if spec.code_list:
        label = CODE_LIST_LABELS.get(spec.code_list, spec.code_list)
        checks.append(
            _Check(
                name,
                spec.code_list,
                not_blank & ~col.is_in(sorted(code_list_values(spec.code_list))),
                pl.format("{} is not an uppercase {} code", quoted, _lit(label)),
                value,
            )
        )
    elif spec.valid_values:
        checks.append(
            _Check(
                name,
                "valid_values",
                not_blank & ~col.is_in(list(spec.valid_values)),
                pl.format("{} is not one of {}", quoted, _lit(", ".join(spec.valid_values))),
                value,
            )
        )
    pattern = spec.effective_pattern
    if pattern and not spec.code_list:
        matches = col.str.contains(_whitespace_free_pattern(pattern) if facts.whitespace_free else pattern)
        if spec.format == "iso8601" and not spec.pattern:
            calendar = col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).is_not_null()
            checks.append(
                _Check(
                    name,
                    "iso8601",
                    not_blank & ~(matches & calendar),
                    pl.format("{} is not an ISO 8601 date or date-time", quoted),
                    value,
                )
            )
        else:
            checks.append(
                _Check(
                    name,
                    "pattern",
                    not_blank & ~matches,
                    pl.format("{} does not match {}", quoted, _lit(pattern)),
                    value,
                )
            )
    return checks


def _number_checks(spec: ContractField, col: pl.Expr, dtype: pl.DataType) -> list[_Check]:
    name = spec.name
    quoted = _quoted(col, dtype)
    checks: list[_Check] = []
    finite = col.is_finite() if dtype.is_float() else pl.lit(value=True)
    if dtype.is_float():
        checks.append(_Check(name, "finite", ~col.is_finite(), pl.format("{} is not a finite number", quoted), col))
    if spec.minimum is not None:
        checks.append(
            _Check(
                name,
                "minimum",
                finite & (col < spec.minimum),
                pl.format("{} is below the minimum {}", quoted, _lit(_fmt(spec.minimum))),
                col,
            )
        )
    if spec.maximum is not None:
        checks.append(
            _Check(
                name,
                "maximum",
                finite & (col > spec.maximum),
                pl.format("{} is above the maximum {}", quoted, _lit(_fmt(spec.maximum))),
                col,
            )
        )
    return checks


def _array_checks(spec: ContractField, col: pl.Expr, facts: _ByteFacts) -> list[_Check]:
    name = spec.name
    dtype = pl.List(pl.String())
    quoted = _quoted(col, dtype)
    checks: list[_Check] = []
    if spec.items_min_length:
        item = pl.element()
        blank = item.str.len_bytes() == 0 if facts.whitespace_free else item.str.contains(_BLANK)
        checks.append(
            _Check(
                name,
                "empty_item",
                col.list.eval(item.is_null() | blank).list.any(),
                pl.format("{} has an empty entry", quoted),
                col,
            )
        )
    if not facts.replacement_free:
        checks.append(
            _Check(
                name,
                "utf8",
                col.list.eval(pl.element().str.contains(_REPLACEMENT, literal=True)).list.any(),
                pl.format("{} contains U+FFFD: the source bytes were not valid UTF-8", quoted),
                col,
            )
        )
    return checks


def _type_ok(name: str, columns: Sequence[str]) -> pl.Expr:
    """Return a mask, true where the field passed its type check (dependent checks skip the others)."""
    return ~pl.col(_TYPEFAIL + name) if _TYPEFAIL + name in columns else pl.lit(value=True)


def _field_checks(
    spec: ContractField, dtype: pl.DataType, missing: bool, columns: Sequence[str], facts: _ByteFacts
) -> list[_Check]:
    col = pl.col(spec.name)
    checks: list[_Check] = []
    if spec.required:
        message = _lit("required field is missing from the frame") if missing else _lit("required field is null")
        checks.append(_Check(spec.name, "required", col.is_null() & _type_ok(spec.name, columns), message, _lit("")))
    if missing:
        return checks
    if spec.logical_type in {"string", "date"}:
        checks += _string_checks(spec, col, facts)
    elif spec.logical_type in {"number", "integer"}:
        checks += _number_checks(spec, col, dtype)
    elif spec.logical_type == "array":
        checks += _array_checks(spec, col, facts)
    if spec.unique:
        checks.append(
            _Check(
                spec.name,
                "unique",
                col.is_not_null() & col.is_duplicated(),
                pl.format("{} appears {} times in this batch", _quoted(col, dtype), pl.len().over(col)),
                col,
            )
        )
    return checks


# ----------------------------------------------------------------------------------------------------
# Quality rules


def _quality_checks(rule: QualityRule, dtypes: Mapping[str, pl.DataType], extras: dict[str, pl.Expr]) -> list[_Check]:
    col = pl.col(rule.field)
    dtype = dtypes[rule.field]
    if rule.check == "less_than" and rule.other:
        other = pl.col(rule.other)
        fails = col.is_not_null() & (other.is_null() | (col >= other))
        message = (
            pl.when(other.is_null())
            .then(pl.format("{} {} is set without {}", _lit(rule.field), _quoted(col, dtype), _lit(rule.other)))
            .otherwise(
                pl.format(
                    "{} {} is not below {} {}",
                    _lit(rule.field),
                    _quoted(col, dtype),
                    _lit(rule.other),
                    _quoted(other, dtypes[rule.other]),
                )
            )
        )
        return [_Check(rule.field, rule.rule, fails, message, col)]
    if rule.check == "same_length" and rule.other:
        n = col.list.len().fill_null(0)
        m = pl.col(rule.other).list.len().fill_null(0)
        message = pl.format("{} has {} entries but {} has {}", _lit(rule.field), n, _lit(rule.other), m)
        return [_Check(rule.field, rule.rule, n != m, message, col)]
    if rule.check == "minor_unit_outlier":
        group = pl.col(rule.by) if rule.by else pl.lit(1)
        factor = rule.param("factor", 100.0)
        finite = col.is_finite()
        integral = finite & (col == col.floor())
        count = col.count().over(group)
        decimal_share = (finite & ~integral).cast(pl.Float64).sum().over(group) / count
        median_name = _EXTRA + rule.rule + ":median"
        extras[median_name] = col.median().over(group)
        median = pl.col(median_name)
        fails = (
            integral
            & (count >= rule.param("minSample", 20.0))
            & (decimal_share >= rule.param("minDecimalShare", 0.1))
            & (median > 0)
            & (col >= factor * median)
        )
        message = pl.format(
            "{} {} is integral and at least {}x the batch median {} for {} {}: send major units (99.99, not 9999)",
            _lit(rule.field),
            _quoted(col, dtype),
            _lit(_fmt(factor)),
            median.round(2),
            _lit(rule.by or "the batch"),
            _quoted(group, dtypes.get(rule.by, pl.String()) if rule.by else pl.String()),
        )
        return [_Check(rule.field, rule.rule, fails, message, col)]
    return []


# ----------------------------------------------------------------------------------------------------
# Attributes


def _native_kind(dtype: pl.DataType) -> str:
    """Index type of a plain (non-variant) attribute column, or the name of the refused shape."""
    if dtype == pl.String() or isinstance(dtype, pl.Categorical | pl.Enum):
        return "string"
    if dtype.is_integer():
        return "int64"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean():
        return "bool"
    if isinstance(dtype, pl.List | pl.Array):
        inner = dtype.inner
        if inner == pl.String() or inner == pl.Null() or isinstance(inner, pl.Categorical | pl.Enum):
            return "string[]"
        if inner.is_numeric():
            return "number[]"
        if isinstance(inner, pl.Struct):
            return "object[]"
        return "other"
    if isinstance(dtype, pl.Struct):
        return "object"
    if dtype == pl.Null():
        return "null"
    return "other"


def _whitespace_free_items(series: pl.Series, item: MapAttribute) -> frozenset[str]:
    """Item fields of a list-of-objects attribute that hold no whitespace, among those whose pattern it shortens."""
    dtype = series.dtype
    if item.kind != "list" or not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return frozenset()
    names = {f.name for f in dtype.inner.fields}
    wanted = [
        sub.name
        for sub in item.item_fields
        if sub.pattern and sub.name in names and _whitespace_free_pattern(sub.pattern) != sub.pattern
    ]
    if not wanted:
        return frozenset()
    items = series.list.explode()
    return frozenset(n for n in wanted if _ByteFacts.of(items.struct.field(n)).whitespace_free)


def _map_checks(
    name: str, key: str, dtype: pl.DataType, item: MapAttribute, free_items: frozenset[str] = frozenset()
) -> tuple[list[_Check], str]:
    col = pl.col(name)
    quoted = _quoted(col, dtype)
    kind = _native_kind(dtype)
    if kind == "null":
        return [], item.index_type
    if kind != item.index_type:
        message = pl.format(
            "attribute '{}' must be {}, got {} {}", _lit(key), _lit(item.index_type), _lit(kind), quoted
        )
        return [_Check(name, "type", col.is_not_null(), message, col)], kind
    checks: list[_Check] = []
    if item.kind == "object" and isinstance(dtype, pl.Struct):
        for sub in dtype.fields:
            value = col.struct.field(sub.name)
            present = value.is_not_null()
            if item.key_code_list and sub.name not in code_list_values(item.key_code_list):
                label = CODE_LIST_LABELS.get(item.key_code_list, item.key_code_list)
                message = pl.format(
                    "attribute '{}' key '{}' is not an uppercase {} code",
                    _lit(key),
                    _lit(sub.name),
                    _lit(label),
                )
                checks.append(_Check(name, item.key_code_list, present, message, col))
            numeric_ok = sub.dtype.is_integer() if item.value_type == "integer" else sub.dtype.is_numeric()
            if sub.dtype == pl.Null():
                continue
            if not numeric_ok:
                message = pl.format(
                    "attribute '{}' key '{}' must hold {} values, got {}",
                    _lit(key),
                    _lit(sub.name),
                    _lit(str(item.value_type)),
                    _lit(_dtype_label(cast(pl.DataType, sub.dtype))),
                )
                checks.append(_Check(name, "type", present, message, col))
                continue
            if sub.dtype.is_float():
                message = pl.format("attribute '{}' key '{}' is not a finite number", _lit(key), _lit(sub.name))
                checks.append(_Check(name, "finite", present & ~value.is_finite(), message, col))
            if item.value_minimum is not None:
                message = pl.format(
                    "attribute '{}' key '{}' value {} is below the minimum {}",
                    _lit(key),
                    _lit(sub.name),
                    value.cast(pl.String),
                    _lit(_fmt(item.value_minimum)),
                )
                checks.append(_Check(name, "minimum", present & (value < item.value_minimum), message, col))
    elif item.kind == "list" and isinstance(dtype, pl.List | pl.Array) and isinstance(dtype.inner, pl.Struct):
        names = {f.name: f.dtype for f in dtype.inner.fields}
        allowed = {f.name for f in item.item_fields}
        unknown = sorted(set(names) - allowed)
        if unknown:
            message = pl.format("attribute '{}' items have unknown fields {}", _lit(key), _lit(", ".join(unknown)))
            checks.append(_Check(name, "nested_object", col.list.len() > 0, message, col))
        for sub in item.item_fields:
            if sub.name not in names:
                if sub.required:
                    message = pl.format("attribute '{}' items have no '{}'", _lit(key), _lit(sub.name))
                    checks.append(_Check(name, "required", col.list.len() > 0, message, col))
                continue
            if names[sub.name] not in {pl.String(), pl.Null()}:
                message = pl.format("attribute '{}' item field '{}' must be a string", _lit(key), _lit(sub.name))
                checks.append(_Check(name, "type", col.list.len() > 0, message, col))
                continue
            element = pl.element().struct.field(sub.name)
            if sub.required:
                message = pl.format("attribute '{}' has an item without '{}': {}", _lit(key), _lit(sub.name), quoted)
                checks.append(_Check(name, "required", col.list.eval(element.is_null()).list.any(), message, col))
            if sub.pattern:
                message = pl.format(
                    "attribute '{}' item {} does not match {}: {}",
                    _lit(key),
                    _lit(sub.name),
                    _lit(sub.pattern),
                    quoted,
                )
                pattern = _whitespace_free_pattern(sub.pattern) if sub.name in free_items else sub.pattern
                bad = col.list.eval(element.is_not_null() & ~element.str.contains(pattern)).list.any()
                checks.append(_Check(name, "pattern", bad, message, col))
    return checks, item.index_type


def _compatible(sent: pl.Expr, locked: str) -> pl.Expr:
    allowed = ["int64", "float"] if locked == "float" else [locked]
    return sent.is_in(allowed)


def _attribute_checks(
    work: pl.DataFrame,
    name: str,
    spec: ContractField,
    locked_types: Mapping[str, str],
    resolved: dict[str, pl.Expr],
) -> list[_Check]:
    key = name.removeprefix(ATTRIBUTE_PREFIX)
    dtype = work.schema[name]
    col = pl.col(name)
    present = col.is_not_null()
    quoted = _quoted(col, dtype)
    checks: list[_Check] = []
    if spec.key_pattern and not re.match(spec.key_pattern, key):
        message = pl.format("attribute key '{}' is not lowercase snake_case ({})", _lit(key), _lit(spec.key_pattern))
        checks.append(_Check(name, "key_pattern", present, message, col))
    if key in spec.reserved_keys:
        message = pl.format("attribute key '{}' is a reserved top-level field name", _lit(key))
        checks.append(_Check(name, "reserved_key", present, message, col))
    item = spec.map_attribute(key)
    locked = locked_types.get(key)
    if isinstance(dtype, pl.Struct) and is_variant_dtype(dtype):
        kind = _variant_kind(col, dtype)
        if item is not None:
            message = pl.format(
                "attribute '{}' must be a native {} column, got JSON {} {}",
                _lit(key),
                _lit(item.index_type),
                kind,
                quoted,
            )
            checks.append(_Check(name, "type", present, message, col))
            return checks
        refused = {
            "number[]": "number_array",
            "object": "nested_object",
            "object[]": "nested_object",
            "other": "type",
        }
        for shape, rule in refused.items():
            message = pl.format(
                "attribute '{}' sends a JSON {} {}: only primitives and arrays of strings",
                _lit(key),
                _lit(shape),
                quoted,
            )
            checks.append(_Check(name, rule, kind == shape, message, col))
        target = locked
        if target is None:
            kinds = work.select(kind.alias("k")).filter(pl.col("k").is_in(list(ATTRIBUTE_TYPES)))["k"]
            target = _most_common(kinds)
            reason = "most documents of this batch send"
        else:
            reason = "the index locked"
        if target is not None:
            message = pl.format(
                "attribute '{}' has type {} ({}) but this document sends {} {}",
                _lit(key),
                _lit(target),
                _lit(reason),
                kind,
                quoted,
            )
            fails = kind.is_in(list(ATTRIBUTE_TYPES)) & ~_compatible(kind, target)
            checks.append(_Check(name, "type_lock", fails, message, col))
            kinds = ["float", "int64"] if target == "float" else [target]
            resolved[name] = _variant_value(col, dtype, kinds, VARIANT_KINDS[target])
        else:
            resolved[name] = pl.lit(None, dtype=pl.String)
        has_text = any(f.name == VARIANT_PREFIX + "string" for f in dtype.fields)
        checks += _attribute_text_checks(name, col.struct.field(VARIANT_PREFIX + "string") if has_text else None)
        return checks
    if item is not None:
        free_items = _whitespace_free_items(work.get_column(name), item)
        map_checks, kind_name = _map_checks(name, key, dtype, item, free_items)
        checks += map_checks
    else:
        kind_name = _native_kind(dtype)
        if kind_name == "number[]":
            message = pl.format("attribute '{}' is an array of numbers {}: flatten or split it", _lit(key), quoted)
            checks.append(_Check(name, "number_array", present & (col.list.len() > 0), message, col))
        elif kind_name in {"object", "object[]"}:
            message = pl.format(
                "attribute '{}' is a nested {} {}: not a documented map attribute",
                _lit(key),
                _lit(kind_name),
                quoted,
            )
            checks.append(_Check(name, "nested_object", present, message, col))
        elif kind_name == "other":
            message = pl.format(
                "attribute '{}' has unsupported type {} {}", _lit(key), _lit(_dtype_label(dtype)), quoted
            )
            checks.append(_Check(name, "type", present, message, col))
        elif kind_name == "string":
            facts = _ByteFacts.of(work.get_column(name))
            checks += _attribute_text_checks(name, None if facts.replacement_free else col.cast(pl.String))
            if dtype != pl.String():
                resolved[name] = col.cast(pl.String)
    if (
        locked is not None
        and kind_name != "null"
        and not (kind_name == locked or (kind_name == "int64" and locked == "float"))
    ):
        message = pl.format(
            "attribute '{}' has type {} (the index locked) but this document sends {} {}",
            _lit(key),
            _lit(locked),
            _lit(kind_name),
            quoted,
        )
        checks.append(_Check(name, "type_lock", present, message, col))
    return checks


def _attribute_text_checks(name: str, text: pl.Expr | None) -> list[_Check]:
    """Return the ``utf8`` check of an attribute's text; none for None (no text, or bytes that rule U+FFFD out)."""
    if text is None:
        return []
    return [
        _Check(
            name,
            "utf8",
            text.str.contains(_REPLACEMENT, literal=True),
            pl.format("{} contains U+FFFD: the source bytes were not valid UTF-8", _quoted(text, pl.String())),
            text,
        )
    ]


# ----------------------------------------------------------------------------------------------------
# Frame preparation


def _split_attributes(frame: pl.DataFrame) -> pl.DataFrame:
    """Split a ``Struct`` column ``attributes`` into ``attributes.<key>`` columns."""
    dtype = frame.schema.get(ATTRIBUTES)
    if not isinstance(dtype, pl.Struct) or is_variant_dtype(dtype):
        return frame
    clash = [f.name for f in dtype.fields if ATTRIBUTE_PREFIX + f.name in frame.columns]
    if clash:
        raise ValueError(f"attributes struct and attributes.<key> columns both define {clash}")
    exprs = [pl.col(ATTRIBUTES).struct.field(f.name).alias(ATTRIBUTE_PREFIX + f.name) for f in dtype.fields]
    return frame.with_columns(exprs).drop(ATTRIBUTES)


def _issue_rows(work: pl.DataFrame, label: pl.Expr, base: Mapping[str, pl.Expr]) -> pl.DataFrame | None:
    dtype = work.schema.get(ISSUES_COLUMN)
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return None
    rows = work.filter(pl.col(ISSUES_COLUMN).list.len() > 0)
    if rows.height == 0:
        return None
    exploded = rows.select(
        _ROW, label.alias("__label"), *[e.alias(k) for k, e in base.items()], pl.col(ISSUES_COLUMN)
    ).explode(ISSUES_COLUMN)
    fields = {f.name for f in dtype.inner.fields}

    def sub(name: str) -> pl.Expr:
        if name in fields:
            return pl.col(ISSUES_COLUMN).struct.field(name).cast(pl.String)
        return pl.lit(None, dtype=pl.String)

    return exploded.select(
        _ROW,
        *base.keys(),
        field=pl.coalesce(sub("field"), _lit("")),
        rule=pl.coalesce(sub("rule"), _lit("source")),
        value=_truncate(sub("value"), settings.QUARANTINE_VALUE_MAX_CHARS),
        # A source that already wrote a complete "record X field F rule R: ..." message keeps it as is.
        message=pl.when(sub("message").str.starts_with("record "))
        .then(sub("message"))
        .otherwise(
            pl.format(
                "record {} field {} rule {}: {}",
                pl.col("__label"),
                pl.coalesce(sub("field"), _lit("")),
                pl.coalesce(sub("rule"), _lit("source")),
                pl.coalesce(sub("message"), _lit("reported by the source")),
            )
        ),
    )


# ----------------------------------------------------------------------------------------------------
# Entry point


def validate_frame(
    frame: pl.DataFrame,
    contract: Contract,
    *,
    source: str,
    sync_id: str,
    locked_types: Mapping[str, str] | None = None,
    model_sample: int = 50,
) -> ValidationOutcome:
    """Check a document frame against the contract with vectorized polars expressions.

    Args:
        frame: The document frame (docs/ARCHITECTURE.md); may carry variant columns, an ``attributes`` struct
            column and an ``_issues`` column.
        contract: The loaded contract.
        source: Source name, recorded in the quarantine.
        sync_id: Sync (run) id, recorded in the quarantine.
        locked_types: Attribute key -> index type locked by the index; None or empty for a fresh index.
        model_sample: Rows of ``valid`` to re-check with the pydantic model (0 disables the cross-check).

    Returns:
        A :class:`ValidationOutcome`; ``input_rows == valid.height + invalid_rows`` always holds.

    Raises:
        AssertionError: The row invariant does not hold (a bug in this module).

    """
    locked = dict(locked_types or {})
    input_rows = frame.height
    work = _split_attributes(frame).with_row_index(_ROW)
    schema = work.schema

    # Phase 1: type resolution of the declared fields.
    checks: list[_Check] = []
    typed: dict[str, pl.Expr] = {}
    type_failures: dict[str, pl.Expr] = {}
    originals: list[str] = []
    missing: set[str] = set()
    declared = {spec.name for spec in contract.fields}
    for spec in contract.fields:
        if spec.logical_type == "object":
            continue
        dtype = schema.get(spec.name)
        if dtype is None:
            missing.add(spec.name)
        expr, fails, message = _resolve_field(spec.name, dtype, spec)
        if expr is not None:
            typed[spec.name] = expr
        if fails is not None and message is not None:
            originals.append(spec.name)
            type_failures[_TYPEFAIL + spec.name] = fails.fill_null(value=False)
            value = _render(pl.col(_ORIG + spec.name), cast(pl.DataType, dtype))
            checks.append(_Check(spec.name, "type", pl.col(_TYPEFAIL + spec.name), message, value))
    if ATTRIBUTES in schema:
        dtype = schema[ATTRIBUTES]
        message = pl.format("attributes must be an object, got {}", _lit(_dtype_label(dtype)))
        originals.append(ATTRIBUTES)
        checks.append(_Check(ATTRIBUTES, "type", pl.col(_ORIG + ATTRIBUTES).is_not_null(), message, _lit("")))
    work = work.with_columns([pl.col(name).alias(_ORIG + name) for name in originals])
    work = work.with_columns([expr.alias(name) for name, expr in type_failures.items()])
    work = work.with_columns([expr.alias(name) for name, expr in typed.items()])
    schema = work.schema

    # Phase 2: value checks on typed columns.
    for spec in contract.fields:
        if spec.logical_type != "object":
            facts = _ByteFacts() if spec.name in missing else _ByteFacts.of(work.get_column(spec.name))
            checks += _field_checks(
                spec, schema[spec.name], spec.name in missing and spec.required, work.columns, facts
            )
    extras: dict[str, pl.Expr] = {}
    dtypes = dict(schema)
    for rule in contract.quality:
        for check in _quality_checks(rule, dtypes, extras):
            for name in (rule.field, rule.other):
                if name is not None:
                    check.fails = check.fails & _type_ok(name, work.columns)
            checks.append(check)
    resolved: dict[str, pl.Expr] = {}
    attr_spec = contract.attributes
    attr_columns = [name for name in work.columns if name.startswith(ATTRIBUTE_PREFIX)]
    if attr_spec is not None:
        for name in attr_columns:
            checks += _attribute_checks(work, name, attr_spec, locked, resolved)
    unknown = [
        name
        for name in frame.columns
        if name not in declared
        and not name.startswith(ATTRIBUTE_PREFIX)
        and not name.startswith("_")
        and name != ATTRIBUTES
    ]
    for name in unknown:
        message = pl.format("column '{}' is not declared by the contract", _lit(name))
        checks.append(
            _Check(
                name,
                "unknown_field",
                pl.col(name).is_not_null(),
                message,
                _render(pl.col(name), schema[name]),
            )
        )

    # Phase 3: evaluate all masks in one pass.
    work = work.with_columns([expr.alias(name) for name, expr in extras.items()])
    masks = [_MASK + str(i) for i in range(len(checks))]
    work = work.with_columns(
        [check.fails.fill_null(value=False).alias(mask) for check, mask in zip(checks, masks, strict=True)]
    )
    counts = work.select([pl.col(mask).sum() for mask in masks]).row(0) if masks else ()
    has_issues = ISSUES_COLUMN in schema and isinstance(schema[ISSUES_COLUMN], pl.List)
    issue_mask = pl.col(ISSUES_COLUMN).list.len().fill_null(0) > 0 if has_issues else pl.lit(value=False)
    bad = pl.any_horizontal([pl.col(m) for m in masks] + [issue_mask]) if masks or has_issues else pl.lit(value=False)

    # Phase 4: quarantine rows, only for failing records.
    ext = pl.col("external_id").cast(pl.String) if "external_id" in schema else pl.lit(None, dtype=pl.String)
    label = pl.coalesce(ext, pl.format("row {}", pl.col(_ROW)))
    rid = pl.col(RECORD_ID_COLUMN).cast(pl.String) if RECORD_ID_COLUMN in schema else pl.lit(None, dtype=pl.String)
    base = {"source": _lit(source), "sync_id": _lit(sync_id), "external_id": ext, "record_id": rid}
    parts: list[pl.DataFrame] = []
    for check, mask, count in zip(checks, masks, counts, strict=True):
        if not count:
            continue
        failing = work.filter(pl.col(mask)).with_columns(check.value.alias("__value"))
        rendered = _render(pl.col("__value"), failing.schema["__value"])
        parts.append(
            failing.select(
                _ROW,
                *[expr.alias(key) for key, expr in base.items()],
                field=_lit(check.field),
                rule=_lit(check.rule),
                value=_truncate(rendered, settings.QUARANTINE_VALUE_MAX_CHARS),
                message=pl.format(
                    "record {} field {} rule {}: {}",
                    label,
                    _lit(check.field),
                    _lit(check.rule),
                    check.message,
                ),
            )
        )
    issues = _issue_rows(work, label, base)
    if issues is not None:
        parts.append(issues)
    columns = [_ROW, *QUARANTINE_SCHEMA]
    if parts:
        quarantine_rows = pl.concat([p.select(columns) for p in parts], how="vertical_relaxed").sort(
            _ROW, maintain_order=True
        )
    else:
        quarantine_rows = pl.DataFrame(schema={_ROW: pl.UInt32, **QUARANTINE_SCHEMA})
    invalid_rows = quarantine_rows[_ROW].n_unique()

    # Phase 5: valid rows, cleaned.
    helper = [c for c in work.columns if c.startswith((_ORIG, _MASK, _EXTRA, _TYPEFAIL))] + [_ROW]
    drop = helper + [c for c in (ISSUES_COLUMN, ATTRIBUTES, *unknown) if c in work.columns]
    valid = work.filter(~bad).with_columns([expr.alias(name) for name, expr in resolved.items()]).drop(drop)
    if input_rows != valid.height + invalid_rows:
        raise AssertionError(
            f"validate_frame invariant broken: {input_rows} input rows != "
            f"{valid.height} valid + {invalid_rows} quarantined"
        )
    quarantine = quarantine_rows.drop(_ROW)
    rule_counts = {str(r): int(n) for r, n in quarantine.group_by("rule").len().sort("rule").iter_rows()}
    disagreements = _model_cross_check(valid, contract, model_sample) if model_sample > 0 else ()
    return ValidationOutcome(
        valid=valid,
        quarantine=quarantine,
        rule_counts=rule_counts,
        input_rows=input_rows,
        invalid_rows=invalid_rows,
        attribute_types=infer_attribute_types(valid),
        model_disagreements=disagreements,
        source=source,
        sync_id=sync_id,
    )


def _most_common(kinds: pl.Series) -> str | None:
    """Return the most frequent value of ``kinds``; on a tie the one seen first (never hash order); None if empty."""
    counts = (
        kinds.to_frame("k").group_by("k", maintain_order=True).len().sort("len", descending=True, maintain_order=True)
    )
    return str(counts["k"][0]) if counts.height else None


def infer_attribute_types(frame: pl.DataFrame) -> dict[str, str]:
    """Infer the index type of every attribute column that holds at least one value.

    Args:
        frame: A document frame (``attributes.<key>`` columns, or an ``attributes`` struct column).

    Returns:
        Attribute key (without prefix) -> ``string``, ``int64``, ``float``, ``bool``, ``string[]``,
        ``object`` or
        ``object[]``. A variant column gets the kind most of its rows have; refused shapes are left out.

    """
    frame = _split_attributes(frame)
    names = [name for name in frame.columns if name.startswith(ATTRIBUTE_PREFIX)]
    if not names:
        return {}
    present = frame.select([pl.col(name).is_not_null().any() for name in names]).row(0)
    out: dict[str, str] = {}
    for name, has_value in zip(names, present, strict=True):
        if not has_value:
            continue
        dtype = frame.schema[name]
        if isinstance(dtype, pl.Struct) and is_variant_dtype(dtype):
            kind = _most_common(frame.select(_variant_kind(pl.col(name), dtype).alias("k"))["k"].drop_nulls()) or "null"
        else:
            kind = _native_kind(dtype)
        if kind in ATTRIBUTE_TYPES or kind in {"object", "object[]"}:
            out[name.removeprefix(ATTRIBUTE_PREFIX)] = kind
    return out


# ----------------------------------------------------------------------------------------------------
# Single records (pydantic model)


_PYDANTIC_RULES: Mapping[str, str] = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "string_too_short": "min_length",
    "string_too_long": "max_length",
    "string_pattern_mismatch": "pattern",
    "literal_error": "valid_values",
    "greater_than_equal": "minimum",
    "less_than_equal": "maximum",
    "finite_number": "finite",
}


def check_document(record: Mapping[str, Any], contract: Contract) -> list[ValidationIssue]:
    """Validate one document with the contract's pydantic model and name each failure by its quarantine rule.

    Args:
        record: A document (nested ``attributes`` map), e.g. one line of a JSONL file.
        contract: The loaded contract.

    Returns:
        The issues found (empty when the document is valid).

    """
    model = pydantic_model(contract)
    try:
        model.model_validate(dict(record))
    except ValidationError as exc:
        return [_issue_from_error(err, contract) for err in exc.errors()]
    return []


def _issue_from_error(err: Mapping[str, Any], contract: Contract) -> ValidationIssue:
    loc = tuple(err.get("loc") or ())
    kind = str(err.get("type", ""))
    ctx = cast(Mapping[str, Any], err.get("ctx") or {})
    value = err.get("input")
    name = str(loc[0]) if loc else str(ctx.get("field", ""))
    name = str(ctx.get("field", name))
    try:
        spec: ContractField | None = contract.field(name)
    except KeyError:
        spec = None
    rule = _PYDANTIC_RULES.get(kind, kind)
    blank = isinstance(value, str) and not value.strip()
    if spec is not None:
        if len(loc) > 1 and spec.logical_type == "array" and (value is None or blank):
            rule = "empty_item"
        elif value is None and (kind.endswith("_type") or kind == "missing") and spec.required:
            rule = "required"
        elif kind.endswith(("_type", "_parsing")) or (rule == "valid_values" and not isinstance(value, str)):
            rule = "type"
        elif blank and spec.rejects_empty and rule in {"min_length", "pattern", "valid_values"}:
            rule = "empty_string"
        elif rule == "pattern" and spec.code_list:
            rule = spec.code_list
        elif rule == "pattern" and spec.format and not spec.pattern:
            rule = spec.format
    shown = None if value is None else str(value)[: settings.QUARANTINE_VALUE_MAX_CHARS]
    return ValidationIssue(field=name, rule=rule, message=str(err.get("msg", "")), value=shown)


def _model_cross_check(valid: pl.DataFrame, contract: Contract, sample: int) -> tuple[str, ...]:
    if valid.height == 0:
        return ()
    step = max(1, valid.height // sample)
    rows = valid.gather_every(step).head(sample)
    out: list[str] = []
    for doc in frame_documents(_split_attributes(rows)):
        for issue in check_document(doc, contract):
            out.append(f"record {doc.get('external_id')}: field {issue.field} rule {issue.rule}: {issue.message}")
    return tuple(out)


# ----------------------------------------------------------------------------------------------------
# Reporting


def diagnostics(frame_in: pl.DataFrame, outcome: ValidationOutcome) -> dict[str, Any]:
    """Summarize one validated batch for sync history, asset metadata and the CLI.

    Args:
        frame_in: The frame that was validated.
        outcome: Its :class:`ValidationOutcome`.

    Returns:
        A JSON-serializable dict: ``rows``, ``valid``, ``quarantined``, ``invalid_share``, ``rule_counts``,
        ``top_failures`` (field, rule, count, example message), ``fill_rate`` per column, ``locales``
        (document count per locale), ``duplicates`` (rows sharing an external_id) and ``markdown`` (the same
        as a report).

    """
    frame = _split_attributes(frame_in)
    rows = frame.height
    columns = [c for c in frame.columns if not c.startswith("_")]
    fill: dict[str, float] = {}
    if rows and columns:
        counts = frame.select([pl.col(c).is_not_null().sum() for c in columns]).row(0)
        fill = {c: round(int(n) / rows, 4) for c, n in zip(columns, counts, strict=True)}
    locales: dict[str, int] = {}
    if "locale" in frame.columns:
        for value, n in frame.group_by(pl.col("locale").cast(pl.String)).len().sort("locale").iter_rows():
            locales[str(value) if value is not None else "(none)"] = int(n)
    duplicates = 0
    if "external_id" in frame.columns:
        ext = pl.col("external_id")
        duplicates = int(frame.select((ext.is_not_null() & ext.is_duplicated()).sum()).item())
    top: list[dict[str, Any]] = []
    q = outcome.quarantine
    if q.height:
        grouped = (
            q.group_by("field", "rule")
            .agg(pl.len().alias("count"), pl.col("message").first().alias("example"))
            .sort(["count", "field", "rule"], descending=[True, False, False])
            .head(20)
        )
        top = [dict(row) for row in grouped.iter_rows(named=True)]
    result: dict[str, Any] = {
        "source": outcome.source,
        "sync_id": outcome.sync_id,
        "rows": outcome.input_rows,
        "valid": outcome.valid.height,
        "quarantined": outcome.invalid_rows,
        "invalid_share": round(outcome.invalid_share, 6),
        "rule_counts": dict(outcome.rule_counts),
        "top_failures": top,
        "fill_rate": fill,
        "locales": locales,
        "duplicates": duplicates,
        "attribute_types": dict(outcome.attribute_types),
        "model_disagreements": list(outcome.model_disagreements),
    }
    result["markdown"] = _diagnostics_markdown(result)
    return result


def _diagnostics_markdown(d: Mapping[str, Any]) -> str:
    lines = [
        f"### Contract checks: {d['source']} sync {d['sync_id']}",
        "",
        f"{d['rows']} documents: {d['valid']} valid, {d['quarantined']} quarantined "
        f"({d['invalid_share']:.2%}); {d['duplicates']} rows share an external_id.",
        "",
    ]
    top = cast(list[Mapping[str, Any]], d["top_failures"])
    if top:
        lines += ["| Field | Rule | Count | Example |", "|---|---|---|---|"]
        for row in top:
            example = str(row["example"]).replace("|", "\\|")
            lines.append(f"| `{row['field']}` | `{row['rule']}` | {row['count']} | {example} |")
        lines.append("")
    locales = cast(Mapping[str, int], d["locales"])
    if locales:
        lines.append("Locales: " + ", ".join(f"{k} {v}" for k, v in locales.items()))
        lines.append("")
    fill = cast(Mapping[str, float], d["fill_rate"])
    if fill:
        lines += ["| Column | Fill rate |", "|---|---|"]
        lines += [f"| `{k}` | {v:.1%} |" for k, v in fill.items()]
    return "\n".join(lines) + "\n"


def circuit_breaker(outcome: ValidationOutcome, max_invalid_share: float) -> str | None:
    """Decide whether a sync must stop because too many documents failed the contract.

    Args:
        outcome: The validation outcome of the batch (or of the whole sync, merged).
        max_invalid_share: Largest tolerated share of quarantined documents (contract ``maxInvalidShare``).

    Returns:
        None when the share is within the limit, else a one-paragraph failure summary naming the top rules.

    """
    share = outcome.invalid_share
    if outcome.input_rows == 0 or share <= max_invalid_share:
        return None
    q = outcome.quarantine
    top = (
        q.group_by("field", "rule")
        .agg(pl.len().alias("n"), pl.col("message").first().alias("example"))
        .sort(["n", "field", "rule"], descending=[True, False, False])
        .head(5)
    )
    rules = "; ".join(f"{f}/{r} x{n} (e.g. {ex})" for f, r, n, ex in top.iter_rows())
    return (
        f"{outcome.invalid_rows} of {outcome.input_rows} documents ({share:.1%}) failed contract checks, "
        "above the "
        f"limit of {max_invalid_share:.1%}; top failing rules: {rules}"
    )


def merge_outcomes(outcomes: Iterable[ValidationOutcome]) -> ValidationOutcome:
    """Combine the outcomes of the chunks, for :func:`circuit_breaker` and :func:`diagnostics`."""
    items = list(outcomes)
    if not items:
        empty = pl.DataFrame(schema=dict(QUARANTINE_SCHEMA))
        return ValidationOutcome(valid=pl.DataFrame(), quarantine=empty, rule_counts={}, input_rows=0, invalid_rows=0)
    counts: Counter[str] = Counter()
    types: dict[str, str] = {}
    for item in items:
        counts.update(item.rule_counts)
        for key, kind in item.attribute_types.items():
            types.setdefault(key, kind)
    return ValidationOutcome(
        valid=pl.concat([i.valid for i in items], how="diagonal_relaxed"),
        quarantine=pl.concat([i.quarantine for i in items], how="vertical_relaxed"),
        rule_counts=dict(sorted(counts.items())),
        input_rows=sum(i.input_rows for i in items),
        invalid_rows=sum(i.invalid_rows for i in items),
        attribute_types=types,
        model_disagreements=tuple(d for i in items for d in i.model_disagreements),
        source=items[0].source,
        sync_id=items[0].sync_id,
    )


def summarize_outcomes(outcomes: Iterable[ValidationOutcome]) -> ValidationOutcome:
    """Combine chunk outcomes WITHOUT their valid frames (bounded memory), for :func:`circuit_breaker`.

    Args:
        outcomes: The outcomes of every chunk of one sync.

    Returns:
        An outcome whose ``valid`` is empty and whose quarantine, counts and row totals cover the whole sync.

    """
    light = [
        ValidationOutcome(
            valid=pl.DataFrame(),
            quarantine=o.quarantine,
            rule_counts=o.rule_counts,
            input_rows=o.input_rows,
            invalid_rows=o.invalid_rows,
            attribute_types=o.attribute_types,
            model_disagreements=o.model_disagreements,
            source=o.source,
            sync_id=o.sync_id,
        )
        for o in outcomes
    ]
    return merge_outcomes(light)


def aggregate_diagnostics(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Combine per-chunk :func:`diagnostics` into one per-sync report (fill rates weighted by rows).

    Args:
        parts: The diagnostics of each chunk, in order.

    Returns:
        The same keys as :func:`diagnostics`, covering the whole sync, with a fresh ``markdown`` rendering.

    """
    if not parts:
        empty: dict[str, Any] = {
            "source": "",
            "sync_id": "",
            "rows": 0,
            "valid": 0,
            "quarantined": 0,
            "invalid_share": 0.0,
            "rule_counts": {},
            "top_failures": [],
            "fill_rate": {},
            "locales": {},
            "duplicates": 0,
            "attribute_types": {},
            "model_disagreements": [],
        }
        empty["markdown"] = _diagnostics_markdown(empty)
        return empty
    rows = sum(int(p["rows"]) for p in parts)
    rule_counts: Counter[str] = Counter()
    locales: Counter[str] = Counter()
    filled: Counter[str] = Counter()
    top: dict[tuple[str, str], dict[str, Any]] = {}
    types: dict[str, str] = {}
    for part in parts:
        rule_counts.update(cast(Mapping[str, int], part["rule_counts"]))
        locales.update(cast(Mapping[str, int], part["locales"]))
        for column, rate in cast(Mapping[str, float], part["fill_rate"]).items():
            filled[column] += round(float(rate) * int(part["rows"]))
        for row in cast(list[Mapping[str, Any]], part["top_failures"]):
            key = (str(row["field"]), str(row["rule"]))
            entry = top.setdefault(key, {"field": key[0], "rule": key[1], "count": 0, "example": row["example"]})
            entry["count"] += int(row["count"])
        for key, kind in cast(Mapping[str, str], part["attribute_types"]).items():
            types.setdefault(key, kind)
    quarantined = sum(int(p["quarantined"]) for p in parts)
    result: dict[str, Any] = {
        "source": parts[0]["source"],
        "sync_id": parts[0]["sync_id"],
        "rows": rows,
        "valid": sum(int(p["valid"]) for p in parts),
        "quarantined": quarantined,
        "invalid_share": round(quarantined / rows, 6) if rows else 0.0,
        "rule_counts": dict(sorted(rule_counts.items())),
        "top_failures": sorted(top.values(), key=lambda r: (-int(r["count"]), r["field"], r["rule"]))[:20],
        "fill_rate": {c: round(n / rows, 4) for c, n in sorted(filled.items())} if rows else {},
        "locales": dict(sorted(locales.items())),
        "duplicates": sum(int(p["duplicates"]) for p in parts),
        "attribute_types": types,
        "model_disagreements": [d for p in parts for d in cast(list[str], p["model_disagreements"])],
    }
    result["markdown"] = _diagnostics_markdown(result)
    return result
