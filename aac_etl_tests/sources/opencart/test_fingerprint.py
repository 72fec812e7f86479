"""Tests of the OpenCart per-product raw fingerprints and chunk subsets (real demo dump and a generated shop)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from aac_etl.demo.generator import generate_shop
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources.base import ExtractRequest, RawChunk
from aac_etl.sources.opencart import OpenCartSource
from aac_etl.sources.opencart.fingerprint import FINGERPRINT_SALT
from aac_etl.sources.opencart.normalize import normalize_chunk
from aac_etl_tests.sources.opencart.helpers import demo_config

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _config(**overrides: object) -> SourceConfig:
    return demo_config(**overrides)


def _raw(url: str, config: SourceConfig | None = None) -> RawChunk:
    chunks = list(OpenCartSource().extract(config or _config(), url, ExtractRequest()))
    assert len(chunks) == 1
    return chunks[0]


def _fingerprints(url: str) -> dict[str, int]:
    frame = OpenCartSource().fingerprints(_raw(url), _config())
    return dict(zip(frame["record_id"].to_list(), frame["fingerprint"].to_list(), strict=True))


def _changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    assert before.keys() == after.keys()
    return {key for key, value in before.items() if after[key] != value}


def _execute(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text(sql)).rowcount >= 1
    finally:
        engine.dispose()


def test_schema_and_record_ids_match_the_normalizer(opencart3_sqlite_url: str) -> None:
    raw = _raw(opencart3_sqlite_url)
    frame = OpenCartSource().fingerprints(raw, _config())
    assert frame.schema == pl.Schema({"record_id": pl.Utf8, "fingerprint": pl.UInt64})
    assert frame.height == raw["product"].height
    assert frame["fingerprint"].n_unique() == frame.height
    documents = normalize_chunk(raw, _config(), now=NOW)
    assert set(documents["_record_id"].to_list()) <= set(frame["record_id"].to_list())
    assert "polars=" in FINGERPRINT_SALT


def test_deterministic_across_two_extracts(opencart3_sqlite_url: str) -> None:
    assert _fingerprints(opencart3_sqlite_url) == _fingerprints(opencart3_sqlite_url)


@pytest.mark.parametrize(
    ("sql", "product"),
    [
        ("UPDATE oc_product_description SET description = 'changed' WHERE product_id = 42", "42"),
        ("UPDATE oc_product SET price = 123.45 WHERE product_id = 30", "30"),
        ("UPDATE oc_product_special SET price = 80 WHERE product_id = 42", "42"),
        ("DELETE FROM oc_product_to_category WHERE product_id = 28 AND category_id = 20", "28"),
        ("INSERT INTO oc_product_to_category (product_id, category_id) VALUES (29, 25)", "29"),
        ("UPDATE oc_product_image SET sort_order = sort_order + 1 WHERE product_id = 47", "47"),
    ],
)
def test_one_product_change_changes_only_its_fingerprint(
    opencart3_sqlite_copy_url: str, sql: str, product: str
) -> None:
    before = _fingerprints(opencart3_sqlite_copy_url)
    _execute(opencart3_sqlite_copy_url, sql)
    assert _changed(before, _fingerprints(opencart3_sqlite_copy_url)) == {product}


def test_category_rename_changes_every_fingerprint(opencart3_sqlite_copy_url: str) -> None:
    before = _fingerprints(opencart3_sqlite_copy_url)
    _execute(opencart3_sqlite_copy_url, "UPDATE oc_category_description SET name = 'Renamed' WHERE category_id = 20")
    assert _changed(before, _fingerprints(opencart3_sqlite_copy_url)) == set(before)


def test_config_change_changes_every_fingerprint(opencart3_sqlite_url: str) -> None:
    raw = _raw(opencart3_sqlite_url)
    source = OpenCartSource()
    a = source.fingerprints(raw, _config())
    b = source.fingerprints(raw, _config(storefront_url="https://other.example.com"))
    assert (a["fingerprint"] != b["fingerprint"]).all()


def test_row_order_does_not_matter_but_duplicates_count(opencart3_sqlite_url: str) -> None:
    raw = _raw(opencart3_sqlite_url)
    source = OpenCartSource()
    expected = source.fingerprints(raw, _config()).sort("record_id")
    shuffled = {name: frame.sample(fraction=1.0, shuffle=True, seed=3) for name, frame in raw.items()}
    assert_frame_equal(source.fingerprints(shuffled, _config()).sort("record_id"), expected)
    images = raw["product_image"]
    doubled = {**raw, "product_image": pl.concat([images, images.filter(pl.col("product_id") == 47)])}
    changed = source.fingerprints(doubled, _config()).sort("record_id")
    differs = changed.filter(pl.col("fingerprint") != expected["fingerprint"])["record_id"].to_list()
    assert differs == ["47"]


def _assert_subset_normalizes_like_the_filter(raw: RawChunk, config: SourceConfig, ids: list[str]) -> None:
    source = OpenCartSource()
    selected = pl.Series("record_id", ids, dtype=pl.Utf8)
    part = source.subset(raw, selected)
    for name, frame in raw.items():
        if "product_id" in frame.columns:
            assert set(part[name]["product_id"].cast(pl.Utf8).to_list()) <= set(ids), name
        else:
            assert part[name] is frame, name
    full = normalize_chunk(raw, config, now=NOW).filter(pl.col("_record_id").is_in(ids))
    sub = normalize_chunk(part, config, now=NOW)
    assert sub.height == full.height > 0
    missing = [c for c in full.columns if c not in sub.columns]
    assert all(full[c].null_count() == full.height for c in missing), missing
    assert_frame_equal(sub, full.select(sub.columns))


def test_subset_normalizes_like_the_filter_on_the_real_dump(opencart3_sqlite_url: str) -> None:
    raw = _raw(opencart3_sqlite_url)
    _assert_subset_normalizes_like_the_filter(raw, _config(), ["28", "30", "42", "47"])
    assert OpenCartSource().subset(raw, pl.Series([], dtype=pl.Utf8))["product"].is_empty()


def test_subset_normalizes_like_the_filter_on_a_generated_shop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    generate_shop(url, products=300, languages=("en-gb", "de-de"))
    config = _config(languages={"en-gb": "en", "de-de": "de"})
    raw = _raw(url, config)
    ids = [str(i) for i in range(1, 301, 7)]
    _assert_subset_normalizes_like_the_filter(raw, config, ids)
    fingerprints = OpenCartSource().fingerprints(raw, config)
    assert fingerprints.height == 300
    assert fingerprints["fingerprint"].n_unique() == 300
