"""Golden tests for aac_etl.lib.normalize: one named test per rule of the field-mapping reference."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import yaml

from aac_etl.lib.normalize import (
    ISO_4217_CODES,
    RESERVED_KEYS,
    absolute_url,
    absolute_url_series,
    apply_locale,
    attribute_key,
    availability_from_stock,
    category_paths,
    check_attribute_keys,
    currency_exponent,
    effective_sale_price,
    empty_to_null,
    flatten_options,
    image_list,
    is_iso4217,
    iso8601,
    iso8601_series,
    looks_like_minor_units,
    normalize_currency,
    normalize_whitespace,
    price_by_currency,
    price_by_group,
    promotion_active,
    resolve_locale,
    split_number_arrays,
    stock_across_locations,
    to_major_units,
    variant_documents,
    woocommerce_availability,
)
from aac_etl_tests.lib.test_text import read_insert

CATEGORIES = pl.DataFrame(
    {
        "category_id": [10, 11, 12, 20, 21, 30],
        "parent_id": [0, 10, 11, None, 20, 10],
        "name": ["Shoes", "Running", "Trail", "Sale", "  Last   chance ", "Kids"],
    }
)


def _col(df: pl.DataFrame, expr: pl.Expr) -> list[object]:
    return df.select(expr).to_series().to_list()


# ----------------------------------------------------------------------------------------------------
# Product fields
# ----------------------------------------------------------------------------------------------------


def test_rule_empty_string_brand_dropped() -> None:
    df = pl.DataFrame({"brand": ["", "  ", "Acme", None], "tags": [["", "red"], [], [" "], None]})
    out = empty_to_null(df)
    assert out.to_dict(as_series=False) == {
        "brand": [None, None, "Acme", None],
        "tags": [["red"], None, None, None],
    }
    assert out.schema == df.schema


def test_rule_plain_text_whitespace_normalized() -> None:
    df = pl.DataFrame({"t": [" Blue\u00a0 Running\r\nShoes ", "\t", None]})
    assert _col(df, normalize_whitespace(pl.col("t"))) == ["Blue Running Shoes", None, None]


# ----------------------------------------------------------------------------------------------------
# Categories
# ----------------------------------------------------------------------------------------------------


def test_rule_categories_full_breadcrumb_path() -> None:
    out = category_paths(pl.DataFrame({"product_key": [1], "category_id": [12]}), CATEGORIES)
    assert out.to_dicts() == [
        {"product_key": 1, "categories": ["Shoes", "Running", "Trail"], "category_ids": ["10", "11", "12"]}
    ]


def test_rule_categories_multiple_paths_flattened_ids_aligned_duplicates_once() -> None:
    assignments = pl.DataFrame({"product_key": ["p1", "p1", "p1", "p2"], "category_id": [12, 21, 30, 21]})
    out = category_paths(assignments, CATEGORIES)
    assert out.to_dicts() == [
        {
            "product_key": "p1",
            "categories": ["Shoes", "Running", "Trail", "Sale", "Last chance", "Kids"],
            "category_ids": ["10", "11", "12", "20", "21", "30"],
        },
        {"product_key": "p2", "categories": ["Sale", "Last chance"], "category_ids": ["20", "21"]},
    ]
    assert all(len(a) == len(b) for a, b in zip(out["categories"], out["category_ids"], strict=True))


@pytest.mark.parametrize("ids", [[12, 0, 30], [" 12 ", "0", "30.0"], [12.0, 0.0, 30.0]])
def test_category_ids_of_any_type_give_the_same_paths(ids: list[object]) -> None:
    out = category_paths(pl.DataFrame({"product_key": [1, 1, 1], "category_id": ids}), CATEGORIES)
    assert out.to_dicts() == [
        {
            "product_key": 1,
            "categories": ["Shoes", "Running", "Trail", "Kids"],
            "category_ids": ["10", "11", "12", "30"],
        }
    ]


def test_category_paths_keep_the_assignment_order_in_small_frames() -> None:
    # A join's output order is not its left side's unless asked for: with a frame this small polars may build its
    # hash table on the left, and the breadcrumbs came out in either order from one run to the next.
    assignments = pl.DataFrame({"product_key": [1, 1], "category_id": [12, 30]})
    seen = {tuple(category_paths(assignments, CATEGORIES)["category_ids"].item()) for _ in range(40)}
    assert seen == {("10", "11", "12", "30")}


def test_rule_categories_walk_is_cycle_safe_and_skips_unknown_or_unnamed() -> None:
    cats = pl.DataFrame(
        {
            "category_id": [1, 2, 3, 4, 5],
            "parent_id": [2, 1, 3, 99, 4],
            "name": ["A", "B", "Self", "Orphan", None],
        }
    )
    assignments = pl.DataFrame({"product_key": [1, 2, 3, 4, 5], "category_id": [1, 3, 4, 5, 404]})
    out = category_paths(assignments, cats, max_depth=8)
    assert out.to_dicts() == [
        {"product_key": 1, "categories": ["B", "A"], "category_ids": ["2", "1"]},
        {"product_key": 2, "categories": ["Self"], "category_ids": ["3"]},
        {"product_key": 3, "categories": ["Orphan"], "category_ids": ["4"]},
        {"product_key": 4, "categories": ["Orphan"], "category_ids": ["4"]},
    ]


def test_rule_categories_depth_cap() -> None:
    chain = pl.DataFrame(
        {"category_id": list(range(1, 11)), "parent_id": [0, *range(1, 10)], "name": list("abcdefghij")}
    )
    out = category_paths(pl.DataFrame({"product_key": [1], "category_id": [10]}), chain, max_depth=3)
    assert out["categories"].to_list() == [["h", "i", "j"]]


def test_rule_categories_from_precomputed_path_table() -> None:
    paths = pl.DataFrame(
        {"category_id": [12, 12, 12, 30, 30], "path_id": [11, 10, 12, 10, 30], "level": [1, 0, 2, 0, 1]}
    )
    out = category_paths(pl.DataFrame({"product_key": [1, 1], "category_id": [12, 30]}), CATEGORIES, paths=paths)
    assert out.to_dicts() == [
        {
            "product_key": 1,
            "categories": ["Shoes", "Running", "Trail", "Kids"],
            "category_ids": ["10", "11", "12", "30"],
        }
    ]


def test_rule_categories_real_opencart_walk_equals_category_path(real_data_dir: Path) -> None:
    sql = (real_data_dir / "opencart-3.0" / "opencart.sql").read_text(encoding="utf-8")
    category = pl.DataFrame(read_insert(sql, "oc_category")).select("category_id", "parent_id")
    names = pl.DataFrame(read_insert(sql, "oc_category_description")).filter(pl.col("language_id") == 1)
    cats = category.join(names.select("category_id", "name"), on="category_id")
    paths = pl.DataFrame(read_insert(sql, "oc_category_path"))
    assignments = pl.DataFrame(read_insert(sql, "oc_product_to_category")).rename({"product_id": "product_key"})
    walked = category_paths(assignments, cats)
    tabled = category_paths(assignments, cats, paths=paths)
    assert walked.height > 10
    assert walked.sort("product_key").to_dicts() == tabled.sort("product_key").to_dicts()
    mac = walked.filter(pl.col("product_key") == 43.0).to_dicts()[0]  # MacBook: Laptops & Notebooks + Desktops
    assert mac["categories"] == [
        "Laptops &amp; Notebooks",
        "Desktops",
    ]  # names still escaped: clean_text them
    assert mac["category_ids"] == ["18", "20"]


# ----------------------------------------------------------------------------------------------------
# Prices and currencies
# ----------------------------------------------------------------------------------------------------


def test_rule_price_major_units_not_minor() -> None:
    df = pl.DataFrame({"cents": [9999, 0, None, -5], "major": ["99.99", "12", "x", "1e3"]})
    assert _col(df, to_major_units(pl.col("cents"), minor=True)) == [99.99, 0.0, None, None]
    assert _col(df, to_major_units(pl.col("major"), minor=False)) == [99.99, 12.0, None, 1000.0]
    yen = pl.DataFrame({"p": [1500], "c": ["JPY"]})
    assert _col(yen, to_major_units(pl.col("p"), minor=True, exponent=currency_exponent(pl.col("c")))) == [1500.0]


def test_rule_price_minor_units_guard() -> None:
    assert looks_like_minor_units(pl.Series([9999, 12900, 4500, 100000]))
    assert not looks_like_minor_units(pl.Series([99.99, 129.0, 45.5]))
    assert not looks_like_minor_units(pl.Series([5, 12, 30]))
    assert not looks_like_minor_units(pl.Series([], dtype=pl.Float64))


def test_rule_sale_price_only_when_lower() -> None:
    df = pl.DataFrame({"price": [100.0, 50.0, 50.0, None, 20.0], "sale": [79.99, 50.0, 60.0, 10.0, None]})
    assert _col(df, effective_sale_price(pl.col("price"), pl.col("sale"))) == [79.99, None, None, None, None]


def test_rule_sale_price_only_when_promotion_active() -> None:
    at = pl.lit(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    df = pl.DataFrame(
        {
            "price": [100.0] * 5,
            "sale": [80.0] * 5,
            "start": ["2024-01-01", "0000-00-00", "2024-07-01", None, "2024-01-01 00:00:00"],
            "end": ["2024-12-31", "0000-00-00", None, "2024-05-31", "2024-06-01 00:00:00"],
        }
    )
    active = promotion_active(pl.col("start"), pl.col("end"), at)
    assert _col(df, effective_sale_price(pl.col("price"), pl.col("sale"), active)) == [
        80.0,
        80.0,
        None,
        None,
        80.0,
    ]


def test_promotion_active_now_by_default_matches_an_explicit_now() -> None:
    now = dt.datetime.now(dt.UTC)
    past, future = (now - dt.timedelta(days=1)).strftime("%Y-%m-%d"), (now + dt.timedelta(days=2)).strftime("%Y-%m-%d")
    df = pl.DataFrame(
        {
            "start": [past, "0000-00-00", future, None, "", "not a date", past, future],
            "end": [future, None, None, past, future, "0000-00-00", "", future],
        }
    )
    default = _col(df, promotion_active(pl.col("start"), pl.col("end")))
    explicit = _col(df, promotion_active(pl.col("start"), pl.col("end"), pl.lit(now)))
    assert default == explicit == [True, True, False, False, True, True, True, False]


def test_rule_price_by_group_struct() -> None:
    rows = pl.DataFrame(
        {
            "product_key": [1, 1, 1, 2],
            "group": ["Retail", "Wholesale", "VIP", "Retail"],
            "price": [99.99, 79.99, 69.99, 5.0],
        }
    )
    assert price_by_group(rows).to_dicts() == [
        {"product_key": 1, "attributes.price_by_group": {"retail": 99.99, "vip": 69.99, "wholesale": 79.99}},
        {"product_key": 2, "attributes.price_by_group": {"retail": 5.0, "vip": None, "wholesale": None}},
    ]


def test_rule_multi_currency_price_by_currency() -> None:
    prices = pl.DataFrame({"product_key": [1, 2], "price": [100.0, None]})
    rates = pl.DataFrame(
        {
            "currency": ["usd", " eur", "GBP", "JPY", "XYZ", "CHF"],
            "rate": [1.0, 0.925, 0.8, 150.005, 2.0, 0.0],
        }
    )
    out = price_by_currency(prices, rates, base_currency="USD")
    assert out.to_dicts() == [
        {"product_key": 1, "attributes.price_by_currency": {"EUR": 92.5, "GBP": 80.0, "JPY": 15001.0}},
        {"product_key": 2, "attributes.price_by_currency": None},
    ]


def test_rule_currency_lowercase_rejected() -> None:
    df = pl.DataFrame({"c": ["USD", "usd", "Eur", " gbp ", "ABC", None]})
    assert _col(df, is_iso4217(pl.col("c"))) == [True, False, False, False, False, None]
    assert _col(df, normalize_currency(pl.col("c"))) == ["USD", "USD", "EUR", "GBP", "ABC", None]
    assert _col(df, is_iso4217(normalize_currency(pl.col("c")))) == [True, True, True, True, False, None]


def test_rule_currency_official_code_list() -> None:
    assert {"USD", "EUR", "GBP", "RUB", "JPY", "UAH"} <= ISO_4217_CODES
    assert all(len(c) == 3 and c.isupper() for c in ISO_4217_CODES)
    assert "usd" not in ISO_4217_CODES


# ----------------------------------------------------------------------------------------------------
# Stock
# ----------------------------------------------------------------------------------------------------


def test_rule_availability_backorders_and_preorders_map_to_preorder() -> None:
    df = pl.DataFrame(
        {
            "qty": [5, 0, 0, 0, 0, 0, None, -3, 2],
            "backorder": [False, True, False, False, False, False, False, False, False],
            "preorder": [False, False, False, False, False, False, False, False, True],
            "status": [None, None, "Pre-Order", "2-3 Days", "In Stock", "Out Of Stock", None, None, None],
        }
    )
    expr = availability_from_stock(
        pl.col("qty"), backorder=pl.col("backorder"), preorder=pl.col("preorder"), status=pl.col("status")
    )
    assert df.select(expr).columns == ["availability"]
    assert _col(df, expr) == [
        "in_stock",
        "preorder",
        "preorder",
        "preorder",
        "in_stock",
        "out_of_stock",
        None,
        "out_of_stock",
        "preorder",
    ]


def test_rule_woocommerce_stock_status_mapping() -> None:
    df = pl.DataFrame({"s": ["instock", "outofstock", "onbackorder", " InStock ", "weird", None]})
    assert _col(df, woocommerce_availability(pl.col("s"))) == [
        "in_stock",
        "out_of_stock",
        "preorder",
        "in_stock",
        None,
        None,
    ]


def test_rule_stock_in_stock_if_any_whitelisted_location_has_quantity() -> None:
    rows = pl.DataFrame(
        {
            "product_key": [1, 1, 1, 2, 2, 3, 4],
            "location": ["wh-a", "wh-b", "popup", "wh-a", "popup", "popup", "wh-b"],
            "quantity": [0, 3, 50, -2, 9, 7, None],
        }
    )
    assert stock_across_locations(rows, whitelist=["wh-a", "wh-b"]).to_dicts() == [
        {"product_key": 1, "stock_quantity": 3, "availability": "in_stock"},
        {"product_key": 2, "stock_quantity": 0, "availability": "out_of_stock"},
        {"product_key": 3, "stock_quantity": 0, "availability": "out_of_stock"},
        {"product_key": 4, "stock_quantity": 0, "availability": "out_of_stock"},
    ]


def test_rule_stock_quantity_total_across_locations() -> None:
    rows = pl.DataFrame({"product_key": [1, 1, 1], "location": ["a", "b", "c"], "quantity": [2, 3, -1]})
    assert stock_across_locations(rows).to_dicts() == [
        {"product_key": 1, "stock_quantity": 5, "availability": "in_stock"}
    ]


# ----------------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------------


def test_rule_image_url_full_url_with_scheme() -> None:
    df = pl.DataFrame(
        {
            "u": [
                "catalog/demo/iphone 1.jpg",
                "./catalog/a.jpg",
                "/image/b.png",
                "//cdn.example.com/c.webp",
                "https://cdn.example.com/d.avif",
                "HTTP://Shop.example.com/e.jpg",
                "data:image/png;base64,AAAA",
            ]
        }
    )
    assert _col(df, absolute_url(pl.col("u"), "https://shop.example.com/image")) == [
        "https://shop.example.com/image/catalog/demo/iphone%201.jpg",
        "https://shop.example.com/image/catalog/a.jpg",
        "https://shop.example.com/image/b.png",
        "https://cdn.example.com/c.webp",
        "https://cdn.example.com/d.avif",
        "http://Shop.example.com/e.jpg",
        None,
    ]


def test_rule_image_empty_string_dropped() -> None:
    df = pl.DataFrame({"u": ["", "   ", None]})
    assert _col(df, absolute_url(pl.col("u"), "https://shop.example.com/")) == [None, None, None]


@pytest.mark.parametrize(
    "values",
    [
        ["catalog/demo/iphone 1.jpg", "catalog/b.png", " catalog/c.webp ", "", "   ", None],  # the plain path
        ["catalog/a.jpg", "./catalog/a.jpg"],
        ["catalog/a.jpg", "/image/b.png", "//cdn.example.com/c.webp"],
        ["catalog/a.jpg", "https://cdn.example.com/d.avif", "HTTP://Shop.example.com/e.jpg", "data:x;base64,AA"],
        [None, None],
    ],
)
def test_absolute_url_series_equals_the_expression(values: list[str | None]) -> None:
    s = pl.Series("u", values, dtype=pl.String)
    for base in ("https://shop.example.com/image", "https://shop.example.com/image/"):
        expected = s.to_frame().select(absolute_url(pl.col("u"), base)).to_series().to_list()
        got = absolute_url_series(s, base)
        assert got.to_list() == expected
        assert got.name == "u"


def test_rule_images_full_list_in_attributes_images() -> None:
    rows = pl.DataFrame(
        {
            "product_key": [7, 7, 7, 7, 8],
            "url": [
                "https://x.io/side.jpg",
                "https://x.io/main.jpg",
                "https://x.io/side.jpg",
                "",
                "https://x.io/8.jpg",
            ],
            "alt": ["Side", "Front", "dup", "none", " "],
            "position": [2, 1, 3, 0, None],
        }
    )
    assert image_list(rows).to_dicts() == [
        {
            "product_key": 7,
            "attributes.images": [
                {"url": "https://x.io/main.jpg", "alt": "Front"},
                {"url": "https://x.io/side.jpg", "alt": "Side"},
            ],
        },
        {"product_key": 8, "attributes.images": [{"url": "https://x.io/8.jpg", "alt": None}]},
    ]


# ----------------------------------------------------------------------------------------------------
# Locales
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en", "en"),
        ("en-gb", "en"),
        ("EN_us", "en"),
        ("fr-FR", "fr"),
        ("de-CH", "de"),
        ("es-419", "es"),
        ("ru", "ru"),
    ],
)
def test_rule_locale_supported_and_regional_variants_map_to_themselves(code: str, expected: str) -> None:
    assert resolve_locale(code) == (expected, None, None)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("pt-BR", ("es", "pt-BR", "Português (Brasil)")),
        ("pt_br", ("es", "pt-BR", "Português (Brasil)")),
        ("it", ("fr", "it", "Italiano")),
        ("nl", ("de", "nl", "Nederlands")),
        ("uk", ("ru", "uk", "Українська")),
        ("kk", ("ru", "kk", "Қазақ тілі")),
        ("sr", ("ru", "sr", "Српски")),
        ("fa", ("en", "fa", "فارسی")),
        ("zh-TW", ("en", "zh-TW", "中文 (繁體, 台灣)")),
        ("pl", ("en", "pl", "Polski")),
    ],
)
def test_rule_locale_outside_supported_maps_to_closest(code: str, expected: tuple[str, str, str]) -> None:
    assert resolve_locale(code) == expected


def test_rule_locale_unknown_code_falls_back_to_en_and_keeps_code() -> None:
    assert resolve_locale("xx-yy") == ("en", "xx-YY", None)
    assert resolve_locale("") == ("en", None, None)
    assert resolve_locale(None) == ("en", None, None)


def test_rule_locale_one_document_per_locale_external_id_suffixed() -> None:
    docs = pl.DataFrame(
        {
            "external_id": ["prod-123"] * 5,
            "title": ["Shoe", "Schuh", "Zapato", "Sapato", "کفش"],
            "lang": ["en-gb", "de-de", "es", "pt-BR", "fa"],
        }
    )
    out = apply_locale(docs, "lang")
    assert out.columns == [
        "external_id",
        "title",
        "locale",
        "attributes.language",
        "attributes.language_label",
    ]
    assert out.rows() == [
        ("prod-123:en", "Shoe", "en", None, None),
        ("prod-123:de", "Schuh", "de", None, None),
        ("prod-123:es", "Zapato", "es", None, None),
        ("prod-123:pt-br", "Sapato", "es", "pt-BR", "Português (Brasil)"),
        ("prod-123:fa", "کفش", "en", "fa", "فارسی"),
    ]
    assert out["external_id"].is_unique().all()


# ----------------------------------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------------------------------


def test_rule_variants_flatten_into_option_attributes() -> None:
    rows = pl.DataFrame(
        {
            "product_key": [1, 1, 1, 1, 1, 2],
            "option_name": ["Color", "Color", "Size", "Color", "Shoe Width", "Color"],
            "value": ["Blue", "Red", "9.5", "Blue", " Narrow ", ""],
        }
    )
    assert flatten_options(rows).to_dicts() == [
        {
            "product_key": 1,
            "attributes.option_color": ["Blue", "Red"],
            "attributes.option_shoe_width": ["Narrow"],
            "attributes.option_size": ["9.5"],
        }
    ]


def test_images_shared_by_products_are_kept_for_each() -> None:
    rows = pl.DataFrame(
        {
            "product_key": [1, 2, 2, 3],
            "url": ["https://x.io/shared.jpg", "https://x.io/shared.jpg", "https://x.io/2.jpg", "https://x.io/3.jpg"],
            "alt": [None, None, None, None],
            "position": [0, 1, 0, 0],
        }
    )
    listed = image_list(rows).select(
        "product_key", pl.col("attributes.images").list.eval(pl.element().struct.field("url"))
    )
    assert listed.rows() == [
        (1, ["https://x.io/shared.jpg"]),
        (2, ["https://x.io/2.jpg", "https://x.io/shared.jpg"]),
        (3, ["https://x.io/3.jpg"]),
    ]


def test_rule_variant_documents_id_title_image_parent() -> None:
    parents = pl.DataFrame(
        {
            "external_id": ["prod-123"],
            "title": ["Blue Running Shoes"],
            "image_url": ["https://cdn.example.com/p/main.jpg"],
            "sku": ["BRS"],
            "price": [99.99],
        }
    )
    variants = pl.DataFrame(
        {
            "parent_external_id": ["prod-123", "prod-123", "missing"],
            "variant_id": [7, 8, 9],
            "variant_title": ["Size 9.5 Narrow", None, "x"],
            "sku": ["BRS-95N", None, None],
            "image_url": ["https://cdn.example.com/p/7.jpg", None, None],
            "price": [None, 89.5, None],
            "options": [
                [{"name": "Size", "value": "9.5"}, {"name": "Width", "value": "Narrow"}],
                [{"name": "Size", "value": "10"}],
                [],
            ],
        }
    )
    assert variant_documents(parents, variants).to_dicts() == [
        {
            "external_id": "prod-123:variant-7",
            "title": "Blue Running Shoes — Size 9.5 Narrow",
            "image_url": "https://cdn.example.com/p/7.jpg",
            "sku": "BRS-95N",
            "price": 99.99,
            "attributes.parent_external_id": "prod-123",
            "attributes.option_size": ["9.5"],
            "attributes.option_width": ["Narrow"],
        },
        {
            "external_id": "prod-123:variant-8",
            "title": "Blue Running Shoes — Size 10",
            "image_url": "https://cdn.example.com/p/main.jpg",
            "sku": "BRS",
            "price": 89.5,
            "attributes.parent_external_id": "prod-123",
            "attributes.option_size": ["10"],
            "attributes.option_width": None,
        },
    ]


def test_rule_variant_documents_then_locale_suffix_both_ids() -> None:
    parents = pl.DataFrame({"external_id": ["9"], "title": ["Kit"], "lang": ["fr-fr"]})
    variants = pl.DataFrame({"parent_external_id": ["9"], "variant_id": ["3"], "variant_title": ["Single unit"]})
    out = apply_locale(variant_documents(parents, variants), "lang")
    assert out.select("external_id", "title", "attributes.parent_external_id", "locale").to_dicts() == [
        {
            "external_id": "9:variant-3:fr",
            "title": "Kit — Single unit",
            "attributes.parent_external_id": "9:fr",
            "locale": "fr",
        }
    ]


# ----------------------------------------------------------------------------------------------------
# Attributes
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("OptionColor", "option_color"),
        ("option_color", "option_color"),
        ("Farbe / Größe", "farbe_grosse"),
        ("Écran (pouces)", "ecran_pouces"),
        ("Цвет", "tsvet"),
        ("3D Ready", "attr_3d_ready"),
        ("Title", "attr_title"),
        ("  ", "attr_099600a1"),
    ],
)
def test_rule_attribute_keys_lowercase_snake_case(name: str, key: str) -> None:
    assert attribute_key(name) == key


def test_rule_attribute_reserved_top_level_names() -> None:
    contract = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "data_contracts" / "sync_product_input.odcs.yaml").read_text()
    )
    top_level = {p["name"] for p in contract["schema"][0]["properties"]}
    assert top_level == RESERVED_KEYS
    problems = check_attribute_keys(
        [
            "title",
            "_record_id",
            "attributes.title",
            "attributes.OptionColor",
            "attributes.option_color",
            "attributes.2x",
        ]
    )
    assert problems == {
        "attributes.title": "reserved top-level field",
        "attributes.OptionColor": "not lowercase snake_case",
        "attributes.2x": "not lowercase snake_case",
    }


def test_rule_number_arrays_flattened_and_split() -> None:
    df = pl.DataFrame(
        {
            "attributes.sizes": [[38, 39, 41], [], None],
            "attributes.weights_kg": [[0.5, 1.0], [2.25], None],
            "attributes.option_color": [["red"], ["blue"], None],
            "price": [1.0, 2.0, 3.0],
        }
    )
    out = split_number_arrays(df)
    assert out.to_dict(as_series=False) == {
        "attributes.sizes": [["38", "39", "41"], None, None],
        "attributes.weights_kg": [["0.5", "1"], ["2.25"], None],
        "attributes.option_color": [["red"], ["blue"], None],
        "price": [1.0, 2.0, 3.0],
        "attributes.sizes_min": [38, None, None],
        "attributes.sizes_max": [41, None, None],
        "attributes.weights_kg_min": [0.5, 2.25, None],
        "attributes.weights_kg_max": [1.0, 2.25, None],
    }


# ----------------------------------------------------------------------------------------------------
# Dates
# ----------------------------------------------------------------------------------------------------


def test_rule_dates_iso8601() -> None:
    df = pl.DataFrame(
        {
            "s": [
                "2011-09-30 01:05:39",
                "2011-09-30T03:05:39+02:00",
                "2011-09-30T01:05:39Z",
                "2011-09-30",
                "2011-09-30 01:05:39.250",
                "not a date",
            ]
        }
    )
    assert _col(df, iso8601(pl.col("s"))) == [
        "2011-09-30T01:05:39Z",
        "2011-09-30T01:05:39Z",
        "2011-09-30T01:05:39Z",
        "2011-09-30T00:00:00Z",
        "2011-09-30T01:05:39Z",
        None,
    ]
    typed = pl.DataFrame(
        {
            "d": [dt.datetime(2011, 9, 30, 1, 5, 39)],
            "z": [dt.datetime(2011, 9, 30, 3, 5, 39)],
            "day": [dt.date(2011, 9, 30)],
        }
    ).with_columns(pl.col("z").dt.replace_time_zone("Europe/Berlin"))
    assert typed.select(iso8601(pl.col("d")), iso8601(pl.col("z")), iso8601(pl.col("day"))).row(0) == (
        "2011-09-30T01:05:39Z",
        "2011-09-30T01:05:39Z",
        "2011-09-30T00:00:00Z",
    )


def test_rule_mysql_zero_dates_become_null() -> None:
    df = pl.DataFrame({"s": ["0000-00-00", "0000-00-00 00:00:00", "", None]})
    assert _col(df, iso8601(pl.col("s"))) == [None, None, None, None]


def test_iso8601_series_equals_iso8601() -> None:
    values = pl.Series(
        "date_added",
        [
            "2011-09-30 01:05:39",
            "2024-02-29 23:59:59",
            "2023-02-29 10:00:00",
            "1999-12-31 23:59:60",
            "2011-09-30 24:00:00",
            "9999-12-31 23:59:59",
            "2011-13-30 01:05:39",
            " 2011-09-30 01:05:39 ",
            "2011-09-30T03:05:39+02:00",
            "2011-09-30 01:05:39 UTC",
            "2011-09-30 01:05:39.250",
            "2011-09-30 01:05",
            "2011-09-30",
            "0000-00-00 00:00:00",
            "0000-01-01 00:00:00",
            "",
            "not a date",
            None,
        ],
    )
    expected = values.to_frame().select(iso8601(pl.col("date_added"))).to_series()
    result = iso8601_series(values)
    assert result.name == "date_added"
    assert result.to_list() == expected.to_list()
    assert iso8601_series(values.head(0)).to_list() == []
    typed = pl.Series("d", [dt.datetime(2011, 9, 30, 1, 5, 39), None])
    assert iso8601_series(typed).to_list() == ["2011-09-30T01:05:39Z", None]
