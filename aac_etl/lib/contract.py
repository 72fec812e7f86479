"""The SyncProductInput data contract (ODCS v3) and every form derived from it.

``data_contracts/sync_product_input.odcs.yaml`` is the single source of truth. This module loads it into a
typed, hashable :class:`Contract` and derives, without restating any constraint:

* :func:`pydantic_model` - a strict pydantic model for single records (file sources, ``quarantine show``,
  samples);
* :func:`expectation_suite` / :func:`run_expectation_suite` - a Great Expectations 1.x suite for asset checks;
* :func:`typesense_schema` / :func:`schema_hash` - the Typesense collection schema;
* :func:`field_table_markdown` / :func:`render_readme_table` - the README's field table.

The vectorized polars checks that gate every batch live in :mod:`aac_etl.lib.validate` and read the same
:class:`Contract`.

Typesense decisions (server 0.24.1):
    * ``id`` is never declared: Typesense creates it; the loader sets it from ``external_id``.
    * ``default_sorting_field`` is only set when the contract's ``typesenseNumericSortField`` names a
      *required*
      numeric field: Typesense refuses an optional default sorting field, and ``price`` is optional. Without
      it,
      Typesense orders ties by insertion, and ``price`` stays sortable through ``sort: true``.
    * ``enable_nested_fields: true`` and a single ``attributes`` field of type ``object`` with ``facet:
      true``:
      in 0.24 the properties of an object field apply to all its children, whose types Typesense detects
      from the
      first document that carries them - so every ``attributes.option_*`` key is facetable without being
      listed,
      and the per-attribute type lock of :mod:`aac_etl.lib.validate` mirrors what the index itself enforces.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, LiteralString, cast

import polars as pl
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from aac_etl import settings

if TYPE_CHECKING:
    from great_expectations.core.expectation_suite import ExpectationSuite

ATTRIBUTES = "attributes"
"""Name of the free-form attribute map; in a document frame its keys are columns ``attributes.<key>``."""
ATTRIBUTE_PREFIX = f"{ATTRIBUTES}."
VARIANT_PREFIX = "json:"
"""Field prefix of a variant column: a Struct holding one value per row under ``json:<kind>``."""

ISO8601_PATTERN = (
    r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:[.,]\d+)?)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?)?$"
)
"""Shape of an ISO 8601 date or date-time (``format: iso8601``); calendar validity is checked separately."""

FORMAT_PATTERNS: Mapping[str, str] = {"iso8601": ISO8601_PATTERN}
"""Regular expressions that implement the contract's ``logicalTypeOptions.format`` values."""

ATTRIBUTE_TYPES: tuple[str, ...] = ("string", "int64", "float", "bool", "string[]")
"""Index types an attribute may have (field-mapping reference, "Type inference")."""

MAP_ATTRIBUTE_TYPES: Mapping[str, str] = {"object": "object", "list": "object[]"}
"""Index type of a documented map attribute, by its ``kind``."""

LOGICAL_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "date"})
CODE_LISTS = frozenset({"iso4217"})
QUALITY_CHECKS = frozenset({"less_than", "same_length", "minor_unit_outlier"})

TABLE_START = "<!-- contract-table:start -->"
TABLE_END = "<!-- contract-table:end -->"


class ContractError(ValueError):
    """The contract file is malformed or violates a rule of the derived forms."""


@dataclass(frozen=True)
class TypesenseHint:
    """The ``typesense`` custom property of one field."""

    type: str
    facet: bool = False
    index: bool = True
    sort: bool | None = None
    optional: bool | None = None


@dataclass(frozen=True)
class ItemField:
    """One field of the objects held by a ``list`` map attribute (e.g. ``images[].url``)."""

    name: str
    logical_type: str
    required: bool = False
    pattern: str | None = None


@dataclass(frozen=True)
class MapAttribute:
    """A documented attribute that may hold objects (``price_by_currency``, ``images``, ...)."""

    name: str
    kind: Literal["object", "list"]
    key_code_list: str | None = None
    value_type: str | None = None
    value_minimum: float | None = None
    item_fields: tuple[ItemField, ...] = ()

    @property
    def index_type(self) -> str:
        """Type the index gives this attribute (``object`` or ``object[]``)."""
        return MAP_ATTRIBUTE_TYPES[self.kind]


@dataclass(frozen=True)
class ContractField:
    """One property of the contract's schema object, with every constraint the file declares."""

    name: str
    logical_type: str
    required: bool = False
    unique: bool = False
    description: str = ""
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    valid_values: tuple[str, ...] = ()
    code_list: str | None = None
    items_type: str | None = None
    items_min_length: int | None = None
    typesense: TypesenseHint | None = None
    key_pattern: str | None = None
    reserved_keys: tuple[str, ...] = ()
    refuse: tuple[str, ...] = ()
    map_attributes: tuple[MapAttribute, ...] = ()

    @property
    def effective_pattern(self) -> str | None:
        """The regular expression values must match: ``pattern``, else the one implementing ``format``."""
        if self.pattern:
            return self.pattern
        if self.format:
            return FORMAT_PATTERNS[self.format]
        return None

    @property
    def rejects_empty(self) -> bool:
        """Whether an empty or blank string breaks a constraint (reported as ``empty_string``)."""
        if self.logical_type not in {"string", "date"}:
            return False
        pattern = self.effective_pattern
        return bool(
            (self.min_length or 0) >= 1
            or (pattern is not None and not re.search(pattern, ""))
            or self.valid_values
            or self.code_list
        )

    def map_attribute(self, key: str) -> MapAttribute | None:
        """Return the documented map attribute called ``key``, if any."""
        for item in self.map_attributes:
            if item.name == key:
                return item
        return None


