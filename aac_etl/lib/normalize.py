"""Shared normalization rules of the field-mapping reference, used by every source (polars in, polars out).

Each rule is a small public function over polars expressions or frames; the per-source normalizers compose
them into the document frame described in docs/ARCHITECTURE.md. Per-value Python only runs on small sets of
distinct values (locale codes, attribute names, category ids per level).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache

import polars as pl
import pycountry
from babel import Locale, UnknownLocaleError
from babel.core import get_global

from aac_etl.lib.text import collapse_whitespace, collapse_whitespace_series

__all__ = [
    "AVAILABILITY_VALUES",
    "ISO_4217_CODES",
    "LOCALE_FALLBACKS",
    "RESERVED_KEYS",
    "SUPPORTED_LOCALES",
    "absolute_url",
    "absolute_url_series",
    "apply_locale",
    "attribute_key",
    "availability_from_stock",
    "category_paths",
    "check_attribute_keys",
    "currency_exponent",
    "effective_sale_price",
    "empty_to_null",
    "flatten_options",
    "image_list",
    "is_iso4217",
    "iso8601",
    "iso8601_series",
    "looks_like_minor_units",
    "normalize_currency",
    "normalize_whitespace",
    "option_column",
    "price_by_currency",
    "price_by_group",
    "promotion_active",
    "resolve_locale",
    "split_number_arrays",
    "stock_across_locations",
    "to_major_units",
    "variant_documents",
    "woocommerce_availability",
]

ATTR_PREFIX = "attributes."

# ----------------------------------------------------------------------------------------------------
# Empty strings and whitespace
# ----------------------------------------------------------------------------------------------------


def normalize_whitespace(expr: pl.Expr) -> pl.Expr:
    """Collapse whitespace runs (including nbsp and other Unicode spaces) to one space, trim, empty -> null.

    Args:
        expr: A Utf8 expression.

    Returns:
        The normalized expression.

    """
    return collapse_whitespace(expr)


def empty_to_null(df: pl.DataFrame, columns: Iterable[str] | None = None) -> pl.DataFrame:
    """Turn empty values into null ("an empty string is dropped": payloads omit null keys).

    Utf8 columns: a value that is empty or only whitespace becomes null (other values are kept as they are).
    List(Utf8) columns: blank elements are removed and an empty list becomes null.

    Args:
        df: Any frame.
        columns: Columns to treat; default every Utf8 and List(Utf8) column.

    Returns:
        The frame with the same columns and dtypes.

    """
    names = list(columns) if columns is not None else df.columns
    exprs: list[pl.Expr] = []
    for name in names:
        dtype = df.schema[name]
        col = pl.col(name)
        if dtype == pl.Utf8:
            exprs.append(pl.when(col.str.strip_chars().str.len_bytes() > 0).then(col).alias(name))
        elif dtype == pl.List(pl.Utf8):
            kept = col.list.eval(pl.element().filter(pl.element().str.strip_chars().str.len_bytes() > 0))
            exprs.append(pl.when(kept.list.len() > 0).then(kept).alias(name))
    # Lazy, so that a cleaned list is computed once for its length test and its value.
    return df.lazy().with_columns(exprs).collect() if exprs else df


def _first_occurrence(*columns: str) -> pl.Expr:
    """Mask of the first row of each distinct combination of ``columns`` (null values count as equal).

    ``frame.filter(_first_occurrence(...))`` equals ``frame.unique(subset, keep="first", maintain_order=True)``
    and is faster.
    """
    return pl.struct(columns).is_first_distinct()


# ----------------------------------------------------------------------------------------------------
# Categories
# ----------------------------------------------------------------------------------------------------

_ROOT_IDS = ("", "0")


def _as_id(expr: pl.Expr, dtype: pl.DataType | None = None) -> pl.Expr:
    """Cast an id to its string form; integral floats lose their ``.0``; ``0``/empty mean no id.

    An integer ``dtype`` (when the caller knows it) skips the text rules: an integer's text has neither spaces nor
    a fraction.
    """
    if dtype is not None and dtype.is_integer():
        return expr.cast(pl.Utf8).replace(list(_ROOT_IDS), None)
    text = expr.cast(pl.Utf8).str.strip_chars().str.replace(r"^(-?\d+)\.0+$", "${1}")
    return text.replace(list(_ROOT_IDS), None)


def _paths_by_walking(categories: pl.DataFrame, leaves: pl.Series, max_depth: int) -> pl.DataFrame:
    """Walk parent links for all leaves at once: one join per level; stop at roots, cycles, max_depth."""
    parents = categories.select(
        _as_id(pl.col("category_id")).alias("cur"), _as_id(pl.col("parent_id")).alias("parent")
    ).unique(subset="cur", keep="first")
    known = set(parents["cur"].drop_nulls().to_list())
    state = (
        pl.DataFrame({"leaf": leaves})
        .filter(pl.col("leaf").is_in(list(known)))
        .with_columns(cur=pl.col("leaf"), path=pl.concat_list(pl.col("leaf")), active=pl.lit(True))
    )
    for _ in range(max_depth - 1):
        if state.is_empty() or not bool(state["active"].any()):
            break
        state = (
            state.join(parents, on="cur", how="left")
            .with_columns(
                step=pl.col("active")
                & pl.col("parent").is_not_null()
                & pl.col("parent").is_in(list(known))
                & ~pl.col("path").list.contains(pl.col("parent"))
            )
            .with_columns(
                path=pl.when("step").then(pl.concat_list(pl.col("parent"), pl.col("path"))).otherwise("path"),
                cur=pl.when("step").then(pl.col("parent")).otherwise("cur"),
                active=pl.col("step"),
            )
            .drop("parent", "step")
        )
    return state.select("leaf", "path")


def _paths_from_table(paths: pl.DataFrame, leaves: pl.Series) -> pl.DataFrame:
    """Paths from a precomputed closure table (OpenCart ``category_path``: category_id, path_id, level)."""
    return (
        paths.select(
            _as_id(pl.col("category_id")).alias("leaf"),
            _as_id(pl.col("path_id")).alias("node"),
            pl.col("level").cast(pl.Int64),
        )
        .filter(pl.col("leaf").is_in(leaves.to_list()) & pl.col("node").is_not_null())
        .unique(subset=["leaf", "node"], keep="first")
        .sort("leaf", "level", "node")
        .group_by("leaf", maintain_order=True)
        .agg(path=pl.col("node"))
    )


def category_node_rows(
    product_categories: pl.DataFrame,
    categories: pl.DataFrame | None = None,
    *,
    paths: pl.DataFrame | None = None,
    max_depth: int = 32,
) -> pl.DataFrame:
    """Return every category along the paths of a product's categories, top -> leaf, first occurrence only.

    This is the part of :func:`category_paths` that does not depend on names (nor on the language): a source
    with several languages builds it once per product and names it per language with
    :func:`named_category_paths`.

    Args:
        product_categories: ``product_key``, ``category_id`` (one row per assignment, in display order).
        categories: ``category_id``, ``parent_id``; walked when ``paths`` is not given.
        paths: Optional precomputed closure table ``category_id``, ``path_id``, ``level``.
        max_depth: Longest path considered when walking.

    Returns:
        ``product_key``, ``node`` (the category id as text), ``order`` (the rows' order, ascending).

    Raises:
        ValueError: Neither ``categories`` nor ``paths`` is given.

    """
    assignments = product_categories.select(
        pl.col("product_key"), _as_id(pl.col("category_id"), product_categories.schema["category_id"]).alias("leaf")
    ).with_row_index("assignment")
    assignments = assignments.filter(pl.col("leaf").is_not_null())
    leaves = assignments["leaf"].unique()
    if paths is not None:
        leaf_paths = _paths_from_table(paths, leaves)
    elif categories is not None:
        leaf_paths = _paths_by_walking(categories, leaves, max_depth)
    else:
        raise ValueError("category_node_rows needs the categories or their paths")
    return (
        assignments.join(leaf_paths, on="leaf", how="inner", maintain_order="left")
        .explode("path")
        .rename({"path": "node"})
        .with_row_index("order")
        .filter(_first_occurrence("product_key", "node"))
        .select("product_key", "node", "order")
    )


def named_category_paths(node_rows: pl.DataFrame, categories: pl.DataFrame) -> pl.DataFrame:
    """Name the rows of :func:`category_node_rows` into ``categories``/``category_ids`` lists per product.

    A category whose name is null or blank is left out (its ancestors stay).

    Args:
        node_rows: ``product_key``, ``node``, ``order`` (:func:`category_node_rows`, keys may be renamed).
        categories: ``category_id``, ``name`` (names already in the document's locale).

    Returns:
        ``product_key``, ``categories`` List(Utf8), ``category_ids`` List(Utf8); only products with at least
        one named category.

    """
    names = (
        categories.select(_as_id(pl.col("category_id")).alias("node"), normalize_whitespace(pl.col("name")))
        .filter(pl.col("node").is_not_null() & pl.col("name").is_not_null())
        .unique(subset="node", keep="first")
    )
    rows = node_rows.join(names, on="node", how="inner").sort("order")
    return rows.group_by("product_key", maintain_order=True).agg(categories=pl.col("name"), category_ids=pl.col("node"))


def category_paths(
    product_categories: pl.DataFrame,
    categories: pl.DataFrame,
    *,
    paths: pl.DataFrame | None = None,
    max_depth: int = 32,
) -> pl.DataFrame:
    """Build breadcrumb ``categories``/``category_ids`` per product (rule: full path, top -> leaf).

    Every category of a product contributes its whole path from the top category down to itself; several
    paths are flattened into one list in the order of ``product_categories``; an id already listed (a shared
    ancestor, or a category listed twice) is kept at its first occurrence only, so names and ids stay aligned
    one to one. Ids are strings (``12``, not ``12.0``); ``0``, empty and null parents are roots. A category
    whose name is null or blank is left out of the path (its ancestors stay). A parent id that is not in
    ``categories`` ends the walk, as does a cycle or ``max_depth`` levels.

    Args:
        product_categories: ``product_key``, ``category_id`` (one row per assignment, in display order).
        categories: ``category_id``, ``parent_id``, ``name`` (names already in the document's locale).
        paths: Optional precomputed closure table ``category_id``, ``path_id``, ``level`` (OpenCart
            ``oc_category_path``; level 0 is the top). When given, parents are not walked.
        max_depth: Longest path considered (protects against corrupt parent links).

    Returns:
        ``product_key``, ``categories`` List(Utf8), ``category_ids`` List(Utf8); only products with at least
        one named category (left-join it onto the documents).

    """
    nodes = category_node_rows(product_categories, categories, paths=paths, max_depth=max_depth)
    return named_category_paths(nodes, categories)


# ----------------------------------------------------------------------------------------------------
# Prices and currencies
# ----------------------------------------------------------------------------------------------------

ISO_4217_CODES: frozenset[str] = frozenset(c.alpha_3 for c in pycountry.currencies)
"""Active ISO 4217 alphabetic codes (pycountry's copy of the official list)."""

_ZERO_DECIMAL = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                 "VUV", "XAF", "XOF", "XPF")  # fmt: skip
_THREE_DECIMAL = ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")


def normalize_currency(expr: pl.Expr) -> pl.Expr:
    """Trim and uppercase a currency code; blank -> null (``" usd "`` -> ``"USD"``).

    Args:
        expr: A Utf8 expression.

    Returns:
        The normalized code (not yet checked against the code list; see :func:`is_iso4217`).

    """
    code = expr.str.strip_chars().str.to_uppercase()
    return pl.when(code.str.len_bytes() > 0).then(code)


def is_iso4217(expr: pl.Expr) -> pl.Expr:
    """Check for an ISO 4217 alphabetic code exactly as the contract wants it: three uppercase letters from
    the official list. Lowercase (``"usd"``) is rejected, as the validator does; normalize first to accept it.

    Args:
        expr: A Utf8 expression.

    Returns:
        A Boolean expression (null for null input).

    """  # noqa: D205
    return expr.is_in(sorted(ISO_4217_CODES))


def currency_exponent(expr: pl.Expr) -> pl.Expr:
    """Return the number of minor-unit digits of a currency (JPY 0, KWD 3, else 2).

    Args:
        expr: A Utf8 expression holding normalized currency codes.

    Returns:
        An Int64 expression.

    """
    mapping = dict.fromkeys(_ZERO_DECIMAL, 0) | dict.fromkeys(_THREE_DECIMAL, 3)
    return expr.replace_strict(mapping, default=2, return_dtype=pl.Int64)


def to_major_units(expr: pl.Expr, *, minor: bool, exponent: int | pl.Expr = 2) -> pl.Expr:
    """Price in major units as Float64 (rule: 99.99, not 9999).

    Args:
        expr: A numeric (or numeric string) price expression.
        minor: The source stores minor units (cents, kopecks): divide by ``10 ** exponent``.
        exponent: Minor-unit digits, a constant or a per-row expression (:func:`currency_exponent`).

    Returns:
        A Float64 expression; negative and non-finite prices become null.

    """
    value = expr.cast(pl.Float64, strict=False)
    if minor:
        divisor = pl.lit(10.0).pow(exponent if isinstance(exponent, pl.Expr) else pl.lit(exponent))
        value = (value / divisor).round(6)  # drop binary noise: 9999 / 100 -> 99.99, not 99.99000000000001
    return pl.when(value.is_finite() & (value >= 0)).then(value)


def looks_like_minor_units(prices: pl.Series, *, min_median: float = 1_000.0, min_integral_share: float = 0.95) -> bool:
    """Guard against minor units sent as major units (``9999`` meant as 99.99).

    A batch looks like minor units when nearly every price is a whole number and the median is large. Run
    it on the prices of a chunk and warn (or fail) before loading.

    Args:
        prices: Prices of one batch, as the source delivered them.
        min_median: Median at or above which whole-number prices are suspicious.
        min_integral_share: Share of whole-number prices needed to raise the flag.

    Returns:
        True when the batch likely holds minor units.

    """
    values = prices.cast(pl.Float64, strict=False).drop_nulls()
    values = values.filter(values > 0)
    if values.len() == 0:
        return False
    stats = values.to_frame("p").select(
        integral=(pl.col("p") == pl.col("p").floor()).mean(), median=pl.col("p").median()
    )
    integral_share = float(stats.item(0, "integral"))
    median = float(stats.item(0, "median"))
    return integral_share >= min_integral_share and median >= min_median


def effective_sale_price(price: pl.Expr, sale_price: pl.Expr, active: pl.Expr | bool = True) -> pl.Expr:
    """Sale price only while the promotion is active and strictly lower than the price, else null.

    Args:
        price: List price (major units).
        sale_price: Promotional price (major units).
        active: Whether the promotion applies (e.g. :func:`promotion_active`); null counts as inactive.

    Returns:
        A Float64 expression.

    """
    active_expr = active if isinstance(active, pl.Expr) else pl.lit(active)
    sale = sale_price.cast(pl.Float64, strict=False)
    keep = active_expr.fill_null(False) & (sale >= 0) & (sale < price.cast(pl.Float64, strict=False))
    return pl.when(keep.fill_null(False)).then(sale)


def promotion_active(start: pl.Expr, end: pl.Expr, at: pl.Expr | None = None) -> pl.Expr:
    """Whether a dated promotion is running: no start or started, and no end or not yet ended.

    MySQL zero dates (``0000-00-00``) and nulls mean "open"; string or datetime bounds are accepted.

    Args:
        start: Start of the promotion.
        end: End of the promotion (inclusive).
        at: Point in time to test (default: now, UTC).

    Returns:
        A Boolean expression.

    """
    start_dt, end_dt = _to_utc_datetime(start), _to_utc_datetime(end)
    if at is None:
        # Now is never null, so a null comparison means an open bound: each bound is then parsed once (polars
        # does not share the parse between ``is_null`` and the comparison).
        now = pl.lit(_utc_now(), dtype=pl.Datetime("us", _UTC))
        return (start_dt <= now).fill_null(value=True) & (end_dt >= now).fill_null(value=True)
    now_dt = _to_utc_datetime(at)
    return (start_dt.is_null() | (start_dt <= now_dt)) & (end_dt.is_null() | (end_dt >= now_dt))


def price_by_currency(
    prices: pl.DataFrame,
    rates: Mapping[str, float] | pl.DataFrame,
    *,
    base_currency: str | None = None,
) -> pl.DataFrame:
    """Alternative prices per currency as one Struct column (``attributes.price_by_currency``).

    Args:
        prices: ``product_key`` and ``price`` (major units, in the base currency).
        rates: Units of each currency per unit of the base currency, as a mapping or a frame ``currency``,
            ``rate`` (OpenCart ``oc_currency.code``/``value``). Codes are normalized; codes outside ISO 4217
            and non-positive rates are ignored.
        base_currency: The customer-facing currency (sent as ``currency``); left out of the struct.

    Returns:
        ``product_key`` and ``attributes.price_by_currency`` Struct{CODE: Float64} (fields sorted by code,
        rounded to each currency's minor unit); a product without price gets null.

    """
    rate_frame = (
        pl.DataFrame({"currency": list(rates), "rate": [float(v) for v in rates.values()]})
        if isinstance(rates, Mapping)
        else rates.select("currency", pl.col("rate").cast(pl.Float64))
    )
    rate_frame = (
        rate_frame.with_columns(normalize_currency(pl.col("currency")))
        .filter(is_iso4217(pl.col("currency")) & (pl.col("rate") > 0))
        .unique(subset="currency", keep="first")
        .sort("currency")
    )
    if base_currency:
        rate_frame = rate_frame.filter(pl.col("currency") != base_currency.strip().upper())
    column = f"{ATTR_PREFIX}price_by_currency"
    if rate_frame.is_empty():
        return prices.select("product_key", pl.lit(None, dtype=pl.Struct({})).alias(column))
    exponents = dict(rate_frame.select("currency", currency_exponent(pl.col("currency")).alias("e")).iter_rows())
    fields = [
        (pl.col("price").cast(pl.Float64) * rate).round(int(exponents[code]), mode="half_away_from_zero").alias(code)
        for code, rate in rate_frame.select("currency", "rate").iter_rows()
    ]
    return prices.select(
        "product_key",
        pl.when(pl.col("price").is_not_null()).then(pl.struct(fields)).alias(column),
    )


def price_by_group(group_prices: pl.DataFrame) -> pl.DataFrame:
    """Tier prices as one Struct column (``attributes.price_by_group``; keys via :func:`attribute_key`).

    Args:
        group_prices: ``product_key``, ``group`` (customer group name), ``price`` (major units). The first row
            of a (product, group) pair wins.

    Returns:
        ``product_key`` and ``attributes.price_by_group`` Struct{group: Float64}, fields sorted by key.

    """
    keyed = group_prices.with_columns(
        pl.col("group").replace_strict(
            {g: attribute_key(g) for g in group_prices["group"].drop_nulls().unique().to_list()},
            default=None,
            return_dtype=pl.Utf8,
        ),
        pl.col("price").cast(pl.Float64),
    ).filter(pl.col("group").is_not_null())
    keys = sorted(keyed["group"].unique().to_list())
    column = f"{ATTR_PREFIX}price_by_group"
    if not keys:
        return (
            group_prices.select("product_key")
            .unique(maintain_order=True)
            .with_columns(pl.lit(None, dtype=pl.Struct({})).alias(column))
        )
    wide = keyed.filter(_first_occurrence("product_key", "group")).pivot(
        on="group", index="product_key", values="price"
    )
    return wide.select("product_key", pl.struct([pl.col(k) for k in keys]).alias(column))


# ----------------------------------------------------------------------------------------------------
# Stock and availability
# ----------------------------------------------------------------------------------------------------

AVAILABILITY_VALUES: tuple[str, ...] = ("in_stock", "out_of_stock", "preorder")

_PREORDER_STATUS = r"(?i)pre-?\s*order|back-?\s*order|\b\d+\s*(?:-|to)\s*\d+\s*days?\b|available soon|coming soon"
_IN_STOCK_STATUS = r"(?i)^\s*(?:in[\s_-]*stock|available|instock)\s*$"


def availability_from_stock(
    quantity: pl.Expr,
    *,
    backorder: pl.Expr | bool = False,
    preorder: pl.Expr | bool = False,
    status: pl.Expr | None = None,
) -> pl.Expr:
    """Availability badge from a stock quantity (rule: backorders and pre-orders map to ``preorder``).

    Order of decision: a pre-order flag wins; then quantity > 0 is ``in_stock``; with nothing on hand, allowed
    backorders give ``preorder``; otherwise the shop's out-of-stock status name decides (``Pre-Order``,
    ``2-3 Days`` -> ``preorder``; ``In Stock`` -> ``in_stock``; anything else -> ``out_of_stock``). A null
    quantity without flags or status gives null.

    Args:
        quantity: Units on hand.
        backorder: Backorders allowed (PrestaShop out_of_stock policy, Magento backorders).
        preorder: The product is on pre-order.
        status: Status name shown when out of stock (OpenCart ``stock_status.name``), optional.

    Returns:
        A Utf8 expression named ``availability`` with values from :data:`AVAILABILITY_VALUES`.

    """
    back = (backorder if isinstance(backorder, pl.Expr) else pl.lit(backorder)).fill_null(False)
    pre = (preorder if isinstance(preorder, pl.Expr) else pl.lit(preorder)).fill_null(False)
    qty = quantity.cast(pl.Float64, strict=False)
    from_status: pl.Expr = pl.lit(None, dtype=pl.Utf8)
    if status is not None:
        from_status = (
            pl.when(status.str.contains(_PREORDER_STATUS))
            .then(pl.lit("preorder"))
            .when(status.str.contains(_IN_STOCK_STATUS))
            .then(pl.lit("in_stock"))
            .when(status.is_not_null())
            .then(pl.lit("out_of_stock"))
        )
    return (
        pl.when(pre)
        .then(pl.lit("preorder"))
        .when(qty > 0)
        .then(pl.lit("in_stock"))
        .when(back & qty.is_not_null())
        .then(pl.lit("preorder"))
        .when(from_status.is_not_null())
        .then(from_status)
        .when(qty.is_not_null())
        .then(pl.lit("out_of_stock"))
        .alias("availability")
    )


def woocommerce_availability(stock_status: pl.Expr) -> pl.Expr:
    """Map WooCommerce ``_stock_status`` (instock / outofstock / onbackorder -> preorder); others -> null.

    Args:
        stock_status: The post meta value.

    Returns:
        A Utf8 expression named ``availability``.

    """
    mapping = {"instock": "in_stock", "outofstock": "out_of_stock", "onbackorder": "preorder"}
    return (
        stock_status.str.strip_chars()
        .str.to_lowercase()
        .replace_strict(mapping, default=None, return_dtype=pl.Utf8)
        .alias("availability")
    )


def stock_across_locations(stock_rows: pl.DataFrame, whitelist: Iterable[str] | None = None) -> pl.DataFrame:
    """Total stock over whitelisted locations; in stock when ANY whitelisted location has quantity > 0.

    Negative quantities (oversold locations) count as 0 in the total, so one location cannot hide another's
    stock. A product whose rows are all outside the whitelist gets 0 and ``out_of_stock``.

    Args:
        stock_rows: ``product_key``, ``location``, ``quantity``.
        whitelist: Locations to count (connector config); None counts every location.

    Returns:
        ``product_key``, ``stock_quantity`` Int64, ``availability`` Utf8 (one row per product in the input).

    """
    rows = stock_rows.with_columns(pl.col("location").cast(pl.Utf8), pl.col("quantity").cast(pl.Int64, strict=False))
    counted = pl.lit(True) if whitelist is None else pl.col("location").is_in(list(whitelist))
    qty = pl.when(counted).then(pl.col("quantity").fill_null(0).clip(lower_bound=0)).otherwise(0)
    return (
        rows.group_by("product_key", maintain_order=True)
        .agg(stock_quantity=qty.sum().cast(pl.Int64), any_positive=(qty > 0).any())
        .with_columns(
            availability=pl.when(pl.col("any_positive")).then(pl.lit("in_stock")).otherwise(pl.lit("out_of_stock"))
        )
        .drop("any_positive")
    )


# ----------------------------------------------------------------------------------------------------
# Images and URLs
# ----------------------------------------------------------------------------------------------------


def _base_dir(base_url: str) -> str:
    """Return the base URL that relative paths are joined to: trimmed, ending with ``/``."""
    base = base_url.strip()
    return base if base.endswith("/") else base + "/"


def absolute_url(expr: pl.Expr, base_url: str) -> pl.Expr:
    """Make an image or product URL absolute (rule: full URLs with scheme; empty string -> dropped).

    ``http(s)://`` URLs are kept, protocol-relative ``//cdn/x.jpg`` gets ``https:``, ``/x.jpg`` is joined to
    the origin of ``base_url``, ``x.jpg`` (or ``./x.jpg``) to ``base_url`` itself; other schemes (``data:``,
    ``javascript:``) and blanks give null. The scheme is lowercased and spaces are percent-encoded.

    Args:
        expr: A Utf8 expression.
        base_url: Absolute base for relative paths, e.g. ``https://shop.example.com/image/``.

    Returns:
        A Utf8 expression.

    """
    base_dir = _base_dir(base_url)
    match = re.match(r"^(https?://[^/]+)", base_dir, flags=re.IGNORECASE)
    origin = match.group(1) if match else base_dir.rstrip("/")
    value = expr.str.strip_chars()
    relative = value.str.replace(r"^\./", "")
    url = (
        pl.when(value.str.contains(r"(?i)^https?://"))
        .then(value.str.replace(r"(?i)^https://", "https://").str.replace(r"(?i)^http://", "http://"))
        .when(value.str.starts_with("//"))
        .then(pl.lit("https:") + value)
        .when(value.str.contains(r"^[A-Za-z][A-Za-z0-9+.-]*:"))
        .then(pl.lit(None, dtype=pl.Utf8))
        .when(value.str.starts_with("/"))
        .then(pl.lit(origin) + value)
        .when(value.str.len_bytes() > 0)
        .then(pl.lit(base_dir) + relative)
    )
    return url.str.replace_all(" ", "%20", literal=True)


def absolute_url_series(s: pl.Series, base_url: str) -> pl.Series:
    """Apply :func:`absolute_url` to a series, skipping the rules its values cannot meet.

    A column of plain relative paths (no ``:``, none starting with ``/`` or ``./``, as most shops store their
    image files) only needs the join to ``base_url``: the other rules' text is then not built for every value.

    Args:
        s: A Utf8 series (other dtypes are cast).
        base_url: As for :func:`absolute_url`.

    Returns:
        The same values as :func:`absolute_url` gives.

    """
    if s.dtype != pl.String:
        s = s.cast(pl.String)
    value = s.str.strip_chars()
    plain = not (
        value.str.contains(":", literal=True).any()
        or value.str.starts_with("/").any()
        or value.str.starts_with("./").any()
    )
    if not plain:
        return s.to_frame("v").select(absolute_url(pl.col("v"), base_url).alias(s.name)).to_series()
    v = pl.col("v")
    url = pl.when(v.str.len_bytes() > 0).then(pl.lit(_base_dir(base_url)) + v)
    if value.str.contains(" ", literal=True).any():
        url = url.str.replace_all(" ", "%20", literal=True)
    return value.to_frame("v").select(url.alias(s.name)).to_series()


def image_list(rows: pl.DataFrame) -> pl.DataFrame:
    """Collect a product's images into ``attributes.images`` (List(Struct{url, alt})), ordered by position.

    Rows without a URL are dropped; the same URL twice is kept once (first position); blank alt -> null.
    URLs should already be absolute (:func:`absolute_url`). The first entry is the natural ``image_url``.

    Args:
        rows: ``product_key``, ``url``, ``alt``, ``position``.

    Returns:
        ``product_key``, ``attributes.images``.

    """
    clean = (
        rows.with_columns(
            collapse_whitespace_series(rows.get_column("url")).alias("url"),
            collapse_whitespace_series(rows.get_column("alt")).alias("alt"),
        )
        .filter(pl.col("url").is_not_null())
        .with_row_index("_row")
        .sort("product_key", "position", "_row", nulls_last=True, maintain_order=True)
    )
    # Equal (product, URL) pairs have equal hashes: without a repeated hash there is no URL to drop, and the exact
    # (costlier) comparison of the pairs is left out.
    pair_hash = pl.col("product_key").hash(seed=1) ^ pl.col("url").hash(seed=2)
    if clean.select(pair_hash.is_duplicated().any()).item():
        clean = clean.filter(_first_occurrence("product_key", "url"))
    return clean.group_by("product_key", maintain_order=True).agg(pl.struct("url", "alt").alias(f"{ATTR_PREFIX}images"))


# ----------------------------------------------------------------------------------------------------
# Locales
# ----------------------------------------------------------------------------------------------------

SUPPORTED_LOCALES: tuple[str, ...] = ("en", "de", "es", "fr", "ru")

LOCALE_FALLBACKS: dict[str, str] = {
    # Iberian and Ibero-Romance languages -> Spanish
    "pt": "es", "gl": "es", "ca": "es", "ast": "es", "an": "es", "eu": "es", "lad": "es",
    # Italo-/Gallo-Romance, Romanian, French-based creoles, Breton -> French
    "it": "fr", "ro": "fr", "mo": "fr", "co": "fr", "oc": "fr", "wa": "fr", "br": "fr", "ht": "fr",
    "sc": "fr", "rm": "fr", "fur": "fr", "lij": "fr", "nap": "fr", "scn": "fr", "vec": "fr", "la": "fr",
    # West and North Germanic -> German
    "nl": "de", "lb": "de", "gsw": "de", "fy": "de", "af": "de", "nds": "de", "li": "de", "yi": "de",
    "da": "de", "sv": "de", "nb": "de", "nn": "de", "no": "de", "is": "de", "fo": "de",
    # East Slavic and languages written in Cyrillic -> Russian
    "uk": "ru", "be": "ru", "rue": "ru", "kk": "ru", "ky": "ru", "tg": "ru", "tt": "ru", "ba": "ru",
    "cv": "ru", "mn": "ru", "bg": "ru", "mk": "ru", "os": "ru", "ab": "ru", "sah": "ru", "ce": "ru",
}  # fmt: skip
"""Closest supported locale per language subtag. Not listed: Cyrillic-script languages go to ``ru``
(``sr``), everything else to ``en`` (``fa``, ``zh``, ``pl``, ``tr``, ...)."""


def _canonical_tag(code: str) -> str:
    """``pt_br`` / ``PT-BR`` -> ``pt-BR``; ``zh-hant-tw`` -> ``zh-Hant-TW``."""
    parts = [p for p in re.split(r"[-_]", code.strip()) if p]
    if not parts:
        return ""
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) in (2, 3):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


@lru_cache(maxsize=512)
def resolve_locale(code: str | None) -> tuple[str, str | None, str | None]:
    """Map a CMS language code to a supported locale (rule: send the closest neighbour, keep the original).

    ``en``, ``de``, ``es``, ``fr``, ``ru`` and their regional forms map to themselves (``en-gb`` -> ``en``,
    ``fr-FR`` -> ``fr``) with no extra attributes. Other languages map through :data:`LOCALE_FALLBACKS`
    (then Cyrillic script -> ``ru``, else ``en``) and return the original code (canonical BCP 47 casing,
    ``pt-BR``) and its name in its own language (``Português (Brasil)``, ``فارسی``; from Babel, first letter
    uppercased) for ``attributes.language`` and ``attributes.language_label``.

    Args:
        code: Language code as the CMS stores it (``en-gb``, ``pt_BR``, ``fa``); null/blank -> ``en``.

    Returns:
        ``(locale, language, language_label)``; the last two are None for supported languages.

    """
    tag = _canonical_tag(code or "")
    if not tag:
        return "en", None, None
    language = tag.split("-")[0]
    if language in SUPPORTED_LOCALES:
        return language, None, None
    label: str | None = None
    script: str | None = None
    try:
        parsed = Locale.parse(tag, sep="-")
        name = parsed.get_display_name(parsed)
        label = name[:1].upper() + name[1:] if name else None
        script = parsed.script
    except (UnknownLocaleError, ValueError, TypeError):
        pass
    if script is None:
        likely = get_global("likely_subtags").get(language)
        script = likely.split("_")[1] if likely and likely.count("_") >= 2 else None  # pyright: ignore[reportAttributeAccessIssue]
    locale = LOCALE_FALLBACKS.get(language) or ("ru" if script == "Cyrl" else "en")
    return locale, tag, label


def apply_locale(df: pl.DataFrame, locale_code_col: str) -> pl.DataFrame:
    """Set ``locale`` and the language attributes from a CMS language code column and suffix the ids.

    ``external_id`` (and ``attributes.parent_external_id`` when present) get ``:<locale>``. For a language
    outside the supported set the suffix is the lowercased original code instead (``:pt-br``), so that two
    CMS languages falling back to the same locale (pt and es) never share an external_id.

    Args:
        df: Document frame with ``external_id`` (the platform key) and ``locale_code_col``.
        locale_code_col: Column holding the CMS language code (e.g. OpenCart ``language.code``).

    Returns:
        The frame with ``locale``, ``attributes.language``, ``attributes.language_label`` set and the
        language column dropped.

    """
    codes = df[locale_code_col].cast(pl.Utf8).unique().to_list()
    resolved = {c: resolve_locale(c) for c in codes}
    lookup = pl.DataFrame(
        {
            "_code": codes,
            "locale": [resolved[c][0] for c in codes],
            f"{ATTR_PREFIX}language": [resolved[c][1] for c in codes],
            f"{ATTR_PREFIX}language_label": [resolved[c][2] for c in codes],
            "_suffix": [resolved[c][0] if resolved[c][1] is None else str(resolved[c][1]).lower() for c in codes],
        },
        schema={
            "_code": pl.Utf8,
            "locale": pl.Utf8,
            f"{ATTR_PREFIX}language": pl.Utf8,
            f"{ATTR_PREFIX}language_label": pl.Utf8,
            "_suffix": pl.Utf8,
        },
    )
    replaced = [c for c in ("locale", f"{ATTR_PREFIX}language", f"{ATTR_PREFIX}language_label") if c in df.columns]
    out = (
        df.drop(replaced)
        .with_columns(pl.col(locale_code_col).cast(pl.Utf8).alias("_code"))
        .join(lookup, on="_code", how="left", nulls_equal=True, maintain_order="left")
    )
    suffixed = [pl.col("external_id").cast(pl.Utf8) + ":" + pl.col("_suffix")]
    parent = f"{ATTR_PREFIX}parent_external_id"
    if parent in out.columns:
        suffixed.append(pl.col(parent).cast(pl.Utf8) + ":" + pl.col("_suffix"))
    return out.with_columns(suffixed).drop("_code", "_suffix", locale_code_col)


# ----------------------------------------------------------------------------------------------------
# Attributes
# ----------------------------------------------------------------------------------------------------

RESERVED_KEYS: frozenset[str] = frozenset(
    {
        "external_id", "title", "description", "sku", "brand", "categories", "category_ids", "tags", "price",
        "sale_price", "currency", "image_url", "product_url", "availability", "stock_quantity", "attributes",
        "locale", "created_at", "updated_at",
    }
)  # fmt: skip
"""Top-level SyncProductInput field names, never used as attribute keys."""

_ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґўј",
        ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t",
         "u",
         "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "i", "yi", "ye", "g", "u", "j"],
        strict=True,
    )
)  # fmt: skip


