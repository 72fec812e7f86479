"""Tests of the OpenCart normalization on the real OpenCart 3 demo shop (SQLite and MariaDB)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources.base import ExtractRequest
from aac_etl.sources.opencart import OpenCartSource
from aac_etl.sources.opencart import normalize as normalize_module
from aac_etl.sources.opencart.normalize import DOCUMENT_COLUMNS
from aac_etl_tests.sources.opencart.helpers import demo_config

STOREFRONT = "https://shop.example.com"
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _config(**overrides: object) -> SourceConfig:
    return demo_config(**{"storefront_url": STOREFRONT + "/", **overrides})


def _documents(url: str, config: SourceConfig | None = None, request: ExtractRequest | None = None) -> pl.DataFrame:
    source = OpenCartSource()
    config = config or _config()
    frames = [source.normalize(raw, config) for raw in source.extract(config, url, request or ExtractRequest())]
    return pl.concat(frames) if frames else pl.DataFrame()


def _doc(frame: pl.DataFrame, external_id: str) -> dict[str, Any]:
    rows = frame.filter(pl.col("external_id") == external_id).to_dicts()
    assert len(rows) == 1, external_id
    return rows[0]


@pytest.fixture
def documents(opencart3_url: str) -> pl.DataFrame:
    return _documents(opencart3_url)


def test_every_demo_product_is_a_document(documents: pl.DataFrame) -> None:
    assert documents.height == 19
    assert documents["external_id"].n_unique() == 19
    assert documents["external_id"].str.ends_with(":en").all()
    assert (documents["locale"] == "en").all()
    assert documents["_record_id"].to_list() == [e.split(":")[0] for e in documents["external_id"].to_list()]
    for column, dtype in DOCUMENT_COLUMNS.items():
        assert documents.schema[column] == dtype, column
    assert all(c.startswith(("attributes.", "_")) for c in documents.columns[len(DOCUMENT_COLUMNS) :])


def test_text_is_decoded_and_plain(documents: pl.DataFrame) -> None:
    iphone = _doc(documents, "40:en")
    assert iphone["title"] == "iPhone"
    assert "<" not in iphone["description"]
    assert "&lt;" not in iphone["description"]
    assert "\r" not in iphone["description"]
    assert iphone["description"].startswith("iPhone is a revolutionary new mobile phone")
    assert _doc(documents, "42:en")["title"] == 'Apple Cinema 30"'
    assert not documents["description"].drop_nulls().str.contains("&lt;|&quot;|<p").any()
    assert not documents["title"].str.contains("&").any()


def test_prices_and_specials(documents: pl.DataFrame) -> None:
    cinema = _doc(documents, "42:en")
    assert cinema["price"] == pytest.approx(100.0)
    assert cinema["sale_price"] == pytest.approx(90.0)
    canon = _doc(documents, "30:en")
    assert canon["sale_price"] == pytest.approx(80.0)  # priority 1 (80) beats priority 2 (90)
    others = documents.filter(~pl.col("external_id").is_in(["42:en", "30:en"]))
    assert others["sale_price"].null_count() == others.height
    assert (documents["currency"] == "USD").all()
    assert cinema["attributes.price_by_currency"] == {"EUR": 78.46, "GBP": 61.25}
    assert cinema["attributes.price_by_group"] == {"default": 90.0}
    assert _doc(documents, "40:en")["attributes.price_by_group"] is None


def test_brand_sku_and_stock(documents: pl.DataFrame) -> None:
    iphone = _doc(documents, "40:en")
    assert iphone["brand"] == "Apple"
    assert iphone["sku"] == "product 11"  # sku empty -> model
    assert _doc(documents, "35:en")["brand"] is None  # manufacturer_id 0
    tab = _doc(documents, "49:en")
    assert tab["stock_quantity"] == 0
    assert tab["availability"] == "preorder"  # qty 0 + stock status 'Pre-Order'
    assert iphone["availability"] == "in_stock"
    assert set(documents["availability"].to_list()) <= {"in_stock", "out_of_stock", "preorder"}


def test_categories_follow_every_path(documents: pl.DataFrame) -> None:
    cinema = _doc(documents, "42:en")
    assert cinema["categories"] == ["Desktops", "Components", "Monitors"]
    assert cinema["category_ids"] == ["20", "25", "28"]
    aligned = documents.select(
        (pl.col("categories").list.len().fill_null(0) == pl.col("category_ids").list.len().fill_null(0)).all()
    ).item()
    assert aligned
    assert _doc(documents, "40:en")["category_ids"] == ["20", "24"]


def test_options_and_attributes(documents: pl.DataFrame) -> None:
    cinema = _doc(documents, "42:en")
    assert cinema["attributes.option_radio"] == ["Small", "Medium", "Large"]
    assert cinema["attributes.option_select"] == ["Red", "Blue", "Green", "Yellow"]
    assert cinema["attributes.option_checkbox"] == ["Checkbox 1", "Checkbox 2", "Checkbox 3", "Checkbox 4"]
    assert "attributes.option_text" not in documents.columns  # free-input options are not facets
    assert documents.schema["attributes.option_radio"] == pl.List(pl.Utf8)
    assert cinema["attributes.clockspeed"] == "100mhz"
    assert _doc(documents, "47:en")["attributes.no_of_cores"] == "4"
    assert "attributes.description" not in documents.columns  # reserved name gets a prefix
    for column in documents.columns:
        if column.startswith("attributes."):
            assert re.fullmatch(r"[a-z][a-z0-9_]*", column.removeprefix("attributes.")), column


def test_urls_and_images(documents: pl.DataFrame) -> None:
    cinema = _doc(documents, "42:en")
    assert cinema["image_url"] == f"{STOREFRONT}/image/catalog/demo/apple_cinema_30.jpg"
    assert cinema["product_url"] == f"{STOREFRONT}/index.php?route=product/product&product_id=42"
    images = cinema["attributes.images"]
    assert images[0] == {"url": cinema["image_url"], "alt": 'Apple Cinema 30"'}
    assert len(images) == 6
    assert all(i["url"].startswith(f"{STOREFRONT}/image/") for i in images)
    assert _doc(documents, "35:en")["image_url"] is None  # empty image path
    assert documents["image_url"].drop_nulls().str.starts_with(f"{STOREFRONT}/image/").all()


def test_timestamps_are_iso(documents: pl.DataFrame) -> None:
    assert _doc(documents, "28:en")["updated_at"] == "2011-09-30T01:05:39Z"
    assert _doc(documents, "28:en")["created_at"] == "2009-02-03T16:06:50Z"
    assert all(ISO_RE.match(v) for v in documents["updated_at"].to_list())


def test_seo_urls_when_enabled(opencart3_url: str) -> None:
    docs = _documents(opencart3_url, _config(options={"seo_urls": True}))
    assert _doc(docs, "30:en")["product_url"] == f"{STOREFRONT}/canon-eos-5d"


def test_chunking_gives_the_same_documents(opencart3_url: str) -> None:
    one = _documents(opencart3_url)
    many = _documents(opencart3_url, request=ExtractRequest(chunk_rows=5))
    assert many.columns == one.columns
    assert many.sort("external_id").equals(one.sort("external_id"))


def test_delta_documents_match_full(opencart3_url: str) -> None:
    full = _documents(opencart3_url)
    delta = _documents(opencart3_url, request=ExtractRequest(mode="delta", since=datetime(2011, 9, 30, 1, 7)))
    assert delta.height == 4
    assert delta.equals(full.filter(pl.col("external_id").is_in(delta["external_id"].implode())))


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_disabled_product_and_expired_special(opencart3_sqlite_copy_url: str) -> None:
    _execute(
        opencart3_sqlite_copy_url,
        "UPDATE oc_product SET status = 0 WHERE product_id = 40",
        "UPDATE oc_product_special SET date_end = '2000-01-01' WHERE product_id = 42",
        "UPDATE oc_product_special SET date_start = '2999-01-01' WHERE product_special_id = 438",
    )
    docs = _documents(opencart3_sqlite_copy_url)
    assert docs.height == 18
    assert "40:en" not in docs["external_id"].to_list()
    assert _doc(docs, "42:en")["sale_price"] is None
    assert _doc(docs, "30:en")["sale_price"] == pytest.approx(90.0)  # priority 2 special is the active one


def test_tags_are_decoded_then_split(opencart3_sqlite_copy_url: str) -> None:
    _execute(
        opencart3_sqlite_copy_url,
        "UPDATE oc_product_description SET tag = ' Black &amp; White ,Caf&amp;eacute;,, &lt;b&gt;bold&lt;/b&gt;' "
        "WHERE product_id = 40",
        "UPDATE oc_product_description SET tag = ' , ' WHERE product_id = 42",
    )
    docs = _documents(opencart3_sqlite_copy_url)
    assert _doc(docs, "40:en")["tags"] == ["Black & White", "Café", "bold"]
    assert _doc(docs, "42:en")["tags"] is None


def test_second_language_gives_localized_documents(opencart3_sqlite_copy_url: str) -> None:
    url = opencart3_sqlite_copy_url
    _execute(
        url,
        "INSERT INTO oc_language (language_id, name, code, locale, image, directory, sort_order, status) "
        "VALUES (2, 'Deutsch', 'de-de', 'de', 'de.png', 'german', 2, 1)",
        "INSERT INTO oc_product_description (product_id, language_id, name, description, tag, meta_title, "
        "meta_description, meta_keyword) SELECT product_id, 2, 'Kino ' || name, "
        "'&lt;p&gt;Bildschirm&lt;/p&gt;', '', '', '', '' FROM oc_product_description WHERE product_id = 42",
        "INSERT INTO oc_category_description (category_id, language_id, name, description, meta_title, "
        "meta_description, meta_keyword) SELECT category_id, 2, 'DE ' || name, '', '', '', '' "
        "FROM oc_category_description",
        "INSERT INTO oc_option_value_description (option_value_id, language_id, option_id, name) "
        "SELECT option_value_id, 2, option_id, 'de-' || name FROM oc_option_value_description",
    )
    docs = _documents(url, _config(languages={"en-gb": "en", "de-de": "de"}))
    assert docs.height == 20
    german = _doc(docs, "42:de")
    assert german["locale"] == "de"
    assert german["title"] == 'Kino Apple Cinema 30"'
    assert german["description"] == "Bildschirm"
    assert german["categories"] == ["DE Desktops", "DE Components", "DE Monitors"]
    assert german["category_ids"] == ["20", "25", "28"]
    assert german["attributes.option_radio"] == ["de-Small", "de-Medium", "de-Large"]
    assert _doc(docs, "42:en")["categories"] == ["Desktops", "Components", "Monitors"]


def test_lookups_are_derived_once_per_extract_and_never_served_stale(opencart3_url: str) -> None:
    source = OpenCartSource()
    config = _config()
    raw = next(iter(source.extract(config, opencart3_url, ExtractRequest())))
    first = source.normalize(raw, config)
    assert normalize_module._lookups(raw, config) is normalize_module._lookups(dict(raw), config)

    renamed = raw["manufacturer"].with_columns(pl.lit("Renamed &amp; Co").alias("name"))
    changed = source.normalize({**raw, "manufacturer": renamed}, config)
    assert changed.filter(pl.col("brand").is_not_null())["brand"].unique().to_list() == ["Renamed & Co"]
    assert source.normalize(raw, config).equals(first)

    seo_config = _config(options={"seo_urls": True})
    seo = source.normalize(raw, seo_config)
    assert not seo["product_url"].equals(first["product_url"])
    assert normalize_module._lookups(raw, seo_config) is not normalize_module._lookups(raw, config)


def test_attributes_sharing_a_key_are_joined_and_single_ones_kept() -> None:
    keys = pl.DataFrame(
        {"attribute_id": [1, 2, 3], "column": ["attributes.memory", "attributes.memory", "attributes.cpu"]}
    )
    lookups = normalize_module._Lookups(
        **{
            **{name: pl.DataFrame() for name in normalize_module._Lookups.__dataclass_fields__},
            "currency": "USD",
            "seo_enabled": False,
            "option_columns": [],
            "attribute_keys": keys,
            "attribute_columns": ["attributes.cpu", "attributes.memory"],
        }
    )
    docs = pl.DataFrame({"_doc": [0, 1], "product_id": [10, 11], "language_id": [1, 1]})

    def columns(rows: list[tuple[int, int, str]]) -> list[dict[str, Any]]:
        raw = {"product_attribute": pl.DataFrame(rows, schema=["product_id", "attribute_id", "text"], orient="row")}
        raw["product_attribute"] = raw["product_attribute"].with_columns(pl.lit(1).alias("language_id"))
        wide, names = normalize_module._attribute_columns(raw, lookups, docs)
        assert names == ["attributes.cpu", "attributes.memory"]
        return wide.sort("_doc").to_dicts()

    assert columns([(10, 1, "8 GB"), (10, 3, "Z80"), (11, 3, "6502")]) == [
        {"_doc": 0, "attributes.cpu": "Z80", "attributes.memory": "8 GB"},
        {"_doc": 1, "attributes.cpu": "6502", "attributes.memory": None},
    ]
    assert columns([(10, 2, "ECC"), (10, 1, "8 GB"), (11, 3, "6502")]) == [
        {"_doc": 0, "attributes.cpu": None, "attributes.memory": "8 GB, ECC"},
        {"_doc": 1, "attributes.cpu": "6502", "attributes.memory": None},
    ]
