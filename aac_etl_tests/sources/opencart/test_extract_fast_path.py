"""The connectorx fast path of the OpenCart extract returns exactly what the DB-API path returns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from aac_etl.demo.generator import generate_shop
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.sqldump import load_mysql_dump
from aac_etl.sources.base import ExtractRequest, RawChunk
from aac_etl.sources.opencart import extract
from aac_etl.sources.opencart.extract import COLUMNS, connectorx_uri, extract_catalog
from aac_etl_tests.sources.opencart.helpers import demo_config

pytest.importorskip("connectorx")

REQUESTS = [
    pytest.param(ExtractRequest(), id="full"),
    pytest.param(ExtractRequest(chunk_rows=5), id="chunked"),
    pytest.param(ExtractRequest(mode="delta", since=datetime(2011, 9, 30, 1, 7)), id="delta"),
    pytest.param(ExtractRequest(mode="delta", since=datetime(2030, 1, 1)), id="delta-empty"),
    pytest.param(ExtractRequest(mode="delta", since=datetime(2011, 9, 30, 1, 7, tzinfo=UTC)), id="delta-aware"),
]


def _config() -> SourceConfig:
    return demo_config(languages={"en-gb": "en", "de-de": "de"})


def _chunks(url: str, request: ExtractRequest, monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> list[RawChunk]:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(extract, "_load_connectorx", lambda: None)
        return [dict(chunk) for chunk in extract_catalog(_config(), url, request)]


def _assert_same(url: str, request: ExtractRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    assert connectorx_uri(sa.make_url(url)) is not None
    slow = _chunks(url, request, monkeypatch, fast=False)
    arrow_frames: list[pl.DataFrame] = []
    read_arrow = extract._read_arrow

    def _spy(*args: Any, **kwargs: Any) -> pl.DataFrame | None:
        frame = read_arrow(*args, **kwargs)
        if frame is not None:
            arrow_frames.append(frame)
        return frame

    with monkeypatch.context() as patch:
        patch.setattr(extract, "_read_arrow", _spy)
        fast = _chunks(url, request, monkeypatch, fast=True)
    assert arrow_frames, "the connectorx path was not used"
    assert len(fast) == len(slow)
    for fast_chunk, slow_chunk in zip(fast, slow, strict=True):
        assert set(fast_chunk) == set(slow_chunk)
        for name, frame in slow_chunk.items():
            assert fast_chunk[name].schema == frame.schema, name
            assert_frame_equal(fast_chunk[name], frame, check_exact=True)
    return sum(chunk["product"].height for chunk in slow)


@pytest.fixture(scope="module")
def opencart3_postgres_url(opencart3_dump: Path) -> object:
    from aac_etl_tests.fixtures.databases import _postgres_database

    for url in _postgres_database():
        load_mysql_dump(opencart3_dump, url)
        yield url


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def demo_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"opencart3_{request.param}_url")


@pytest.mark.parametrize("request_", REQUESTS)
def test_fast_path_equals_dbapi_on_demo_shop(
    demo_url: str, request_: ExtractRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    products = _assert_same(demo_url, request_, monkeypatch)
    if request_.since != datetime(2030, 1, 1):
        assert products > 0


@pytest.fixture(scope="module")
def generated_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('generated') / 'shop.db'}"
    generate_shop(url, products=3000, languages=("en-gb", "de-de"))
    return url


@pytest.mark.parametrize("chunk_rows", [1000, 50_000])
def test_fast_path_equals_dbapi_on_generated_shop(
    generated_sqlite_url: str, chunk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _assert_same(generated_sqlite_url, ExtractRequest(chunk_rows=chunk_rows), monkeypatch) == 3000


@pytest.mark.mariadb
def test_fast_path_equals_dbapi_on_generated_mariadb_shop(monkeypatch: pytest.MonkeyPatch) -> None:
    from aac_etl_tests.fixtures.databases import _mariadb_database

    for url in _mariadb_database():
        generate_shop(url, products=1500, languages=("en-gb", "de-de"))
        assert _assert_same(url, ExtractRequest(chunk_rows=400), monkeypatch) == 1500


def test_fast_path_handles_null_first_rows_and_mixed_numeric_storage(
    opencart3_sqlite_copy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite NUMERIC columns storing integers and reals, and NULL dates in the first row, read identically."""
    engine = sa.create_engine(opencart3_sqlite_copy_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE oc_product SET price = 100 WHERE product_id = 28")
            conn.exec_driver_sql("UPDATE oc_product SET price = 12.3456 WHERE product_id = 29")
            conn.exec_driver_sql("UPDATE oc_product_special SET date_start = NULL, date_end = NULL")
            conn.exec_driver_sql("UPDATE oc_product_discount SET date_end = '0000-00-00'")
    finally:
        engine.dispose()
    _assert_same(opencart3_sqlite_copy_url, ExtractRequest(), monkeypatch)
    chunk = _chunks(opencart3_sqlite_copy_url, ExtractRequest(), monkeypatch, fast=True)[0]
    prices = dict(zip(chunk["product"]["product_id"], chunk["product"]["price"], strict=True))
    assert (prices[28], prices[29]) == (100.0, 12.3456)
    assert chunk["product_special"]["date_start"].null_count() == chunk["product_special"].height > 0
    assert set(chunk["product_discount"]["date_end"].to_list()) == {"0000-00-00"}


@pytest.mark.mariadb
def test_fast_path_keeps_mysql_zero_dates_as_text(opencart3_dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aac_etl_tests.fixtures.databases import _mariadb_database

    for url in _mariadb_database():
        load_mysql_dump(opencart3_dump, url)
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("SET SESSION sql_mode = ''")
                conn.exec_driver_sql("UPDATE oc_product_special SET date_start = '0000-00-00', date_end = '0000-00-00'")
        finally:
            engine.dispose()
        _assert_same(url, ExtractRequest(), monkeypatch)
        special = _chunks(url, ExtractRequest(), monkeypatch, fast=True)[0]["product_special"]
        assert special.height > 0
        assert set(special["date_start"].to_list()) == {"0000-00-00"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mysql+pymysql://shop:p%40ss%3Aw0rd@db.example:3307/oc?charset=utf8mb4",
            "mysql://shop:p%40ss%3Aw0rd@db.example:3307/oc",
        ),
        ("mariadb+pymysql://shop:pw@db/oc", "mysql://shop:pw@db/oc"),
        ("postgresql+psycopg://postgres:pw@127.0.0.1:5432/shop", "postgresql://postgres:pw@127.0.0.1:5432/shop"),
        ("postgresql+psycopg2://postgres@localhost/shop", "postgresql://postgres@localhost/shop"),
        ("sqlite:////data/shop.db", "sqlite:///data/shop.db"),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
        ("sqlite:///shop.db?mode=ro", None),
        ("mysql+pymysql://shop:pw@db/oc?charset=latin1", None),
        ("mysql+pymysql://shop:pw@db/oc?ssl_ca=/ca.pem", None),
        ("mysql+pymysql://shop:pw@/oc?unix_socket=/run/mysqld.sock", None),
        ("postgresql+psycopg://postgres:pw@db/shop?sslmode=require", None),
        ("postgresql+asyncpg://postgres:pw@db/shop", None),
        ("mssql+pyodbc://sa:pw@db/shop", None),
    ],
)
def test_connectorx_uri(url: str, expected: str | None) -> None:
    assert connectorx_uri(sa.make_url(url)) == expected