@lru_cache(maxsize=4096)
def attribute_key(name: str) -> str:
    """Return the attribute key for a display name: lowercase snake_case ASCII (``option_color``).

    Accents are folded (``Größe`` -> ``grosse``... ``Farbe/Größe`` -> ``farbe_grosse``), Cyrillic is
    transliterated (``Цвет`` -> ``tsvet``), camelCase is split, anything else becomes ``_``. A key that would
    start with a digit or equal a reserved top-level field gets the ``attr_`` prefix; a name with no usable
    character gets ``attr_`` plus a short stable hash.

    Args:
        name: The attribute or option name as the CMS shows it.

    Returns:
        A key matching ``^[a-z][a-z0-9_]*$``.

    """
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name.strip().replace("ß", "ss").replace("ẞ", "SS"))
    text = "".join(_CYRILLIC.get(ch, ch) for ch in text.lower())
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    key = re.sub(r"[^a-z0-9]+", "_", folded.lower()).strip("_")
    if not key:
        return "attr_" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]  # noqa: S324 - not security
    if not key[0].isalpha() or key in RESERVED_KEYS:
        key = f"attr_{key}"
    return key


def check_attribute_keys(keys: Iterable[str]) -> dict[str, str]:
    """Find attribute keys that break the naming rules.

    Args:
        keys: Attribute keys, or document frame column names (``attributes.`` columns are checked, others
            ignored).

    Returns:
        Problem per offending key (``"not lowercase snake_case"`` / ``"reserved top-level field"``);
        empty when every key is fine.

    """
    problems: dict[str, str] = {}
    for raw in keys:
        if "." in raw and not raw.startswith(ATTR_PREFIX):
            continue
        key = raw.removeprefix(ATTR_PREFIX)
        if raw in RESERVED_KEYS or raw.startswith("_"):
            continue
        if key in RESERVED_KEYS:
            problems[raw] = "reserved top-level field"
        elif not _ATTRIBUTE_KEY.match(key):
            problems[raw] = "not lowercase snake_case"
    return problems