@dataclass(frozen=True)
class QualityRule:
    """A schema-level rule (``quality`` list): its name, implementing check and parameters."""

    rule: str
    check: str
    field: str
    other: str | None = None
    by: str | None = None
    description: str = ""
    params: tuple[tuple[str, float], ...] = ()

    def param(self, name: str, default: float) -> float:
        """Return the numeric parameter ``name`` of the implementation, or ``default``."""
        for key, value in self.params:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class Contract:
    """The loaded contract. Hashable, so derived forms can be cached per contract."""

    id: str
    name: str
    version: str
    fields: tuple[ContractField, ...]
    quality: tuple[QualityRule, ...] = ()
    max_invalid_share: float = settings.DEFAULT_MAX_INVALID_SHARE
    numeric_sort_field: str | None = None
    fingerprint: str = ""
    description: str = ""
    source_path: str = field(default="", compare=False)

    def field(self, name: str) -> ContractField:
        """Return the field called ``name``.

        Raises:
            KeyError: The contract has no such field.

        """
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of all top-level fields, in file order."""
        return tuple(item.name for item in self.fields)

    @property
    def required_fields(self) -> tuple[str, ...]:
        """Names of the required top-level fields."""
        return tuple(item.name for item in self.fields if item.required)

    @property
    def attributes(self) -> ContractField | None:
        """The ``attributes`` field, when the contract declares one."""
        for item in self.fields:
            if item.name == ATTRIBUTES:
                return item
        return None


# ----------------------------------------------------------------------------------------------------
# Loading


def _custom(prop: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in prop.get("customProperties") or []:
        if not isinstance(entry, Mapping) or "property" not in entry:
            raise ContractError(f"customProperties entry {entry!r} has no 'property'")
        out[str(entry["property"])] = entry.get("value")
    return out


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _check_regex(pattern: str | None, where: str) -> None:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ContractError(f"{where}: invalid pattern {pattern!r}: {exc}") from exc


def _parse_typesense(value: Any, where: str) -> TypesenseHint | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or "type" not in value:
        raise ContractError(f"{where}: typesense property needs a mapping with 'type'")
    hint = TypesenseHint(
        type=str(value["type"]),
        facet=bool(value.get("facet", False)),
        index=bool(value.get("index", True)),
        sort=None if value.get("sort") is None else bool(value["sort"]),
        optional=None if value.get("optional") is None else bool(value["optional"]),
    )
    if not hint.index and hint.optional is not True:
        raise ContractError(f"{where}: Typesense requires 'optional: true' on a field with 'index: false'")
    return hint


def _parse_map_attributes(value: Any, patterns: Mapping[str, str | None]) -> tuple[MapAttribute, ...]:
    if not value:
        return ()
    if not isinstance(value, Mapping):
        raise ContractError("attributes: mapAttributes must be a mapping")
    out: list[MapAttribute] = []
    for name, spec in cast(Mapping[str, Any], value).items():
        kind = spec.get("kind")
        if kind not in MAP_ATTRIBUTE_TYPES:
            raise ContractError(f"mapAttributes.{name}: kind must be one of {sorted(MAP_ATTRIBUTE_TYPES)}")
        keys = spec.get("keys") or {}
        values = spec.get("values") or {}
        items: list[ItemField] = []
        for item_name, item_spec in (spec.get("itemFields") or {}).items():
            pattern_of = item_spec.get("patternOf")
            if pattern_of is not None and pattern_of not in patterns:
                raise ContractError(f"mapAttributes.{name}.{item_name}: patternOf names unknown {pattern_of!r}")
            items.append(
                ItemField(
                    name=str(item_name),
                    logical_type=str(item_spec.get("logicalType", "string")),
                    required=bool(item_spec.get("required", False)),
                    pattern=item_spec.get("pattern") or (patterns[pattern_of] if pattern_of else None),
                )
            )
        code_list = keys.get("codeList")
        if code_list is not None and code_list not in CODE_LISTS:
            raise ContractError(f"mapAttributes.{name}: unknown code list {code_list!r}")
        out.append(
            MapAttribute(
                name=str(name),
                kind=kind,
                key_code_list=code_list,
                value_type=values.get("logicalType"),
                value_minimum=_opt_float(values.get("minimum")),
                item_fields=tuple(items),
            )
        )
    return tuple(out)


def _parse_property(
    prop: Mapping[str, Any], top_level: Sequence[str], patterns: Mapping[str, str | None]
) -> ContractField:
    name = str(prop["name"])
    logical_type = str(prop.get("logicalType", "string"))
    if logical_type not in LOGICAL_TYPES:
        raise ContractError(f"{name}: unknown logicalType {logical_type!r}")
    opts: Mapping[str, Any] = prop.get("logicalTypeOptions") or {}
    custom = _custom(prop)
    items: Mapping[str, Any] = prop.get("items") or {}
    item_opts: Mapping[str, Any] = items.get("logicalTypeOptions") or {}
    fmt = opts.get("format")
    if fmt is not None and fmt not in FORMAT_PATTERNS:
        raise ContractError(f"{name}: unknown format {fmt!r}")
    code_list = custom.get("codeList")
    if code_list is not None and code_list not in CODE_LISTS:
        raise ContractError(f"{name}: unknown code list {code_list!r}")
    reserved = custom.get("reservedKeys")
    if reserved == "fromTopLevel":
        reserved_keys = tuple(top_level)
    elif reserved is None:
        reserved_keys = ()
    else:
        reserved_keys = tuple(str(key) for key in reserved)
    out = ContractField(
        name=name,
        logical_type=logical_type,
        required=bool(prop.get("required", False)),
        unique=bool(prop.get("unique", False)),
        description=" ".join(str(prop.get("description", "")).split()),
        min_length=_opt_int(opts.get("minLength")),
        max_length=_opt_int(opts.get("maxLength")),
        pattern=opts.get("pattern"),
        format=fmt,
        minimum=_opt_float(opts.get("minimum")),
        maximum=_opt_float(opts.get("maximum")),
        valid_values=tuple(str(v) for v in custom.get("validValues") or ()),
        code_list=code_list,
        items_type=items.get("logicalType"),
        items_min_length=_opt_int(item_opts.get("minLength")),
        typesense=_parse_typesense(custom.get("typesense"), name),
        key_pattern=custom.get("keyPattern"),
        reserved_keys=reserved_keys,
        refuse=tuple(str(v) for v in custom.get("refuse") or ()),
        map_attributes=_parse_map_attributes(custom.get("mapAttributes"), patterns),
    )
    _check_regex(out.pattern, name)
    _check_regex(out.key_pattern, f"{name}.keyPattern")
    return out


def _parse_quality(entry: Mapping[str, Any], names: Sequence[str]) -> QualityRule:
    impl = entry.get("implementation")
    rule = entry.get("rule")
    if entry.get("engine") != "aac_etl" or not isinstance(impl, Mapping) or not rule:
        raise ContractError(f"quality rule {entry!r}: needs engine aac_etl, rule and an implementation mapping")
    check = impl.get("check")
    if check not in QUALITY_CHECKS:
        raise ContractError(f"quality rule {rule}: unknown check {check!r}; known: {sorted(QUALITY_CHECKS)}")
    prop = impl.get("property")
    other = impl.get("other")
    by = impl.get("by")
    for ref in (prop, other, by):
        if ref is not None and ref not in names:
            raise ContractError(f"quality rule {rule}: unknown property {ref!r}")
    if prop is None:
        raise ContractError(f"quality rule {rule}: implementation needs 'property'")
    params = tuple(sorted((str(k), float(v)) for k, v in impl.items() if k not in {"check", "property", "other", "by"}))
    return QualityRule(
        rule=str(rule),
        check=str(check),
        field=str(prop),
        other=None if other is None else str(other),
        by=None if by is None else str(by),
        description=" ".join(str(entry.get("description", "")).split()),
        params=params,
    )


def contract_from_mapping(doc: Mapping[str, Any], source_path: str = "") -> Contract:
    """Build a :class:`Contract` from the parsed YAML of an ODCS v3 contract.

    Args:
        doc: The parsed contract document.
        source_path: Where it was read from (for messages only).

    Returns:
        The typed contract; its ``fingerprint`` is a hash of ``doc`` (comments and formatting do not count).

    Raises:
        ContractError: The document is not an ODCS v3 data contract this module understands.

    """
    if not str(doc.get("apiVersion", "")).startswith("v3") or doc.get("kind") != "DataContract":
        raise ContractError("not an ODCS v3 DataContract (apiVersion v3.x, kind DataContract)")
    schema = doc.get("schema") or []
    if len(schema) != 1:
        raise ContractError("the contract must declare exactly one schema object")
    obj: Mapping[str, Any] = schema[0]
    props: Sequence[Mapping[str, Any]] = obj.get("properties") or []
    names = [str(p["name"]) for p in props]
    if len(set(names)) != len(names):
        raise ContractError("duplicate property names")
    patterns = {str(p["name"]): (p.get("logicalTypeOptions") or {}).get("pattern") for p in props}
    fields = tuple(_parse_property(p, names, patterns) for p in props)
    quality = tuple(_parse_quality(q, names) for q in obj.get("quality") or [])
    top = _custom(doc)
    sort_field = top.get("typesenseNumericSortField")
    if sort_field is not None and sort_field not in names:
        raise ContractError(f"typesenseNumericSortField names unknown property {sort_field!r}")
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    description = doc.get("description") or {}
    return Contract(
        id=str(doc.get("id", "")),
        name=str(doc.get("name") or obj.get("name")),
        version=str(doc.get("version", "0")),
        fields=fields,
        quality=quality,
        max_invalid_share=float(top.get("maxInvalidShare", settings.DEFAULT_MAX_INVALID_SHARE)),
        numeric_sort_field=sort_field,
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest()[:16],
        description=" ".join(str(description.get("purpose", "")).split()) if isinstance(description, Mapping) else "",
        source_path=source_path,
    )


@lru_cache(maxsize=16)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> Contract:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, Mapping):
        raise ContractError(f"{path}: not a YAML mapping")
    return contract_from_mapping(cast(Mapping[str, Any], doc), source_path=path)


def load_contract(path: Path | str | None = None) -> Contract:
    """Load the contract file (cached until the file changes).

    Args:
        path: Contract file; defaults to :func:`aac_etl.settings.contract_path`.

    Returns:
        The typed :class:`Contract`.

    Raises:
        ContractError: The file is not a valid contract.

    """
    resolved = Path(path) if path is not None else settings.contract_path()
    stat = resolved.resolve().stat()
    return _load_cached(str(resolved.resolve()), stat.st_mtime_ns, stat.st_size)


@cache
def code_list_values(name: str) -> frozenset[str]:
    """Return the members of a code list the contract names (``iso4217``: active alphabetic currency codes).

    Raises:
        ContractError: Unknown code list.

    """
    if name == "iso4217":
        import pycountry

        return frozenset(str(cur.alpha_3) for cur in pycountry.currencies)
    raise ContractError(f"unknown code list {name!r}")


CODE_LIST_LABELS: Mapping[str, str] = {"iso4217": "ISO 4217"}


def attribute_value_type(value: object) -> str:
    """Classify one raw (JSON-decoded) attribute value by the index type it would get.

    Returns:
        One of :data:`ATTRIBUTE_TYPES`, or ``number[]`` (refused), ``object``/``object[]`` (refused except
        for the
        documented map attributes), ``null`` or ``other`` (mixed or nested arrays).

    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        items = cast(Sequence[object], value)
        kinds = {attribute_value_type(item) for item in items}
        if not kinds or kinds == {"string"}:
            return "string[]"
        if kinds <= {"int64", "float"}:
            return "number[]"
        if kinds == {"object"}:
            return "object[]"
    return "other"


