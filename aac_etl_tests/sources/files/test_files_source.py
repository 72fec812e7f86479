from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aac_etl.lib.sources_config import SourceConfig
from aac_etl.sources import get_source
from aac_etl.sources.base import ExtractRequest
from aac_etl.sources.files import FilesSource

DOCS: list[dict[str, Any]] = [
    {
        "external_id": "p1:en",
        "title": "Trail Shoe",
        "description": "Light trail shoe",
        "sku": "TS-1",
        "brand": "Acme",
        "categories": ["Shoes", "Running"],
        "category_ids": ["1", "2"],
        "tags": ["trail"],
        "price": 99.99,
        "sale_price": 79.5,
        "currency": "USD",
        "image_url": "https://cdn.example.com/p1.jpg",
        "product_url": "https://shop.example.com/p1",
        "availability": "in_stock",
        "stock_quantity": 3,
        "locale": "en",
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-03-01T00:00:00Z",
        "attributes": {
            "size": 42,
            "weight": 1.5,
            "waterproof": True,
            "option_color": ["blue", "red"],
            "price_by_currency": {"EUR": 92.5, "GBP": 79.99},
        },
    },
    {
        "external_id": "p2:en",
        "title": "Road Shoe",
        "price": 120,
        "updated_at": "2024-05-01T00:00:00Z",
        "attributes": {"size": 43, "weight": 2, "option_color": []},
    },
    {"external_id": "p3:en", "title": "Sock", "price": 5.0},
]


def _config(path: Path | str) -> SourceConfig:
    return SourceConfig(
        name="custom",
        platform="files",
        path=str(path),
        organization="acme",
        index_slug="products",
        storefront_url="https://shop.example.com",
    )


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _read(path: Path | str, request: ExtractRequest | None = None) -> pl.DataFrame:
    source = FilesSource()
    config = _config(path)
    frames = [source.normalize(chunk, config) for chunk in source.extract(config, None, request or ExtractRequest())]
    return pl.concat(frames, how="diagonal_relaxed")