def _is_number_list(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List) and dtype.inner.is_numeric()


def split_number_arrays(df: pl.DataFrame) -> pl.DataFrame:
    """Rewrite number-array attributes, which the index refuses (rule: flatten or split).

    Choice: ``attributes.<key>`` List(number) becomes a List(Utf8) of the same numbers (``[38, 39.5]`` ->
    ``["38", "39.5"]``, still a multi-facet filter: "has size 39.5"), plus ``attributes.<key>_min`` and
    ``attributes.<key>_max`` numeric columns for range filters and sorting. An empty list gives nulls.

    Args:
        df: Document frame.

    Returns:
        The frame without List(number) attribute columns.

    """
    exprs: list[pl.Expr] = []
    for name, dtype in df.schema.items():
        if not name.startswith(ATTR_PREFIX) or not _is_number_list(dtype):
            continue
        col = pl.col(name)
        as_text = col.list.eval(pl.element().cast(pl.Utf8).str.replace(r"\.0$", ""))
        exprs += [
            pl.when(col.list.len() > 0).then(as_text).alias(name),
            col.list.min().alias(f"{name}_min"),
            col.list.max().alias(f"{name}_max"),
        ]
    return df.with_columns(exprs) if exprs else df


# ----------------------------------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------------------------------


def option_column(option_name: str) -> str:
    """Return the document column of a variant option (``Color`` -> ``attributes.option_color``).

    Args:
        option_name: The option name as the CMS shows it.

    Returns:
        ``attributes.option_<key>``, the key from :func:`attribute_key` without its ``attr_`` prefix.

    """
    key = attribute_key(option_name).removeprefix("attr_")
    key = key if key.startswith("option_") else f"option_{key}"
    return f"{ATTR_PREFIX}{key}"