def is_calendar_date(text: str) -> bool:
    """Return whether the date part of an ISO 8601 value that matched :data:`ISO8601_PATTERN` exists."""
    try:
        dt.date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------
# pydantic model


def _error(kind: str, template: str, context: dict[str, Any] | None = None) -> PydanticCustomError:
    """Build a pydantic error whose type is the quarantine rule name (dynamic, hence the casts)."""
    return PydanticCustomError(cast(LiteralString, kind), cast(LiteralString, template), context)


_UNDECODED = re.compile("[\ufffd\ud800-\udfff]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text_errors(value: str) -> str:
    if _UNDECODED.search(value):
        raise _error("utf8", "text contains U+FFFD or lone surrogates: the source bytes were not valid UTF-8")
    if _CONTROL_CHARS.search(value):
        raise _error("control_chars", "text contains control characters")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _error("empty_string", "empty string: drop the field instead")
    return value


def _code_list_validator(name: str) -> Any:
    codes = code_list_values(name)
    label = CODE_LIST_LABELS.get(name, name)

    def check(value: str) -> str:
        if value not in codes:
            raise _error(name, "'{value}' is not an uppercase {label} code", {"value": value, "label": label})
        return value

    return check


def _date_validator(value: str) -> str:
    if not is_calendar_date(value):
        raise _error("iso8601", "'{value}' is not a calendar date", {"value": value})
    return value


def _string_type(spec: ContractField) -> Any:
    meta: list[Any] = [
        StringConstraints(min_length=spec.min_length, max_length=spec.max_length, pattern=spec.effective_pattern)
    ]
    if spec.rejects_empty:
        meta.append(AfterValidator(_not_blank))
    meta.append(AfterValidator(_text_errors))
    if spec.code_list:
        meta.append(AfterValidator(_code_list_validator(spec.code_list)))
    if spec.format == "iso8601":
        meta.append(AfterValidator(_date_validator))
    if spec.valid_values:
        literal: Any = Literal.__getitem__(spec.valid_values)  # type: ignore[attr-defined]
        return Annotated[literal, AfterValidator(_text_errors)]
    return Annotated[str, *meta]


def _attributes_validator(spec: ContractField) -> Any:
    key_re = re.compile(spec.key_pattern) if spec.key_pattern else None
    reserved = set(spec.reserved_keys)
    maps = {item.name: item for item in spec.map_attributes}

    def fail(rule: str, key: str, message: str) -> PydanticCustomError:
        text = f"attribute '{key}': {message}".replace("{", "{{").replace("}", "}}")
        return _error(rule, text, {"key": key, "field": f"{ATTRIBUTE_PREFIX}{key}"})

    def check_map(key: str, value: object, item: MapAttribute) -> None:
        kind = attribute_value_type(value)
        if item.kind == "list" and value == []:
            return
        if kind != item.index_type:
            raise fail("type", key, f"expected {item.index_type}, got {kind}")
        if item.kind == "object":
            for sub, number in cast(Mapping[str, object], value).items():
                if item.key_code_list and sub not in code_list_values(item.key_code_list):
                    raise fail(item.key_code_list, key, f"key {sub!r} is not an uppercase ISO 4217 code")
                ok_types = {"int64"} if item.value_type == "integer" else {"int64", "float"}
                if attribute_value_type(number) not in ok_types:
                    raise fail("type", key, f"value of {sub!r} must be a {item.value_type}")
                if isinstance(number, float) and not math.isfinite(number):
                    raise fail("finite", key, f"value of {sub!r} is not finite")
                if item.value_minimum is not None and cast(float, number) < item.value_minimum:
                    raise fail("minimum", key, f"value of {sub!r} is below {item.value_minimum:g}")
            return
        for entry in cast(Sequence[Mapping[str, object]], value):
            unknown = set(entry) - {f.name for f in item.item_fields}
            if unknown:
                raise fail("nested_object", key, f"unknown item fields {sorted(unknown)}")
            for sub in item.item_fields:
                got = entry.get(sub.name)
                if got is None:
                    if sub.required:
                        raise fail("required", key, f"an item has no {sub.name!r}")
                    continue
                if not isinstance(got, str):
                    raise fail("type", key, f"item field {sub.name!r} must be a string")
                if sub.pattern and not re.search(sub.pattern, got):
                    raise fail("pattern", key, f"item {sub.name} {got!r} does not match {sub.pattern}")

    def check(value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if key_re is not None and not key_re.match(key):
                raise fail("key_pattern", key, f"key is not lowercase snake_case ({spec.key_pattern})")
            if key in reserved:
                raise fail("reserved_key", key, "key is a reserved top-level field name")
            if item is None:
                continue
            if key in maps:
                check_map(key, item, maps[key])
                continue
            kind = attribute_value_type(item)
            if kind in ATTRIBUTE_TYPES:
                if kind == "string":
                    try:
                        _text_errors(cast(str, item))
                    except PydanticCustomError as exc:
                        raise fail(exc.type, key, exc.message()) from None
                elif kind == "float" and not math.isfinite(cast(float, item)):
                    raise fail("finite", key, "value is not finite")
                continue
            if kind == "number[]":
                raise fail("number_array", key, "arrays of numbers are not supported; flatten or split them")
            if kind in {"object", "object[]"}:
                raise fail("nested_object", key, "nested objects are only allowed for the documented map attributes")
            raise fail("type", key, f"values must be primitives or arrays of strings, got {kind}")
        return value

    return check


def _quality_validator(contract: Contract) -> Any:
    rules = [rule for rule in contract.quality if rule.check in {"less_than", "same_length"}]

    def check(model: BaseModel) -> BaseModel:
        for rule in rules:
            value = getattr(model, rule.field, None)
            other = getattr(model, rule.other, None) if rule.other else None
            if rule.check == "less_than" and value is not None and (other is None or value >= other):
                raise _error(
                    rule.rule,
                    "{field} {value} is not below {other} {other_value}",
                    {"field": rule.field, "value": value, "other": rule.other, "other_value": other},
                )
            if rule.check == "same_length" and len(value or ()) != len(other or ()):
                raise _error(
                    rule.rule,
                    "{field} has {n} entries but {other} has {m}",
                    {"field": rule.field, "n": len(value or ()), "other": rule.other, "m": len(other or ())},
                )
        return model

    return check


@lru_cache(maxsize=8)
def pydantic_model(contract: Contract) -> type[BaseModel]:
    """Build the strict pydantic model of one document from the contract.

    Strings carry the file's lengths and patterns (Rust regex, the same engine as the polars checks), enums
    become ``Literal`` types, code-listed strings are checked against the code list, numbers their ranges (no
    NaN/inf), ``attributes`` its key pattern, reserved keys, refused shapes and documented map attributes; the
    schema-level ``less_than``/``same_length`` quality rules become a model validator. Extra fields are
    forbidden and no type coercion happens (``"12.5"`` is not a price). Custom errors use the quarantine rule
    name as their error type.

    Args:
        contract: The loaded contract.

    Returns:
        A ``BaseModel`` subclass named after the contract.

    """
    definitions: dict[str, Any] = {}
    for spec in contract.fields:
        annotation: Any
        if spec.logical_type in {"string", "date"}:
            annotation = _string_type(spec)
        elif spec.logical_type == "number":
            annotation = Annotated[float, Field(ge=spec.minimum, le=spec.maximum, allow_inf_nan=False)]
        elif spec.logical_type == "integer":
            annotation = Annotated[int, Field(ge=spec.minimum, le=spec.maximum)]
        elif spec.logical_type == "boolean":
            annotation = bool
        elif spec.logical_type == "array":
            item_checks: list[Any] = [StringConstraints(min_length=spec.items_min_length)]
            if spec.items_min_length:
                item_checks.append(AfterValidator(_not_blank))
            item = Annotated[str, *item_checks, AfterValidator(_text_errors)]
            annotation = list[item]
        else:
            annotation = Annotated[dict[str, Any], AfterValidator(_attributes_validator(spec))]
        if spec.required:
            definitions[spec.name] = (annotation, Field(description=spec.description))
        else:
            definitions[spec.name] = (annotation | None, Field(default=None, description=spec.description))
    validators: dict[str, Any] = {"_contract_quality": model_validator(mode="after")(_quality_validator(contract))}
    factory: Any = create_model
    model = factory(
        re.sub(r"\W", "", contract.name) or "Document",
        __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
        __doc__=f"{contract.name} {contract.version} (contract fingerprint {contract.fingerprint}).",
        __validators__=validators,
        **definitions,
    )
    return cast(type[BaseModel], model)


def _plain(value: Any) -> Any:
    """Drop null keys of nested maps and unwrap variant (``json:<kind>``) structs into their JSON value."""
    if isinstance(value, Mapping):
        items = cast(Mapping[str, Any], value)
        if items and all(k.startswith(VARIANT_PREFIX) for k in items):
            for key, inner in items.items():
                if inner is not None:
                    text_kinds = {"number[]", "object", "object[]", "other"}
                    return json.loads(inner) if key.removeprefix(VARIANT_PREFIX) in text_kinds else _plain(inner)
            return None
        return {k: _plain(v) for k, v in items.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in cast(list[Any], value)]
    return value


def frame_documents(frame: pl.DataFrame, limit: int | None = None) -> list[dict[str, Any]]:
    """Turn (the first ``limit`` rows of) a document frame into documents with a nested ``attributes`` map.

    Null keys are dropped, ``_`` columns skipped and variant columns unwrapped. Meant for bounded samples,
    single records and ``quarantine show``; index payloads are built by :mod:`aac_etl.lib.documents`.

    Args:
        frame: A document frame (``attributes.<key>`` columns or an ``attributes`` struct column).
        limit: Convert only the first ``limit`` rows.

    Returns:
        One dict per row.

    """
    rows = frame if limit is None else frame.head(limit)
    docs: list[dict[str, Any]] = []
    for row in rows.iter_rows(named=True):
        doc: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        for name, value in row.items():
            if value is None or name.startswith("_"):
                continue
            plain = _plain(value)
            if plain is None:
                continue
            if name.startswith(ATTRIBUTE_PREFIX):
                attributes[name.removeprefix(ATTRIBUTE_PREFIX)] = plain
            elif name == ATTRIBUTES and isinstance(plain, dict):
                attributes.update(cast(dict[str, Any], plain))
            else:
                doc[name] = plain
        if attributes:
            doc[ATTRIBUTES] = attributes
        docs.append(doc)
    return docs


def validate_sample_with_model(
    frame: pl.DataFrame, contract: Contract | None = None, *, sample_size: int = 200
) -> tuple[list[str], int]:
    """Validate an evenly spread sample of a document frame with :func:`pydantic_model`.

    Args:
        frame: A document frame (typically the ``valid`` output of the vectorized checks).
        contract: Contract to derive the model from; defaults to :func:`load_contract`.
        sample_size: Largest number of rows to validate (bounded: one Python object per sampled row only).

    Returns:
        The error messages (``record <external_id>: <field> <error type>: <message>``) and the rows checked.

    """
    if frame.height == 0 or sample_size <= 0:
        return [], 0
    model = pydantic_model(contract or load_contract())
    step = max(1, frame.height // sample_size)
    sample = frame.gather_every(step).head(sample_size)
    errors: list[str] = []
    for doc in frame_documents(sample):
        try:
            model.model_validate(doc)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(part) for part in err.get("loc", ())) or "record"
                ctx = err.get("ctx") or {}
                where = str(ctx.get("field", where))
                errors.append(f"record {doc.get('external_id')}: {where} {err['type']}: {err['msg']}")
    return errors, sample.height


# ----------------------------------------------------------------------------------------------------
# Great Expectations


@dataclass(frozen=True)
class SuiteResult:
    """Outcome of running the derived expectation suite on a frame.

    Attributes:
        success: True when every expectation passed.
        results: One JSON-serializable dict per expectation (type, column(s), success, unexpected counts,
            sample).
        evaluated_rows: Rows the suite ran on (the whole frame or a sample).
        suite_name: Name of the suite (contract name, version and fingerprint).

    """

    success: bool
    results: list[dict[str, Any]]
    evaluated_rows: int
    suite_name: str


LEN_SUFFIX = "__len"
MIN_ITEM_LEN_SUFFIX = "__min_item_length"


def expectation_suite(contract: Contract) -> ExpectationSuite:
    """Derive a Great Expectations 1.x suite from the contract.

    Per field: not-null for required, unique for ``unique``, value lengths, regex (``pattern`` or ``format``),
    value sets (``validValues`` and code lists), ranges; array item lengths run on a derived
    ``<field>__min_item_length`` column. Quality rules: ``less_than`` becomes a column-pair comparison and
    ``same_length`` compares derived ``<field>__len`` columns; the batch-level ``minor_unit_outlier`` has no
    GX equivalent and stays in the polars engine, as do attribute-key rules.

    Args:
        contract: The loaded contract.

    Returns:
        An unsaved ``ExpectationSuite`` (GX is imported lazily; it is slow to import).

    """
    gx = _gx_module()
    gxe: Any = importlib.import_module("great_expectations.expectations")

    _gx_context()
    suite = gx.ExpectationSuite(name=f"{contract.name}-{contract.version}-{contract.fingerprint}")
    for spec in contract.fields:
        col = spec.name
        if spec.logical_type == "object":
            continue
        if spec.required:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=col))
        if spec.unique:
            suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=col))
        if spec.logical_type in {"string", "date"}:
            if spec.min_length is not None or spec.max_length is not None:
                suite.add_expectation(
                    gxe.ExpectColumnValueLengthsToBeBetween(
                        column=col, min_value=spec.min_length, max_value=spec.max_length
                    )
                )
            pattern = spec.effective_pattern
            if pattern:
                suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column=col, regex=pattern))
            if spec.valid_values:
                suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(spec.valid_values)))
            if spec.code_list:
                codes = sorted(code_list_values(spec.code_list))
                suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=codes))
        elif spec.logical_type in {"number", "integer"}:
            if spec.minimum is not None or spec.maximum is not None:
                suite.add_expectation(
                    gxe.ExpectColumnValuesToBeBetween(column=col, min_value=spec.minimum, max_value=spec.maximum)
                )
        elif spec.logical_type == "array" and spec.items_min_length:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(column=col + MIN_ITEM_LEN_SUFFIX, min_value=spec.items_min_length)
            )
    for rule in contract.quality:
        if rule.check == "less_than" and rule.other:
            suite.add_expectation(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=rule.other,
                    column_B=rule.field,
                    or_equal=False,
                    ignore_row_if="either_value_is_missing",
                    meta={"rule": rule.rule},
                )
            )
        elif rule.check == "same_length" and rule.other:
            suite.add_expectation(
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A=rule.field + LEN_SUFFIX,
                    column_B=rule.other + LEN_SUFFIX,
                    ignore_row_if="both_values_are_missing",
                    meta={"rule": rule.rule},
                )
            )
    return suite