def _issues(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.select(pl.col("_issues").explode()).drop_nulls()["_issues"].to_list()


def test_registry_returns_files_source() -> None:
    source = get_source("files")
    assert source.platform == "files"
    assert source.main_table == "documents"


def test_jsonl_round_trip(tmp_path: Path) -> None:
    frame = _read(_write_jsonl(tmp_path / "catalog.jsonl", DOCS))

    assert _issues(frame) == []
    assert frame["external_id"].to_list() == ["p1:en", "p2:en", "p3:en"]
    assert frame["_record_id"].to_list() == ["catalog.jsonl:1", "catalog.jsonl:2", "catalog.jsonl:3"]
    assert frame.schema["price"] == pl.Float64
    assert frame["price"].to_list() == [99.99, 120.0, 5.0]
    assert frame["stock_quantity"].to_list() == [3, None, None]
    assert frame["categories"].to_list() == [["Shoes", "Running"], None, None]
    assert frame.schema["attributes.size"] == pl.Int64
    assert frame.schema["attributes.weight"] == pl.Float64
    assert frame.schema["attributes.waterproof"] == pl.Boolean
    assert frame.schema["attributes.option_color"] == pl.List(pl.String)
    assert isinstance(frame.schema["attributes.price_by_currency"], pl.Struct)
    assert frame["attributes.weight"].to_list() == [1.5, 2.0, None]
    assert frame["attributes.option_color"].to_list() == [["blue", "red"], [], None]
    assert frame["attributes.price_by_currency"][0] == {"EUR": 92.5, "GBP": 79.99}
    assert frame.columns[-2:] == ["_record_id", "_issues"]


def test_mixed_attribute_type_reports_only_the_second_record(tmp_path: Path) -> None:
    records = [
        {"external_id": "a", "title": "A", "attributes": {"size": 42}},
        {"external_id": "b", "title": "B", "attributes": {"size": "42"}},
    ]
    frame = _read(_write_jsonl(tmp_path / "mixed.jsonl", records))

    assert frame["attributes.size"].to_list() == [42, None]
    assert frame["_issues"].list.len().to_list() == [0, 1]
    issue = frame["_issues"][1][0]
    assert issue["field"] == "attributes.size"
    assert issue["rule"] == "attribute_type"
    assert issue["value"] == '"42"'
    assert "document 'b'" in issue["message"]
    assert "is integer" in issue["message"]
    assert "got string '42'" in issue["message"]


def test_number_arrays_and_integers_in_float_columns_stay_visible(tmp_path: Path) -> None:
    records = [
        {"external_id": "a", "title": "A", "attributes": {"w": 1.5, "dims": [1, 2.5]}},
        {"external_id": "b", "title": "B", "attributes": {"w": 2, "dims": [3]}},
    ]
    frame = _read(_write_jsonl(tmp_path / "nums.jsonl", records))

    assert _issues(frame) == []
    assert frame["attributes.w"].to_list() == [1.5, 2.0]
    assert frame.schema["attributes.dims"] == pl.List(pl.Float64)
    assert frame["attributes.dims"].to_list() == [[1.0, 2.5], [3.0]]


def test_wrong_typed_top_level_fields_are_reported_not_coerced(tmp_path: Path) -> None:
    records = [
        {
            "external_id": "x1",
            "title": 5,
            "price": "2",
            "categories": "a",
            "stock_quantity": 1.5,
            "tags": ["ok", 3],
        },
    ]
    frame = _read(_write_jsonl(tmp_path / "data.jsonl", records))

    assert frame.row(0, named=True)["price"] is None
    assert frame["title"][0] is None
    assert frame["categories"][0] is None
    assert frame["stock_quantity"][0] is None
    assert frame["tags"][0] is None
    messages = {i["field"]: i["message"] for i in frame["_issues"][0]}
    assert messages["price"] == "record data.jsonl:1 field price rule type: expected number, got string '2'"
    assert messages["title"] == "record data.jsonl:1 field title rule type: expected string, got integer 5"
    assert messages["categories"].endswith("expected array of strings, got string 'a'")
    assert messages["stock_quantity"].endswith("expected integer, got number 1.5")
    assert messages["tags"].endswith('expected array of strings, got array of mixed types ["ok",3]')
    assert {i["rule"] for i in frame["_issues"][0]} == {"type"}


def test_invalid_json_lines_become_records_with_issues(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"external_id": "ok", "title": "Fine"}\n{"external_id": "half", "title": \n\ngarbage\n[1, 2]\n',
        encoding="utf-8",
    )
    frame = _read(path)

    assert frame["external_id"].to_list() == ["ok", "half", "line:4", "line:5"]
    assert frame["_record_id"].to_list() == [
        "broken.jsonl:1",
        "broken.jsonl:2",
        "broken.jsonl:4",
        "broken.jsonl:5",
    ]
    rules = [[i["rule"] for i in issues] for issues in frame["_issues"].to_list()]
    assert rules == [[], ["json"], ["json"], ["json"]]
    assert frame["_issues"][3][0]["message"].endswith("expected a JSON object, got array")


def test_invalid_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"external_id": "u1", "title": "Caf\xe9"}\n{"external_id": "u2", "title": "Caf\xc3\xa9"}\n')
    frame = _read(path)

    assert frame["external_id"].to_list() == ["u1", "u2"]
    assert frame["title"][1] == "Café"
    first = frame["_issues"][0]
    assert [i["rule"] for i in first] == ["utf8"]
    assert "0xe9" in first[0]["message"]
    assert frame["_issues"][1].to_list() == []


def test_genuine_replacement_character_is_not_an_issue(tmp_path: Path) -> None:
    frame = _read(_write_jsonl(tmp_path / "fffd.jsonl", [{"external_id": "r", "title": "a \ufffd b"}]))
    assert _issues(frame) == []


def test_unknown_fields_and_empty_strings(tmp_path: Path) -> None:
    records = [{"external_id": "e", "title": "T", "brand": "", "image_url": "", "colour": "red"}]
    frame = _read(_write_jsonl(tmp_path / "extra.jsonl", records))

    assert frame["brand"][0] is None
    assert frame["image_url"][0] is None
    issues = frame["_issues"][0]
    assert [(i["field"], i["rule"], i["value"]) for i in issues] == [("colour", "unknown_field", '"red"')]


def test_chunking_yields_the_same_documents(tmp_path: Path) -> None:
    records = [{"external_id": f"c{i}", "title": f"T{i}", "attributes": {"size": i}} for i in range(5)]
    records.append({"external_id": "c5", "title": "T5", "attributes": {"size": "big"}})
    path = _write_jsonl(tmp_path / "many.jsonl", records)
    source = FilesSource()
    chunks = list(source.extract(_config(path), None, ExtractRequest(chunk_rows=2)))

    assert [c["documents"].height for c in chunks] == [2, 2, 2]
    chunked = pl.concat([source.normalize(c, _config(path)) for c in chunks])
    whole = _read(path)
    assert chunked.equals(whole)
    assert chunked.schema["attributes.size"] == pl.Int64
    assert [i["rule"] for i in _issues(chunked)] == ["attribute_type"]


