"""The derived forms (pydantic model, GX suite, Typesense schema, markdown table) agree with the contract
file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from pydantic import ValidationError

from aac_etl.lib.contract import (
    TABLE_END,
    TABLE_START,
    Contract,
    ContractError,
    attribute_value_type,
    code_list_values,
    expectation_suite,
    field_table_markdown,
    load_contract,
    pydantic_model,
    render_readme_table,
    run_expectation_suite,
    schema_hash,
    typesense_schema,
    validate_sample_with_model,
)
from aac_etl.settings import contract_path


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


@pytest.fixture(scope="module")
def suite_kwargs(contract: Contract) -> list[tuple[str, dict[str, Any]]]:
    suite = expectation_suite(contract)
    return [(e.expectation_type, dict(e.configuration.kwargs)) for e in suite.expectations]


def _raw() -> dict[str, Any]:
    return yaml.safe_load(contract_path().read_text(encoding="utf-8"))


def _props(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["schema"][0]["properties"]


def _custom(prop: dict[str, Any], name: str) -> Any:
    return next((c["value"] for c in prop.get("customProperties", []) if c["property"] == name), None)


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


def _good() -> dict[str, Any]:
    return {
        "external_id": "1:en",
        "title": "Trail runner",
        "price": 99.99,
        "sale_price": 79.99,
        "currency": "USD",
        "categories": ["Shoes", "Running"],
        "category_ids": ["1", "2"],
        "attributes": {
            "option_color": "red",
            "price_by_currency": {"EUR": 92.5},
            "images": [{"url": "https://cdn.example.com/a.jpg", "alt": "Front"}],
        },
        "locale": "en",
        "created_at": "2011-09-30T01:05:39Z",
    }


def test_loader_reads_every_property(contract: Contract) -> None:
    raw = _raw()
    assert contract.version == raw["version"]
    assert contract.field_names == tuple(p["name"] for p in _props(raw))
    assert re.fullmatch(r"[0-9a-f]{16}", contract.fingerprint)
    assert load_contract().fingerprint == contract.fingerprint
    assert contract.max_invalid_share == 0.05
    assert {q.rule for q in contract.quality} == {r["rule"] for r in raw["schema"][0]["quality"]}


def test_model_required_and_optional_match_file(contract: Contract) -> None:
    model = pydantic_model(contract)
    for prop in _props(_raw()):
        assert model.model_fields[prop["name"]].is_required() == bool(prop.get("required", False)), prop["name"]


def test_model_and_suite_carry_every_pattern_and_length(
    contract: Contract, suite_kwargs: list[tuple[str, dict[str, Any]]]
) -> None:
    json_schema = pydantic_model(contract).model_json_schema()
    props = json_schema["properties"]
    regexes = {(kw["column"], kw["regex"]) for t, kw in suite_kwargs if t == "expect_column_values_to_match_regex"}
    lengths = {
        kw["column"]: (kw.get("min_value"), kw.get("max_value"))
        for t, kw in suite_kwargs
        if t == "expect_column_value_lengths_to_be_between"
    }
    for prop in _props(_raw()):
        opts = prop.get("logicalTypeOptions", {})
        if "pattern" in opts:
            assert (prop["name"], opts["pattern"]) in regexes
            assert opts["pattern"] in _patterns(props[prop["name"]])
        if "minLength" in opts or "maxLength" in opts:
            assert lengths[prop["name"]] == (opts.get("minLength"), opts.get("maxLength"))
        if opts.get("format") == "iso8601":
            assert any(col == prop["name"] for col, _ in regexes)


def test_required_fields_have_not_null_and_unique_expectations(
    contract: Contract, suite_kwargs: list[tuple[str, dict[str, Any]]]
) -> None:
    not_null = {kw["column"] for t, kw in suite_kwargs if t == "expect_column_values_to_not_be_null"}
    unique = {kw["column"] for t, kw in suite_kwargs if t == "expect_column_values_to_be_unique"}
    raw = _props(_raw())
    assert not_null == {p["name"] for p in raw if p.get("required")}
    assert unique == {p["name"] for p in raw if p.get("unique")} == {"external_id"}


def test_enums_and_ranges_in_model_and_suite(
    contract: Contract, suite_kwargs: list[tuple[str, dict[str, Any]]]
) -> None:
    sets = {
        (kw["column"], tuple(kw["value_set"])) for t, kw in suite_kwargs if t == "expect_column_values_to_be_in_set"
    }
    ranges = {
        kw["column"]: (kw.get("min_value"), kw.get("max_value"))
        for t, kw in suite_kwargs
        if t == "expect_column_values_to_be_between"
    }
    model_props = pydantic_model(contract).model_json_schema()["properties"]
    for prop in _props(_raw()):
        values = _custom(prop, "validValues")
        if values:
            assert (prop["name"], tuple(values)) in sets
            assert set(values) <= set(str(model_props[prop["name"]]).replace("'", " ").split())
        opts = prop.get("logicalTypeOptions", {})
        if "minimum" in opts or "maximum" in opts:
            assert ranges[prop["name"]] == (opts.get("minimum"), opts.get("maximum"))
    currencies = next(v for c, v in sets if c == "currency")
    assert set(currencies) == code_list_values("iso4217")
    assert {"USD", "EUR", "RUB"} <= set(currencies)


def test_quality_rules_become_pair_expectations(suite_kwargs: list[tuple[str, dict[str, Any]]]) -> None:
    types = [t for t, _ in suite_kwargs]
    assert "expect_column_pair_values_a_to_be_greater_than_b" in types
    assert "expect_column_pair_values_to_be_equal" in types


def test_model_accepts_good_and_rejects_bad(contract: Contract) -> None:
    model = pydantic_model(contract)
    model.model_validate(_good())
    for bad in (
        {"currency": "usd"},
        {"currency": "XXY"},
        {"price": "12.5"},
        {"price": -1.0},
        {"sale_price": 120.0},
        {"locale": "pt"},
        {"image_url": "/a.jpg"},
        {"title": ""},
        {"title": "a" * 1001},
        {"unknown": 1},
        {"attributes": {"Color": "red"}},
        {"attributes": {"title": "x"}},
        {"attributes": {"sizes": [1, 2]}},
        {"attributes": {"dims": {"w": 1}}},
        {"attributes": {"price_by_currency": {"usd": 1.0}}},
        {"category_ids": ["1"]},
        {"created_at": "2011-02-30"},
        {"stock_quantity": 2.5},
    ):
        with pytest.raises(ValidationError):
            model.model_validate({**_good(), **bad})


def test_typesense_schema_matches_hints(contract: Contract) -> None:
    schema = typesense_schema(contract, "products_v1")
    assert schema["name"] == "products_v1"
    fields = {f["name"]: f for f in schema["fields"]}
    assert "id" not in fields
    for prop in _props(_raw()):
        hint = _custom(prop, "typesense")
        entry = fields[prop["name"]]
        assert entry["type"] == hint["type"]
        assert entry.get("facet", False) == hint.get("facet", False)
        assert entry.get("index", True) == hint.get("index", True)
        assert entry.get("sort") == hint.get("sort")
        optional = hint.get("optional", not prop.get("required", False))
        assert entry.get("optional", False) == optional
    assert schema["enable_nested_fields"] is True
    assert fields["attributes"] == {"name": "attributes", "type": "object", "facet": True, "optional": True}
    assert "default_sorting_field" not in schema  # price is optional; Typesense refuses an optional one


def test_schema_hash_ignores_name_and_tracks_fields(contract: Contract) -> None:
    a = typesense_schema(contract, "a")
    b = typesense_schema(contract, "b")
    assert schema_hash(a) == schema_hash(b)
    changed = {**a, "fields": a["fields"][:-1]}
    assert schema_hash(changed) != schema_hash(a)


def test_markdown_table_lists_every_field(contract: Contract) -> None:
    table = field_table_markdown(contract)
    for prop in _props(_raw()):
        row = next(line for line in table.splitlines() if line.startswith(f"| `{prop['name']}` |"))
        assert ("| yes |" in row) == bool(prop.get("required"))
        pattern = prop.get("logicalTypeOptions", {}).get("pattern")
        if pattern:
            assert pattern.replace("|", "\\|") in row
    assert contract.fingerprint in table
    for rule in contract.quality:
        assert f"`{rule.rule}`" in table


def test_render_readme_table(tmp_path: Path, contract: Contract) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{TABLE_START}\nold\n{TABLE_END}\n\nTail\n", encoding="utf-8")
    assert render_readme_table(readme, contract) is True
    text = readme.read_text(encoding="utf-8")
    assert "old" not in text
    assert text.startswith("# Title")
    assert text.endswith("Tail\n")
    assert field_table_markdown(contract) in text
    assert render_readme_table(readme, contract) is False
    (tmp_path / "no_markers.md").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ContractError):
        render_readme_table(tmp_path / "no_markers.md", contract)


def test_changing_the_file_changes_every_derived_form(tmp_path: Path, contract: Contract) -> None:
    doc = _raw()
    title = next(p for p in _props(doc) if p["name"] == "title")
    title["logicalTypeOptions"]["maxLength"] = 50
    brand = next(p for p in _props(doc) if p["name"] == "brand")
    brand["required"] = True
    for entry in brand["customProperties"]:
        if entry["property"] == "typesense":
            entry["value"] = {"type": "string", "facet": False}
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    changed = load_contract(path)
    assert changed.fingerprint != contract.fingerprint
    model = pydantic_model(changed)
    assert model.model_fields["brand"].is_required()
    with pytest.raises(ValidationError):
        model.model_validate({**_good(), "brand": "Acme", "title": "t" * 51})
    model.model_validate({**_good(), "brand": "Acme", "title": "t" * 50})
    fields = {f["name"]: f for f in typesense_schema(changed, "x")["fields"]}
    assert fields["brand"] == {"name": "brand", "type": "string"}
    assert schema_hash(typesense_schema(changed, "x")) != schema_hash(typesense_schema(contract, "x"))
    assert "| `brand` | string | yes |" in field_table_markdown(changed)
    assert "length 1..50" in field_table_markdown(changed)
    kwargs = [dict(e.configuration.kwargs) for e in expectation_suite(changed).expectations]
    assert {"column": "brand"} in [{k: v for k, v in kw.items() if k == "column"} for kw in kwargs]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(kind="Other"), "ODCS v3"),
        (lambda d: _props(d)[0].update(logicalType="blob"), "logicalType"),
        (lambda d: d["schema"][0]["quality"][0]["implementation"].update(check="magic"), "unknown check"),
        (
            lambda d: d["schema"][0]["quality"][0]["implementation"].update(property="nope"),
            "unknown property",
        ),
        (lambda d: _props(d)[0]["logicalTypeOptions"].update(pattern="(["), "invalid pattern"),
        (
            lambda d: _props(d)[0]["customProperties"][0].update(value={"type": "string", "index": False}),
            "optional: true",
        ),
    ],
)
def test_malformed_contracts_are_refused(tmp_path: Path, mutate: Any, message: str) -> None:
    doc = _raw()
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ContractError, match=re.escape(message)):
        load_contract(path)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("a", "string"),
        (1, "int64"),
        (1.5, "float"),
        (True, "bool"),
        (["a"], "string[]"),
        ([], "string[]"),
        ([1, 2.5], "number[]"),
        ({"a": 1}, "object"),
        ([{"a": 1}], "object[]"),
        (["a", 1], "other"),
        (None, "null"),
    ],
)
def test_attribute_value_type(value: object, kind: str) -> None:
    assert attribute_value_type(value) == kind


def test_run_expectation_suite_good_and_bad(contract: Contract) -> None:
    good = pl.DataFrame(
        [{k: v for k, v in _good().items() if k != "attributes"} | {"external_id": f"{i}:en"} for i in range(5)]
    )
    result = run_expectation_suite(good, contract)
    assert result.success, [r for r in result.results if not r["success"]]
    assert result.evaluated_rows == 5
    bad = good.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("usd")).otherwise(pl.col("currency")).alias("currency"),
        pl.lit("1:en").alias("external_id"),
    ).drop("title")
    result = run_expectation_suite(bad, contract, max_rows=3)
    assert not result.success
    assert result.evaluated_rows == 3
    failed = {(r["expectation"], r["column"]) for r in result.results if not r["success"]}
    assert ("expect_column_values_to_not_be_null", "title") in failed
    assert ("expect_column_values_to_be_unique", "external_id") in failed
    assert all(r["exception"] is None for r in result.results)


def test_validate_sample_with_model(contract: Contract) -> None:
    good = {k: v for k, v in _good().items() if k != "attributes"}
    frame = pl.DataFrame([good | {"external_id": f"{i}:en"} for i in range(10)]).with_columns(
        pl.Series("attributes.option_color", ["red"] * 10), pl.Series("_record_id", ["x"] * 10)
    )
    errors, checked = validate_sample_with_model(frame, contract, sample_size=5)
    assert errors == []
    assert checked == 5
    bad = frame.with_columns(pl.lit("usd").alias("currency"))
    errors, checked = validate_sample_with_model(bad, contract, sample_size=3)
    assert checked == 3
    assert len(errors) == 3
    assert errors[0].startswith("record 0:en: currency")
    assert validate_sample_with_model(frame.head(0), contract) == ([], 0)


def test_document_dtypes_follow_the_contract_fields() -> None:
    import polars as pl

    from aac_etl.lib.contract import document_dtypes, load_contract

    contract = load_contract()
    dtypes = document_dtypes(contract)
    assert list(dtypes) == [f.name for f in contract.fields if f.logical_type != "object"]
    assert dtypes["price"] == pl.Float64
    assert dtypes["stock_quantity"] == pl.Int64
    assert dtypes["categories"] == pl.List(pl.Utf8)
    assert dtypes["created_at"] == pl.Utf8