def flatten_options(option_rows: pl.DataFrame) -> pl.DataFrame:
    """Flatten variant options into ``attributes.option_<key>`` string arrays (one product, one document).

    Values are whitespace-normalized, blanks dropped, duplicates kept once in first-seen order. Option names
    that give the same key (``Color`` and ``color``) share one column.

    Args:
        option_rows: ``product_key``, ``option_name``, ``value`` (one row per variant option value).

    Returns:
        ``product_key`` plus one List(Utf8) column per option, columns sorted by name.

    """
    names = option_rows["option_name"].drop_nulls().unique().to_list()
    mapping = {n: option_column(n) for n in names}
    rows = (
        option_rows.select(
            "product_key",
            pl.col("option_name").replace_strict(mapping, default=None, return_dtype=pl.Utf8).alias("column"),
            collapse_whitespace_series(option_rows.get_column("value")).alias("value"),
        )
        .filter(pl.col("column").is_not_null() & pl.col("value").is_not_null())
        .filter(_first_occurrence("product_key", "column", "value"))
    )
    if rows.is_empty():
        return option_rows.select("product_key").unique(maintain_order=True)
    grouped = rows.group_by("product_key", "column", maintain_order=True).agg(pl.col("value"))
    wide = grouped.pivot(on="column", index="product_key", values="value")
    return wide.select("product_key", *sorted(c for c in wide.columns if c != "product_key"))


