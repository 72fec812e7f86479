"""Tests of aac_etl.lib.sqldump: MySQL dump text into SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from aac_etl.lib.sqldump import SqlDumpError, load_mysql_dump, load_mysql_text

SAMPLE = r"""
-- a comment; with a semicolon
/*!40101 SET NAMES utf8 */;
DROP TABLE IF EXISTS `oc_item`;
CREATE TABLE `oc_item` (
  `item_id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL,
  `note` text NOT NULL,
  `kind` enum('a','bb') NOT NULL DEFAULT 'a',
  `qty` int(10) unsigned NOT NULL DEFAULT '0',
  `price` decimal(15,4) NOT NULL DEFAULT '0.0000',
  `rate` double(15,8) NOT NULL,
  `starts` date NOT NULL DEFAULT '0000-00-00',
  `added` datetime NOT NULL,
  `column` int(3) NOT NULL,
  PRIMARY KEY (`item_id`),
  KEY `name` (`name`),
  KEY `note` (`note`(32))
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO `oc_item` (`item_id`, `name`, `note`, `kind`, `qty`, `price`, `rate`, `starts`, `added`,
  `column`) VALUES
(1, 'It\'s a \"test\"', 'line1\r\nline2 \\ back; semi', 'bb', 3, '10.5000', 0.61250001, '0000-00-00',
  '2009-02-03 16:06:50', 1),
(2, 'O''Brien', CONCAT('INV-', YEAR(CURDATE()), '-00'), 'a', '7', '-1.2500', -2, '2020-01-31',
  '0000-00-00 00:00:00', 2);

CREATE TABLE `oc_other` (`other_id` int(11) NOT NULL, PRIMARY KEY (`other_id`)) ENGINE=MyISAM;
INSERT INTO `oc_other` VALUES (5), (6), (7);
"""


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
    finally:
        engine.dispose()


def test_escapes_types_and_expressions_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sample.db'}"
    counts = load_mysql_text(SAMPLE, url)
    assert counts == {"oc_item": 2, "oc_other": 3}
    rows = _rows(url, 'SELECT item_id, name, note, kind, qty, price, starts, added, "column" FROM oc_item ORDER BY 1')
    first, second = rows
    assert first[1] == 'It\'s a "test"'
    assert first[2] == "line1\r\nline2 \\ back; semi"
    assert first[4] == 3
    assert float(str(first[5])) == pytest.approx(10.5)
    assert first[6] is None  # '0000-00-00' -> NULL on non-MySQL targets
    assert str(first[7]).startswith("2009-02-03 16:06:50")
    assert second[1] == "O'Brien"
    assert second[2] == f"INV-{dt.date.today().year}-00"
    assert second[4] == 7
    assert second[7] is None
    assert second[8] == 2


def test_tables_filter_and_prefix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'filtered.db'}"
    counts = load_mysql_text(SAMPLE, url, tables=["item"], prefix="shop_")
    assert counts == {"shop_item": 2}
    engine = sa.create_engine(url)
    try:
        assert sa.inspect(engine).get_table_names() == ["shop_item"]
    finally:
        engine.dispose()


def test_unsupported_function_is_an_error(tmp_path: Path) -> None:
    sql = "CREATE TABLE `t` (`a` text NOT NULL) ENGINE=MyISAM; INSERT INTO `t` (`a`) VALUES (UUID());"
    with pytest.raises(SqlDumpError, match="UUID"):
        load_mysql_text(sql, f"sqlite:///{tmp_path / 'bad.db'}")


def test_opencart3_dump_into_sqlite(opencart3_dump: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'oc.db'}"
    counts = load_mysql_dump(opencart3_dump, url)
    assert len(counts) == 134
    assert counts["oc_product"] == 19
    assert counts["oc_category_path"] == 71
    assert counts["oc_product_image"] == 61
    prefix = _rows(url, "SELECT value FROM oc_setting WHERE key = 'config_invoice_prefix'")
    assert str(prefix[0][0]).startswith("INV-20")
    names = {row[0]: row[1] for row in _rows(url, "SELECT product_id, name FROM oc_product_description")}
    assert names[42] == "Apple Cinema 30&quot;"


@pytest.mark.mariadb
def test_sample_into_mariadb_keeps_zero_dates(mariadb_url: str) -> None:
    counts = load_mysql_text(SAMPLE, mariadb_url)
    assert counts == {"oc_item": 2, "oc_other": 3}
    rows = _rows(mariadb_url, "SELECT name, note, CAST(starts AS CHAR), qty FROM oc_item ORDER BY item_id")
    assert rows[0] == ('It\'s a "test"', "line1\r\nline2 \\ back; semi", "0000-00-00", 3)
    assert rows[1][0] == "O'Brien"
    assert str(rows[1][1]).startswith("INV-")


@pytest.mark.mariadb
def test_opencart3_dump_into_mariadb_with_prefix(opencart3_dump: Path, mariadb_url: str) -> None:
    counts = load_mysql_dump(opencart3_dump, mariadb_url, tables=["product", "product_special"], prefix="s1_")
    assert counts == {"s1_product": 19, "s1_product_special": 3}
    rows = _rows(mariadb_url, "SELECT COUNT(*) FROM s1_product_special WHERE date_start = '0000-00-00'")
    assert rows[0][0] == 3


@pytest.mark.postgres
def test_opencart3_dump_into_postgres(opencart3_dump: Path, postgres_url: str) -> None:
    counts = load_mysql_dump(opencart3_dump, postgres_url)
    assert counts["oc_product"] == 19
    assert _rows(postgres_url, "SELECT COUNT(*) FROM oc_product_special WHERE date_start IS NULL")[0][0] == 3
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            new_id = conn.execute(
                sa.text(
                    "INSERT INTO oc_manufacturer (name, image, sort_order) VALUES ('New', '', 0) "
                    "RETURNING manufacturer_id"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert new_id > 10  # the serial sequence was moved past the loaded ids


def test_opencart4_schema_then_data(real_data_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'oc4.db'}"
    schema_counts = load_mysql_dump(real_data_dir / "opencart-4" / "opencart-4-schema.generated.sql", url)
    assert len(schema_counts) == 159
    counts = load_mysql_dump(real_data_dir / "opencart-4" / "opencart-en-gb.sql", url)
    assert counts["oc_product"] == 19
    assert counts["oc_product_description"] == 19
