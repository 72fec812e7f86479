"""Bad-input corpus: one malformed record per kind, validated in a batch of good records.

Each case is a row of ``CASES``: (kind, mutation of a good record, expected {(field, rule)}, locked
attribute types,
whether the pydantic model must agree). The test asserts the exact quarantine reasons of the bad record(s),
that
every good record of the same batch stays valid, and that input rows = valid rows + quarantined records.

Frames are built the way sources build them: every column gets its canonical dtype when all values fit it,
and a
variant column (``aac_etl.lib.validate.variant_series``) when a record sends a value of another JSON type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest

from aac_etl import settings
from aac_etl.lib.contract import Contract, attribute_value_type, load_contract
from aac_etl.lib.validate import (
    check_document,
    decode_source_bytes,
    repair_text,
    validate_frame,
    variant_series,
)

Record = dict[str, Any]
N_GOOD = 30

_CANONICAL: Mapping[str, pl.DataType] = {
    "external_id": pl.String(),
    "title": pl.String(),
    "description": pl.String(),
    "sku": pl.String(),
    "brand": pl.String(),
    "categories": pl.List(pl.String()),
    "category_ids": pl.List(pl.String()),
    "tags": pl.List(pl.String()),
    "price": pl.Float64(),
    "sale_price": pl.Float64(),
    "currency": pl.String(),
    "image_url": pl.String(),
    "product_url": pl.String(),
    "availability": pl.String(),
    "stock_quantity": pl.Int64(),
    "locale": pl.String(),
    "created_at": pl.String(),
    "updated_at": pl.String(),
    "_record_id": pl.String(),
}
_NATIVE_ATTRIBUTE_KINDS = {"string", "int64", "float", "bool", "string[]", "number[]", "object", "object[]"}


def good_record(i: int) -> Record:
    return {
        "external_id": f"{i}:en",
        "title": f"Trail runner {i}",
        "description": "Cushioned sole, breathable mesh upper.",
        "sku": f"SKU-{i:05d}",
        "brand": "Acme",
        "categories": ["Shoes", "Running"],
        "category_ids": ["10", "11"],
        "tags": ["sale"],
        "price": 10.49 + i,
        "sale_price": None,
        "currency": "USD",
        "image_url": f"https://cdn.example.com/p/{i}.jpg",
        "product_url": f"https://shop.example.com/p/{i}",
        "availability": "in_stock",
        "stock_quantity": 5,
        "locale": "en",
        "created_at": "2011-09-30T01:05:39Z",
        "updated_at": "2024-05-01",
        "attributes": {"option_color": "red", "weight": 1},
        "_record_id": f"good-{i}",
    }


def _fits(value: object, dtype: pl.DataType) -> bool:
    if value is None:
        return True
    if dtype == pl.String():
        return isinstance(value, str)
    if dtype == pl.Float64():
        return isinstance(value, int | float) and not isinstance(value, bool)
    if dtype == pl.Int64():
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, list):
        return all(item is None or isinstance(item, str) for item in value)
    return False


def build_frame(records: list[Record]) -> pl.DataFrame:
    """Build a document frame the way a file source would (canonical dtypes, variant columns for mixed
    types)."""
    top: list[str] = []
    attr_keys: list[str] = []
    for record in records:
        top += [k for k in record if k != "attributes" and k not in top]
        attrs = record.get("attributes")
        if isinstance(attrs, dict):
            attr_keys += [k for k in attrs if k not in attr_keys]
    columns: list[pl.Series] = []
    for key in top:
        values = [record.get(key) for record in records]
        dtype = _CANONICAL.get(key)
        if dtype is None:
            columns.append(pl.Series(key, values))
        elif all(_fits(v, dtype) for v in values):
            columns.append(pl.Series(key, values, dtype=dtype))
        else:
            columns.append(variant_series(key, values))
    for key in attr_keys:
        values = [r["attributes"].get(key) if isinstance(r.get("attributes"), dict) else None for r in records]
        kinds = {attribute_value_type(v) for v in values if v is not None}
        name = f"attributes.{key}"
        if len(kinds) == 1 and kinds <= _NATIVE_ATTRIBUTE_KINDS:
            columns.append(pl.Series(name, values))
        else:
            columns.append(variant_series(name, values))
    raw_attrs = [r.get("attributes") for r in records]
    if any(v is not None and not isinstance(v, dict) for v in raw_attrs):
        columns.append(pl.Series("attributes", [None if isinstance(v, dict) else v for v in raw_attrs]))
    return pl.DataFrame(columns)


Mutation = Callable[[Record], Record | list[Record]]


def setv(**changes: Any) -> Mutation:
    def apply(record: Record) -> Record:
        return {**record, **changes}

    return apply


def drop(key: str) -> Mutation:
    def apply(record: Record) -> Record:
        return {k: v for k, v in record.items() if k != key}

    return apply


def attrs(**changes: Any) -> Mutation:
    def apply(record: Record) -> Record:
        return {**record, "attributes": {**record["attributes"], **changes}}

    return apply


def duplicate(record: Record) -> list[Record]:
    twin = {**record, "_record_id": "bad-twin", "title": "Twin"}
    return [record, twin]


def issues(record: Record) -> Record:
    issue = {
        "field": "price",
        "rule": "json_type",
        "value": '"12,50"',
        "message": "JSON string where a number belongs",
    }
    return {**record, "price": None, "_issues": [issue]}


@dataclass(frozen=True)
class Case:
    kind: str
    mutate: Mutation
    expected: frozenset[tuple[str, str]]
    locked: dict[str, str] = field(default_factory=dict[str, str])
    model: bool = True


def case(
    kind: str,
    mutate: Mutation,
    *expected: tuple[str, str],
    locked: dict[str, str] | None = None,
    model: bool = True,
) -> Case:
    return Case(kind, mutate, frozenset(expected), locked or {}, model)


BAD_UTF8_TITLE = decode_source_bytes(b"Caf\xe9 cr\xe8me")[0]
MB = "x" * (1024 * 1024)

CASES: list[Case] = [
    # external_id
    case("missing_external_id", drop("external_id"), ("external_id", "required")),
    case("null_external_id", setv(external_id=None), ("external_id", "required")),
    case("empty_external_id", setv(external_id=""), ("external_id", "empty_string")),
    case("blank_external_id", setv(external_id="   "), ("external_id", "empty_string")),
    case("external_id_with_space", setv(external_id="12 en"), ("external_id", "pattern")),
    case("external_id_leading_colon", setv(external_id=":12:en"), ("external_id", "pattern")),
    case("external_id_slash", setv(external_id="12/en"), ("external_id", "pattern")),
    case("external_id_non_ascii", setv(external_id="prod-é:en"), ("external_id", "pattern")),
    case("external_id_too_long", setv(external_id="a" * 300), ("external_id", "max_length")),
    case("external_id_number", setv(external_id=12), ("external_id", "type")),
    case("duplicate_external_id", duplicate, ("external_id", "unique"), model=False),
    # title
    case("missing_title", drop("title"), ("title", "required")),
    case("null_title", setv(title=None), ("title", "required")),
    case("empty_title", setv(title=""), ("title", "empty_string")),
    case("whitespace_title", setv(title=" \t "), ("title", "empty_string")),
    case("title_too_long", setv(title="t" * 1001), ("title", "max_length")),
    case("invalid_utf8_bytes_title", setv(title=BAD_UTF8_TITLE), ("title", "utf8")),
    case("lone_surrogate_title", setv(title=repair_text("bad \ud800 text")), ("title", "utf8")),
    case("title_nul_char", setv(title="a\x00b"), ("title", "control_chars")),
    case("title_number", setv(title=42), ("title", "type")),
    case("title_list", setv(title=["a"]), ("title", "type")),
    # description
    case("description_1mb", setv(description=MB), ("description", "max_length")),
    case("description_replacement_char", setv(description="ok \ufffd broken"), ("description", "utf8")),
    case("description_bell_char", setv(description="ding\x07"), ("description", "control_chars")),
    case("description_rich_text_object", setv(description={"type": "doc"}), ("description", "type")),
    # sku / brand
    case("empty_sku", setv(sku=""), ("sku", "empty_string")),
    case("sku_too_long", setv(sku="S" * 257), ("sku", "max_length")),
    case("sku_number", setv(sku=12345), ("sku", "type")),
    case("empty_brand", setv(brand=""), ("brand", "empty_string")),
    case("blank_brand", setv(brand="  "), ("brand", "empty_string")),
    case("brand_too_long", setv(brand="B" * 257), ("brand", "max_length")),
    case("brand_bool", setv(brand=True), ("brand", "type")),
    # categories / category_ids / tags
    case("categories_string", setv(categories="Shoes", category_ids=None), ("categories", "type")),
    case("categories_empty_item", setv(categories=["Shoes", ""]), ("categories", "empty_item")),
    case("categories_null_item", setv(categories=["Shoes", None]), ("categories", "empty_item")),
    case("categories_blank_item", setv(categories=["Shoes", "  "]), ("categories", "empty_item")),
    case("categories_numbers", setv(categories=[1, 2]), ("categories", "type")),
    case("categories_replacement_char", setv(categories=["Sh\ufffdes", "Running"]), ("categories", "utf8")),
    case("category_ids_short", setv(category_ids=["10"]), ("category_ids", "category_ids_aligned")),
    case("category_ids_long", setv(category_ids=["10", "11", "12"]), ("category_ids", "category_ids_aligned")),
    case("category_ids_missing", setv(category_ids=None), ("category_ids", "category_ids_aligned")),
    case("categories_missing_with_ids", setv(categories=None), ("category_ids", "category_ids_aligned")),
    case("category_ids_empty_item", setv(category_ids=["10", ""]), ("category_ids", "empty_item")),
    case("category_ids_numbers", setv(category_ids=[10, 11]), ("category_ids", "type")),
    case("tags_empty_item", setv(tags=["sale", ""]), ("tags", "empty_item")),
    case("tags_null_item", setv(tags=[None]), ("tags", "empty_item")),
    case("tags_string", setv(tags="sale"), ("tags", "type")),
    # price / sale_price
    case("negative_price", setv(price=-1.0), ("price", "minimum")),
    case("price_above_maximum", setv(price=20_000_000.5), ("price", "maximum")),
    case("price_nan", setv(price=float("nan")), ("price", "finite")),
    case("price_infinite", setv(price=float("inf")), ("price", "finite")),
    case("price_string", setv(price="12.50"), ("price", "type")),
    case("price_bool", setv(price=True), ("price", "type")),
    case("minor_unit_price", setv(price=9999.0), ("price", "price_major_units"), model=False),
    case("minor_unit_price_int", setv(price=12999), ("price", "price_major_units"), model=False),
    case("sale_price_above_price", setv(price=10.0, sale_price=12.0), ("sale_price", "sale_price_below_price")),
    case("sale_price_equal_price", setv(price=10.0, sale_price=10.0), ("sale_price", "sale_price_below_price")),
    case("sale_price_without_price", setv(price=None, sale_price=5.0), ("sale_price", "sale_price_below_price")),
    case("negative_sale_price", setv(sale_price=-5.0), ("sale_price", "minimum")),
    case("sale_price_string", setv(sale_price="9.99"), ("sale_price", "type")),
    # currency
    case("lowercase_currency", setv(currency="usd"), ("currency", "iso4217")),
    case("unknown_currency", setv(currency="ZZZ"), ("currency", "iso4217")),
    case("currency_symbol", setv(currency="$"), ("currency", "iso4217")),
    case("currency_two_letters", setv(currency="US"), ("currency", "iso4217")),
    case("currency_mixed_case", setv(currency="Usd"), ("currency", "iso4217")),
    case("currency_trailing_space", setv(currency="USD "), ("currency", "iso4217")),
    case("empty_currency", setv(currency=""), ("currency", "empty_string")),
    case("currency_numeric_code", setv(currency=840), ("currency", "type")),
    # image_url / product_url
    case("relative_image_url", setv(image_url="/img/a.jpg"), ("image_url", "pattern")),
    case("protocol_relative_image_url", setv(image_url="//cdn.example.com/a.jpg"), ("image_url", "pattern")),
    case("ftp_image_url", setv(image_url="ftp://cdn.example.com/a.jpg"), ("image_url", "pattern")),
    case("schemeless_image_url", setv(image_url="cdn.example.com/a.jpg"), ("image_url", "pattern")),
    case("empty_image_url", setv(image_url=""), ("image_url", "empty_string")),
    case("image_url_with_space", setv(image_url="https://cdn.example.com/a b.jpg"), ("image_url", "pattern")),
    case(
        "image_url_too_long",
        setv(image_url="https://cdn.example.com/" + "a" * 2100),
        ("image_url", "max_length"),
    ),
    case("javascript_image_url", setv(image_url="javascript:alert(1)"), ("image_url", "pattern")),
    case("relative_product_url", setv(product_url="/p/1"), ("product_url", "pattern")),
    case("empty_product_url", setv(product_url=""), ("product_url", "empty_string")),
    case("mailto_product_url", setv(product_url="mailto:shop@example.com"), ("product_url", "pattern")),
    # availability / stock
    case("availability_typo", setv(availability="instock"), ("availability", "valid_values")),
    case("availability_uppercase", setv(availability="IN_STOCK"), ("availability", "valid_values")),
    case("availability_backorder", setv(availability="backorder"), ("availability", "valid_values")),
    case("empty_availability", setv(availability=""), ("availability", "empty_string")),
    case("availability_bool", setv(availability=True), ("availability", "type")),
    case("negative_stock", setv(stock_quantity=-3), ("stock_quantity", "minimum")),
    case("fractional_stock", setv(stock_quantity=2.5), ("stock_quantity", "type")),
    case("stock_string", setv(stock_quantity="5"), ("stock_quantity", "type")),
    case("stock_bool", setv(stock_quantity=False), ("stock_quantity", "type")),
    # locale
    case("unknown_locale", setv(locale="pt"), ("locale", "valid_values")),
    case("locale_with_region", setv(locale="en-US"), ("locale", "valid_values")),
    case("uppercase_locale", setv(locale="EN"), ("locale", "valid_values")),
    case("empty_locale", setv(locale=""), ("locale", "empty_string")),
    # dates
    case("created_at_not_iso", setv(created_at="30/09/2011"), ("created_at", "iso8601")),
    case("created_at_month_13", setv(created_at="2011-13-01"), ("created_at", "iso8601")),
    case("created_at_february_30", setv(created_at="2011-02-30T10:00:00Z"), ("created_at", "iso8601")),
    case("created_at_epoch_number", setv(created_at=1317340000), ("created_at", "type")),
    case("updated_at_bad_offset", setv(updated_at="2011-09-30T01:05:39+25:00"), ("updated_at", "iso8601")),
    case("updated_at_hour_24", setv(updated_at="2011-09-30T24:00:00Z"), ("updated_at", "iso8601")),
    case("updated_at_words", setv(updated_at="yesterday"), ("updated_at", "iso8601")),
    case("empty_updated_at", setv(updated_at=""), ("updated_at", "empty_string")),
    # attributes
    case("nested_attribute_object", attrs(dims={"w": 1}), ("attributes.dims", "nested_object")),
    case("attribute_object_array", attrs(specs=[{"k": "v"}]), ("attributes.specs", "nested_object")),
    case("uppercase_attribute_key", attrs(Color="red"), ("attributes.Color", "key_pattern")),
    case("camelcase_attribute_key", attrs(optionColor="red"), ("attributes.optionColor", "key_pattern")),
    case("dashed_attribute_key", attrs(**{"option-size": "M"}), ("attributes.option-size", "key_pattern")),
    case("digit_first_attribute_key", attrs(**{"1color": "red"}), ("attributes.1color", "key_pattern")),
    case("reserved_attribute_key_title", attrs(title="Shadow title"), ("attributes.title", "reserved_key")),
    case("reserved_attribute_key_price", attrs(price=1.5), ("attributes.price", "reserved_key")),
    case("number_array_attribute", attrs(sizes=[1, 2, 3]), ("attributes.sizes", "number_array")),
    case("float_array_attribute", attrs(dims=[1.5, 2.0]), ("attributes.dims", "number_array")),
    case("mixed_array_attribute", attrs(mix=["a", 1]), ("attributes.mix", "type")),
    case("attribute_replacement_char", attrs(material="cott\ufffdn"), ("attributes.material", "utf8")),
    case(
        "attribute_type_changed_vs_lock",
        attrs(weight="42"),
        ("attributes.weight", "type_lock"),
        locked={"weight": "int64"},
        model=False,
    ),
    case(
        "attribute_type_changed_in_batch",
        attrs(option_color=42),
        ("attributes.option_color", "type_lock"),
        model=False,
    ),
    case(
        "attribute_native_column_vs_lock",
        attrs(waterproof="yes"),
        ("attributes.waterproof", "type_lock"),
        locked={"waterproof": "bool"},
        model=False,
    ),
    case(
        "price_by_currency_lowercase_code",
        attrs(price_by_currency={"eur": 9.0}),
        ("attributes.price_by_currency", "iso4217"),
    ),
    case(
        "price_by_currency_negative",
        attrs(price_by_currency={"EUR": -1.0}),
        ("attributes.price_by_currency", "minimum"),
    ),
    case(
        "price_by_currency_string_value",
        attrs(price_by_currency={"EUR": "9.0"}),
        ("attributes.price_by_currency", "type"),
    ),
    case("price_by_group_not_object", attrs(price_by_group="retail"), ("attributes.price_by_group", "type")),
    case(
        "stock_by_location_fractional",
        attrs(stock_by_location={"main": 2.5}),
        ("attributes.stock_by_location", "type"),
    ),
    case("images_relative_url", attrs(images=[{"url": "/a.jpg", "alt": "x"}]), ("attributes.images", "pattern")),
    case("images_missing_url", attrs(images=[{"alt": "x"}]), ("attributes.images", "required")),
    case("images_as_strings", attrs(images=["https://cdn.example.com/a.jpg"]), ("attributes.images", "type")),
    case(
        "images_extra_field",
        attrs(images=[{"url": "https://cdn.example.com/a.jpg", "alt": "x", "width": 3}]),
        ("attributes.images", "nested_object"),
    ),
    case("attributes_not_object", setv(attributes="red"), ("attributes", "type")),
    # whole record
    case("unknown_top_level_field", setv(colour="red"), ("colour", "unknown_field")),
    case("source_reported_issue", issues, ("price", "json_type"), model=False),
]


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


def test_corpus_is_large_and_distinct() -> None:
    kinds = [c.kind for c in CASES]
    assert len(kinds) >= 100
    assert len(set(kinds)) == len(kinds)


def _bad_records(c: Case) -> list[Record]:
    base = good_record(N_GOOD)
    base["_record_id"] = "bad-0"
    mutated = c.mutate(base)
    return mutated if isinstance(mutated, list) else [mutated]


@pytest.mark.parametrize("c", CASES, ids=[c.kind for c in CASES])
def test_bad_record_is_quarantined_with_exact_reason(c: Case, contract: Contract) -> None:
    good = [good_record(i) for i in range(N_GOOD)]
    bad = _bad_records(c)
    frame = build_frame(good + bad)
    outcome = validate_frame(frame, contract, source="corpus", sync_id="sync-1", locked_types=c.locked)
    q = outcome.quarantine
    assert set(zip(q["field"].to_list(), q["rule"].to_list(), strict=True)) == c.expected, q["message"].to_list()
    assert set(q["record_id"].to_list()) == {r["_record_id"] for r in bad}
    assert outcome.valid.height == N_GOOD
    assert set(outcome.valid["_record_id"].to_list()) == {r["_record_id"] for r in good}
    assert outcome.input_rows == frame.height == outcome.valid.height + outcome.invalid_rows
    assert outcome.invalid_rows == len(bad)
    for message, fld, rule in q.select("message", "field", "rule").iter_rows():
        assert f" field {fld} rule {rule}: " in message
        assert message.startswith("record ")
    assert (q["value"].str.len_chars().fill_null(0) <= settings.QUARANTINE_VALUE_MAX_CHARS + 1).all()
    assert outcome.model_disagreements == ()


@pytest.mark.parametrize("c", [c for c in CASES if c.model], ids=[c.kind for c in CASES if c.model])
def test_pydantic_model_agrees_on_bad_record(c: Case, contract: Contract) -> None:
    record = {k: v for k, v in _bad_records(c)[0].items() if not k.startswith("_") and v is not None}
    found = {(issue.field, issue.rule) for issue in check_document(record, contract)}
    assert found == c.expected


def test_good_records_pass_the_model(contract: Contract) -> None:
    for i in range(3):
        record = {k: v for k, v in good_record(i).items() if not k.startswith("_") and v is not None}
        assert check_document(record, contract) == []