def test_connectorx_uri_makes_relative_sqlite_paths_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert connectorx_uri(sa.make_url("sqlite:///shop.db")) == f"sqlite://{tmp_path / 'shop.db'}"


def test_connectorx_error_hides_the_password() -> None:
    cx = extract._load_connectorx()
    assert cx is not None
    uri = "postgresql://postgres:Sup3rSecretPw@127.0.0.1:1/shop"
    with pytest.raises(RuntimeError, match="connectorx query failed") as info:
        extract._read_arrow(cx, uri, "SELECT 1 AS product_id", {"product_id": pl.Int64()})
    assert "Sup3rSecretPw" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_missing_connectorx_uses_the_dbapi_path(opencart3_sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def _no_connectorx(*_args: object, **_kwargs: object) -> pl.DataFrame:
        raise AssertionError("connectorx path used")

    monkeypatch.setattr(extract, "_load_connectorx", lambda: None)
    monkeypatch.setattr(extract, "_read_arrow", _no_connectorx)
    chunks = list(extract_catalog(_config(), opencart3_sqlite_url, ExtractRequest()))
    assert chunks[0]["product"].height == 19
    assert list(chunks[0]["product"].columns) == list(COLUMNS["product"])


def test_text_in_a_numeric_sqlite_column_reads_as_on_the_dbapi_path(
    opencart3_sqlite_copy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite keeps text it cannot convert in an INTEGER or DECIMAL column; connectorx refuses such a value.
    engine = sa.create_engine(opencart3_sqlite_copy_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE oc_product SET quantity = 'lots', price = 'n/a' WHERE product_id = 40"))
    engine.dispose()
    assert _assert_same(opencart3_sqlite_copy_url, ExtractRequest(), monkeypatch) == 19
    chunk = _chunks(opencart3_sqlite_copy_url, ExtractRequest(), monkeypatch, fast=True)[0]
    row = chunk["product"].filter(pl.col("product_id") == 40)
    assert row["quantity"].to_list() == [None]
    assert row["price"].to_list() == [None]
