"""sources.yaml parsing: names, connections by env var name only, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from aac_etl.lib.sources_config import load_sources

BASE = """
sources:
  - name: shop
    platform: opencart
    dsn_env: SHOP_DSN
    organization: acme
    index_slug: products
    storefront_url: https://shop.example.com
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_gives_alias_and_defaults(tmp_path: Path) -> None:
    (source,) = load_sources(_write(tmp_path, BASE))
    assert source.collection_alias == "acme_products"
    assert source.max_drop_share == 0.5
    assert source.schedule.timezone == "UTC"


def test_inline_dsn_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = BASE.replace("dsn_env: SHOP_DSN", "dsn_env: mysql://root:hunter2@db/shop")
    with pytest.raises(ValidationError) as err:
        load_sources(_write(tmp_path, text))
    assert "hunter2" not in str(err.value)
    assert "must name an environment variable" in str(err.value)


def test_unsupported_variant_documents_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="variant_documents is not supported"):
        load_sources(_write(tmp_path, BASE + "    variant_documents: true\n"))


def test_duplicate_names_and_bad_slugs_are_refused(tmp_path: Path) -> None:
    twice = BASE + BASE.split("sources:\n", 1)[1]
    with pytest.raises(ValidationError, match="duplicate source names: shop"):
        load_sources(_write(tmp_path, twice))
    with pytest.raises(ValidationError, match="becomes a Typesense alias"):
        load_sources(_write(tmp_path, BASE.replace("index_slug: products", "index_slug: Products!")))