def _suite_columns(suite: ExpectationSuite) -> list[str]:
    names: list[str] = []
    for expectation in suite.expectations:
        config = expectation.configuration.kwargs
        for key in ("column", "column_A", "column_B"):
            name = config.get(key)
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def _pandas_input(frame: pl.DataFrame, contract: Contract, columns: Sequence[str]) -> Any:
    exprs: list[pl.Expr] = []
    for name in columns:
        base = name.removesuffix(LEN_SUFFIX).removesuffix(MIN_ITEM_LEN_SUFFIX)
        try:
            spec = contract.field(base)
        except KeyError:
            spec = None
        present = base in frame.columns
        if name.endswith(LEN_SUFFIX):
            expr = pl.col(base).list.len().fill_null(0) if present else pl.lit(0)
        elif name.endswith(MIN_ITEM_LEN_SUFFIX):
            expr = (
                pl.col(base).list.eval(pl.element().str.len_chars().fill_null(0)).list.min()
                if present
                else pl.lit(None, dtype=pl.UInt32)
            )
        elif present:
            expr = pl.col(base)
        else:
            dtype = pl.Float64 if spec is not None and spec.logical_type in {"number", "integer"} else pl.String
            expr = pl.lit(None, dtype=dtype)
        exprs.append(expr.alias(name))
    return frame.select(exprs).to_pandas()


