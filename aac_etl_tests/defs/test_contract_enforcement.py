"""Contract enforcement through real Dagster runs: every record is valid or explained, the circuit breaker
stops a bad sync before the buffer, quarantine follows the source, attribute types stay locked across syncs,
and the quarantine CLI shows why a record was held back.

Files sources read JSONL written by the test into tmp_path; the OpenCart source reads a private SQLite copy of
the real OpenCart 3 demo. Every test has its own Typesense alias on the shared session server.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from aac_etl import settings
from aac_etl.defs.catalog import pipeline
from aac_etl.defs.catalog.assets import sync_job_name, sync_run_config
from aac_etl.defs.location import build_definitions
from aac_etl.defs.resources import default_buffer_url
from aac_etl.defs.runs import materialization_metadata
from aac_etl.defs.search.assets import load_job_name
from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.sources_config import SourceConfig
from aac_etl.lib.typesense_client import TypesenseClient

pytestmark = [pytest.mark.typesense, pytest.mark.slow]

STOREFRONT = "https://shop.example.com"
Record = dict[str, Any] | str
"""A JSONL line: a record (dumped as JSON) or raw text (for unreadable lines)."""


@dataclass
class Pipeline:
    """The code location of one source, run in process against the test's buffer and the real Typesense."""

    source: SourceConfig
    defs: dg.Definitions
    store: BufferStore
    client: TypesenseClient
    instance: dg.DagsterInstance

    @property
    def alias(self) -> str:
        return self.source.collection_alias

    def sync(self, mode: str = "full") -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(sync_job_name(self.source.name))
        return job.execute_in_process(
            run_config=sync_run_config(self.source.name, mode), instance=self.instance, raise_on_error=False
        )

    def load(self) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(load_job_name(self.alias))
        config = {"ops": {f"typesense__{self.alias}": {"config": {"reindex": False}}}}
        return job.execute_in_process(run_config=config, instance=self.instance, raise_on_error=False)

    def validated(self, result: dg.ExecuteInProcessResult) -> dict[str, Any]:
        """Metadata of the run's validated materialization."""
        return self.materialization(result, "validated")

    def materialization(self, result: dg.ExecuteInProcessResult, stage: str) -> dict[str, Any]:
        """Metadata of the run's last materialization of ``<source>/<stage>``."""
        metadata = materialization_metadata(result, self.source.name, stage)
        assert metadata, f"no {stage} materialization in run {result.run_id}"
        return metadata

    def quarantine(self) -> pl.DataFrame:
        return self.store.list_quarantine(source=self.source.name, limit=100_000)

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every document of the alias in Typesense, by id."""
        found = self.client.search(self.alias, "*", per_page=250)
        assert found["found"] <= 250
        return {hit["document"]["id"]: hit["document"] for hit in found["hits"]}


@contextmanager
def _pipeline(source: SourceConfig, typesense_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    monkeypatch.setenv("TYPESENSE_URL", typesense_server.url)
    monkeypatch.setenv("TYPESENSE_API_KEY", typesense_server.api_key)
    store = BufferStore(default_buffer_url())
    store.ensure_schema()
    client = TypesenseClient(typesense_server.url, typesense_server.api_key)
    try:
        yield Pipeline(source, build_definitions([source]), store, client, dg.DagsterInstance.get())
    finally:
        client.close()


def _slug() -> str:
    return f"contract_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """The JSONL file of the files source (written by each test)."""
    return tmp_path / "catalog.jsonl"


@pytest.fixture
def make_files_pipeline(
    catalog: Path, typesense_server: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Pipeline]]:
    """Build a files-source pipeline reading ``catalog``; keyword arguments override the SourceConfig."""
    stack = ExitStack()

    def make(**overrides: Any) -> Pipeline:
        values: dict[str, Any] = {
            "name": "shop",
            "platform": "files",
            "path": str(catalog),
            "organization": "acme",
            "index_slug": _slug(),
            "storefront_url": STOREFRONT,
        }
        values.update(overrides)
        return stack.enter_context(_pipeline(SourceConfig.model_validate(values), typesense_server, monkeypatch))

    with stack:
        yield make


def doc(i: int, **fields: Any) -> dict[str, Any]:
    """A valid SyncProductInput record; ``fields`` replace or add top-level fields."""
    record: dict[str, Any] = {
        "external_id": f"p{i}",
        "title": f"Trail shoe {i}",
        "description": f"A light trail running shoe, model {i}.",
        "price": 50.0 + i,
        "currency": "USD",
        "availability": "in_stock",
        "locale": "en",
        "attributes": {"size": 42, "color": "blue"},
    }
    record.update(fields)
    return record


def write_catalog(path: Path, records: Sequence[Record]) -> None:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def rules_of(quarantine: pl.DataFrame, external_id: str) -> set[tuple[str, str]]:
    """(field, rule) pairs quarantined for one external_id."""
    rows = quarantine.filter(pl.col("external_id") == external_id)
    return {(str(f), str(r)) for f, r in rows.select("field", "rule").iter_rows()}


def assert_accounted(meta: dict[str, Any], *, records: int, valid: int, quarantined: int) -> None:
    """records_in == valid + quarantined, with the expected numbers."""
    assert (meta["records_in"], meta["valid"], meta["quarantined"]) == (records, valid, quarantined)
    assert meta["records_in"] == meta["valid"] + meta["quarantined"]


def check_evaluation(result: dg.ExecuteInProcessResult, check_name: str) -> Any:
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == check_name]
    assert len(evaluations) == 1, check_name
    return evaluations[0]


def buffer_counts(p: Pipeline) -> list[tuple[Any, ...]]:
    return sorted(p.store.status(p.alias).iter_rows())


def sync_and_load(p: Pipeline) -> dg.ExecuteInProcessResult:
    result = p.sync("full")
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert p.load().success
    return result


# --------------------------------------------------------------------------------------------------------
# Input = valid + quarantined, on every source
# --------------------------------------------------------------------------------------------------------


def test_files_source_every_record_is_valid_or_quarantined(
    catalog: Path, make_files_pipeline: Callable[..., Pipeline]
) -> None:
    p = make_files_pipeline()
    bad: dict[str, tuple[Record, tuple[str, str]]] = {
        "p900": (doc(900, price=-5.0), ("price", "minimum")),
        "p901": (doc(901, currency="usd"), ("currency", "iso4217")),
        "p902": (doc(902, title="   "), ("title", "empty_string")),
        "p903": (doc(903, availability="sometimes"), ("availability", "valid_values")),
        "p904": (doc(904, price="12.50"), ("price", "type")),
        "p905": ('{"external_id": "p905", "title": "cut off', ("record", "json")),
    }
    records: list[Record] = [doc(i) for i in range(200)]
    for position, (record, _) in enumerate(bad.values()):
        records.insert(25 * position + 10, record)
    records.append({"title": "a record without id", "price": 1.0})
    write_catalog(catalog, records)

    result = p.sync("full")

    assert result.success
    meta = p.validated(result)
    assert_accounted(meta, records=207, valid=200, quarantined=7)
    quarantine = p.quarantine()
    assert quarantine["sync_id"].unique().to_list() == [result.run_id]
    for external_id, (_, expected) in bad.items():
        assert expected in rules_of(quarantine, external_id), (external_id, rules_of(quarantine, external_id))
    no_id = quarantine.filter(pl.col("external_id").is_null())
    assert no_id.select("field", "rule").rows() == [("external_id", "required")]
    assert no_id["record_id"].to_list() == [f"catalog.jsonl:{len(records)}"]
    # One distinct record per quarantined count, every row explained.
    held = quarantine.select(pl.coalesce("external_id", "record_id")).n_unique()
    assert held == meta["quarantined"]
    assert (quarantine["message"].str.len_chars() > 0).all()
    assert meta["rule_minimum"] == 1
    assert meta["rule_json"] == 1
    enqueued = p.store.status(p.alias).filter(pl.col("op") == "upsert")["count"].sum()
    assert enqueued == 200
    # The Great Expectations suite ran (in its worker process) on the new documents, which all passed.
    suite = check_evaluation(result, "great_expectations_suite")
    assert suite.passed is True
    assert suite.metadata["rows_evaluated"].value == 200
    assert suite.metadata["expectations_evaluated"].value > 10
    assert suite.metadata["failed_expectations"].value == 0

    unchanged = p.sync("full")
    assert unchanged.success
    assert check_evaluation(unchanged, "great_expectations_suite").metadata["rows_evaluated"].value == 0


def test_sync_over_its_memory_budget_waits_for_the_suite_worker(
    catalog: Path, make_files_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks and sample: the first chunk fills the sample and starts the suite; with a budget of 0 MB the
    # second chunk waits until the suite's result is in.
    monkeypatch.setattr(settings, "SYNC_CHUNK_ROWS", 50)
    monkeypatch.setattr(settings, "SUITE_OVERLAP_BUDGET_MB", 0)
    monkeypatch.setattr(pipeline, "GX_SAMPLE_ROWS", 40)
    p = make_files_pipeline()
    write_catalog(catalog, [doc(i) for i in range(200)])

    result = p.sync("full")

    assert result.success
    assert p.validated(result)["waited_for_great_expectations_seconds"] > 0
    suite = check_evaluation(result, "great_expectations_suite")
    assert suite.passed is True
    assert suite.metadata["rows_evaluated"].value == 40


def test_opencart_source_every_record_is_valid_or_quarantined(
    opencart3_sqlite_copy_url: str, typesense_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closing(sqlite3.connect(opencart3_sqlite_copy_url.removeprefix("sqlite:///"))) as db, db:
        # The name renders to nothing (markup and whitespace only, stored HTML-escaped as OpenCart does).
        db.execute("UPDATE oc_product_description SET name = '&lt;p&gt; &amp;nbsp; &lt;/p&gt;' WHERE product_id = 40")
        db.execute("UPDATE oc_product SET price = -10 WHERE product_id = 42")
    monkeypatch.setenv("OC3_CONTRACT_DSN", opencart3_sqlite_copy_url)
    source = SourceConfig(
        name="oc3",
        platform="opencart",
        dsn_env="OC3_CONTRACT_DSN",
        organization="acme",
        index_slug=_slug(),
        storefront_url=STOREFRONT,
        max_invalid_share=0.2,
    )
    with _pipeline(source, typesense_server, monkeypatch) as p:
        result = p.sync("full")
        assert result.success
        assert_accounted(p.validated(result), records=19, valid=17, quarantined=2)
        quarantine = p.quarantine()
        assert set(quarantine["external_id"].to_list()) == {"40:en", "42:en"}
        assert rules_of(quarantine, "40:en") == {("title", "required")}
        assert ("price", "minimum") in rules_of(quarantine, "42:en")
        assert set(quarantine["record_id"].to_list()) == {"40", "42"}
        assert p.load().success
        assert p.client.count(p.alias) == 17
        assert not {"40:en", "42:en"} & set(p.documents())


# --------------------------------------------------------------------------------------------------------
# Circuit breaker
# --------------------------------------------------------------------------------------------------------


def test_circuit_breaker_stops_the_sync_before_the_buffer(
    catalog: Path, make_files_pipeline: Callable[..., Pipeline]
) -> None:
    p = make_files_pipeline()
    write_catalog(catalog, [doc(i) for i in range(30)])
    sync_and_load(p)
    before_docs = p.documents()
    before_counts = buffer_counts(p)
    assert len(before_docs) == 30

    # 10% invalid (limit 5%); the valid records changed too, so a leak into the buffer would show.
    records: list[Record] = [doc(i, title=f"Renamed shoe {i}") for i in range(27)]
    records += [doc(27, price=-1.0), doc(28, price=-2.0), doc(29, currency="eur")]
    write_catalog(catalog, records)
    tripped = p.sync("full")

    assert not tripped.success
    breaker = check_evaluation(tripped, "contract_invalid_share")
    assert breaker.passed is False
    summary = str(breaker.description)
    assert "3 of 30 documents (10.0%)" in summary
    assert "top failing rules: price/minimum x2" in summary
    assert "currency/iso4217 x1" in summary
    assert p.validated(tripped)["quarantined"] == 3
    # The blocking check stops the sync after validation: search_buffer is never materialized.
    assert tripped.get_failed_step_keys() == {"shop__sync"}
    failure = tripped.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    assert "Circuit breaker: 3 of 30 documents" in failure.message
    assert "Nothing was enqueued" in failure.message
    materialized = {e.asset_key for e in tripped.get_asset_materialization_events()}
    assert dg.AssetKey(["shop", "validated"]) in materialized
    assert dg.AssetKey(["shop", "search_buffer"]) not in materialized
    assert buffer_counts(p) == before_counts
    history = p.store.last_sync("shop")
    assert history is not None
    assert history.status == "failed"
    assert "Circuit breaker" in (history.error or "")

    assert p.load().success
    assert p.documents() == before_docs
    assert p.client.count(p.alias) == 30


# --------------------------------------------------------------------------------------------------------
# Quarantine follows the source
# --------------------------------------------------------------------------------------------------------


def test_fixed_record_leaves_quarantine_and_invalid_record_keeps_last_good_version(
    catalog: Path, make_files_pipeline: Callable[..., Pipeline]
) -> None:
    p = make_files_pipeline(max_invalid_share=0.2)
    write_catalog(catalog, [doc(i) for i in range(30)])
    sync_and_load(p)
    last_good = p.documents()["p5"]

    # p5 (already searchable) turns invalid, p30 arrives invalid.
    write_catalog(catalog, [doc(i, price=-1.0) if i == 5 else doc(i) for i in range(30)] + [doc(30, currency="usd")])
    broken = sync_and_load(p)
    assert_accounted(p.validated(broken), records=31, valid=29, quarantined=2)
    buffered = p.materialization(broken, "search_buffer")
    assert buffered["enqueued_deletes"] == 0
    quarantine = p.quarantine()
    assert rules_of(quarantine, "p5") == {("price", "minimum")}
    assert rules_of(quarantine, "p30") == {("currency", "iso4217")}
    documents = p.documents()
    assert documents["p5"] == last_good  # a full sync does not delete it: its last good version stays
    assert "p30" not in documents
    assert len(documents) == 30

    # Both are fixed at the source: the next sync takes them out of quarantine and into search.
    write_catalog(catalog, [doc(i, price=99.0) if i == 5 else doc(i) for i in range(31)])
    fixed = sync_and_load(p)
    assert_accounted(p.validated(fixed), records=31, valid=31, quarantined=0)
    assert p.quarantine().height == 0
    documents = p.documents()
    assert documents["p5"]["price"] == pytest.approx(99.0)
    assert documents["p30"]["currency"] == "USD"
    hits = p.client.search(p.alias, "trail shoe 30", per_page=5)["hits"]
    assert "p30" in [h["document"]["id"] for h in hits]


# --------------------------------------------------------------------------------------------------------
# Attribute type lock across syncs
# --------------------------------------------------------------------------------------------------------


def test_attribute_type_lock_across_syncs(catalog: Path, make_files_pipeline: Callable[..., Pipeline]) -> None:
    p = make_files_pipeline()
    write_catalog(catalog, [doc(i) for i in range(30)])
    sync_and_load(p)
    locked = p.store.get_attribute_types(p.alias)
    assert locked["size"] == "int64"
    assert p.documents()["p3"]["attributes"]["size"] == 42

    # A later sync sends size as the string "42" for p3 (the only record carrying size this time).
    records: list[Record] = [doc(i, attributes={"color": "red"}) for i in range(30)]
    records[3] = doc(3, attributes={"size": "42", "color": "red"})
    write_catalog(catalog, records)
    result = sync_and_load(p)

    assert_accounted(p.validated(result), records=30, valid=29, quarantined=1)
    rows = p.quarantine().filter(pl.col("external_id") == "p3")
    assert rows.select("field", "rule").rows() == [("attributes.size", "type_lock")]
    message = str(rows["message"][0])
    for part in ("p3", "size", "int64", "string"):
        assert part in message, message
    assert p.store.get_attribute_types(p.alias)["size"] == "int64"
    documents = p.documents()
    assert documents["p3"]["attributes"]["size"] == 42  # the last good version stays
    assert {d["attributes"]["color"] for i, d in documents.items() if i != "p3"} == {"red"}

    # Within one sync the first occurrence decides: a later "43" next to integers is refused as well.
    records = [doc(i) for i in range(30)]
    records[7] = doc(7, attributes={"size": "43", "color": "blue"})
    write_catalog(catalog, records)
    mixed = sync_and_load(p)
    assert_accounted(p.validated(mixed), records=30, valid=29, quarantined=1)
    rules = rules_of(p.quarantine(), "p7")
    assert rules
    assert rules <= {("attributes.size", "attribute_type"), ("attributes.size", "type_lock")}
    assert p.quarantine().filter(pl.col("external_id") == "p3").height == 0


# --------------------------------------------------------------------------------------------------------
# Quarantine CLI
# --------------------------------------------------------------------------------------------------------


def _cli(*args: str, sources_file: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AAC_ETL_HOME": os.environ["AAC_ETL_HOME"],
        "AAC_ETL_SOURCES": str(sources_file),
        "COLUMNS": "400",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "aac_etl.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_quarantine_cli_lists_and_shows_the_record(
    catalog: Path, tmp_path: Path, make_files_pipeline: Callable[..., Pipeline]
) -> None:
    p = make_files_pipeline()
    write_catalog(catalog, [doc(i) for i in range(40)] + [doc(40, price=-5.0, availability="soon")])
    result = p.sync("full")
    assert result.success
    sources_file = tmp_path / "sources.yaml"
    declared = p.source.model_dump(mode="json", exclude_defaults=True)
    sources_file.write_text(yaml.safe_dump({"sources": [declared]}), encoding="utf-8")

    listed = _cli("quarantine", "list", "--json", "--source", "shop", sources_file=sources_file)
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)["records"]
    assert {(r["external_id"], r["field"], r["rule"]) for r in records} == {
        ("p40", "price", "minimum"),
        ("p40", "availability", "valid_values"),
    }
    by_field = {r["field"]: r for r in records}
    assert by_field["price"]["source"] == "shop"
    assert by_field["price"]["sync_id"] == result.run_id
    assert by_field["price"]["value"] == "-5.0"
    assert "below the minimum" in by_field["price"]["message"]
    assert "'soon' is not one of" in by_field["availability"]["message"]

    shown = _cli("quarantine", "show", "p40", "--source", "shop", sources_file=sources_file)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.startswith("price (minimum): ") and "below the minimum 0" in line for line in lines), lines
    assert any(line.startswith("availability (valid_values): ") for line in lines), lines

    other = _cli("quarantine", "list", "--json", "--source", "elsewhere", sources_file=sources_file)
    assert json.loads(other.stdout)["records"] == []
    missing = _cli("quarantine", "show", "p1", "--source", "shop", sources_file=sources_file)
    assert missing.returncode == 1
    assert "not in quarantine" in missing.stdout + missing.stderr


def test_first_sync_tripping_the_breaker_leaves_no_half_built_collection(
    catalog: Path, make_files_pipeline: Callable[..., Pipeline]
) -> None:
    p = make_files_pipeline()
    # A fresh alias: the full sync starts building its collection while it runs, then the breaker trips.
    write_catalog(catalog, [doc(i) for i in range(20)] + [doc(20 + i, price=-1.0) for i in range(5)])
    tripped = p.sync("full")
    assert not tripped.success
    assert check_evaluation(tripped, "contract_invalid_share").passed is False
    assert p.client.get_alias(p.alias) is None
    assert not [c for c in p.client.list_collections() if str(c["name"]).startswith(f"{p.alias}_")]
    state = p.store.get_index_state(p.alias)
    assert state is not None
    assert state.full_import == "aborted"
    assert buffer_counts(p) == []

    # Fixed at the source: the next full sync builds the collection and swaps the alias in one run.
    write_catalog(catalog, [doc(i) for i in range(25)])
    fixed = p.sync("full")
    assert fixed.success
    assert p.client.count(p.alias) == 25
    assert p.documents()["p22"]["price"] == 72.0
    state = p.store.get_index_state(p.alias)
    assert state is not None
    assert state.full_import == "done"
    assert p.store.pending_summary() == []
