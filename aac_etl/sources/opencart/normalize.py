"""OpenCart 3 raw chunk -> document frame (docs/ARCHITECTURE.md), one row per product and configured language.

Decisions worth knowing:

* Only enabled products (``status = 1``) become documents; a disabled product disappears from the next
  full sync's output, so the buffer turns it into a delete.
* ``currency`` is the shop's ``config_currency`` (OpenCart stores every price in its default currency),
  falling back to ``SourceConfig.default_currency`` when the setting is absent, not an ISO code, or when
  ``options.currency_from_shop`` is false. ``attributes.price_by_currency`` holds the list price converted
  with the ``oc_currency`` rates of the other enabled currencies, rounded to 2 decimals.
* ``sale_price`` is the active special (``oc_product_special``) of ``options.customer_group_id`` (default
  1): lowest ``priority`` number wins, then lowest price; ``'0000-00-00'`` start/end dates are open; kept
  only when lower than ``price``. ``attributes.price_by_group`` maps every customer group (key: snake_case
  group name) to its special, else its quantity-1 discount, else the list price; it is null for products
  without any.
* Attribute keys (``option_<name>`` and product attribute names) come from the *first* configured language, so
  a facet has the same key in every locale; the values are in the document's language. Attribute names that
  collide with top-level fields (``description``...) are prefixed ``attr_``.
* Attribute columns are derived from the lookup tables (repeated in every chunk), so every chunk of one
  extract yields the same columns.
* ``product_url`` uses the SEO keyword (``<storefront>/<keyword>``) only when SEO URLs are on: the shop's
  ``config_seo_url`` setting, overridden by ``options.seo_urls``. Otherwise the ``index.php?route=...`` URL.
* Timestamps are the shop's local ``date_added``/``date_modified`` written as ISO 8601 with ``Z``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable

import polars as pl

from aac_etl.lib import text as text_lib
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources.base import RawChunk
from aac_etl.sources.opencart import settings as oc

DOCUMENT_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "external_id": pl.Utf8,
    "title": pl.Utf8,
    "description": pl.Utf8,
    "sku": pl.Utf8,
    "brand": pl.Utf8,
    "categories": pl.List(pl.Utf8),
    "category_ids": pl.List(pl.Utf8),
    "tags": pl.List(pl.Utf8),
    "price": pl.Float64,
    "sale_price": pl.Float64,
    "currency": pl.Utf8,
    "image_url": pl.Utf8,
    "product_url": pl.Utf8,
    "availability": pl.Utf8,
    "stock_quantity": pl.Int64,
    "locale": pl.Utf8,
    "created_at": pl.Utf8,
    "updated_at": pl.Utf8,
}
"""Top-level columns of the document frame and their dtypes (``attributes.*`` and ``_record_id`` follow)."""

RESERVED_KEYS = frozenset(DOCUMENT_COLUMNS) | {"attributes", "images", "price_by_currency", "price_by_group"}
_IMAGE_STRUCT = pl.Struct({"url": pl.Utf8, "alt": pl.Utf8})


# --- shared-rule wrappers (swap for aac_etl.lib.normalize when it lands) ----------------------------------


def _clean_text(s: pl.Series) -> pl.Series:
    """OpenCart stores text HTML-escaped: decode once, strip tags, decode entities, collapse whitespace."""
    return text_lib.clean_text(s, double_encoded=True)


def _decode_name(s: pl.Series) -> pl.Series:
    """Decode an entity-escaped short name (``Date &amp; Time``) and normalize its whitespace."""
    return text_lib.clean_text(s, double_encoded=True)


def _attribute_key(name: str, prefix: str = "") -> str:
    """Lowercase snake_case attribute key (ASCII), never a reserved top-level field name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    key = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if not key or not key[0].isalpha():
        key = f"attr_{key}" if key else "attr"
    key = prefix + key
    if key in RESERVED_KEYS or (not prefix and key.startswith("option_")):
        key = f"attr_{key}"
    return key