@cache
def _gx_module() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


@cache
def _gx_context() -> Any:
    _gx_module()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = _gx_module().get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


@cache
def _gx_batch_definition() -> Any:
    context = _gx_context()
    source = context.data_sources.add_pandas(name="aac_etl")
    asset = source.add_dataframe_asset(name="document_frame")
    return asset.add_batch_definition_whole_dataframe("whole_dataframe")


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return value[: settings.QUARANTINE_VALUE_MAX_CHARS]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return str(value)[: settings.QUARANTINE_VALUE_MAX_CHARS]


def run_expectation_suite(
    frame: pl.DataFrame,
    contract: Contract | None = None,
    *,
    suite: ExpectationSuite | None = None,
    max_rows: int | None = None,
) -> SuiteResult:
    """Run the derived suite on a document frame (or a deterministic sample of it) with GX's pandas engine.

    Only the columns the suite references are converted to pandas. List columns are flattened into two derived
    numeric columns (``<field>__len``, ``<field>__min_item_length``); columns the frame lacks are added as
    nulls,
    so a missing required column fails its not-null expectation instead of raising.

    Args:
        frame: The document frame.
        contract: Contract to derive the suite from; defaults to :func:`load_contract`.
        suite: A pre-built suite (saves rebuilding it per chunk).
        max_rows: Validate a seeded sample of at most this many rows.

    Returns:
        A :class:`SuiteResult`.

    """
    contract = contract or load_contract()
    suite = suite or expectation_suite(contract)
    if max_rows is not None and frame.height > max_rows:
        frame = frame.sample(n=max_rows, seed=0)
    pdf = _pandas_input(frame, contract, _suite_columns(suite))
    batch = _gx_batch_definition().get_batch(batch_parameters={"dataframe": pdf})
    outcome = batch.validate(suite, result_format="SUMMARY")
    results: list[dict[str, Any]] = []
    for item in outcome.results:
        config = item.expectation_config
        kwargs = dict(config.kwargs) if config is not None else {}
        info = item.result or {}
        exception = item.exception_info or {}
        raised = bool(exception.get("raised_exception")) if isinstance(exception, Mapping) else False
        results.append(
            {
                "expectation": config.type if config is not None else "",
                "column": kwargs.get("column"),
                "columns": [kwargs[k] for k in ("column_A", "column_B") if k in kwargs],
                "success": bool(item.success),
                "unexpected_count": info.get("unexpected_count"),
                "unexpected_percent": info.get("unexpected_percent"),
                "partial_unexpected_list": [_jsonable(v) for v in info.get("partial_unexpected_list") or []][:10],
                "exception": str(exception.get("exception_message")) if raised else None,
                "rule": (config.meta or {}).get("rule") if config is not None else None,
            }
        )
    return SuiteResult(
        success=bool(outcome.success),
        results=results,
        evaluated_rows=frame.height,
        suite_name=suite.name,
    )


