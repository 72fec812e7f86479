"""Constants of the OpenCart source: table prefix, option names, stock-status mapping, URL shapes."""

from __future__ import annotations

DEFAULT_PREFIX = "oc_"
DEFAULT_CUSTOMER_GROUP_ID = 1
DEFAULT_STORE_ID = 0

# SourceConfig.options keys understood by the OpenCart source.
OPTION_TABLE_PREFIX = "table_prefix"
OPTION_CUSTOMER_GROUP_ID = "customer_group_id"
OPTION_STORE_ID = "store_id"
OPTION_SEO_URLS = "seo_urls"
"""``true``/``false`` forces keyword URLs on/off; absent follows the shop's ``config_seo_url`` setting."""
OPTION_CURRENCY_FROM_SHOP = "currency_from_shop"
"""Default true: ``currency`` is the shop's ``config_currency`` (the currency prices are stored in)."""

# Option types whose values are a fixed list (the others are free input: text, date, file...).
LISTED_OPTION_TYPES: tuple[str, ...] = ("select", "radio", "checkbox", "image")

# Stock status names (any language row, compared lowercased and trimmed) -> availability, used when the
# product quantity is 0 or less. Unknown names count as out_of_stock.
STOCK_STATUS_AVAILABILITY: dict[str, str] = {
    "in stock": "in_stock",
    "pre-order": "preorder",
    "preorder": "preorder",
    "pre order": "preorder",
    "backorder": "preorder",
    "2-3 days": "preorder",
    "out of stock": "out_of_stock",
}
DEFAULT_UNAVAILABLE = "out_of_stock"

# oc_setting keys (code 'config') read by the extractor.
SETTING_KEYS: tuple[str, ...] = (
    "config_currency",
    "config_seo_url",
    "config_language",
    "config_customer_group_id",
)

IMAGE_PATH = "/image/"
PRODUCT_ROUTE = "/index.php?route=product/product&product_id="
SEO_QUERY_PREFIX = "product_id="

# Per-product tables, filtered to the chunk's product_id range.
PRODUCT_TABLES: tuple[str, ...] = (
    "product",
    "product_description",
    "product_to_category",
    "product_special",
    "product_discount",
    "product_option_value",
    "product_image",
    "product_attribute",
    "seo_url",
)
# Small lookup tables, read once per extract and repeated in every chunk.
LOOKUP_TABLES: tuple[str, ...] = (
    "language",
    "category",
    "category_description",
    "category_path",
    "manufacturer",
    "stock_status",
    "option",
    "option_description",
    "option_value",
    "option_value_description",
    "attribute_description",
    "currency",
    "setting",
    "customer_group_description",
)
