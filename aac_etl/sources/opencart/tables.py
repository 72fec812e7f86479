"""SQLAlchemy Core definitions of the OpenCart 3 catalog tables the extractor reads.

Column names and types follow the OpenCart 3.0 schema (``install/opencart.sql``); only the tables the
catalog extractor (and the demo-shop generator) touch are declared. Types are portable SQLAlchemy types, so
``catalog_metadata().create_all(engine)`` works on SQLite, MariaDB/MySQL and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa

from aac_etl.sources.opencart.settings import DEFAULT_PREFIX

__all__ = ["DEFAULT_PREFIX", "catalog_metadata", "table"]

_MONEY = sa.Numeric(15, 4, asdecimal=True)
_MEASURE = sa.Numeric(15, 8, asdecimal=True)


def _int(name: str, *, primary_key: bool = False, default: int | None = None) -> sa.Column[int]:
    return sa.Column(
        name,
        sa.Integer,
        primary_key=primary_key,
        nullable=False,
        autoincrement=False,
        server_default=None if default is None else sa.text(str(default)),
    )


def _str(name: str, length: int | None = None, *, nullable: bool = False) -> sa.Column[str]:
    kind: sa.types.TypeEngine[str] = sa.Text() if length is None else sa.String(length)
    return sa.Column(name, kind, nullable=nullable)


def catalog_metadata(prefix: str = DEFAULT_PREFIX) -> sa.MetaData:
    """Build the metadata of the OpenCart 3 catalog tables.

    Args:
        prefix: Table name prefix of the shop (OpenCart's ``DB_PREFIX``), ``oc_`` by default.

    Returns:
        A fresh ``MetaData`` holding one ``Table`` per catalog table, keyed ``<prefix><name>``.

    """
    md = sa.MetaData()
    p = prefix

    sa.Table(
        f"{p}product",
        md,
        sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=True),
        _str("model", 64),
        _str("sku", 64),
        _str("upc", 12),
        _str("ean", 14),
        _str("jan", 13),
        _str("isbn", 17),
        _str("mpn", 64),
        _str("location", 128),
        _int("quantity", default=0),
        _int("stock_status_id"),
        _str("image", 255, nullable=True),
        _int("manufacturer_id"),
        _int("shipping", default=1),
        sa.Column("price", _MONEY, nullable=False, server_default=sa.text("0")),
        _int("points", default=0),
        _int("tax_class_id"),
        sa.Column("date_available", sa.Date, nullable=True),
        sa.Column("weight", _MEASURE, nullable=False, server_default=sa.text("0")),
        _int("weight_class_id", default=0),
        sa.Column("length", _MEASURE, nullable=False, server_default=sa.text("0")),
        sa.Column("width", _MEASURE, nullable=False, server_default=sa.text("0")),
        sa.Column("height", _MEASURE, nullable=False, server_default=sa.text("0")),
        _int("length_class_id", default=0),
        _int("subtract", default=1),
        _int("minimum", default=1),
        _int("sort_order", default=0),
        _int("status", default=0),
        _int("viewed", default=0),
        sa.Column("date_added", sa.DateTime, nullable=False),
        sa.Column("date_modified", sa.DateTime, nullable=False),
        sa.Index(f"{p}product_date_modified", "date_modified"),
    )
    sa.Table(
        f"{p}product_description",
        md,
        _int("product_id", primary_key=True),
        _int("language_id", primary_key=True),
        _str("name", 255),
        _str("description"),
        _str("tag"),
        _str("meta_title", 255),
        _str("meta_description", 255),
        _str("meta_keyword", 255),
    )
    for name, extra in (("product_special", []), ("product_discount", [_int("quantity", default=0)])):
        sa.Table(
            f"{p}{name}",
            md,
            sa.Column(f"{name}_id", sa.Integer, primary_key=True, autoincrement=True),
            _int("product_id"),
            _int("customer_group_id"),
            *extra,
            _int("priority", default=1),
            sa.Column("price", _MONEY, nullable=False, server_default=sa.text("0")),
            sa.Column("date_start", sa.Date, nullable=True),
            sa.Column("date_end", sa.Date, nullable=True),
            sa.Index(f"{p}{name}_product_id", "product_id"),
        )
    sa.Table(
        f"{p}product_option",
        md,
        sa.Column("product_option_id", sa.Integer, primary_key=True, autoincrement=True),
        _int("product_id"),
        _int("option_id"),
        _str("value"),
        _int("required"),
    )
    sa.Table(
        f"{p}product_option_value",
        md,
        sa.Column("product_option_value_id", sa.Integer, primary_key=True, autoincrement=True),
        _int("product_option_id"),
        _int("product_id"),
        _int("option_id"),
        _int("option_value_id"),
        _int("quantity"),
        _int("subtract"),
        sa.Column("price", _MONEY, nullable=False),
        _str("price_prefix", 1),
        _int("points"),
        _str("points_prefix", 1),
        sa.Column("weight", _MEASURE, nullable=False),
        _str("weight_prefix", 1),
    )
    sa.Table(
        f"{p}option",
        md,
        sa.Column("option_id", sa.Integer, primary_key=True, autoincrement=True),
        _str("type", 32),
        _int("sort_order"),
    )
    sa.Table(
        f"{p}option_description",
        md,
        _int("option_id", primary_key=True),
        _int("language_id", primary_key=True),
        _str("name", 128),
    )
    sa.Table(
        f"{p}option_value",
        md,
        sa.Column("option_value_id", sa.Integer, primary_key=True, autoincrement=True),
        _int("option_id"),
        _str("image", 255),
        _int("sort_order"),
    )
    sa.Table(
        f"{p}option_value_description",
        md,
        _int("option_value_id", primary_key=True),
        _int("language_id", primary_key=True),
        _int("option_id"),
        _str("name", 128),
    )
    sa.Table(
        f"{p}category",
        md,
        sa.Column("category_id", sa.Integer, primary_key=True, autoincrement=True),
        _str("image", 255, nullable=True),
        _int("parent_id", default=0),
        _int("top"),
        _int("column"),
        _int("sort_order", default=0),
        _int("status"),
        sa.Column("date_added", sa.DateTime, nullable=False),
        sa.Column("date_modified", sa.DateTime, nullable=False),
    )
    sa.Table(
        f"{p}category_description",
        md,
        _int("category_id", primary_key=True),
        _int("language_id", primary_key=True),
        _str("name", 255),
        _str("description"),
        _str("meta_title", 255),
        _str("meta_description", 255),
        _str("meta_keyword", 255),
    )
    sa.Table(
        f"{p}category_path",
        md,
        _int("category_id", primary_key=True),
        _int("path_id", primary_key=True),
        _int("level"),
    )
    sa.Table(
        f"{p}product_to_category",
        md,
        _int("product_id", primary_key=True),
        _int("category_id", primary_key=True),
    )
    sa.Table(
        f"{p}manufacturer",
        md,
        sa.Column("manufacturer_id", sa.Integer, primary_key=True, autoincrement=True),
        _str("name", 64),
        _str("image", 255, nullable=True),
        _int("sort_order"),
    )
    sa.Table(
        f"{p}stock_status",
        md,
        _int("stock_status_id", primary_key=True),
        _int("language_id", primary_key=True),
        _str("name", 32),
    )
    sa.Table(
        f"{p}product_image",
        md,
        sa.Column("product_image_id", sa.Integer, primary_key=True, autoincrement=True),
        _int("product_id"),
        _str("image", 255, nullable=True),
        _int("sort_order", default=0),
        sa.Index(f"{p}product_image_product_id", "product_id"),
    )
    sa.Table(
        f"{p}seo_url",
        md,
        sa.Column("seo_url_id", sa.Integer, primary_key=True, autoincrement=True),
        _int("store_id"),
        _int("language_id"),
        _str("query", 255),
        _str("keyword", 255),
    )
    sa.Table(
        f"{p}currency",
        md,
        sa.Column("currency_id", sa.Integer, primary_key=True, autoincrement=True),
        _str("title", 32),
        _str("code", 3),
        _str("symbol_left", 12),
        _str("symbol_right", 12),
        _str("decimal_place", 1),
        sa.Column("value", sa.Float, nullable=False),
        _int("status"),
        sa.Column("date_modified", sa.DateTime, nullable=False),
    )
    sa.Table(
        f"{p}language",
        md,
        sa.Column("language_id", sa.Integer, primary_key=True, autoincrement=True),
        _str("name", 32),
        _str("code", 5),
        _str("locale", 255),
        _str("image", 64),
        _str("directory", 32),
        _int("sort_order", default=0),
        _int("status"),
    )
    sa.Table(
        f"{p}product_to_store",
        md,
        _int("product_id", primary_key=True),
        _int("store_id", primary_key=True, default=0),
    )
    sa.Table(
        f"{p}attribute",
        md,
        sa.Column("attribute_id", sa.Integer, primary_key=True, autoincrement=True),
        _int("attribute_group_id"),
        _int("sort_order"),
    )
    sa.Table(
        f"{p}product_attribute",
        md,
        _int("product_id", primary_key=True),
        _int("attribute_id", primary_key=True),
        _int("language_id", primary_key=True),
        _str("text"),
    )
    sa.Table(
        f"{p}attribute_description",
        md,
        _int("attribute_id", primary_key=True),
        _int("language_id", primary_key=True),
        _str("name", 64),
    )
    sa.Table(
        f"{p}customer_group",
        md,
        sa.Column("customer_group_id", sa.Integer, primary_key=True, autoincrement=True),
        _int("approval"),
        _int("sort_order"),
    )
    sa.Table(
        f"{p}customer_group_description",
        md,
        _int("customer_group_id", primary_key=True),
        _int("language_id", primary_key=True),
        _str("name", 32),
        _str("description"),
    )
    sa.Table(
        f"{p}setting",
        md,
        sa.Column("setting_id", sa.Integer, primary_key=True, autoincrement=True),
        _int("store_id", default=0),
        _str("code", 128),
        _str("key", 128),
        _str("value"),
        _int("serialized"),
    )
    return md


def table(md: sa.MetaData, name: str, prefix: str = DEFAULT_PREFIX) -> sa.Table:
    """Return one table of :func:`catalog_metadata` by its unprefixed name.

    Args:
        md: Metadata built by :func:`catalog_metadata`.
        name: Table name without prefix, e.g. ``product``.
        prefix: The prefix the metadata was built with.

    Returns:
        The ``Table``.

    """
    return md.tables[f"{prefix}{name}"]