def _absolute_url(base: str, path: pl.Expr) -> pl.Expr:
    """Join ``base`` and a relative path, spaces escaped; empty or null paths give null."""
    cleaned = path.str.strip_chars()
    return (
        pl.when(cleaned.str.len_chars() > 0)
        .then(pl.lit(base) + cleaned.str.strip_chars_start("/").str.replace_all(" ", "%20", literal=True))
        .otherwise(None)
    )


def _iso_timestamp(col: pl.Expr) -> pl.Expr:
    """MySQL ``DATETIME`` text (zero dates -> null) -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    parsed = col.str.slice(0, 19).str.strptime(pl.Datetime, "%Y-%m-%d %H:%M:%S", strict=False)
    return parsed.dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(col: pl.Expr) -> pl.Expr:
    """MySQL ``DATE`` text -> Date; ``'0000-00-00'``, empty and null give null (an open bound)."""
    return col.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)


def _null_if_blank(col: pl.Expr) -> pl.Expr:
    stripped = col.str.strip_chars()
    return pl.when(stripped.str.len_chars() > 0).then(stripped).otherwise(None)


def _with_series(frame: pl.DataFrame, name: str, fn: Callable[[pl.Series], pl.Series]) -> pl.DataFrame:
    return frame.with_columns(fn(frame[name]).alias(name))


# --- helpers ----------------------------------------------------------------------------------------------


def _option(config: SourceConfig, key: str, default: int) -> int:
    value = config.options.get(key, default)
    return int(value) if isinstance(value, int | float | str) and not isinstance(value, bool) else default


def _setting(raw: RawChunk, key: str, store_id: int) -> str | None:
    settings = raw.get("setting")
    if settings is None or settings.is_empty():
        return None
    rows = settings.filter((pl.col("key") == key) & (pl.col("store_id") == store_id))
    if rows.is_empty():
        rows = settings.filter(pl.col("key") == key)
    return None if rows.is_empty() else rows["value"][0]


def _languages(raw: RawChunk, config: SourceConfig) -> pl.DataFrame:
    """Return the configured languages present in the shop: language_id, locale, rank (0 = key language)."""
    order = list(config.languages)
    frame = raw["language"].filter(pl.col("code").is_in(order))
    return frame.select(
        "language_id",
        pl.col("code").replace_strict(config.languages, return_dtype=pl.Utf8).alias("locale"),
        pl.col("code").replace_strict({c: i for i, c in enumerate(order)}, return_dtype=pl.Int64).alias("rank"),
    ).sort("rank")


def _key_names(frame: pl.DataFrame, id_col: str, langs: pl.DataFrame) -> pl.DataFrame:
    """Per id, the name in the best-ranked configured language (id_col, name)."""
    ranked = frame.join(langs.select("language_id", "rank"), on="language_id", how="left").with_columns(
        pl.col("rank").fill_null(1 << 30)
    )
    return ranked.sort(id_col, "rank").unique(subset=[id_col], keep="first", maintain_order=True).select(id_col, "name")


def _keys_for(ids_names: pl.DataFrame, id_col: str, prefix: str) -> pl.DataFrame:
    """Attach ``key`` (attribute key) to (id, name) rows; keys are computed once per distinct name."""
    decoded = _with_series(ids_names, "name", _decode_name)
    names = decoded["name"].drop_nulls().unique().to_list()
    mapping = {n: _attribute_key(n, prefix) for n in names}
    return (
        decoded.with_columns(pl.col("name").replace_strict(mapping, default=None, return_dtype=pl.Utf8).alias("key"))
        .filter(pl.col("key").is_not_null())
        .select(id_col, "key")
    )


def _best_price(frame: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """Keep the active rows of a special/discount frame, the best per (product_id, customer_group_id).

    Best is the lowest priority number, then the lowest price.
    """
    start, end = _date(pl.col("date_start")), _date(pl.col("date_end"))
    active = frame.filter(
        (start.is_null() | (start <= today)) & (end.is_null() | (end > today)) & pl.col("price").is_not_null()
    )
    return (
        active.sort("product_id", "customer_group_id", "priority", "price")
        .unique(subset=["product_id", "customer_group_id"], keep="first", maintain_order=True)
        .select("product_id", "customer_group_id", "price")
    )


def _categories(raw: RawChunk, langs: pl.DataFrame) -> pl.DataFrame:
    """Per (product_id, language_id): categories and category_ids along every enabled path, top -> leaf."""
    links = raw["product_to_category"]
    paths = raw["category_path"]
    status = raw["category"].select("category_id", "status")
    nodes = links.join(paths, on="category_id", how="inner").rename({"category_id": "leaf_id"})
    disabled_leaves = (
        nodes.join(status, left_on="path_id", right_on="category_id", how="left")
        .filter(pl.col("status").fill_null(0) != 1)
        .select("leaf_id")
        .unique()
    )
    nodes = nodes.join(disabled_leaves, on="leaf_id", how="anti")
    names = raw["category_description"].join(langs.select("language_id"), on="language_id", how="semi")
    names = _with_series(names, "name", _decode_name).filter(pl.col("name").is_not_null())
    named = nodes.join(names, left_on="path_id", right_on="category_id", how="inner")
    return (
        named.sort("product_id", "language_id", "leaf_id", "level")
        .unique(subset=["product_id", "language_id", "path_id"], keep="first", maintain_order=True)
        .group_by("product_id", "language_id", maintain_order=True)
        .agg(pl.col("name").alias("categories"), pl.col("path_id").cast(pl.Utf8).alias("category_ids"))
    )


def _availability(raw: RawChunk) -> pl.DataFrame:
    """stock_status_id -> availability used when the quantity is 0 or less."""
    statuses = raw["stock_status"]
    names = _with_series(statuses, "name", _decode_name)
    mapped = names.with_columns(
        pl.col("name")
        .str.to_lowercase()
        .replace_strict(oc.STOCK_STATUS_AVAILABILITY, default=None, return_dtype=pl.Utf8)
        .alias("unavailable_as")
    )
    return (
        mapped.filter(pl.col("unavailable_as").is_not_null())
        .group_by("stock_status_id")
        .agg(pl.col("unavailable_as").sort().first())
    )


def _option_columns(raw: RawChunk, langs: pl.DataFrame) -> tuple[pl.DataFrame | None, list[str]]:
    """Per (product_id, language_id): one List(Utf8) column per listed option (``attributes.option_*``)."""
    options = raw["option"].filter(pl.col("type").is_in(oc.LISTED_OPTION_TYPES))
    options = options.join(raw["option_value"].select("option_id").unique(), on="option_id", how="semi")
    keyed = _keys_for(_key_names(raw["option_description"], "option_id", langs), "option_id", "option_")
    keyed = keyed.join(options.select("option_id"), on="option_id", how="semi")
    all_keys = sorted(set(keyed["key"].to_list()))
    if not all_keys:
        return None, []
    values = _with_series(raw["option_value_description"], "name", _decode_name)
    long = (
        raw["product_option_value"]
        .join(keyed, on="option_id", how="inner")
        .join(raw["option_value"].select("option_value_id", "sort_order"), on="option_value_id", how="left")
        .join(values.select("option_value_id", "language_id", "name"), on="option_value_id", how="inner")
        .filter(pl.col("name").is_not_null())
        .sort("product_id", "language_id", "key", "sort_order", "option_value_id")
        .group_by("product_id", "language_id", "key", maintain_order=True)
        .agg(pl.col("name").unique(maintain_order=True).alias("values"))
    )
    wide = _pivot(long, "values", all_keys, pl.List(pl.Utf8))
    return wide, all_keys


def _attribute_columns(raw: RawChunk, langs: pl.DataFrame) -> tuple[pl.DataFrame | None, list[str]]:
    """Per (product_id, language_id): one Utf8 column per product attribute name."""
    keyed = _keys_for(_key_names(raw["attribute_description"], "attribute_id", langs), "attribute_id", "")
    all_keys = sorted(set(keyed["key"].to_list()))
    if not all_keys:
        return None, []
    values = _with_series(raw["product_attribute"], "text", _clean_text)
    long = (
        values.join(keyed, on="attribute_id", how="inner")
        .filter(pl.col("text").is_not_null())
        .sort("product_id", "language_id", "key", "attribute_id")
        .group_by("product_id", "language_id", "key", maintain_order=True)
        .agg(pl.col("text").str.join(", ").alias("values"))
    )
    wide = _pivot(long, "values", all_keys, pl.Utf8)
    return wide, all_keys


def _pivot(
    long: pl.DataFrame, values: str, keys: Iterable[str], dtype: pl.DataType | type[pl.DataType]
) -> pl.DataFrame:
    """Long (product_id, language_id, key, values) -> wide with one ``attributes.<key>`` column per key."""
    index = ["product_id", "language_id"]
    if long.is_empty():
        wide = pl.DataFrame(schema={"product_id": pl.Int64, "language_id": pl.Int64})
    else:
        wide = long.pivot(on="key", index=index, values=values, aggregate_function=None)
    missing = [pl.lit(None, dtype).alias(k) for k in keys if k not in wide.columns]
    wide = wide.with_columns(missing) if missing else wide
    return wide.select(*index, *(pl.col(k).cast(dtype).alias(f"attributes.{k}") for k in keys))


def _images(raw: RawChunk, docs: pl.DataFrame, base: str) -> pl.DataFrame:
    """Per (product_id, language_id): ``attributes.images`` list of {url, alt}, main image first."""
    main = docs.select(
        "product_id", pl.lit(-1, pl.Int64).alias("sort_order"), pl.lit(0, pl.Int64).alias("tie"), "image"
    ).unique(subset=["product_id"], maintain_order=True)
    extra = raw["product_image"].select("product_id", "sort_order", pl.col("product_image_id").alias("tie"), "image")
    urls = (
        pl.concat([main, extra], how="vertical_relaxed")
        .with_columns(_absolute_url(base, pl.col("image")).alias("url"))
        .filter(pl.col("url").is_not_null())
        .sort("product_id", "sort_order", "tie")
        .unique(subset=["product_id", "url"], keep="first", maintain_order=True)
    )
    return (
        urls.join(docs.select("product_id", "language_id", "title"), on="product_id", how="inner")
        .sort("product_id", "language_id", "sort_order", "tie")
        .group_by("product_id", "language_id", maintain_order=True)
        .agg(pl.struct(pl.col("url"), pl.col("title").alias("alt")).alias("attributes.images"))
    )


def _currency(raw: RawChunk, config: SourceConfig, store_id: int) -> str:
    if config.options.get(oc.OPTION_CURRENCY_FROM_SHOP, True) is False:
        return config.default_currency
    shop = (_setting(raw, "config_currency", store_id) or "").strip().upper()
    return shop if re.fullmatch(r"[A-Z]{3}", shop) else config.default_currency


def _seo_enabled(raw: RawChunk, config: SourceConfig, store_id: int) -> bool:
    forced = config.options.get(oc.OPTION_SEO_URLS)
    if isinstance(forced, bool):
        return forced
    if isinstance(forced, str) and forced.lower() in ("true", "false", "1", "0"):
        return forced.lower() in ("true", "1")
    setting = _setting(raw, "config_seo_url", store_id)
    return setting is None or setting.strip() == "1"


def _empty_documents() -> pl.DataFrame:
    return pl.DataFrame(schema={**DOCUMENT_COLUMNS, "_record_id": pl.Utf8})


def normalize_chunk(raw: RawChunk, config: SourceConfig, *, today: dt.date | None = None) -> pl.DataFrame:
    """Turn one raw OpenCart chunk into the document frame.

    Args:
        raw: Tables of one chunk as yielded by :func:`aac_etl.sources.opencart.extract.extract_catalog`.
        config: The source declaration (languages, storefront_url, currency, options).
        today: Reference date for special/discount windows; defaults to today's UTC date.

    Returns:
        One row per enabled product and configured language (columns in docs/ARCHITECTURE.md).

    """
    today = today or dt.datetime.now(dt.UTC).date()
    store_id = _option(config, oc.OPTION_STORE_ID, oc.DEFAULT_STORE_ID)
    group_id = _option(config, oc.OPTION_CUSTOMER_GROUP_ID, oc.DEFAULT_CUSTOMER_GROUP_ID)
    storefront = config.storefront_url.rstrip("/")
    langs = _languages(raw, config)
    products = raw["product"].filter(pl.col("status") == 1)
    if products.is_empty() or langs.is_empty():
        return _empty_documents()

    descriptions = raw["product_description"].join(langs.select("language_id", "locale"), on="language_id")
    docs = products.join(descriptions, on="product_id", how="inner")
    docs = _with_series(docs, "name", _clean_text)
    docs = _with_series(docs, "description", _clean_text)
    docs = docs.rename({"name": "title"}).filter(pl.col("title").is_not_null())
    if docs.is_empty():
        return _empty_documents()

    manufacturers = _with_series(raw["manufacturer"], "name", _decode_name).rename({"name": "brand"})
    docs = docs.join(manufacturers, on="manufacturer_id", how="left")

    specials = _best_price(raw["product_special"], today)
    sale = specials.filter(pl.col("customer_group_id") == group_id).select(
        "product_id", pl.col("price").alias("special_price")
    )
    docs = docs.join(sale, on="product_id", how="left")
    docs = docs.join(_availability(raw), on="stock_status_id", how="left")

    seo = raw["seo_url"].filter(pl.col("store_id") == store_id) if _seo_enabled(raw, config, store_id) else None
    if seo is not None and not seo.is_empty():
        keywords = (
            seo.with_columns(_null_if_blank(pl.col("keyword")).alias("keyword"))
            .filter(pl.col("keyword").is_not_null())
            .unique(subset=["product_id", "language_id"], keep="first", maintain_order=True)
            .select("product_id", "language_id", "keyword")
        )
        docs = docs.join(keywords, on=["product_id", "language_id"], how="left")
    else:
        docs = docs.with_columns(pl.lit(None, pl.Utf8).alias("keyword"))

    price = pl.col("price").cast(pl.Float64)
    tags = (
        pl.col("tag").str.split(",").list.eval(pl.element().str.strip_chars().filter(pl.element().str.len_chars() > 0))
    )
    out = docs.select(
        "product_id",
        "language_id",
        "image",
        (pl.col("product_id").cast(pl.Utf8) + ":" + pl.col("locale")).alias("external_id"),
        "title",
        "description",
        pl.coalesce(_null_if_blank(pl.col("sku")), _null_if_blank(pl.col("model"))).alias("sku"),
        _null_if_blank(pl.col("brand")).alias("brand"),
        pl.when(tags.list.len() > 0).then(tags).otherwise(None).alias("tags"),
        price.alias("price"),
        pl.when(pl.col("special_price").cast(pl.Float64) < price)
        .then(pl.col("special_price").cast(pl.Float64))
        .alias("sale_price"),
        pl.lit(_currency(raw, config, store_id)).alias("currency"),
        _absolute_url(storefront + oc.IMAGE_PATH, pl.col("image")).alias("image_url"),
        pl.when(pl.col("keyword").is_not_null())
        .then(pl.lit(storefront + "/") + pl.col("keyword"))
        .otherwise(pl.lit(storefront + oc.PRODUCT_ROUTE) + pl.col("product_id").cast(pl.Utf8))
        .alias("product_url"),
        pl.when(pl.col("quantity") > 0)
        .then(pl.lit("in_stock"))
        .otherwise(pl.col("unavailable_as").fill_null(oc.DEFAULT_UNAVAILABLE))
        .alias("availability"),
        pl.col("quantity").clip(lower_bound=0).cast(pl.Int64).alias("stock_quantity"),
        "locale",
        _iso_timestamp(pl.col("date_added")).alias("created_at"),
        _iso_timestamp(pl.col("date_modified")).alias("updated_at"),
        pl.col("product_id").cast(pl.Utf8).alias("_record_id"),
    )

    keys = ["product_id", "language_id"]
    out = out.join(_categories(raw, langs), on=keys, how="left")

    attribute_cols: list[str] = []
    images = _images(raw, out.select("product_id", "language_id", "image", "title"), storefront + oc.IMAGE_PATH)
    out = out.join(images, on=keys, how="left")
    attribute_cols.append("attributes.images")

    for builder in (_option_columns, _attribute_columns):
        wide, wide_keys = builder(raw, langs)
        if wide is not None:
            out = out.join(wide, on=keys, how="left")
            attribute_cols.extend(f"attributes.{k}" for k in wide_keys)

    by_currency = _price_by_currency(raw, _currency(raw, config, store_id))
    if by_currency is not None:
        out = out.with_columns(by_currency)
        attribute_cols.append("attributes.price_by_currency")

    by_group = _price_by_group(raw, specials, langs, today)
    if by_group is not None:
        out = out.join(by_group, on="product_id", how="left")
        out = out.with_columns(_fill_group_prices(by_group))
        attribute_cols.append("attributes.price_by_group")

    columns = [pl.col(c).cast(t) for c, t in DOCUMENT_COLUMNS.items()]
    return out.sort("product_id", "language_id").select(
        *columns, *sorted(set(attribute_cols), key=attribute_cols.index), "_record_id"
    )


def _price_by_currency(raw: RawChunk, main: str) -> pl.Expr | None:
    currencies = raw["currency"].filter(pl.col("status") == 1)
    main_rows = currencies.filter(pl.col("code").str.to_uppercase() == main)
    main_rate = float(main_rows["value"][0]) if not main_rows.is_empty() and main_rows["value"][0] else 1.0
    others = currencies.filter(
        (pl.col("code").str.to_uppercase() != main)
        & pl.col("code").str.to_uppercase().str.contains(r"^[A-Z]{3}$")
        & (pl.col("value") > 0)
    ).sort("code")
    if others.is_empty():
        return None
    fields = [
        (pl.col("price").cast(pl.Float64) * (float(rate) / main_rate)).round(2).alias(str(code).upper())
        for code, rate in others.select("code", "value").iter_rows()
    ]
    return pl.when(pl.col("price").is_not_null()).then(pl.struct(fields)).alias("attributes.price_by_currency")


def _group_keys(raw: RawChunk, langs: pl.DataFrame) -> dict[int, str]:
    groups = raw.get("customer_group_description")
    if groups is None or groups.is_empty():
        return {}
    named = _key_names(groups, "customer_group_id", langs)
    named = _with_series(named, "name", _decode_name)
    keys: dict[int, str] = {}
    for group_id, name in named.sort("customer_group_id").iter_rows():
        key = _attribute_key(name) if name else f"group_{group_id}"
        keys[int(group_id)] = key if key not in keys.values() else f"{key}_{group_id}"
    return keys


def _price_by_group(raw: RawChunk, specials: pl.DataFrame, langs: pl.DataFrame, today: dt.date) -> pl.DataFrame | None:
    """Per product with any group price: one column per group holding its special or quantity-1 discount."""
    keys = _group_keys(raw, langs)
    if not keys:
        return None
    discounts = _best_price(raw["product_discount"].filter(pl.col("quantity") <= 1), today)
    prices = (
        pl.concat([specials.with_columns(pl.lit(0).alias("pref")), discounts.with_columns(pl.lit(1).alias("pref"))])
        .filter(pl.col("customer_group_id").is_in(list(keys)))
        .sort("product_id", "customer_group_id", "pref")
        .unique(subset=["product_id", "customer_group_id"], keep="first", maintain_order=True)
        .with_columns(pl.col("customer_group_id").replace_strict(keys, return_dtype=pl.Utf8).alias("key"))
    )
    ordered = [keys[g] for g in sorted(keys)]
    wide = _pivot(
        prices.with_columns(pl.lit(0, pl.Int64).alias("language_id")).select(
            "product_id", "language_id", "key", "price"
        ),
        "price",
        ordered,
        pl.Float64,
    )
    return wide.drop("language_id").rename({f"attributes.{k}": f"_group_{k}" for k in ordered})


def _fill_group_prices(by_group: pl.DataFrame) -> pl.Expr:
    group_cols = [c for c in by_group.columns if c.startswith("_group_")]
    has_any = pl.any_horizontal(pl.col(c).is_not_null() for c in group_cols)
    fields = [pl.coalesce(pl.col(c), pl.col("price")).round(4).alias(c.removeprefix("_group_")) for c in group_cols]
    return pl.when(has_any).then(pl.struct(fields)).alias("attributes.price_by_group")