def test_attribute_type_survives_chunk_boundaries(tmp_path: Path) -> None:
    records = [
        {"external_id": "a", "title": "A", "attributes": {"size": 42}},
        {"external_id": "b", "title": "B"},
        {"external_id": "c", "title": "C", "attributes": {"size": "42"}},
    ]
    frame = _read(_write_jsonl(tmp_path / "split.jsonl", records), ExtractRequest(chunk_rows=2))
    assert frame["attributes.size"].to_list() == [42, None, None]
    assert [i["field"] for i in _issues(frame)] == ["attributes.size"]


def test_delta_keeps_changed_and_undated_records(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "delta.jsonl", DOCS)
    request = ExtractRequest(mode="delta", since=datetime(2024, 4, 1, tzinfo=UTC))
    frame = _read(path, request)
    assert frame["external_id"].to_list() == ["p2:en", "p3:en"]

    naive = ExtractRequest(mode="delta", since=datetime(2024, 3, 1))
    assert _read(path, naive)["external_id"].to_list() == ["p1:en", "p2:en", "p3:en"]


def test_csv_round_trip_with_attribute_columns(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "external_id,title,brand,categories,category_ids,price,stock_quantity,updated_at,"
        "attributes.size,attributes.weight,attributes.organic,attributes.color\n"
        "c1,Apple,,Fruit|Red,1|2,1.5,10,2024-01-01T00:00:00Z,1,2,true,red\n"
        'c2,"Pear, green",Farm,Fruit,1,2,,2024-06-01T00:00:00Z,2,2.5,False,3\n',
        encoding="utf-8",
    )
    frame = _read(path)

    assert _issues(frame) == []
    assert frame["_record_id"].to_list() == ["catalog.csv:2", "catalog.csv:3"]
    assert frame["title"].to_list() == ["Apple", "Pear, green"]
    assert frame["brand"].to_list() == [None, "Farm"]
    assert frame["categories"].to_list() == [["Fruit", "Red"], ["Fruit"]]
    assert frame["price"].to_list() == [1.5, 2.0]
    assert frame["stock_quantity"].to_list() == [10, None]
    assert frame.schema["attributes.size"] == pl.Int64
    assert frame.schema["attributes.weight"] == pl.Float64
    assert frame["attributes.organic"].to_list() == [True, False]
    assert frame["attributes.color"].to_list() == ["red", "3"]

    delta = _read(path, ExtractRequest(mode="delta", since=datetime(2024, 3, 1, tzinfo=UTC)))
    assert delta["external_id"].to_list() == ["c2"]


def test_csv_bad_number_and_json_attributes_column(tmp_path: Path) -> None:
    path = tmp_path / "packed.csv"
    path.write_text(
        "external_id,title,price,attributes\n"
        'j1,A,abc,"{""size"": 42, ""fit"": ""slim""}"\n'
        'j2,B,3,"{""size"": ""42""}"\n'
        "j3,C,4,not json\n",
        encoding="utf-8",
    )
    frame = _read(path)

    assert frame["price"].to_list() == [None, 3.0, 4.0]
    assert frame["attributes.size"].to_list() == [42, None, None]
    assert frame["attributes.fit"].to_list() == ["slim", None, None]
    found = [(i["field"], i["rule"]) for i in _issues(frame)]
    assert found == [("price", "type"), ("attributes.size", "attribute_type"), ("attributes", "json")]
    assert (
        _issues(frame)[0]["message"] == "record packed.csv:2 field price rule type: expected number, got string 'abc'"
    )


def test_parquet_round_trip_with_struct_attributes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.parquet"
    pl.DataFrame(
        {
            "external_id": ["q1", "q2"],
            "title": ["One", "Two"],
            "price": [1, 2],
            "categories": [["A"], None],
            "updated_at": [datetime(2024, 1, 1, tzinfo=UTC), None],
            "attributes": [{"size": 1, "color": "red"}, {"size": None, "color": "blue"}],
        }
    ).write_parquet(path)
    frame = _read(path)

    assert _issues(frame) == []
    assert frame["_record_id"].to_list() == ["catalog.parquet:1", "catalog.parquet:2"]
    assert frame["price"].to_list() == [1.0, 2.0]
    assert frame["updated_at"].to_list() == ["2024-01-01T00:00:00Z", None]
    assert frame["attributes.size"].to_list() == [1, None]
    assert frame["attributes.color"].to_list() == ["red", "blue"]


