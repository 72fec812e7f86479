"""Constants of the files source and the top-level field types, read from the SyncProductInput contract."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import polars as pl
import yaml

from aac_etl import settings

FileFormat = Literal["jsonl", "csv", "parquet"]

SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
"""File name suffix (lowercase) -> format. Other files in a folder are ignored."""

MAIN_TABLE = "documents"
ATTRIBUTE_TYPES_TABLE = "attribute_types"
"""Lookup table repeated in every raw chunk: the JSON kind of each attribute key at its first occurrence."""

LIST_SEPARATOR = "|"
"""Separator of list fields (categories, category_ids, tags) in CSV cells."""

READ_BLOCK_BYTES = 16 * 1024 * 1024
"""JSONL files are read in blocks of about this size (bounded memory for large files)."""

MESSAGE_VALUE_MAX_CHARS = 80
"""Values quoted inside issue messages are cut to this many characters."""

ISSUE_VALUE_MAX_CHARS = settings.QUARANTINE_VALUE_MAX_CHARS

ATTRIBUTES_FIELD = "attributes"
ATTRIBUTE_PREFIX = "attributes."
RECORD_ID = "_record_id"
ISSUES = "_issues"

# Internal columns of the raw ``documents`` table.
FORMAT_COL = "_format"
FILE_COL = "_file"
LINE_COL = "_line"
RAW_COL = "_raw"
UTF8_ERROR_COL = "_utf8_error"

ISSUE_DTYPE = pl.Struct({"field": pl.String, "rule": pl.String, "value": pl.String, "message": pl.String})
ISSUES_DTYPE = pl.List(ISSUE_DTYPE)

Kind = str
"""JSON kind of a value: string, integer, number, boolean, string[], number[], boolean[], object, object[]
(column-determining), or empty[] / mixed[] (never determine a column type)."""

KIND_DTYPES: dict[Kind, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
    "string[]": pl.List(pl.String),
    "number[]": pl.List(pl.Float64),
    "boolean[]": pl.List(pl.Boolean),
}
"""Column dtype per kind; ``object`` and ``object[]`` values decode into an inferred Struct."""

KIND_LABELS: dict[Kind, str] = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "string[]": "array of strings",
    "number[]": "array of numbers",
    "boolean[]": "array of booleans",
    "object": "object",
    "object[]": "array of objects",
    "empty[]": "empty array",
    "mixed[]": "array of mixed types",
}


@dataclass(frozen=True)
class FieldSpec:
    """One top-level SyncProductInput field.

    Attributes:
        name: Field name.
        kind: JSON kind the field accepts: ``string``, ``number``, ``integer``, ``string[]`` or ``object``.
        required: Whether the contract requires it (empty strings of optional fields become null).
        logical: The contract's logicalType (``date`` fields also accept Parquet date/time columns).

    """

    name: str
    kind: Kind
    required: bool
    logical: str

    @property
    def dtype(self) -> pl.DataType:
        """Column dtype in the document frame (``object`` fields have no column of their own)."""
        return KIND_DTYPES[self.kind]

    def accepts(self) -> tuple[Kind, ...]:
        """Value kinds accepted without an issue (an integer is a valid number, ``[]`` a valid array)."""
        if self.kind == "number":
            return ("number", "integer")
        if self.kind == "string[]":
            return ("string[]", "empty[]")
        return (self.kind,)


_LOGICAL_KINDS: dict[str, Kind] = {
    "string": "string",
    "date": "string",
    "number": "number",
    "integer": "integer",
    "object": "object",
}


def _field_kind(prop: dict[str, Any]) -> Kind:
    logical = str(prop.get("logicalType", "string"))
    if logical == "array":
        item = str((prop.get("items") or {}).get("logicalType", "string"))
        if item != "string":
            raise ValueError(f"contract field {prop.get('name')!r}: arrays of {item} are not supported")
        return "string[]"
    try:
        return _LOGICAL_KINDS[logical]
    except KeyError:
        raise ValueError(f"contract field {prop.get('name')!r}: unsupported logicalType {logical!r}") from None


@lru_cache(maxsize=1)
def contract_fields() -> tuple[FieldSpec, ...]:
    """Return the top-level fields of the SyncProductInput contract, in contract order.

    Returns:
        One spec per contract property (``attributes`` included, kind ``object``).

    Raises:
        ValueError: The contract uses a type this source cannot read.

    """
    document = yaml.safe_load(settings.contract_path().read_text(encoding="utf-8"))
    props: list[dict[str, Any]] = document["schema"][0]["properties"]
    return tuple(
        FieldSpec(str(p["name"]), _field_kind(p), bool(p.get("required", False)), str(p.get("logicalType")))
        for p in props
    )


def scalar_fields() -> tuple[FieldSpec, ...]:
    """Return the contract fields that become one document-frame column each (all but ``attributes``)."""
    return tuple(f for f in contract_fields() if f.kind != "object")


def field_names() -> frozenset[str]:
    """Return the names of all top-level contract fields."""
    return frozenset(f.name for f in contract_fields())
