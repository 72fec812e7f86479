"""Tests of the OpenCart extractor against the real OpenCart 3 demo shop (SQLite and MariaDB), and a generated one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.sqldump import load_mysql_dump
from aac_etl.sources import get_source
from aac_etl.sources.base import ExtractRequest
from aac_etl.sources.opencart import OpenCartSource
from aac_etl.sources.opencart.extract import COLUMNS, _HeldTable
from aac_etl.sources.opencart.settings import LOOKUP_TABLES, PRODUCT_TABLES
from aac_etl.sources.opencart.tables import catalog_metadata
from aac_etl_tests.sources.opencart.helpers import demo_config

DEMO_IDS = [28, 29, 30, 31, 32, 33, 34, 35, 36, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49]


def _config(**overrides: object) -> SourceConfig:
    return demo_config(**overrides)


def test_held_table_windows_are_the_rows_as_read() -> None:
    seo = pl.DataFrame(
        {
            "store_id": [0, 0, 0, 0],
            "language_id": [1, 2, 1, 1],
            "query": ["product_id=7", "product_id=7", "product_id=3", "product_id=12"],
            "keyword": ["seven", "sieben", "three", "twelve"],
            "product_id": [7, 7, 3, 12],
        }
    )
    held = _HeldTable(seo, rebuilt_query=True)
    assert "query" not in held.frame.columns
    assert held.frame.schema["product_id"] == pl.Int32
    window = held.window(5, 12)
    assert window.schema == seo.schema
    assert window.rows() == [
        (0, 1, "product_id=7", "seven", 7),
        (0, 2, "product_id=7", "sieben", 7),
        (0, 1, "product_id=12", "twelve", 12),
    ]
    assert held.window(13, 20).height == 0

    odd = seo.with_columns(pl.Series("query", ["product_id=07", "product_id=7", "product_id=3", "product_id=12"]))
    kept = _HeldTable(odd, rebuilt_query=True)
    assert "query" in kept.frame.columns
    assert kept.window(7, 7)["query"].to_list() == ["product_id=07", "product_id=7"]

    wide = pl.DataFrame({"product_id": [1, 2], "option_id": [2**31, 5], "option_value_id": [None, 9]})
    held_wide = _HeldTable(wide)
    assert held_wide.frame.schema["option_id"] == pl.Int64
    assert held_wide.frame.schema["option_value_id"] == pl.Int32
    assert held_wide.window(1, 2).equals(wide)


def test_registry_returns_opencart_source() -> None:
    assert isinstance(get_source("opencart"), OpenCartSource)


def test_full_extract_single_chunk(opencart3_url: str) -> None:
    chunks = list(OpenCartSource().extract(_config(), opencart3_url, ExtractRequest()))
    assert len(chunks) == 1
    chunk = chunks[0]
    assert set(chunk) == set(PRODUCT_TABLES) | set(LOOKUP_TABLES)
    assert sorted(chunk["product"]["product_id"].to_list()) == DEMO_IDS
    assert chunk["product_description"].height == 19
    assert chunk["product_to_category"].height == 30
    assert chunk["product_image"].height == 61
    assert chunk["category_path"].height == 71
    assert chunk["product_special"].height == 3
    for name, frame in chunk.items():
        expected = list(COLUMNS[name])
        assert frame.columns[: len(expected)] == expected, name
    special = chunk["product_special"].filter(pl.col("product_id") == 42)
    assert special["price"].to_list() == [90.0]
    assert special["date_start"].dtype == pl.Utf8


def test_chunking_by_product_id_ranges(opencart3_url: str) -> None:
    chunks = list(OpenCartSource().extract(_config(), opencart3_url, ExtractRequest(chunk_rows=5)))
    assert [c["product"].height for c in chunks] == [5, 5, 5, 4]
    ids = [i for c in chunks for i in c["product"]["product_id"].to_list()]
    assert ids == DEMO_IDS
    for chunk in chunks:
        low, high = chunk["product"]["product_id"].min(), chunk["product"]["product_id"].max()
        assert chunk["product_image"]["product_id"].is_between(low, high).all()  # type: ignore[arg-type]
        assert chunk["category_path"].height == 71  # lookups repeated in every chunk
    assert sum(c["product_image"].height for c in chunks) == 61


def test_delta_extract_filters_on_date_modified(opencart3_url: str) -> None:
    request = ExtractRequest(mode="delta", since=datetime(2011, 9, 30, 1, 7))
    chunks = list(OpenCartSource().extract(_config(), opencart3_url, request))
    ids = sorted(i for c in chunks for i in c["product"]["product_id"].to_list())
    assert len(ids) == 4
    assert all(c["product"]["date_modified"].str.slice(0, 16).min() >= "2011-09-30 01:07" for c in chunks)  # type: ignore[operator]


def test_delta_with_nothing_changed_yields_nothing(opencart3_url: str) -> None:
    request = ExtractRequest(mode="delta", since=datetime(2030, 1, 1))
    assert list(OpenCartSource().extract(_config(), opencart3_url, request)) == []


def test_delta_needs_since(opencart3_sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="since"):
        list(OpenCartSource().extract(_config(), opencart3_sqlite_url, ExtractRequest(mode="delta")))


def test_missing_dsn_is_an_error() -> None:
    with pytest.raises(ValueError, match="DSN"):
        list(OpenCartSource().extract(_config(), None, ExtractRequest()))


def test_custom_table_prefix(opencart3_dump: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prefixed.db'}"
    load_mysql_dump(opencart3_dump, url, prefix="shop_")
    config = _config(options={"table_prefix": "shop_"})
    chunks = list(OpenCartSource().extract(config, url, ExtractRequest()))
    assert chunks[0]["product"].height == 19
    engine = sa.create_engine(url)
    try:
        assert "oc_product" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_catalog_metadata_matches_the_real_schema(opencart3_sqlite_url: str) -> None:
    engine = sa.create_engine(opencart3_sqlite_url)
    try:
        inspector = sa.inspect(engine)
        for table in catalog_metadata().tables.values():
            real = {c["name"] for c in inspector.get_columns(table.name)}
            assert set(table.columns.keys()) == real, table.name
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_catalog_metadata_creates_everywhere(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}" if backend == "sqlite" else request.getfixturevalue(f"{backend}_url")
    engine = sa.create_engine(url)
    try:
        md = catalog_metadata("shop_")
        md.create_all(engine)
        assert set(sa.inspect(engine).get_table_names()) >= set(md.tables)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_several_keywords_of_a_product_come_in_id_order_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    # PostgreSQL returns an updated row after the rows it has not touched: without an order, the keyword a product
    # gets (the first of its language) would change with the shop's edits, and so would its document.
    from aac_etl.demo.generator import generate_shop

    sqlite_url = f"sqlite:///{tmp_path / 'shop.db'}"
    generate_shop(sqlite_url, products=3, languages=("en-gb",))
    metadata = catalog_metadata("oc_")
    source, target = sa.create_engine(sqlite_url), sa.create_engine(postgres_url)
    try:
        metadata.create_all(target)
        with source.connect() as read, target.begin() as write:
            for table in metadata.sorted_tables:
                rows = [dict(row._mapping) for row in read.execute(sa.select(table))]
                if rows:
                    write.execute(table.insert(), rows)
        seo = metadata.tables["oc_seo_url"]
        with target.begin() as write:
            first = write.execute(
                sa.select(seo.c.seo_url_id, seo.c.store_id, seo.c.language_id).where(seo.c.query == "product_id=1")
            ).one()
            write.execute(
                seo.insert().values(
                    seo_url_id=10_000,
                    store_id=first.store_id,
                    language_id=first.language_id,
                    query="product_id=1",
                    keyword="zz-added-later",
                )
            )
            write.execute(seo.update().where(seo.c.seo_url_id == first.seo_url_id).values(keyword="renamed-first"))
            scanned = write.execute(sa.select(seo.c.keyword).where(seo.c.query == "product_id=1")).scalars().all()
        assert scanned == ["zz-added-later", "renamed-first"]  # what an unordered read sees

        config = _config(languages={"en-gb": "en"}, options={"seo_urls": True})
        (chunk,) = list(OpenCartSource().extract(config, postgres_url, ExtractRequest()))
        keywords = chunk["seo_url"].filter(pl.col("product_id") == 1).get_column("keyword").to_list()
        assert keywords == ["renamed-first", "zz-added-later"]
        docs = OpenCartSource().normalize(chunk, config)
        (url,) = docs.filter(pl.col("external_id") == "1:en").get_column("product_url").to_list()
        assert url == "https://shop.example.com/renamed-first"
    finally:
        source.dispose()
        target.dispose()