# ----------------------------------------------------------------------------------------------------
# Typesense


_POLARS_SCALARS: dict[str, pl.DataType] = {
    "string": pl.Utf8(),
    "date": pl.Utf8(),
    "number": pl.Float64(),
    "integer": pl.Int64(),
    "boolean": pl.Boolean(),
}


def document_dtypes(contract: Contract) -> dict[str, pl.DataType]:
    """Derive the document frame's top-level columns and polars dtypes from the contract, in contract order.

    ``attributes`` is left out: in the document frame it is spread over ``attributes.<key>`` columns.

    Args:
        contract: The loaded contract.

    Returns:
        Column name -> dtype (strings and ISO 8601 dates as Utf8, arrays as List of their item type).

    """
    dtypes: dict[str, pl.DataType] = {}
    for spec in contract.fields:
        if spec.logical_type == "object":
            continue
        if spec.logical_type == "array":
            dtypes[spec.name] = pl.List(_POLARS_SCALARS[spec.items_type or "string"])
        else:
            dtypes[spec.name] = _POLARS_SCALARS[spec.logical_type]
    return dtypes


def typesense_schema(contract: Contract, name: str) -> dict[str, Any]:
    """Derive the Typesense (0.24.1) collection schema from the ``typesense`` custom properties.

    Args:
        contract: The loaded contract.
        name: Collection name.

    Returns:
        The collection schema: one field per contract field with a ``typesense`` hint (never ``id``);
        ``optional``
        is the hint's value or ``not required``; facets, ``index`` and ``sort`` as declared;
        ``enable_nested_fields`` when an ``object`` field exists; ``default_sorting_field`` only when the
        declared numeric sort field is required (see the module docstring).

    """
    fields: list[dict[str, Any]] = []
    for spec in contract.fields:
        hint = spec.typesense
        if hint is None or spec.name == "id":
            continue
        entry: dict[str, Any] = {"name": spec.name, "type": hint.type}
        if hint.facet:
            entry["facet"] = True
        if not hint.index:
            entry["index"] = False
        if hint.sort is not None:
            entry["sort"] = hint.sort
        optional = hint.optional if hint.optional is not None else not spec.required
        if optional:
            entry["optional"] = True
        fields.append(entry)
    schema: dict[str, Any] = {"name": name, "fields": fields}
    if any(entry["type"] in {"object", "object[]"} for entry in fields):
        schema["enable_nested_fields"] = True
    sort_field = contract.numeric_sort_field
    if sort_field is not None:
        sort_entry = next((f for f in fields if f["name"] == sort_field), None)
        numeric = {"int32", "int64", "float"}
        if sort_entry is not None and not sort_entry.get("optional") and sort_entry["type"] in numeric:
            schema["default_sorting_field"] = sort_field
    return schema