_VARIANT_OVERRIDES = (
    "sku", "price", "sale_price", "currency", "image_url", "product_url", "availability", "stock_quantity",
    "created_at", "updated_at",
)  # fmt: skip


def variant_documents(parents: pl.DataFrame, variants: pl.DataFrame) -> pl.DataFrame:
    """Variant-level documents (rule: when search must surface individual SKUs).

    Each variant copies its parent document, then: ``external_id`` is ``<parent>:variant-<variant_id>``; the
    title is ``<parent title> — <variant label>`` (``Blue Running Shoes — Size 9.5 Narrow``); the variant's
    ``sku``, prices, ``image_url`` (the variant's image, the parent's only when the variant has none), stock
    and URLs replace the parent's where present; ``attributes.parent_external_id`` holds the parent id so a
    "by product" search can collapse results. The variant label is ``variant_title`` when given, else the
    option names and values (``options`` column, List(Struct{name, value})) joined by spaces (``Size 10``).
    Options also fill ``attributes.option_<key>`` with the variant's single value.

    Call it before :func:`apply_locale`, which then suffixes both ids with the locale.

    Args:
        parents: Document frame of the parent products (``external_id`` without locale suffix, ``title``).
        variants: ``parent_external_id``, ``variant_id``, and optionally ``variant_title``, ``options`` and
            any override column (``sku``, ``price``, ``sale_price``, ``image_url``, ``stock_quantity``, ...).

    Returns:
        Variant documents with the parents' columns (plus the option columns), one row per variant that has a
        parent.

    """
    parent_cols = [c for c in parents.columns if c != "external_id"]
    base = variants.with_columns(pl.col("parent_external_id").cast(pl.Utf8), pl.col("variant_id").cast(pl.Utf8)).join(
        parents.with_columns(pl.col("external_id").cast(pl.Utf8)).rename({c: f"_parent.{c}" for c in parent_cols}),
        left_on="parent_external_id",
        right_on="external_id",
        how="inner",
        maintain_order="left",
    )
    has_options = "options" in base.columns
    label_parts: list[pl.Expr] = []
    if "variant_title" in base.columns:
        label_parts.append(normalize_whitespace(pl.col("variant_title").cast(pl.Utf8)))
    if has_options:
        label_parts.append(
            normalize_whitespace(
                pl.col("options")
                .list.eval(pl.element().struct.field("name") + " " + pl.element().struct.field("value"))
                .list.join(" ")
            )
        )
    label = pl.coalesce(label_parts) if label_parts else pl.lit(None, dtype=pl.Utf8)
    out_cols: list[pl.Expr] = [
        (pl.col("parent_external_id") + ":variant-" + pl.col("variant_id")).alias("external_id"),
    ]
    for col in parent_cols:
        parent_value = pl.col(f"_parent.{col}")
        if col == "title":
            out_cols.append(
                pl.when(label.is_not_null()).then(parent_value + " — " + label).otherwise(parent_value).alias(col)
            )
        elif col in _VARIANT_OVERRIDES and col in variants.columns:
            out_cols.append(pl.coalesce(pl.col(col).cast(parents.schema[col]), parent_value).alias(col))
        elif col == f"{ATTR_PREFIX}parent_external_id":
            continue
        else:
            out_cols.append(parent_value.alias(col))
    out_cols.append(pl.col("parent_external_id").alias(f"{ATTR_PREFIX}parent_external_id"))
    result = base.with_row_index("_variant_row").select(pl.col("_variant_row"), *out_cols)
    if not has_options:
        return result.drop("_variant_row")
    option_rows = (
        base.with_row_index("_variant_row")
        .select("_variant_row", pl.col("options"))
        .explode("options")
        .filter(pl.col("options").is_not_null())
        .select(
            pl.col("_variant_row").alias("product_key"),
            pl.col("options").struct.field("name").alias("option_name"),
            pl.col("options").struct.field("value").alias("value"),
        )
    )
    options = flatten_options(option_rows).rename({"product_key": "_variant_row"})
    overlap = [c for c in options.columns if c != "_variant_row" and c in result.columns]
    return result.drop(overlap).join(options, on="_variant_row", how="left", maintain_order="left").drop("_variant_row")


