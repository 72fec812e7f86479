"""The synthetic OpenCart shop generator: consistency, determinism, mutations and export files."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pytest
import sqlalchemy as sa

from aac_etl.demo.generator import ShopStats, generate_files, generate_shop, mutate_shop
from aac_etl_tests.fixtures.services import MARIADB_HOST, MARIADB_PORT, require_service

FileFormat = Literal["jsonl", "csv", "parquet"]
LANGUAGES = ("en-gb", "de-de", "fr-fr")
PRODUCT_TABLES = (
    "oc_product",
    "oc_product_description",
    "oc_product_to_category",
    "oc_product_to_store",
    "oc_product_special",
    "oc_product_discount",
    "oc_product_option",
    "oc_product_option_value",
    "oc_product_image",
    "oc_product_attribute",
)


def _query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def _scalar(db: Path, sql: str, *params: Any) -> Any:
    return _query(db, sql, *params)[0][0]


def _count(db: Path, table: str, where: str) -> int:
    return _scalar(db, f"SELECT COUNT(*) FROM {table} WHERE {where}")


def _orphans(db: Path, child: str, parent: str, key: str) -> int:
    sql = f"SELECT COUNT(*) FROM {child} c LEFT JOIN {parent} p USING ({key}) WHERE p.{key} IS NULL"
    return _scalar(db, sql)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ShopStats]:
    db = tmp_path_factory.mktemp("shop") / "shop.sqlite"
    stats = generate_shop(f"sqlite:///{db}", products=2_000, languages=LANGUAGES, seed=11, chunk=700)
    return db, stats


def test_counts_per_table_are_consistent(shop: tuple[Path, ShopStats]) -> None:
    db, stats = shop
    assert stats.products == 2_000
    assert stats.languages == LANGUAGES
    for table, rows in stats.rows.items():
        assert _scalar(db, f"SELECT COUNT(*) FROM {table}") == rows, table
    assert _scalar(db, "SELECT COUNT(*) FROM oc_product") == 2_000
    assert _scalar(db, "SELECT MIN(product_id), MAX(product_id) FROM oc_product") == 1
    assert _scalar(db, "SELECT COUNT(*) FROM oc_product_to_store") == 2_000
    assert 40 <= stats.categories == _scalar(db, "SELECT COUNT(*) FROM oc_category") <= 200
    assert stats.manufacturers == _scalar(db, "SELECT COUNT(*) FROM oc_manufacturer")
    assert _query(db, "SELECT language_id, code FROM oc_language ORDER BY language_id") == [
        (1, "en-gb"),
        (2, "de-de"),
        (3, "fr-fr"),
    ]
    # Every child row points at an existing parent row.
    for table in PRODUCT_TABLES[1:]:
        assert _orphans(db, table, "oc_product", "product_id") == 0, table
    assert _orphans(db, "oc_product_to_category", "oc_category", "category_id") == 0
    assert _orphans(db, "oc_product_option_value", "oc_option_value", "option_value_id") == 0
    assert _orphans(db, "oc_category_description", "oc_category", "category_id") == 0
    assert _scalar(db, "SELECT COUNT(DISTINCT product_id) FROM oc_product_to_category") == 2_000
    mismatched = """
        SELECT COUNT(*) FROM oc_product_option_value v
        LEFT JOIN oc_product_option o USING (product_option_id)
        WHERE o.product_option_id IS NULL OR o.product_id != v.product_id OR o.option_id != v.option_id
    """
    assert _scalar(db, mismatched) == 0
    unknown_status = """
        SELECT COUNT(*) FROM oc_product p
        LEFT JOIN oc_stock_status s ON s.stock_status_id = p.stock_status_id AND s.language_id = 1
        WHERE s.name IS NULL
    """
    assert _scalar(db, unknown_status) == 0


def test_every_product_has_a_description_per_language(shop: tuple[Path, ShopStats]) -> None:
    db, _ = shop
    per_product = _query(
        db,
        "SELECT product_id, COUNT(*), COUNT(DISTINCT language_id) FROM oc_product_description GROUP BY product_id",
    )
    assert len(per_product) == 2_000
    assert {(count, distinct) for _, count, distinct in per_product} == {(3, 3)}
    assert _scalar(db, "SELECT COUNT(*) FROM oc_product_description WHERE TRIM(name) = ''") == 0
    # Names differ per language (own word lists), and the lookup tables are localized too.
    names = dict(_query(db, "SELECT language_id, name FROM oc_product_description WHERE product_id = 1"))
    assert len(set(names.values())) == 3
    for table in (
        "oc_stock_status",
        "oc_option_description",
        "oc_category_description",
        "oc_attribute_description",
    ):
        assert {r[0] for r in _query(db, f"SELECT DISTINCT language_id FROM {table}")} == {1, 2, 3}, table
    assert _scalar(db, "SELECT COUNT(*) FROM oc_stock_status") == 4 * 3


def test_category_paths_are_consistent(shop: tuple[Path, ShopStats]) -> None:
    db, _ = shop
    parent = dict(_query(db, "SELECT category_id, parent_id FROM oc_category"))
    paths: dict[int, list[tuple[int, int]]] = {}
    for category_id, path_id, level in _query(db, "SELECT category_id, path_id, level FROM oc_category_path"):
        paths.setdefault(category_id, []).append((level, path_id))
    assert set(paths) == set(parent)
    depths: set[int] = set()
    for category_id in parent:
        chain = [category_id]
        while parent[chain[-1]]:
            chain.append(parent[chain[-1]])
        expected = list(enumerate(reversed(chain)))
        assert sorted(paths[category_id]) == expected, category_id
        depths.add(len(chain))
    assert depths == {1, 2, 3}
    assert _scalar(db, "SELECT COUNT(*) FROM oc_category WHERE parent_id = 0 AND top = 1") == 8


def test_real_world_quirks_are_present(shop: tuple[Path, ShopStats]) -> None:
    """The messy-but-valid values normalization has to handle all occur in a shop of this size."""
    db, _ = shop
    special = "oc_product_special s JOIN oc_product p USING (product_id)"
    checks = {
        "empty sku": ("oc_product", "TRIM(sku) = ''"),
        "padded name": ("oc_product_description", "name != TRIM(name)"),
        "doubled space": ("oc_product_description", "name LIKE '%  %'"),
        "no manufacturer": ("oc_product", "manufacturer_id = 0"),
        "empty manufacturer": ("oc_manufacturer", "TRIM(name) = ''"),
        "relative image": ("oc_product", "image LIKE 'catalog/%'"),
        "image with space": ("oc_product", "image LIKE '% %'"),
        "no image": ("oc_product", "image IS NULL OR image = ''"),
        "encoded html": ("oc_product_description", "description LIKE '&lt;p&gt;%'"),
        "raw html": ("oc_product_description", "description LIKE '<p>%'"),
        "encoded entity": ("oc_product_description", "description LIKE '%&amp;eacute;%'"),
        "script": ("oc_product_description", "description LIKE '%&lt;script%'"),
        "crlf": ("oc_product_description", "description LIKE '%' || char(13, 10) || '%'"),
        "empty description": ("oc_product_description", "description = ''"),
        "encoded name": ("oc_product_description", "name LIKE '%&amp;%' OR name LIKE '%&quot;%'"),
        "zero date": ("oc_product", "date_available = '0000-00-00'"),
        "disabled product": ("oc_product", "status = 0"),
        "zero quantity": ("oc_product", "quantity = 0"),
        "open special": ("oc_product_special", "date_start = '0000-00-00' AND date_end = '0000-00-00'"),
        "expired special": ("oc_product_special", "date_end != '0000-00-00' AND date_end < '2026-01-01'"),
        "future special": ("oc_product_special", "date_start > '2030-01-01'"),
        "special not lower": (special, "s.price >= p.price"),
        "special priorities": ("oc_product_special", "priority = 2"),
        "other customer group": ("oc_product_special", "customer_group_id = 2"),
        "quantity discount": ("oc_product_discount", "quantity > 1"),
        "option minus price": ("oc_product_option_value", "price_prefix = '-'"),
        "option plus price": ("oc_product_option_value", "price_prefix = '+' AND price > 0"),
        "extra images": ("oc_product_image", "sort_order >= 0"),
        "product seo": ("oc_seo_url", "query LIKE 'product_id=%'"),
        "disabled category": ("oc_category", "status = 0"),
    }
    missing = [name for name, (table, where) in checks.items() if not _count(db, table, where)]
    assert missing == []
    assert _query(db, "SELECT code, value FROM oc_currency WHERE status = 1 ORDER BY code") == [
        ("EUR", pytest.approx(0.9213, abs=1e-4)),
        ("GBP", pytest.approx(0.7871, abs=1e-4)),
        ("USD", 1.0),
    ]
    assert _query(db, "SELECT value FROM oc_setting WHERE key = 'config_currency'") == [("USD",)]
    assert _query(db, "SELECT value FROM oc_setting WHERE key = 'config_language'") == [("en-gb",)]
    assert _scalar(db, "SELECT COUNT(*) - COUNT(DISTINCT keyword) FROM oc_seo_url") == 0
    assert _scalar(db, "SELECT MIN(price) >= 0 AND MAX(price) < 10000 FROM oc_product") == 1


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    tables = [r[0] for r in _query(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {t: _query(db, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}


def test_same_seed_gives_the_same_shop(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "c.sqlite"
    generate_shop(f"sqlite:///{first}", products=300, seed=5, chunk=120)
    generate_shop(f"sqlite:///{second}", products=300, seed=5, chunk=120)
    generate_shop(f"sqlite:///{other}", products=300, seed=6, chunk=120)
    assert _dump(first) == _dump(second)
    assert _dump(first)["oc_product_description"] != _dump(other)["oc_product_description"]


def test_regenerating_replaces_the_catalog(tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    generate_shop(f"sqlite:///{db}", products=120)
    generate_shop(f"sqlite:///{db}", products=80, languages=("en-gb",))
    assert _scalar(db, "SELECT COUNT(*) FROM oc_product") == 80
    assert _scalar(db, "SELECT COUNT(*) FROM oc_product_description") == 80


def test_progress_reports_every_chunk(tmp_path: Path) -> None:
    seen: list[int] = []
    generate_shop(f"sqlite:///{tmp_path / 'shop.sqlite'}", products=250, chunk=100, progress=seen.append)
    assert seen == [100, 200, 250]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    with pytest.raises(ValueError, match="word lists"):
        generate_shop(url, products=10, languages=("xx-yy",))
    with pytest.raises(ValueError, match="positive"):
        generate_shop(url, products=0)
    with pytest.raises(ValueError, match="unsupported database backend"):
        generate_shop("postgresql+psycopg://localhost/shop", products=10)
    with pytest.raises(ValueError, match="change_share"):
        mutate_shop(url, change_share=1.5)


def test_mutate_shop_changes_exactly_the_requested_share(tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    generate_shop(f"sqlite:///{db}", products=1_000)
    before = dict(_query(db, "SELECT product_id, price FROM oc_product"))
    modified_before = dict(_query(db, "SELECT product_id, date_modified FROM oc_product"))
    descriptions = _query(db, "SELECT * FROM oc_product_description ORDER BY 1, 2")

    changed = mutate_shop(f"sqlite:///{db}", change_share=0.05, seed=3)

    after = dict(_query(db, "SELECT product_id, price FROM oc_product"))
    modified_after = dict(_query(db, "SELECT product_id, date_modified FROM oc_product"))
    differ = {pid for pid in before if before[pid] != after[pid]}
    assert changed == 50
    assert len(differ) == 50
    assert {pid for pid in before if modified_before[pid] != modified_after[pid]} == differ
    assert all(after[pid] > 0 for pid in differ)
    assert min(modified_after[pid] for pid in differ) > "2026-07-01"  # now, later than any generated date
    assert _query(db, "SELECT * FROM oc_product_description ORDER BY 1, 2") == descriptions


def test_mutate_shop_deletes_products_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    generate_shop(f"sqlite:///{db}", products=200)
    changed = mutate_shop(f"sqlite:///{db}", change_share=0.1, delete_ids=[3, 7, 7, 999_999])
    assert changed == 20  # 10 % of the 198 remaining products, rounded
    assert _scalar(db, "SELECT COUNT(*) FROM oc_product") == 198
    for table in PRODUCT_TABLES:
        assert _scalar(db, f"SELECT COUNT(*) FROM {table} WHERE product_id IN (3, 7)") == 0, table
    assert _scalar(db, "SELECT COUNT(*) FROM oc_seo_url WHERE query IN ('product_id=3', 'product_id=7')") == 0
    assert _scalar(db, "SELECT COUNT(*) FROM oc_seo_url WHERE query = 'product_id=4'") in {0, 2}


def test_mutate_shop_is_deterministic(tmp_path: Path) -> None:
    prices: list[list[tuple[Any, ...]]] = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.sqlite"
        generate_shop(f"sqlite:///{db}", products=300)
        mutate_shop(f"sqlite:///{db}", change_share=0.2, seed=9)
        prices.append(_query(db, "SELECT product_id, price FROM oc_product ORDER BY product_id"))
    assert prices[0] == prices[1]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_generate_files_writes_sync_product_input_documents(tmp_path: Path, fmt: FileFormat) -> None:
    path = generate_files(tmp_path / "out", products=120, fmt=fmt, languages=("en", "de-de"), chunk=50)
    assert path == tmp_path / "out" / f"products.{fmt}"
    if fmt == "parquet":
        frame = pl.read_parquet(path)
    elif fmt == "jsonl":
        frame = pl.read_ndjson(path)
    else:
        frame = pl.read_csv(path, infer_schema=False)
    docs = frame.to_dicts()
    assert len(docs) == 240
    assert [d["external_id"] for d in docs[:4]] == ["1:en", "1:de", "2:en", "2:de"]
    assert len({d["external_id"] for d in docs}) == 240
    for doc in docs:
        if fmt == "csv":
            for key in ("categories", "category_ids", "tags", "attributes"):
                doc[key] = json.loads(doc[key])
            for key in ("price", "sale_price"):
                doc[key] = float(doc[key]) if doc[key] else None
        assert doc["title"]
        assert doc["title"] == doc["title"].strip()
        assert doc["locale"] in {"en", "de"}
        assert doc["currency"] == "USD"
        assert len(doc["categories"]) == len(doc["category_ids"]) >= 2
        assert doc["sale_price"] is None or doc["sale_price"] < doc["price"]
        assert doc["availability"] in {"in_stock", "out_of_stock", "preorder"}
        assert doc["image_url"] is None or doc["image_url"].startswith("https://")
        assert doc["product_url"].startswith("https://")
        assert "<" not in (doc["description"] or "")
        assert set(doc["attributes"]["price_by_currency"]) == {"EUR", "GBP"}
    assert generate_files(tmp_path / "again", products=120, fmt=fmt, languages=("en", "de"), chunk=50).read_bytes() == (
        path.read_bytes()
    )


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    require_service("MariaDB", MARIADB_HOST, MARIADB_PORT)
    name = f"aac_test_generator_{uuid.uuid4().hex[:12]}"
    yield f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}?charset=utf8mb4"
    admin = sa.create_engine(f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/")
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.dispose()


@pytest.mark.mariadb
def test_small_shop_into_mariadb(mariadb_url: str) -> None:
    stats = generate_shop(mariadb_url, products=300, languages=("en-gb", "de-de", "ru-ru"), chunk=120)
    engine = sa.create_engine(mariadb_url)
    try:
        with engine.connect() as conn:
            for table, rows in stats.rows.items():
                assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{table}`").scalar_one() == rows, table
            per_language = conn.exec_driver_sql(
                "SELECT language_id, COUNT(DISTINCT product_id) FROM oc_product_description GROUP BY language_id"
            ).all()
            assert sorted(tuple(r) for r in per_language) == [(1, 300), (2, 300), (3, 300)]
            name = conn.exec_driver_sql(
                "SELECT name FROM oc_product_description WHERE product_id = 1 AND language_id = 3"
            ).scalar_one()
            assert any("\u0400" <= ch <= "\u04ff" for ch in name)  # Cyrillic survives the round trip
            zero_dates = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM oc_product_special WHERE date_start = '0000-00-00'"
            ).scalar_one()
            assert zero_dates > 0
            before = dict(conn.exec_driver_sql("SELECT product_id, price FROM oc_product").all())
        assert mutate_shop(mariadb_url, change_share=0.1, delete_ids=[5]) == 30
        with engine.connect() as conn:
            after = dict(conn.exec_driver_sql("SELECT product_id, price FROM oc_product").all())
            assert (
                conn.exec_driver_sql("SELECT COUNT(*) FROM oc_product_description WHERE product_id = 5").scalar() == 0
            )
    finally:
        engine.dispose()
    assert 5 not in after
    assert sum(1 for pid, price in after.items() if before[pid] != price) == 30
