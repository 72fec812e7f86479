"""validate_frame, infer_attribute_types, diagnostics and circuit_breaker."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import polars as pl
import pytest

from aac_etl import settings
from aac_etl.lib.contract import Contract, load_contract
from aac_etl.lib.validate import (
    QUARANTINE_SCHEMA,
    ValidationOutcome,
    _whitespace_free_pattern,
    check_document,
    circuit_breaker,
    decode_source_bytes,
    diagnostics,
    frame_documents,
    infer_attribute_types,
    merge_outcomes,
    repair_text,
    validate_frame,
    variant_series,
)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


def docs(n: int, **overrides: list[Any]) -> pl.DataFrame:
    data: dict[str, list[Any]] = {
        "external_id": [f"{i}:en" for i in range(n)],
        "title": [f"Product {i}" for i in range(n)],
        "price": [9.99 + i for i in range(n)],
        "currency": ["USD"] * n,
        "locale": ["en"] * n,
        "categories": [["Shoes", "Trail"]] * n,
        "category_ids": [["1", "2"]] * n,
        "_record_id": [str(i) for i in range(n)],
    }
    data.update(overrides)
    return pl.DataFrame(data)


def run(frame: pl.DataFrame, contract: Contract, **kwargs: Any) -> ValidationOutcome:
    return validate_frame(frame, contract, source="shop", sync_id="run-1", **kwargs)


def test_good_frame_is_all_valid(contract: Contract) -> None:
    frame = docs(10)
    out = run(frame, contract)
    assert out.valid.height == 10
    assert out.quarantine.height == 0
    assert dict(out.quarantine.schema) == dict(QUARANTINE_SCHEMA)
    assert out.rule_counts == {}
    assert out.model_disagreements == ()
    # missing optional contract columns are added as typed nulls; helper columns never leak
    assert out.valid.schema["stock_quantity"] == pl.Int64
    assert out.valid.schema["tags"] == pl.List(pl.String)
    assert not [c for c in out.valid.columns if c.startswith("__")]
    assert out.valid["external_id"].to_list() == frame["external_id"].to_list()


def test_empty_frame(contract: Contract) -> None:
    out = run(docs(0), contract)
    assert out.input_rows == 0
    assert out.valid.height == 0
    assert out.invalid_rows == 0
    assert circuit_breaker(out, 0.05) is None


def test_message_format_and_quarantine_columns(contract: Contract) -> None:
    frame = docs(3, currency=["USD", "usd", "USD"], _record_id=["a", "b", "c"])
    out = run(frame, contract)
    row = out.quarantine.row(0, named=True)
    assert row == {
        "source": "shop",
        "sync_id": "run-1",
        "external_id": "1:en",
        "record_id": "b",
        "field": "currency",
        "rule": "iso4217",
        "value": "usd",
        "message": "record 1:en field currency rule iso4217: 'usd' is not an uppercase ISO 4217 code",
    }


def test_one_row_per_failing_rule_and_record_removed(contract: Contract) -> None:
    frame = docs(3, currency=["USD", "usd", "USD"], price=[1.0, -2.0, 3.0])
    out = run(frame, contract)
    assert sorted(out.quarantine["rule"].to_list()) == ["iso4217", "minimum"]
    assert out.invalid_rows == 1
    assert out.valid["external_id"].to_list() == ["0:en", "2:en"]
    assert out.rule_counts == {"iso4217": 1, "minimum": 1}


@pytest.mark.parametrize("char", ["\x01", "\x0b", "\x1f", "\x7f"])
def test_control_characters_are_found_in_any_chunk_of_a_column(contract: Contract, char: str) -> None:
    clean = docs(3, description=["plain text"] * 3)
    dirty = docs(3, description=["fine", f"bad{char}text", "fine"]).with_columns(
        pl.col("external_id") + "b", pl.col("_record_id") + "b"
    )
    frame = pl.concat([clean, dirty], rechunk=False)
    assert frame.n_chunks() == 2
    out = run(frame, contract)
    assert out.quarantine.select("external_id", "field", "rule").rows() == [("1:enb", "description", "control_chars")]


def test_tabs_and_bytes_outside_a_sliced_column_are_not_control_characters(contract: Contract) -> None:
    frame = docs(4, description=["a\x01b", "tab\tand\nnewline", "caf\u00e9 \u00a0", None]).slice(1)
    out = run(frame, contract)
    assert out.quarantine.height == 0
    assert out.valid.height == 3


@pytest.mark.parametrize(
    ("column", "clean", "bad"),
    [
        ("title", "Caf\u00e9 \uff01 \U0001f600", "Caf\ufffd"),
        ("tags", ["\uff01 wide", "\U0001f600"], ["ok", "x\ufffd"]),
        ("categories", ["Shoes", "\uff01"], ["Shoes", "\ufffd"]),
        ("attributes.material", "\uff01 wool", "w\ufffdol"),
    ],
)
def test_replacement_characters_are_found_whatever_other_text_the_column_holds(
    contract: Contract, column: str, clean: object, bad: object
) -> None:
    # U+FF01 and U+1F600 share U+FFFD's lead bytes (0xEF, or a byte above it), ASCII-only columns have none: the
    # check may be skipped for a column only when its bytes rule U+FFFD out.
    plain = "Plain" if isinstance(clean, str) else ["Plain", "Text"]
    for others in (plain, clean):
        frame = docs(3, **{column: [others, bad, clean]})
        out = run(frame, contract)
        assert out.quarantine.select("external_id", "field", "rule").rows() == [("1:en", column, "utf8")]
        assert out.valid.height == 2
    out = run(docs(2, **{column: [plain, clean]}), contract)
    assert out.quarantine.height == 0


_URLS = [
    "https://cdn.example.com/a.jpg",
    "http://a.b",
    "https://shop.example.com",
    "https://localhost/a.jpg",
    "https://x/y.z",
    "https://.com/x",
    "ftp://x.com/a",
    "https://x.com/caf\u00e9.jpg",
    "",
]


@pytest.mark.parametrize("spaced", ["", "https://x.com/a b.jpg", "https://x.com/a\u00a0b", "https://x.com/a\tb"])
def test_url_patterns_give_the_regex_verdict_with_or_without_whitespace_in_the_column(
    contract: Contract, spaced: str
) -> None:
    # Without whitespace in a column the ``[^\s]*$`` tail of the URL patterns is not searched for; one value holding
    # whitespace (ASCII, non-breaking) puts the whole column back on the full pattern.
    urls = _URLS + ([spaced] if spaced else [])
    frame = docs(
        len(urls),
        image_url=urls,
        product_url=urls,
        **{"attributes.images": [[{"url": u, "alt": None}] for u in urls]},
    )
    out = run(frame, contract)
    patterns = {spec.name: spec.effective_pattern for spec in contract.fields}
    images = contract.attributes.map_attribute("images") if contract.attributes else None
    assert images is not None
    item_pattern = next(sub.pattern for sub in images.item_fields if sub.name == "url")
    failing = set(out.quarantine.filter(pl.col("rule") == "pattern").select("external_id", "field").rows())
    expected = set()
    for i, url in enumerate(urls):
        for field, pattern in (
            ("image_url", patterns["image_url"]),
            ("product_url", patterns["product_url"]),
            ("attributes.images", item_pattern),
        ):
            # An empty top-level URL fails ``empty_string`` instead; an empty item URL fails the pattern.
            if (url or field == "attributes.images") and pattern and not re.search(pattern, url):
                expected.add((f"{i}:en", field))
    assert failing == expected
    assert ("3:en", "image_url") in failing  # no dot in the host
    assert ("7:en", "image_url") not in failing  # non-ASCII in the path is fine
    if spaced:
        assert (f"{len(urls) - 1}:en", "image_url") in failing


@pytest.mark.parametrize(
    ("pattern", "head"),
    [
        (r"^https?://[^\s/]+\.[^\s]*$", r"^https?://[^\s/]+\."),
        (r"^a\S*$", r"^a"),
        (r"^a\\[^\s]*$", r"^a\\"),  # an escaped backslash before the tail
        (r"^a\[^\s]*$", r"^a\[^\s]*$"),  # an escaped bracket: no tail
        (r"^a\\\S*$", r"^a\\"),  # an escaped backslash, then the tail
        (r"^a\\S*$", r"^a\\S*$"),  # an escaped backslash then ``S*``: no tail
        (r"^a[^\s]*", r"^a[^\s]*"),  # not anchored at the end
        (r"^[A-Z]{3}$", r"^[A-Z]{3}$"),
    ],
)
def test_whitespace_free_pattern_drops_only_an_unescaped_tail(pattern: str, head: str) -> None:
    assert _whitespace_free_pattern(pattern) == head


def test_all_duplicates_are_quarantined(contract: Contract) -> None:
    frame = docs(5, external_id=["a:en", "b:en", "a:en", "c:en", "a:en"])
    out = run(frame, contract)
    q = out.quarantine
    assert q["rule"].unique().to_list() == ["unique"]
    assert q["record_id"].to_list() == ["0", "2", "4"]
    assert "appears 3 times" in q["message"][0]
    assert out.valid["external_id"].to_list() == ["b:en", "c:en"]


def test_missing_required_column(contract: Contract) -> None:
    out = run(docs(4).drop("title"), contract)
    assert out.valid.height == 0
    assert out.rule_counts == {"required": 4}
    assert "missing from the frame" in out.quarantine["message"][0]


def test_long_values_are_truncated(contract: Contract) -> None:
    big = "x" * (1024 * 1024)
    out = run(docs(2, description=[big, None]), contract)
    row = out.quarantine.row(0, named=True)
    assert row["rule"] == "max_length"
    assert len(row["value"]) <= settings.QUARANTINE_VALUE_MAX_CHARS + 1
    assert len(row["message"]) < 400
    assert "(1048576 chars)" in row["message"]


def test_attribute_type_lock_names_document_attribute_and_types(contract: Contract) -> None:
    frame = docs(3).with_columns(pl.Series("attributes.weight", ["1", None, "3"]))
    out = run(frame, contract, locked_types={"weight": "int64"})
    assert out.quarantine["rule"].to_list() == ["type_lock", "type_lock"]
    message = out.quarantine["message"][0]
    assert message.startswith("record 0:en field attributes.weight rule type_lock:")
    assert "int64" in message
    assert "string" in message
    assert "'weight'" in message
    assert out.valid["external_id"].to_list() == ["1:en"]


def test_int_values_fit_a_float_lock_but_not_the_reverse(contract: Contract) -> None:
    ints = docs(2).with_columns(pl.Series("attributes.weight", [1, 2]))
    assert run(ints, contract, locked_types={"weight": "float"}).invalid_rows == 0
    floats = docs(2).with_columns(pl.Series("attributes.weight", [1.5, 2.0]))
    assert run(floats, contract, locked_types={"weight": "int64"}).invalid_rows == 2


def test_variant_attribute_without_lock_uses_batch_majority(contract: Contract) -> None:
    frame = docs(4).with_columns(variant_series("attributes.weight", [1, 2, "3", None]))
    out = run(frame, contract)
    assert out.quarantine["record_id"].to_list() == ["2"]
    assert "most documents of this batch" in out.quarantine["message"][0]
    assert out.valid.schema["attributes.weight"] == pl.Int64
    assert out.valid["attributes.weight"].to_list() == [1, 2, None]
    assert out.attribute_types == {"weight": "int64"}


@pytest.mark.parametrize(
    ("values", "kind", "quarantined"),
    [(["a", 1, "b", 2], "string", ["1", "3"]), ([1, "a", 2, "b"], "int64", ["1", "3"])],
)
def test_variant_attribute_tie_goes_to_the_kind_seen_first_every_run(
    contract: Contract, values: list[object], kind: str, quarantined: list[str]
) -> None:
    # As many strings as integers: the batch's type must not depend on hash order.
    frame = docs(4).with_columns(variant_series("attributes.weight", values))
    for _ in range(10):
        out = run(frame, contract)
        assert out.attribute_types == {"weight": kind}
        assert sorted(out.quarantine["record_id"].to_list()) == quarantined


def test_variant_attribute_with_lock_and_widening(contract: Contract) -> None:
    frame = docs(3).with_columns(variant_series("attributes.weight", [1, 2.5, "x"]))
    out = run(frame, contract, locked_types={"weight": "float"})
    assert out.quarantine["record_id"].to_list() == ["2"]
    assert out.valid["attributes.weight"].to_list() == [1.0, 2.5]


def test_variant_top_level_field(contract: Contract) -> None:
    frame = docs(3).with_columns(variant_series("price", [1.5, "2.5", 3]))
    out = run(frame, contract)
    assert out.quarantine.select("record_id", "rule").rows() == [("1", "type")]
    assert "JSON string, expected number" in out.quarantine["message"][0]
    assert out.valid.schema["price"] == pl.Float64
    assert out.valid["price"].to_list() == [1.5, 3.0]


def test_wrong_dtype_column_fails_every_value(contract: Contract) -> None:
    frame = docs(3, price=["1.0", None, "2.0"])
    out = run(frame, contract)
    assert out.rule_counts == {"type": 2}
    assert out.valid.height == 1
    assert out.valid.schema["price"] == pl.Float64


def test_integral_float_stock_is_accepted_and_cast(contract: Contract) -> None:
    frame = docs(3).with_columns(pl.Series("stock_quantity", [1.0, 2.5, None]))
    out = run(frame, contract)
    assert out.quarantine["rule"].to_list() == ["type"]
    assert out.valid.schema["stock_quantity"] == pl.Int64
    assert out.valid["stock_quantity"].to_list() == [1, None]


def test_attributes_struct_column_is_split(contract: Contract) -> None:
    frame = docs(2).with_columns(
        pl.Series("attributes", [{"option_color": "red", "Bad": None}, {"option_color": "blue", "Bad": "x"}])
    )
    out = run(frame, contract)
    assert out.quarantine.select("field", "rule").rows() == [("attributes.Bad", "key_pattern")]
    assert "attributes" not in out.valid.columns
    assert out.valid["attributes.option_color"].to_list() == ["red"]


def test_map_attributes_are_allowed(contract: Contract) -> None:
    frame = docs(2).with_columns(
        pl.Series("attributes.price_by_currency", [{"EUR": 9.2, "GBP": 8.0}, {"EUR": 1.0, "GBP": None}]),
        pl.Series("attributes.images", [[{"url": "https://cdn.example.com/a.jpg", "alt": "Front"}], []]),
        pl.Series("attributes.stock_by_location", [{"main": 3}, None]),
    )
    out = run(frame, contract)
    assert out.invalid_rows == 0, out.quarantine["message"].to_list()
    assert out.attribute_types == {
        "price_by_currency": "object",
        "images": "object[]",
        "stock_by_location": "object",
    }
    assert out.model_disagreements == ()


def test_source_issues_column(contract: Contract) -> None:
    issue = pl.Struct({"field": pl.String, "rule": pl.String, "value": pl.String, "message": pl.String})
    frame = docs(2).with_columns(
        pl.Series(
            "_issues",
            [
                [],
                [
                    {
                        "field": "title",
                        "rule": "utf8",
                        "value": "Caf\ufffd",
                        "message": "invalid UTF-8 at byte 3",
                    }
                ],
            ],
            dtype=pl.List(issue),
        )
    )
    out = run(frame, contract)
    assert out.quarantine.select("field", "rule").rows() == [("title", "utf8")]
    assert out.quarantine["message"][0] == "record 1:en field title rule utf8: invalid UTF-8 at byte 3"
    assert "_issues" not in out.valid.columns


def test_unknown_column_is_refused_but_underscore_columns_pass(contract: Contract) -> None:
    frame = docs(2).with_columns(pl.Series("colour", ["red", None]), pl.Series("_hash", ["h1", "h2"]))
    out = run(frame, contract)
    assert out.quarantine.select("field", "rule").rows() == [("colour", "unknown_field")]
    assert "colour" not in out.valid.columns
    assert "_hash" in out.valid.columns


def test_minor_unit_guard_needs_cents_in_the_batch(contract: Contract) -> None:
    prices = [round(10 + i * 0.37, 2) for i in range(25)] + [4999.0]
    out = run(docs(26, price=prices), contract)
    assert out.quarantine.select("record_id", "rule").rows() == [("25", "price_major_units")]
    # an all-integral catalog (e.g. JPY) gives no evidence: nothing is refused
    yen = [float(1000 + i) for i in range(25)] + [500000.0]
    out = run(docs(26, price=yen, currency=["JPY"] * 26), contract)
    assert out.invalid_rows == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_invariant_on_random_defects(contract: Contract, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - test data
    n = 300
    currencies = [rng.choice(["USD", "usd", "EUR", "", None]) for _ in range(n)]
    prices = [rng.choice([1.5, -1.0, None, float("nan"), 20.25]) for _ in range(n)]
    ids = [f"{rng.randrange(250)}:en" if rng.random() < 0.9 else None for _ in range(n)]
    locales = [rng.choice(["en", "de", "pt", None]) for _ in range(n)]
    frame = docs(n, currency=currencies, price=prices, external_id=ids, locale=locales)
    out = run(frame, contract)
    assert out.input_rows == out.valid.height + out.invalid_rows
    assert out.quarantine["record_id"].n_unique() == out.invalid_rows
    assert sum(out.rule_counts.values()) == out.quarantine.height
    assert out.model_disagreements == ()


def test_infer_attribute_types() -> None:
    frame = pl.DataFrame(
        [
            pl.Series("attributes.s", ["a", None]),
            pl.Series("attributes.i", [1, 2]),
            pl.Series("attributes.f", [1.5, None]),
            pl.Series("attributes.b", [True, False]),
            pl.Series("attributes.l", [["a"], []]),
            pl.Series("attributes.empty", [None, None], dtype=pl.String),
            pl.Series("attributes.nums", [[1], [2]]),
            variant_series("attributes.v", ["x", 1]).head(2),
            pl.Series("title", ["t", "u"]),
        ]
    )
    assert infer_attribute_types(frame) == {
        "s": "string",
        "i": "int64",
        "f": "float",
        "b": "bool",
        "l": "string[]",
        "v": "string",
    }


def test_variant_series_round_trips_through_parquet(tmp_path: Any) -> None:
    series = variant_series("attributes.x", ["a", 1, 2.5, True, ["s"], [1, 2], {"k": 1}, None])
    path = tmp_path / "v.parquet"
    pl.DataFrame([series]).write_parquet(path)
    back = pl.read_parquet(path)["attributes.x"]
    assert back.to_list() == series.to_list()
    assert json.loads(back[5]["json:number[]"]) == [1, 2]


def test_text_repair_helpers() -> None:
    text, broken = decode_source_bytes(b"Caf\xe9")
    assert broken
    assert text == "Caf\ufffd"
    assert decode_source_bytes("Café".encode()) == ("Café", False)
    assert repair_text("a\ud800b") == "a\ufffdb"
    with pytest.raises(UnicodeEncodeError):
        pl.Series(["a\ud800b"])


def test_frame_documents_nests_attributes() -> None:
    frame = docs(1).with_columns(
        pl.Series("attributes.option_color", ["red"]),
        pl.Series("attributes.price_by_currency", [{"EUR": 1.0, "GBP": None}]),
    )
    (doc,) = frame_documents(frame)
    assert doc["attributes"] == {"option_color": "red", "price_by_currency": {"EUR": 1.0}}
    assert "_record_id" not in doc


def test_check_document_names_rules(contract: Contract) -> None:
    base = {"external_id": "1:en", "title": "T"}
    assert check_document(base, contract) == []
    issues = check_document({**base, "currency": "usd", "title": ""}, contract)
    assert {(i.field, i.rule) for i in issues} == {("currency", "iso4217"), ("title", "empty_string")}


def test_diagnostics_and_circuit_breaker(contract: Contract) -> None:
    frame = docs(10, currency=["usd"] * 3 + ["USD"] * 7, locale=["en"] * 6 + ["de"] * 3 + [None])
    out = run(frame, contract)
    d = diagnostics(frame, out)
    assert d["rows"] == 10
    assert d["valid"] == 7
    assert d["quarantined"] == 3
    assert d["rule_counts"] == {"iso4217": 3}
    assert d["locales"] == {"(none)": 1, "de": 3, "en": 6}
    assert d["fill_rate"]["locale"] == 0.9
    assert d["duplicates"] == 0
    assert d["top_failures"][0]["field"] == "currency"
    assert d["top_failures"][0]["count"] == 3
    assert "| `currency` | `iso4217` | 3 |" in d["markdown"]
    json.dumps(d)
    summary = circuit_breaker(out, 0.05)
    assert summary is not None
    assert "3 of 10 documents (30.0%)" in summary
    assert "currency/iso4217 x3" in summary
    assert circuit_breaker(out, 0.5) is None


def test_merge_outcomes(contract: Contract) -> None:
    a = run(docs(4, currency=["usd", "USD", "USD", "USD"]), contract)
    b = run(docs(2, price=[-1.0, 1.0]), contract)
    merged = merge_outcomes([a, b])
    assert merged.input_rows == 6
    assert merged.invalid_rows == 2
    assert merged.rule_counts == {"iso4217": 1, "minimum": 1}
    assert merged.valid.height == 4
