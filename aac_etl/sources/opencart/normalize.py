"""OpenCart 3 raw chunk -> document frame (docs/ARCHITECTURE.md), one row per product and configured language.

Decisions worth knowing:

* Only enabled products (``status = 1``) become documents; a disabled product disappears from the next
  full sync's output, so the buffer turns it into a delete. A product whose name renders to nothing (blank,
  only markup) is kept with a null title, so the contract quarantines it instead of it vanishing silently.
* Every general rule (empty -> null, URLs, ISO timestamps, breadcrumbs, prices per currency and group, sale
  price, availability, images, locales, attribute keys) is the shared one of :mod:`aac_etl.lib.normalize`;
  this module only maps the OpenCart tables onto those rules.
* ``locale``, the ``:<locale>`` id suffix and ``attributes.language``/``language_label`` come from
  :func:`~aac_etl.lib.normalize.apply_locale` on the OpenCart language code; ``languages`` in sources.yaml
  selects which shop languages become documents and in which order (the first gives the attribute keys).
* ``currency`` is the shop's ``config_currency`` (OpenCart stores every price in its default currency),
  falling back to ``SourceConfig.default_currency`` when the setting is absent, not an ISO code, or when
  ``options.currency_from_shop`` is false. ``attributes.price_by_currency`` holds the list price converted
  with the ``oc_currency`` rates of the other enabled currencies, rounded to each currency's minor unit.
* ``sale_price`` is the active special (``oc_product_special``) of ``options.customer_group_id`` (default
  1): lowest ``priority`` number wins, then lowest price; ``'0000-00-00'`` start/end dates are open, an end
  date ends the special when that day starts (OpenCart's ``date_end > NOW()``); kept only when lower than
  ``price``. ``attributes.price_by_group`` maps every customer group (key: snake_case
  group name) to its special, else its quantity-1 discount, else the list price; it is null for products
  without any.
* Attribute keys (``option_<name>`` and product attribute names) come from the *first* configured language, so
  a facet has the same key in every locale; the values are in the document's language. Attribute names that
  collide with top-level fields (``description``...) or with the attributes this normalizer generates
  (``images``, ``option_*``...) are prefixed ``attr_``.
* Attribute columns are derived from the lookup tables (repeated in every chunk), so every chunk of one
  extract yields the same columns. What the lookup tables give is derived once per extract (:func:`_lookups`).
* Parts that do not depend on the language (image URLs, category paths, group prices, timestamps) are built
  once per product and then given to each of its documents.
* ``product_url`` uses the SEO keyword (``<storefront>/<keyword>``) only when SEO URLs are on: the shop's
  ``config_seo_url`` setting, overridden by ``options.seo_urls``. Otherwise the ``index.php?route=...`` URL.
* ``tags`` is the product's ``tag`` text (stored HTML-escaped, like names) decoded, then split on commas.
* Timestamps are the shop's local ``date_added``/``date_modified`` written as ISO 8601 with ``Z``.
* ``availability``: quantity > 0 is ``in_stock``; otherwise the product's stock status decides, read by the
  shared rule in every language the shop has (a name that signals pre-order, then in stock, wins).
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from aac_etl.lib import text as text_lib
from aac_etl.lib.contract import document_dtypes, load_contract
from aac_etl.lib.normalize import (
    ISO_4217_CODES,
    absolute_url_series,
    apply_locale,
    attribute_key,
    availability_from_stock,
    category_node_rows,
    effective_sale_price,
    empty_to_null,
    flatten_options,
    image_list,
    iso8601_series,
    named_category_paths,
    normalize_currency,
    normalize_whitespace,
    option_column,
    price_by_currency,
    price_by_group,
    promotion_active,
    resolve_locale,
)
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources.base import RawChunk
from aac_etl.sources.opencart import settings as oc

DOCUMENT_COLUMNS: dict[str, pl.DataType] = document_dtypes(load_contract())
"""Top-level columns of the document frame and their dtypes (``attributes.*`` and ``_record_id`` follow)."""

GENERATED_ATTRIBUTES = frozenset({"images", "price_by_currency", "price_by_group", "language", "language_label"})
"""Attribute keys this normalizer fills itself; a product attribute with such a name gets ``attr_``."""

_KEYS = ["product_id", "language_id"]
_WORKERS = 3
"""Worker threads of :func:`normalize_chunk`: the description plus two other parts (timestamps, document parts) at a
time."""
_STATUS_PREFERENCE = {"preorder": 0, "in_stock": 1, "out_of_stock": 2}


def _clean_text(s: pl.Series) -> pl.Series:
    """OpenCart stores text HTML-escaped: decode once, strip tags, decode entities, collapse whitespace.

    Every text is cleaned beside the other parts of :func:`normalize_chunk` (in its worker threads or meanwhile), so
    without spreading the column over every core (:func:`~aac_etl.lib.text.beside_other_work`).
    """
    with text_lib.beside_other_work():
        return text_lib.clean_text(s, double_encoded=True)


def _with_clean(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    return frame.with_columns(_clean_text(frame[name]).alias(name))


def _product_attribute_key(name: str) -> str:
    """Shared attribute key, kept apart from the option columns and the attributes generated here."""
    key = attribute_key(name)
    return f"attr_{key}" if key in GENERATED_ATTRIBUTES or key.startswith("option_") else key


# --- settings and languages -------------------------------------------------------------------------------


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
    """Return the configured languages present in the shop: language_id, code, rank (0 = key language)."""
    order = list(config.languages)
    frame = raw["language"].filter(pl.col("code").is_in(order))
    return frame.select(
        "language_id",
        "code",
        pl.col("code").replace_strict({c: i for i, c in enumerate(order)}, return_dtype=pl.Int64).alias("rank"),
    ).sort("rank")


def _key_names(frame: pl.DataFrame, id_col: str, langs: pl.DataFrame) -> pl.DataFrame:
    """Per id, the decoded name in the best-ranked configured language (id_col, name); blank names are left out."""
    ranked = frame.join(langs.select("language_id", "rank"), on="language_id", how="left").with_columns(
        pl.col("rank").fill_null(1 << 30)
    )
    best = ranked.sort(id_col, "rank", "language_id").unique(subset=[id_col], keep="first", maintain_order=True)
    return _with_clean(best.select(id_col, "name"), "name").filter(pl.col("name").is_not_null())


def _currency(raw: RawChunk, config: SourceConfig, store_id: int) -> str:
    if config.options.get(oc.OPTION_CURRENCY_FROM_SHOP, True) is False:
        return config.default_currency
    shop = (_setting(raw, "config_currency", store_id) or "").strip().upper()
    return shop if shop in ISO_4217_CODES else config.default_currency


def _seo_enabled(raw: RawChunk, config: SourceConfig, store_id: int) -> bool:
    forced = config.options.get(oc.OPTION_SEO_URLS)
    if isinstance(forced, bool):
        return forced
    if isinstance(forced, str) and forced.lower() in ("true", "false", "1", "0"):
        return forced.lower() in ("true", "1")
    setting = _setting(raw, "config_seo_url", store_id)
    return setting is None or setting.strip() == "1"


# --- per-product lookups ----------------------------------------------------------------------------------


def _best_price(frame: pl.DataFrame, at: pl.Expr | None) -> pl.DataFrame:
    """Keep the active rows of a special/discount frame, the best per (product_id, customer_group_id).

    Best is the lowest priority number, then the lowest price.
    """
    # Each distinct pair of dates is parsed once (a few thousand pairs for tens of thousands of rows).
    bounds = frame.select("date_start", "date_end").unique()
    running = bounds.filter(promotion_active(pl.col("date_start"), pl.col("date_end"), at))
    active = frame.filter(pl.col("price").is_not_null()).join(
        running, on=["date_start", "date_end"], how="semi", nulls_equal=True
    )
    return (
        active.sort("product_id", "customer_group_id", "priority", "price")
        .unique(subset=["product_id", "customer_group_id"], keep="first", maintain_order=True)
        .select("product_id", "customer_group_id", "price")
    )


def _stock_status(raw: RawChunk) -> pl.DataFrame:
    """stock_status_id -> the status name shown at quantity 0 (``stock_status``).

    Names exist per language; the shared availability rule reads each, and the one it finds most available
    (pre-order, then in stock) is kept, so a status keeps its meaning whatever the configured languages.
    """
    names = _with_clean(raw["stock_status"], "name").filter(pl.col("name").is_not_null())
    read_as = availability_from_stock(pl.lit(None, pl.Int64), status=pl.col("name"))
    preference = read_as.replace_strict(_STATUS_PREFERENCE, default=len(_STATUS_PREFERENCE), return_dtype=pl.Int64)
    return (
        names.with_columns(preference.alias("preference"))
        .sort("stock_status_id", "preference", "language_id")
        .unique(subset=["stock_status_id"], keep="first", maintain_order=True)
        .select("stock_status_id", pl.col("name").alias("stock_status"))
    )


def _seo_keywords(raw: RawChunk, enabled: bool, store_id: int) -> pl.DataFrame:
    """(product_id, language_id, keyword) of the store when SEO URLs are on (``enabled``), else no rows."""
    seo = raw["seo_url"].filter(pl.col("store_id") == store_id)
    if not enabled:
        seo = seo.clear()
    return (
        seo.with_columns(normalize_whitespace(pl.col("keyword").cast(pl.Utf8)).alias("keyword"))
        .filter(pl.col("keyword").is_not_null())
        .filter(pl.struct(_KEYS).is_first_distinct())
        .select(*_KEYS, "keyword")
    )


# --- document parts keyed by ``_doc`` (one row per product and language) ---------------------------------


def _categories(raw: RawChunk, lookups: _Lookups, keys: pl.DataFrame) -> pl.DataFrame:
    """Per document: categories and category_ids along every path of an enabled category, top -> leaf.

    OpenCart hides a category whose path crosses a disabled (or missing) category, so such leaves are left
    out; the paths come from the precomputed ``category_path`` closure table. The paths are a product's, the
    same in every language: they are built once per product, then named per language.
    """
    links = raw["product_to_category"].join(lookups.hidden_categories, on="category_id", how="anti")
    assignments = (
        links.join(keys.select("product_id").unique(), on="product_id", how="semi")
        .sort("product_id", "category_id")
        .select(pl.col("product_id").alias("product_key"), "category_id")
    )
    nodes = category_node_rows(assignments, paths=raw["category_path"])
    parts = [
        named_category_paths(
            nodes.join(
                keys.filter(pl.col("language_id") == language_id).select(
                    pl.col("product_id").alias("product_key"), "_doc"
                ),
                on="product_key",
                how="inner",
            ).select(pl.col("_doc").alias("product_key"), "node", "order"),
            lookups.category_names.filter(pl.col("language_id") == language_id),
        )
        for language_id in keys["language_id"].unique().sort().to_list()
    ]
    return pl.concat(parts).rename({"product_key": "_doc"})


def _images(raw: RawChunk, docs: pl.DataFrame, base: str) -> pl.DataFrame:
    """Per document: ``attributes.images`` ({url, alt}), main image first, then by sort order; alt = title.

    The URLs are a product's, the same in every language: the list is built once per product (with the shared
    :func:`~aac_etl.lib.normalize.image_list` rule) and then given each document's title as ``alt``. The title
    is already whitespace-normalized text, as the rule wants an ``alt`` to be.
    """
    # The main image's URL is the document's ``image_url``, already built; only the extra images get theirs here.
    products = docs.select("product_id", "image_url").unique(subset="product_id", keep="first")
    main = products.select(
        "product_id",
        pl.col("image_url").alias("url"),
        pl.lit(-1, pl.Int64).alias("position"),
        pl.lit(0, pl.Int64).alias("tie"),
    )
    extra = raw["product_image"].join(products.select("product_id"), on="product_id", how="semi")
    rows = pl.concat(
        [
            main,
            extra.select(
                "product_id",
                _image_url(extra.get_column("image"), base).alias("url"),
                pl.col("sort_order").alias("position"),
                pl.col("product_image_id").alias("tie"),
            ),
        ],
        how="vertical_relaxed",
    ).sort("product_id", "position", "tie")
    urls = rows.select(pl.col("product_id").alias("product_key"), "url", pl.lit(None, pl.Utf8).alias("alt"), "position")
    listed = image_list(urls).select(
        pl.col("product_key").alias("product_id"),
        pl.col("attributes.images").list.eval(pl.element().struct.field("url")),
    )
    per_doc = (
        docs.select("_doc", "product_id", pl.col("title").alias("alt"))
        .join(listed, on="product_id", how="inner")
        .explode("attributes.images")
        .rename({"attributes.images": "url"})
    )
    return per_doc.group_by("_doc", maintain_order=True).agg(pl.struct("url", "alt").alias("attributes.images"))


def _image_url(path: pl.Series, base: str) -> pl.Series:
    """OpenCart image paths are relative to the image folder, even with a leading slash."""
    return absolute_url_series(path.cast(pl.Utf8).str.strip_chars().str.strip_chars_start("/"), base)


def _ensure_columns(frame: pl.DataFrame, columns: list[str], dtype: pl.DataType | type[pl.DataType]) -> pl.DataFrame:
    """Select ``_doc`` and ``columns`` (missing ones as null of ``dtype``), every chunk gets the same columns."""
    missing = [pl.lit(None, dtype).alias(c) for c in columns if c not in frame.columns]
    return frame.with_columns(missing).select("_doc", *(pl.col(c).cast(dtype) for c in columns))


def _option_lookups(raw: RawChunk, langs: pl.DataFrame) -> tuple[pl.DataFrame, list[str], pl.DataFrame]:
    """Return the listed options: (option_id, option_name) in the key language, columns, decoded values."""
    options = raw["option"].filter(pl.col("type").is_in(oc.LISTED_OPTION_TYPES))
    options = options.join(raw["option_value"].select("option_id").unique(), on="option_id", how="semi")
    names = _key_names(raw["option_description"], "option_id", langs).join(options, on="option_id", how="semi")
    columns = sorted({option_column(n) for n in names["name"].to_list()})
    values = (
        _with_clean(raw["option_value_description"], "name")
        .select("option_value_id", "language_id", pl.col("name").alias("value"))
        .join(raw["option_value"].select("option_value_id", "sort_order"), on="option_value_id", how="left")
    )
    return names.rename({"name": "option_name"}), columns, values


def _option_columns(raw: RawChunk, lookups: _Lookups, keys: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Per document: one List(Utf8) column per listed option (``attributes.option_*``), values in sort order."""
    rows = (
        raw["product_option_value"]
        .join(lookups.option_names, on="option_id", how="inner")
        .join(lookups.option_values, on="option_value_id", how="inner")
        .join(keys.select("_doc", *_KEYS), on=_KEYS, how="inner")
        .sort("_doc", "sort_order", "option_value_id")
        .select(pl.col("_doc").alias("product_key"), "option_name", "value")
    )
    wide = flatten_options(rows).rename({"product_key": "_doc"})
    return _ensure_columns(wide, lookups.option_columns, pl.List(pl.Utf8)), lookups.option_columns