def schema_hash(schema: Mapping[str, Any]) -> str:
    """Return a stable hash of a collection schema, ignoring its ``name``.

    Every reindex target of one schema therefore compares equal.

    Args:
        schema: A schema from :func:`typesense_schema` (or as returned by the server, minus server-added
            keys).

    Returns:
        16 hex characters of a SHA-256 over the canonical JSON.

    """
    body = {key: value for key, value in schema.items() if key != "name"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------
# Markdown


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{_md(text)}`"


def _num(value: float) -> str:
    return f"{value:g}" if not value.is_integer() else f"{int(value)}"


def _constraints(spec: ContractField) -> str:
    parts: list[str] = []
    if spec.unique:
        parts.append("unique")
    if spec.min_length is not None and spec.max_length is not None:
        parts.append(f"length {spec.min_length}..{spec.max_length}")
    elif spec.min_length is not None:
        parts.append(f"length >= {spec.min_length}")
    elif spec.max_length is not None:
        parts.append(f"length <= {spec.max_length}")
    if spec.pattern:
        parts.append(f"pattern {_code(spec.pattern)}")
    if spec.format:
        parts.append(f"format {spec.format}")
    if spec.valid_values:
        parts.append("one of " + ", ".join(_code(v) for v in spec.valid_values))
    if spec.code_list:
        parts.append(f"code list {CODE_LIST_LABELS.get(spec.code_list, spec.code_list)}")
    if spec.minimum is not None:
        parts.append(f">= {_num(spec.minimum)}")
    if spec.maximum is not None:
        parts.append(f"<= {_num(spec.maximum)}")
    if spec.items_type:
        item = f"items {spec.items_type}"
        if spec.items_min_length:
            item += f" (length >= {spec.items_min_length})"
        parts.append(item)
    if spec.key_pattern:
        parts.append(f"keys {_code(spec.key_pattern)}")
    if spec.reserved_keys:
        parts.append("top-level names reserved")
    if spec.refuse:
        parts.append("refuses " + ", ".join(spec.refuse))
    if spec.map_attributes:
        parts.append("objects allowed for " + ", ".join(_code(m.name) for m in spec.map_attributes))
    return "; ".join(parts)


def _typesense_cell(spec: ContractField) -> str:
    hint = spec.typesense
    if hint is None:
        return ""
    flags = [hint.type]
    if hint.facet:
        flags.append("facet")
    if hint.sort:
        flags.append("sort")
    if not hint.index:
        flags.append("not indexed")
    return _code(" ".join(flags[:1])) + ("" if len(flags) == 1 else ", " + ", ".join(flags[1:]))


def field_table_markdown(contract: Contract) -> str:
    """Render the contract as the README's field table (plus its schema-level rules).

    Args:
        contract: The loaded contract.

    Returns:
        Markdown: a header line with name, version and fingerprint, the field table, and the quality rules.

    """
    lines = [
        f"Generated from `data_contracts/sync_product_input.odcs.yaml` ({contract.name} {contract.version}, "
        f"fingerprint `{contract.fingerprint}`) by `aac_etl.lib.contract.render_readme_table`; "
        "do not edit by hand.",
        "",
        "| Field | Type | Required | Constraints | Typesense | Description |",
        "|---|---|---|---|---|---|",
    ]
    for spec in contract.fields:
        kind = spec.logical_type if spec.items_type is None else f"{spec.items_type}[]"
        lines.append(
            f"| `{spec.name}` | {kind} | {'yes' if spec.required else 'no'} | {_constraints(spec)} | "
            f"{_typesense_cell(spec)} | {_md(spec.description)} |"
        )
    if contract.quality:
        lines += ["", "| Rule | Field | Check | Description |", "|---|---|---|---|"]
        for rule in contract.quality:
            target = f"`{rule.field}`" + (f" vs `{rule.other}`" if rule.other else "")
            lines.append(f"| `{rule.rule}` | {target} | {rule.check} | {_md(rule.description)} |")
    return "\n".join(lines) + "\n"


def render_readme_table(readme_path: Path | str, contract: Contract | None = None) -> bool:
    """Replace the text between the contract-table markers of a README with :func:`field_table_markdown`.

    Args:
        readme_path: The README file.
        contract: Contract to render; defaults to :func:`load_contract`.

    Returns:
        True when the file changed.

    Raises:
        ContractError: The markers are missing or out of order.

    """
    path = Path(readme_path)
    text = path.read_text(encoding="utf-8")
    start = text.find(TABLE_START)
    end = text.find(TABLE_END)
    if start < 0 or end < start:
        raise ContractError(f"{path}: needs {TABLE_START} ... {TABLE_END} markers")
    table = field_table_markdown(contract or load_contract())
    updated = text[: start + len(TABLE_START)] + "\n" + table + text[end:]
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True
