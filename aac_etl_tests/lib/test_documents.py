"""to_payloads: payload shape, null dropping, key order and content hashes that are stable everywhere."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from aac_etl.lib.documents import content_hashes, payload_expression, to_payloads

REPO_ROOT = Path(__file__).resolve().parents[2]


def document_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "external_id": ["42:en", "43:de"],
            "title": ['Trail "Runner" {x}', "Wanderschuh"],
            "description": [None, "Leicht, wasserdicht"],
            "sku": ["SKU-42", None],
            "categories": [["Shoes", "Running"], ["Schuhe"]],
            "category_ids": [["1", "7"], ["1"]],
            "tags": [["trail", None], []],
            "price": [99.99, float("nan")],
            "sale_price": [None, None],
            "currency": ["USD", "EUR"],
            "stock_quantity": [5, None],
            "locale": ["en", "de"],
            "attributes.color": ["red", None],
            "attributes.size": [None, None],
            "attributes.weight_kg": [1.25, None],
            "attributes.waterproof": [True, None],
            "attributes.images": [[{"url": "https://x.test/a.jpg", "alt": None}], None],
            "attributes.price_by_currency": [{"GBP": 79.99, "EUR": None}, {"GBP": None, "EUR": None}],
            "_record_id": ["42", "43"],
        }
    )


def test_payload_shape_and_null_dropping() -> None:
    out = to_payloads(document_frame())
    assert out.columns == ["external_id", "payload", "content_hash"]
    assert out.schema == pl.Schema({"external_id": pl.Utf8, "payload": pl.Utf8, "content_hash": pl.Utf8})
    first, second = (json.loads(p) for p in out.get_column("payload"))
    assert first == {
        "id": "42:en",
        "external_id": "42:en",
        "title": 'Trail "Runner" {x}',
        "sku": "SKU-42",
        "categories": ["Shoes", "Running"],
        "category_ids": ["1", "7"],
        "tags": ["trail"],
        "price": 99.99,
        "currency": "USD",
        "stock_quantity": 5,
        "locale": "en",
        "attributes": {
            "color": "red",
            "weight_kg": 1.25,
            "waterproof": True,
            "images": [{"url": "https://x.test/a.jpg"}],
            "price_by_currency": {"GBP": 79.99},
        },
    }
    # NaN price, null attributes and an all-null nested object vanish; an empty list stays a list.
    assert second == {
        "id": "43:de",
        "external_id": "43:de",
        "title": "Wanderschuh",
        "description": "Leicht, wasserdicht",
        "categories": ["Schuhe"],
        "category_ids": ["1"],
        "tags": [],
        "currency": "EUR",
        "locale": "de",
    }
    assert "_record_id" not in out.get_column("payload")[0]
    assert "null" not in "".join(out.get_column("payload").to_list())


def test_id_first_and_keys_sorted() -> None:
    payload = to_payloads(document_frame()).get_column("payload")[0]
    keys = list(json.loads(payload))
    assert keys[0] == "id"
    assert keys[1:] == sorted(keys[1:])
    assert list(json.loads(payload)["attributes"]) == sorted(json.loads(payload)["attributes"])


def test_strings_that_look_like_json_nulls_survive() -> None:
    tricky = ',"a":null}', '{"b":null,', "\\", ":null", '["x{",":null"]'
    frame = pl.DataFrame(
        {
            "external_id": [f"{i}:en" for i in range(len(tricky))],
            "title": list(tricky),
            "tags": [[value, ":null"] for value in tricky],
        }
    )
    decoded = [json.loads(p) for p in to_payloads(frame).get_column("payload")]
    assert [d["title"] for d in decoded] == list(tricky)
    assert [d["tags"] for d in decoded] == [[value, ":null"] for value in tricky]


def test_hash_independent_of_column_order_and_absent_columns() -> None:
    frame = document_frame()
    reference = to_payloads(frame)
    shuffled = frame.select(list(reversed(frame.columns))).drop("attributes.size", "sale_price")
    # A nested object with its fields in another order encodes identically.
    swapped = shuffled.with_columns(
        pl.struct(
            pl.col("attributes.price_by_currency").struct.field("EUR"),
            pl.col("attributes.price_by_currency").struct.field("GBP"),
        ).alias("attributes.price_by_currency")
    )
    assert to_payloads(swapped).equals(reference)


def test_hash_is_md5_of_payload_and_changes_with_content() -> None:
    out = to_payloads(document_frame())
    for payload, digest in out.select("payload", "content_hash").iter_rows():
        assert digest == hashlib.md5(payload.encode(), usedforsecurity=False).hexdigest()
    changed = to_payloads(document_frame().with_columns(pl.col("price") + 1))
    assert changed.get_column("content_hash")[0] != out.get_column("content_hash")[0]
    assert changed.get_column("content_hash")[1] == out.get_column("content_hash")[1]


def test_hash_stable_across_processes() -> None:
    expected = to_payloads(document_frame()).get_column("content_hash").to_list()
    script = (
        "import json\n"
        "from aac_etl_tests.lib.test_documents import document_frame\n"
        "from aac_etl.lib.documents import to_payloads\n"
        "print(json.dumps(to_payloads(document_frame()).get_column('content_hash').to_list()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(result.stdout) == expected


def test_empty_frame_and_missing_external_id() -> None:
    empty = to_payloads(document_frame().head(0))
    assert empty.height == 0
    assert empty.columns == ["external_id", "payload", "content_hash"]
    assert content_hashes(pl.Series([], dtype=pl.Utf8)).len() == 0
    with pytest.raises(ValueError, match="external_id"):
        to_payloads(pl.DataFrame({"title": ["x"]}))
    with pytest.raises(ValueError, match="without external_id"):
        to_payloads(pl.DataFrame({"external_id": [None, "1:en"], "title": ["x", "y"]}))


def test_vectorized_at_scale() -> None:
    n = 50_000
    frame = pl.DataFrame(
        {
            "external_id": [f"{i}:en" for i in range(n)],
            "title": [f"Product {i}" for i in range(n)],
            "price": [float(i) for i in range(n)],
            "attributes.color": ["red", None] * (n // 2),
        }
    )
    out = to_payloads(frame)
    assert out.height == n
    assert out.get_column("content_hash").n_unique() == n
    assert json.loads(out.get_column("payload")[1]) == {
        "id": "1:en",
        "external_id": "1:en",
        "price": 1.0,
        "title": "Product 1",
    }


def test_payloads_equal_the_reference_expression() -> None:
    frame = pl.DataFrame(
        {
            "external_id": ["a", "b", "c", "d", "e"],
            "id": ["ignored"] * 5,
            "title": ["x", None, "", "y", 'q"uote'],
            "score": [1.5, float("nan"), None, 0.0, -2.0],
            "flat": [{"x": 1.0, "y": None}, None, {"x": None, "y": None}, {"x": float("nan"), "y": "null"}, None],
            "attributes.p": [{"B": 1.5, "A": None}, None, {"B": None, "A": None}, {"B": None, "A": 3.0}, None],
            "attributes.nested": [{"a": {"b": None}}, {"a": {"b": 1}}, None, {"a": None}, {"a": {"b": 2}}],
            "attributes.images": [[{"u": "x", "a": None}], [None], [], None, [{"u": None, "a": None}]],
            "attributes.empty": [None] * 5,
            "attributes": [{"ignored": 1}] * 5,
            "_helper": [1] * 5,
        }
    )
    frames = [
        frame,
        document_frame(),
        pl.DataFrame({"external_id": ["only"]}),
        pl.DataFrame({"external_id": ["a", "b"], "attributes.x": [None, 1]}),
    ]
    for case in frames:
        expected = case.select(payload_expression(case.schema)).get_column("payload")
        assert to_payloads(case).get_column("payload").to_list() == expected.to_list()


def test_members_that_can_only_be_empty_objects_are_dropped() -> None:
    frame = pl.DataFrame({"external_id": ["a", "b"], "attributes.x": [{"k": 1}, None]}).with_columns(
        pl.lit(None, pl.Struct([])).alias("attributes.empty"),
        pl.lit(None, pl.Struct({"inner": pl.Struct([])})).alias("nested"),
        pl.lit([{}], pl.List(pl.Struct([]))).alias("attributes.listed"),
    )
    payloads = to_payloads(frame)["payload"].to_list()
    assert [json.loads(p) for p in payloads] == [
        {"id": "a", "attributes": {"x": {"k": 1}}, "external_id": "a"},
        {"id": "b", "external_id": "b"},
    ]
    assert frame.select(payload_expression(frame.schema))["payload"].to_list() == payloads