def _attribute_lookups(raw: RawChunk, langs: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Return the product attributes' (attribute_id, column), keyed by the key-language name, and the columns."""
    names = _key_names(raw["attribute_description"], "attribute_id", langs)
    keys = {n: f"attributes.{_product_attribute_key(n)}" for n in names["name"].unique().to_list()}
    keyed = names.select("attribute_id", pl.col("name").replace_strict(keys, return_dtype=pl.Utf8).alias("column"))
    return keyed, sorted(set(keys.values()))


def _attribute_columns(raw: RawChunk, lookups: _Lookups, keys: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Per document: one Utf8 column per product attribute name (several attributes on one key: joined by ``, ``)."""
    rows = (
        _with_clean(raw["product_attribute"], "text")
        .join(lookups.attribute_keys, on="attribute_id", how="inner")
        .join(keys.select("_doc", *_KEYS), on=_KEYS, how="inner")
        .filter(pl.col("text").is_not_null())
        .sort("_doc", "column", "attribute_id")
        .select("_doc", "column", "text")
    )
    # Joining texts is only needed where one document has several attributes on one key (the string aggregation
    # costs more than the rest of this part).
    shared = rows.select(pl.struct("_doc", "column").is_duplicated().any()).item()
    long = rows.group_by("_doc", "column", maintain_order=True).agg(pl.col("text").str.join(", ")) if shared else rows
    wide = long.pivot(on="column", index="_doc", values="text") if long.height else long.select("_doc")
    return _ensure_columns(wide, lookups.attribute_columns, pl.Utf8), lookups.attribute_columns


def _currency_rates(raw: RawChunk, main: str) -> pl.DataFrame:
    """Return the enabled currencies and their rate per unit of ``main`` (``oc_currency.value``: per shop unit)."""
    currencies = (
        raw["currency"]
        .filter(pl.col("status") == 1)
        .select(normalize_currency(pl.col("code")).alias("currency"), pl.col("value").cast(pl.Float64).alias("rate"))
    )
    main_rates = currencies.filter(pl.col("currency") == main)["rate"].to_list()
    main_rate = main_rates[0] if main_rates and main_rates[0] else 1.0
    return currencies.with_columns(pl.col("rate") / main_rate)


def _price_by_currency(lookups: _Lookups, docs: pl.DataFrame) -> pl.DataFrame | None:
    """Per document: the list price in the other enabled currencies."""
    prices = docs.select(pl.col("_doc").alias("product_key"), "price")
    frame = price_by_currency(prices, lookups.currency_rates, base_currency=lookups.currency)
    dtype = frame.schema["attributes.price_by_currency"]
    if not isinstance(dtype, pl.Struct) or not dtype.fields:
        return None
    return frame.rename({"product_key": "_doc"})


def _group_keys(raw: RawChunk, langs: pl.DataFrame) -> pl.DataFrame:
    """customer_group_id -> group key (snake_case name, made unique with the id), in id order."""
    groups = raw.get("customer_group_description")
    if groups is None or groups.is_empty():
        return pl.DataFrame(schema={"customer_group_id": pl.Int64, "group": pl.Utf8})
    names = dict(_key_names(groups, "customer_group_id", langs).iter_rows())
    keys: dict[int, str] = {}
    for group_id in sorted(groups["customer_group_id"].unique().to_list()):
        name = names.get(group_id)
        key = attribute_key(name) if name else f"group_{group_id}"
        keys[int(group_id)] = key if key not in keys.values() else f"{key}_{group_id}"
    return pl.DataFrame(
        {"customer_group_id": list(keys), "group": list(keys.values())},
        schema={"customer_group_id": pl.Int64, "group": pl.Utf8},
    )


def _price_by_group(
    raw: RawChunk, lookups: _Lookups, specials: pl.DataFrame, docs: pl.DataFrame, at: pl.Expr | None
) -> pl.DataFrame | None:
    """Per document: every group's special, else discount, else list price; null for products without any."""
    groups = lookups.groups
    if groups.is_empty():
        return None
    discounts = _best_price(raw["product_discount"].filter(pl.col("quantity") <= 1), at)
    group_prices = (
        pl.concat([specials.with_columns(pl.lit(0).alias("pref")), discounts.with_columns(pl.lit(1).alias("pref"))])
        .join(groups, on="customer_group_id", how="semi")
        .sort("product_id", "customer_group_id", "pref")
        .unique(subset=["product_id", "customer_group_id"], keep="first", maintain_order=True)
        .select("product_id", "customer_group_id", pl.col("price").alias("group_price"))
    )
    # Per product (the prices are the same in every language), then given to each of its documents.
    grid = (
        docs.select("product_id", "price")
        .unique(subset="product_id", keep="first")
        .join(groups, how="cross")
        .join(group_prices, on=["product_id", "customer_group_id"], how="left")
        .sort("product_id", "customer_group_id")
    )
    tiers = price_by_group(
        grid.select(
            pl.col("product_id").alias("product_key"),
            "group",
            pl.coalesce(pl.col("group_price").cast(pl.Float64), pl.col("price")).alias("price"),
        )
    ).rename({"product_key": "product_id"})
    has_any = grid.group_by("product_id").agg(pl.col("group_price").is_not_null().any().alias("has_any"))
    column = "attributes.price_by_group"
    per_product = tiers.join(has_any, on="product_id").select(
        "product_id", pl.when("has_any").then(pl.col(column)).alias(column)
    )
    return docs.select("_doc", "product_id").join(per_product, on="product_id", how="inner").drop("product_id")


@dataclass(frozen=True)
class _Lookups:
    """What the normalizer derives from the lookup tables and the config alone, once per extract.

    The extract repeats the same lookup frames in every chunk (``oc.LOOKUP_TABLES``), so :func:`_lookups` builds
    this once and serves it again while the frames are the same objects and the config is equal.
    """

    langs: pl.DataFrame
    currency: str
    seo_enabled: bool
    manufacturers: pl.DataFrame
    stock_status: pl.DataFrame
    hidden_categories: pl.DataFrame
    category_names: pl.DataFrame
    option_names: pl.DataFrame
    option_columns: list[str]
    option_values: pl.DataFrame
    attribute_keys: pl.DataFrame
    attribute_columns: list[str]
    currency_rates: pl.DataFrame
    groups: pl.DataFrame


def _build_lookups(raw: RawChunk, config: SourceConfig) -> _Lookups:
    store_id = _option(config, oc.OPTION_STORE_ID, oc.DEFAULT_STORE_ID)
    langs = _languages(raw, config)
    currency = _currency(raw, config, store_id)
    enabled = raw["category"].filter(pl.col("status").fill_null(0) == 1).select("category_id")
    option_names, option_columns, option_values = _option_lookups(raw, langs)
    attribute_keys, attribute_columns = _attribute_lookups(raw, langs)
    return _Lookups(
        langs=langs,
        currency=currency,
        seo_enabled=_seo_enabled(raw, config, store_id),
        manufacturers=_with_clean(raw["manufacturer"], "name").select("manufacturer_id", pl.col("name").alias("brand")),
        stock_status=_stock_status(raw),
        hidden_categories=raw["category_path"]
        .join(enabled, left_on="path_id", right_on="category_id", how="anti")
        .select("category_id"),
        category_names=_with_clean(raw["category_description"], "name").join(
            raw["category"].select("category_id", "parent_id"), on="category_id", how="left"
        ),
        option_names=option_names,
        option_columns=option_columns,
        option_values=option_values,
        attribute_keys=attribute_keys,
        attribute_columns=attribute_columns,
        currency_rates=_currency_rates(raw, currency),
        groups=_group_keys(raw, langs),
    )


_LOOKUP_CACHE: list[tuple[tuple[pl.DataFrame | None, ...], SourceConfig, _Lookups]] = []
_LOOKUP_CACHE_SIZE = 4
_LOOKUP_LOCK = threading.Lock()


def _lookups(raw: RawChunk, config: SourceConfig) -> _Lookups:
    """Return the :class:`_Lookups` of the chunk's lookup frames, built on the first chunk of an extract.

    The cache holds the frames themselves, so an entry is only served for the very same frames (``is``), never for
    new frames that happen to reuse an old object's id.
    """
    frames = tuple(raw.get(name) for name in oc.LOOKUP_TABLES)
    with _LOOKUP_LOCK:
        for cached, cached_config, found in _LOOKUP_CACHE:
            if cached_config == config and all(a is b for a, b in zip(cached, frames, strict=True)):
                return found
    built = _build_lookups(raw, config)
    with _LOOKUP_LOCK:
        _LOOKUP_CACHE.insert(0, (frames, config, built))
        del _LOOKUP_CACHE[_LOOKUP_CACHE_SIZE:]
    return built


def _empty_documents() -> pl.DataFrame:
    return pl.DataFrame(schema={**DOCUMENT_COLUMNS, "_record_id": pl.Utf8})


def _document_parts(
    raw: RawChunk,
    config: SourceConfig,
    lookups: _Lookups,
    joined: pl.DataFrame,
    *,
    stamps: pl.DataFrame,
    at: pl.Expr | None,
    pool: ThreadPoolExecutor,
) -> tuple[pl.DataFrame, list[str]]:
    """Build every document column but ``description`` from the joined product/description rows.

    Args:
        raw: The raw chunk.
        config: The source declaration.
        lookups: What the lookup tables give (:func:`_lookups`).
        joined: Enabled products joined with their descriptions in the configured languages, with a ``_joined``
            row index (carried through so that the cleaned descriptions can be put in document order).
        stamps: Per product, ``created_at`` and ``updated_at`` (:func:`_timestamps`).
        at: Reference time for special/discount windows (None: now).
        pool: Worker threads for the independent parts (categories, images, options, attributes, prices).

    Returns:
        The documents by ``_doc`` (with ``_joined``, without ``description``) and the attribute columns.

    """
    store_id = _option(config, oc.OPTION_STORE_ID, oc.DEFAULT_STORE_ID)
    group_id = _option(config, oc.OPTION_CUSTOMER_GROUP_ID, oc.DEFAULT_CUSTOMER_GROUP_ID)
    storefront = config.storefront_url.rstrip("/")
    image_base = storefront + oc.IMAGE_PATH
    currency = lookups.currency
    # Document order (``_doc``) is fixed first: the parts that only read each document's keys start at once, in the
    # worker threads, while the other columns are built here.
    ordered = joined.sort(_KEYS, maintain_order=True).with_row_index("_doc")
    keys = ordered.select("_doc", *_KEYS)
    categories = pool.submit(_categories, raw, lookups, keys)
    options = pool.submit(_option_columns, raw, lookups, keys)
    attributes = pool.submit(_attribute_columns, raw, lookups, keys)
    specials = _best_price(raw["product_special"], at)
    sale = specials.filter(pl.col("customer_group_id") == group_id).select(
        "product_id", pl.col("price").alias("special_price")
    )
    docs = (
        _with_clean(_with_clean(ordered, "name"), "tag")
        .join(stamps, on="product_id", how="left")
        .join(lookups.manufacturers, on="manufacturer_id", how="left")
        .join(sale, on="product_id", how="left")
        .join(lookups.stock_status, on="stock_status_id", how="left")
        .join(_seo_keywords(raw, lookups.seo_enabled, store_id), on=_KEYS, how="left")
        .sort("_doc")
    )

    price = pl.col("price").cast(pl.Float64)
    # Lazy, so that the subexpressions the rules share (stripped URLs, casts) are computed once.
    out = (
        docs.lazy()
        .select(
            "_doc",
            "_joined",
            *_KEYS,
            "code",
            pl.col("product_id").cast(pl.Utf8).alias("external_id"),
            pl.col("name").alias("title"),
            pl.coalesce(normalize_whitespace(pl.col("sku")), normalize_whitespace(pl.col("model"))).alias("sku"),
            "brand",
            pl.col("tag").str.split(",").list.eval(normalize_whitespace(pl.element())).alias("tags"),
            price.alias("price"),
            effective_sale_price(price, pl.col("special_price")).alias("sale_price"),
            pl.lit(currency).alias("currency"),
            pl.lit(_image_url(docs.get_column("image"), image_base)).alias("image_url"),
            pl.when(pl.col("keyword").is_not_null())
            .then(pl.lit(storefront + "/") + pl.col("keyword"))
            .otherwise(pl.lit(storefront + oc.PRODUCT_ROUTE) + pl.col("product_id").cast(pl.Utf8))
            .alias("product_url"),
            availability_from_stock(pl.col("quantity"), status=pl.col("stock_status")),
            pl.col("quantity").clip(lower_bound=0).cast(pl.Int64).alias("stock_quantity"),
            "created_at",
            "updated_at",
            pl.col("product_id").cast(pl.Utf8).alias("_record_id"),
        )
        .collect()
    )
    # The parts that read the base columns are independent too.
    images = pool.submit(_images, raw, out, image_base)
    by_currency = pool.submit(_price_by_currency, lookups, out)
    by_group = pool.submit(_price_by_group, raw, lookups, specials, out, at)
    out = empty_to_null(out, ["tags"]).join(categories.result(), on="_doc", how="left")
    out = out.join(images.result(), on="_doc", how="left")
    attribute_cols = ["attributes.images"]
    for wide, columns in (options.result(), attributes.result()):
        out = out.join(wide, on="_doc", how="left")
        attribute_cols += columns
    for extra in (by_currency.result(), by_group.result()):
        if extra is not None:
            out = out.join(extra, on="_doc", how="left")
            attribute_cols += [c for c in extra.columns if c != "_doc"]

    out = apply_locale(out, "code")
    if any(resolve_locale(code)[1] is not None for code in lookups.langs["code"].to_list()):
        attribute_cols += ["attributes.language", "attributes.language_label"]
    return out, attribute_cols


def _timestamps(products: pl.DataFrame) -> pl.DataFrame:
    """Per product (the timestamps are the same in every language): ``created_at`` and ``updated_at`` in ISO 8601."""
    return products.select(
        "product_id",
        iso8601_series(products.get_column("date_added")).alias("created_at"),
        iso8601_series(products.get_column("date_modified")).alias("updated_at"),
    )


def normalize_chunk(raw: RawChunk, config: SourceConfig, *, now: dt.datetime | None = None) -> pl.DataFrame:
    """Turn one raw OpenCart chunk into the document frame.

    Args:
        raw: Tables of one chunk as yielded by :func:`aac_etl.sources.opencart.extract.extract_catalog`.
        config: The source declaration (languages, storefront_url, currency, options).
        now: Reference time for special/discount windows; defaults to the current UTC time.

    Returns:
        One row per enabled product and configured language (columns in docs/ARCHITECTURE.md).

    """
    at = pl.lit(pl.Series([now])) if now is not None else None
    langs = _languages(raw, config)
    products = raw["product"].filter(pl.col("status") == 1)
    if products.is_empty() or langs.is_empty():
        return _empty_documents()
    descriptions = raw["product_description"].join(langs.select("language_id", "code"), on="language_id")
    joined = products.join(descriptions, on="product_id", how="inner")
    if joined.is_empty():
        return _empty_documents()
    # The lookups come first: on an extract's first chunk they are a few dozen small polars calls, which took 68 ms
    # beside the description's cleaning against 14 ms alone (10k products); later chunks find them cached. Then the
    # independent parts run in worker threads (polars releases the GIL, so they use every core). The description,
    # the costliest text, is only carried through to the output: it is cleaned from the start, while every other
    # column is built.
    lookups = _lookups(raw, config)
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        description = pool.submit(_clean_text, joined.get_column("description"))
        stamps = pool.submit(_timestamps, products)
        out, attribute_cols = _document_parts(
            raw, config, lookups, joined.with_row_index("_joined"), stamps=stamps.result(), at=at, pool=pool
        )
        cleaned = description.result()
    out = out.sort("_doc")
    out = out.with_columns(cleaned.gather(out.get_column("_joined")).alias("description"))
    columns = [pl.col(c).cast(t) for c, t in DOCUMENT_COLUMNS.items()]
    return out.select(*columns, *attribute_cols, "_record_id")
