"""Shared by the OpenCart tests: the demo shop's source declaration."""

from __future__ import annotations

from aac_etl.lib.sources_config import SourceConfig


def demo_config(**overrides: object) -> SourceConfig:
    """The declaration of the demo OpenCart shop; keyword arguments replace its fields."""
    values: dict[str, object] = {
        "name": "demo_shop",
        "platform": "opencart",
        "dsn_env": "AAC_ETL_TEST_DSN",
        "organization": "demo",
        "index_slug": "products",
        "storefront_url": "https://shop.example.com",
    }
    values.update(overrides)
    return SourceConfig.model_validate(values)
