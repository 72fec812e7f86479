"""The end-to-end benchmark runs at a tiny size against a real Typesense and writes a complete report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from aac_etl.lib.typesense_client import TypesenseClient
from benchmarks import run_benchmark

pytestmark = [pytest.mark.typesense, pytest.mark.slow]

PRODUCTS = 200


def test_benchmark_writes_every_section(tmp_path: Path, typesense_server: Any) -> None:
    out = tmp_path / "results"
    run_benchmark.main(
        [
            "--sizes",
            str(PRODUCTS),
            "--languages",
            "en-gb",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
            "--typesense-url",
            typesense_server.url,
            f"--typesense-key={typesense_server.api_key}",
            "--pairs",
            "2",
        ]
    )

    report = json.loads((out / "latest.json").read_text())
    markdown = (out / "latest.md").read_text()
    assert typesense_server.api_key not in json.dumps(report)
    assert typesense_server.api_key not in markdown
    assert "## Cost growth" in markdown

    (entry,) = report["sizes"]
    assert entry["products"] == PRODUCTS
    assert entry["generation"]["rows"] > PRODUCTS

    ceiling = entry["ceiling"]
    documents = ceiling["documents"]
    assert 0 < documents <= PRODUCTS
    assert ceiling["failed"] == 0
    assert ceiling["searchable"] == documents
    assert ceiling["docs_per_second"] > 0

    full = entry["full"]
    assert full["success"]
    assert full["documents"] == documents
    assert full["documents_sent"] == documents
    assert full["searchable"] == documents
    assert full["reindexed"] is True
    assert full["ratio_to_ceiling"] > 0
    assert full["peak_rss_mb"] > 0
    assert full["cpu_seconds"] > 0
    # An external server: its process is not ours to read, so no Typesense CPU is reported (not a made-up 0).
    assert ceiling["typesense_cpu_seconds"] is None
    assert full["typesense_cpu_seconds"] is None
    assert set(full["stages"]) == set(run_benchmark.STAGES)
    for stage in full["stages"].values():
        assert stage["rows"] > 0
        assert stage["rows_per_second"] > 0
    # The alias had no collection: the sync built it while it ran and left nothing pending, so no load job ran
    # (the buffer sensor would not launch one either).
    assert full["sent_by_sync"] == documents
    assert full["pending_after_sync"] == 0
    assert full["load_run"] is False
    assert full["normalize_validate_rows_per_second"] > 0
    assert ceiling["normalize_validate_rows_per_second"] > 0
    transform = entry["targets"]["normalize_validate_rows_per_second"]
    assert transform["value"] == ceiling["normalize_validate_rows_per_second"]
    assert transform["in_sync"] == full["normalize_validate_rows_per_second"]
    assert len(transform["pairs"]) == 2
    assert transform["pairs"][0] == transform["value"]
    assert all(rate > 0 for rate in transform["pairs"])
    assert f"target ≥ {run_benchmark.TARGET_TRANSFORM_RATE:,}" in markdown
    assert full["profile"]["typesense_import"]["calls"] >= 1
    assert full["profile"]["gx_suite"]["calls"] == 1

    unchanged = entry["unchanged"]
    assert unchanged["success"]
    assert unchanged["enqueued_upserts"] == 0
    assert unchanged["documents_sent"] == 0
    assert unchanged["searchable"] == documents
    assert unchanged["share_of_full"] > 0
    # Every product that made a document was skipped by its fingerprint (one language: one document each); only
    # products without a valid document (disabled, quarantined) are normalized again.
    assert unchanged["skipped_unchanged_records"] >= documents
    assert unchanged["stages"]["normalize"]["rows"] <= PRODUCTS - unchanged["skipped_unchanged_records"]

    assert unchanged["load_run"] is False

    changed = entry["changed_1pct"]
    assert changed["success"]
    # Nothing streamed: the changes wait in the buffer, and the load job sends them.
    assert changed["pending_after_sync"] > 0
    assert changed["load_run"] is True
    assert changed["changed_products"] == round(PRODUCTS * run_benchmark.CHANGE_SHARE)
    assert 0 < changed["documents_sent"] <= changed["expected_documents_sent"]
    assert changed["skipped_unchanged_records"] >= unchanged["skipped_unchanged_records"] - changed["changed_products"]
    assert changed["searchable"] == documents

    # The second pair ran the full sync first, on its own alias; the ratio target is judged on the median.
    pairs = entry["ratio_pairs"]
    assert len(pairs["ratios"]) == 2
    assert pairs["ratios"][0] == full["ratio_to_ceiling"]
    assert all(ratio > 0 for ratio in pairs["ratios"])
    assert pairs["min"] <= pairs["median"] <= pairs["max"]
    assert entry["targets"]["ratio_to_ceiling"]["value"] == pairs["median"]
    # Every timed import started on a server holding none of the benchmark's collections: with the full sync
    # first, its collection is gone before the ceiling imports.
    assert [pair["first"] for pair in pairs["pairs"]] == ["ceiling", "full"]
    assert [pair["ratio"] for pair in pairs["pairs"]] == pairs["ratios"]
    for pair in pairs["pairs"]:
        assert pair["resident_collections_at_start"] == {"ceiling": 0, "full": 0}
        # A given server is not restarted (and its process is not ours to name).
        assert pair["fresh_server"] is False
        assert pair["typesense_pids"] == {"ceiling": None, "full": None}
    assert report["meta"]["typesense_restarted_for_each_timed_import"] is False
    assert ceiling["resident_collections_at_start"] == 0
    assert full["resident_collections_at_start"] == 0
    assert f"{pairs['median']:.3f} ({pairs['ratios'][0]:.3f}, {pairs['ratios'][1]:.3f})" in markdown

    # The server is not restarted: the benchmark leaves none of its collections nor aliases on it.
    with TypesenseClient(typesense_server.url, typesense_server.api_key) as client:
        assert not [
            c["name"] for c in client.list_collections() if c["name"].startswith(run_benchmark.COLLECTION_PREFIX)
        ]
        assert not [a for a in client.list_aliases() if a.startswith(run_benchmark.COLLECTION_PREFIX)]

    (growth,) = report["cost_growth"]
    assert growth["products"] == PRODUCTS
    assert growth["seconds"] == full["seconds"]
    assert growth["seconds_growth"] is None


def test_embedded_server_is_restarted_empty_before_every_timed_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server slows down with every import it has taken: each import of a pair gets a server of its own.
    monkeypatch.delenv("TYPESENSE_URL", raising=False)
    monkeypatch.delenv("TYPESENSE_API_KEY", raising=False)
    out = tmp_path / "results"
    work = str(tmp_path / "work")
    run_benchmark.main(["--sizes", "60", "--languages", "en-gb", "--out", str(out), "--workdir", work, "--pairs", "2"])

    report = json.loads((out / "latest.json").read_text())
    assert report["meta"]["typesense_restarted_for_each_timed_import"] is True
    assert "(restarted empty before every timed import)" in (out / "latest.md").read_text()
    (entry,) = report["sizes"]
    pairs = entry["ratio_pairs"]["pairs"]
    assert [pair["first"] for pair in pairs] == ["ceiling", "full"]
    pids = [pair["typesense_pids"][run] for pair in pairs for run in ("ceiling", "full")]
    assert all(isinstance(pid, int) for pid in pids)
    assert len(set(pids)) == 4
    # Each import's server CPU is read from its own process. An import of 60 documents can take less than one clock
    # tick of CPU, so one of them may read 0; together they cannot.
    cpus = [pair["typesense_cpu_seconds"][run] for pair in pairs for run in ("ceiling", "full")]
    assert all(cpu is not None and cpu >= 0 for cpu in cpus)
    assert sum(cpus) > 0
    assert all(pair["fresh_server"] is True for pair in pairs)
    # The nightly runs use the server the full sync built its collection on.
    documents = entry["full"]["documents"]
    assert documents > 0
    assert entry["unchanged"]["searchable"] == documents
    assert entry["changed_1pct"]["searchable"] == documents


def test_process_cpu_seconds_from_proc() -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc on this system")
    before = run_benchmark._proc_cpu(os.getpid())
    assert before is not None
    sum(i * i for i in range(2_000_000))  # burn some CPU
    spent = run_benchmark._cpu_delta(before, os.getpid())
    assert spent is not None
    assert spent > 0
    assert run_benchmark._proc_cpu(None) is None
    assert run_benchmark._cpu_delta(None, os.getpid()) is None