# ----------------------------------------------------------------------------------------------------
# Dates
# ----------------------------------------------------------------------------------------------------

_UTC = "UTC"
_ISO8601_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_MYSQL_DATETIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:[0-5]\d$"  # a leap second (:60) takes the general path


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_utc_datetime(expr: pl.Expr) -> pl.Expr:
    """Parse datetimes, dates and strings (MySQL, ISO 8601 with ``T``/``Z``/offsets) to Datetime(us, UTC)."""
    text = expr.cast(pl.Utf8).str.strip_chars()
    text = pl.when(~text.str.contains(r"^0000-00-00") & (text != "")).then(text)
    text = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[Tt ]", "${1} ").str.replace(r"[Zz]$", "+00:00")
    text = text.str.replace(r" ?(UTC|GMT)$", "+00:00")
    with_tz = text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%z", strict=False, time_unit="us", time_zone=_UTC)
    naive = [
        text.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M")
    ]
    day = text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
    # The naive forms are made UTC once, after they are merged (half the time of one conversion per form).
    return pl.coalesce(with_tz, pl.coalesce(*naive, day).dt.replace_time_zone(_UTC))


def iso8601(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 UTC timestamp string (``2011-09-30T01:05:39Z``) from a datetime, date or string.

    Naive values are taken as UTC; aware values and strings with offsets are converted to UTC; MySQL zero
    dates (``0000-00-00``, ``0000-00-00 00:00:00``), blanks and unparseable strings give null.

    Args:
        expr: A Datetime, Date or Utf8 expression.

    Returns:
        A Utf8 expression.

    """
    return _to_utc_datetime(expr).dt.strftime(_ISO8601_FORMAT)


def iso8601_series(values: pl.Series) -> pl.Series:
    """Apply :func:`iso8601` to a series, faster for the common MySQL form ``2011-09-30 01:05:39``.

    Strings of exactly that form are parsed with that one format; only the other values (other forms,
    offsets, zero dates, invalid dates) go through the general rules of :func:`iso8601`, so the result is the
    same as ``iso8601`` value by value.

    Args:
        values: A Datetime, Date or Utf8 series.

    Returns:
        A Utf8 series with the same name and length.

    """
    if values.dtype != pl.Utf8:
        return values.to_frame("v").select(iso8601(pl.col("v"))).to_series().alias(values.name)
    text = pl.col("v")
    # A value of exactly that form that parses (a real calendar date and time) already holds the ISO digits:
    # only the separator changes and the ``Z`` is added, no formatting of the parsed value.
    parses = text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us").is_not_null()
    fast = (
        values.to_frame("v")
        .select(
            pl.when(text.str.contains(_MYSQL_DATETIME) & parses).then(
                text.str.replace(" ", "T", literal=True) + pl.lit("Z")
            )
        )
        .to_series()
    )
    rest = (fast.is_null() & values.is_not_null()).arg_true()
    if rest.len():
        slow = values.gather(rest).to_frame("v").select(iso8601(pl.col("v"))).to_series()
        fast = fast.scatter(rest, slow)
    return fast.alias(values.name)