def test_parquet_wrong_column_type_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    pl.DataFrame({"external_id": ["t1"], "title": ["T"], "price": ["2"]}).write_parquet(path)
    frame = _read(path)
    assert frame["price"][0] is None
    assert [i["message"] for i in _issues(frame)] == [
        "record typed.parquet:1 field price rule type: expected number, got string 2"
    ]


def test_folder_with_mixed_formats(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    (folder / "sub").mkdir(parents=True)
    _write_jsonl(folder / "a.jsonl", DOCS[:1])
    _write_jsonl(folder / "sub" / "b.ndjson", DOCS[1:2])
    pl.DataFrame({"external_id": ["p3:en"], "title": ["Sock"]}).write_parquet(folder / "c.parquet")
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")

    frame = _read(folder)
    assert frame["_record_id"].to_list() == ["a.jsonl:1", "c.parquet:1", "sub/b.ndjson:1"]
    assert _issues(frame) == []
    assert _read(str(folder / "**" / "*.ndjson"))["_record_id"].to_list() == ["sub/b.ndjson:1"]


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _read(tmp_path / "nothing-*.jsonl")


def test_real_woocommerce_export_mapped_to_jsonl(tmp_path: Path, real_data_dir: Path) -> None:
    export = pl.read_csv(real_data_dir / "woocommerce-sample-data" / "sample_products.csv", infer_schema=False)
    empty_to_null = {c: pl.when(pl.col(c) != "").then(pl.col(c)) for c in export.columns}
    export = export.with_columns(**empty_to_null)
    is_color = pl.col("Attribute 1 name") == "Color"
    mapped = export.select(
        pl.col("ID").alias("external_id"),
        pl.col("Name").alias("title"),
        pl.col("SKU").alias("sku"),
        pl.col("Regular price").cast(pl.Float64).alias("price"),
        pl.col("Sale price").cast(pl.Float64).alias("sale_price"),
        pl.col("Categories").str.split(" > ").alias("categories"),
        pl.col("Tags").str.split(", ").alias("tags"),
        pl.col("Images").str.split(", ").list.first().alias("image_url"),
        pl.when(pl.col("In stock?") == "1")
        .then(pl.lit("in_stock"))
        .otherwise(pl.lit("out_of_stock"))
        .alias("availability"),
        pl.struct(
            pl.col("Type").alias("product_type"),
            pl.when(is_color).then(pl.col("Attribute 1 value(s)").str.split(", ")).alias("option_color"),
        ).alias("attributes"),
    )
    path = tmp_path / "woocommerce.jsonl"
    mapped.write_ndjson(path)

    frame = _read(path)
    assert frame.height == export.height == 25
    assert _issues(frame) == []
    assert frame["external_id"].to_list() == export["ID"].to_list()
    assert frame.filter(pl.col("external_id") == "44")["categories"][0].to_list() == ["Clothing", "Tshirts"]
    assert frame.schema["attributes.option_color"] == pl.List(pl.String)
    assert frame["price"].drop_nulls().min() is not None


def test_type_comes_from_first_non_null_non_empty_value(tmp_path: Path) -> None:
    records = [
        {"external_id": "n1", "title": "A", "attributes": {"fit": None, "labels": []}},
        {"external_id": "n2", "title": "B", "attributes": {"fit": "slim", "labels": ["x"]}},
        {"external_id": "n3", "title": "C", "attributes": {"fit": 3, "labels": []}},
    ]
    frame = _read(_write_jsonl(tmp_path / "late.jsonl", records), ExtractRequest(chunk_rows=1))

    assert frame.schema["attributes.fit"] == pl.String
    assert frame["attributes.fit"].to_list() == [None, "slim", None]
    assert frame["attributes.labels"].to_list() == [[], ["x"], []]
    assert [(i["field"], i["rule"]) for i in _issues(frame)] == [("attributes.fit", "attribute_type")]


def test_csv_invalid_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"external_id,title\nl1,Caf\xe9\nl2,Tea\n")
    frame = _read(path)

    assert frame["external_id"].to_list() == ["l1", "l2"]
    assert [[i["rule"] for i in issues] for issues in frame["_issues"].to_list()] == [["utf8"], []]


def test_title_and_description_get_the_plain_text_rule(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {
                "external_id": "a",
                "title": "<b>Trail&nbsp;Shoe</b> &amp; Socks",
                "description": "<p>Light</p><p>Fast</p>",
            },
            {"external_id": "b", "title": "<p> </p>"},
        ],
    )
    frame = _read(path)
    assert frame.get_column("title").to_list() == ["Trail Shoe & Socks", ""]
    assert frame.get_column("description").to_list()[0] == "Light Fast"
