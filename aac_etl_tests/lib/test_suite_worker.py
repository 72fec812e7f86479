import time
from pathlib import Path

import polars as pl
import pytest

from aac_etl.lib.contract import Contract, load_contract
from aac_etl.lib.suite_worker import SINGLE_THREADED_MATH, SuiteWorker, SuiteWorkerError, worker_environment


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract()


def _frame(rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "external_id": [f"{i}:en" for i in range(rows)],
            "title": [f"Trail runner {i}" for i in range(rows)],
            "price": [99.99] * rows,
            "currency": ["USD"] * rows,
            "categories": [["Shoes", "Running"]] * rows,
            "category_ids": [["1", "2"]] * rows,
            "locale": ["en"] * rows,
        }
    )


def test_worker_runs_the_suite_in_a_child_process(contract: Contract) -> None:
    worker = SuiteWorker()
    good = worker.submit(_frame(40), contract, max_rows=25).result(timeout=300)
    worker.close()
    assert good.success, [r for r in good.results if not r["success"]]
    assert good.evaluated_rows == 25
    assert good.suite_name.startswith(contract.name)

    bad = _frame(10).with_columns(pl.lit("usd").alias("currency"), pl.lit("1:en").alias("external_id"))
    worker = SuiteWorker()
    result = worker.submit(bad, contract, max_rows=100).result(timeout=300)
    worker.close()
    failed = {(r["expectation"], r["column"]) for r in result.results if not r["success"]}
    assert not result.success
    assert ("expect_column_values_to_be_unique", "external_id") in failed


def test_worker_reports_ready_after_its_import_and_still_answers(contract: Contract) -> None:
    worker = SuiteWorker()
    assert worker.ready() is False  # the import takes seconds; ready() never blocks
    deadline = time.monotonic() + 120
    while not worker.ready():
        assert time.monotonic() < deadline, "worker never became ready"
        time.sleep(0.05)
    result = worker.submit(_frame(30), contract, max_rows=30).result(timeout=120)
    worker.close()
    assert result.success
    assert result.evaluated_rows == 30


def test_worker_takes_one_sample_only(contract: Contract) -> None:
    worker = SuiteWorker()
    worker.submit(_frame(3), contract, max_rows=3)
    with pytest.raises(RuntimeError, match="one sample"):
        worker.submit(_frame(3), contract, max_rows=3)
    worker.close()


def test_suite_errors_in_the_worker_reach_the_caller(contract: Contract) -> None:
    worker = SuiteWorker()
    future = worker.submit(_frame(3), contract, max_rows=-1)  # a negative sample size raises in the worker
    with pytest.raises(SuiteWorkerError, match="suite failed") as raised:
        future.result(timeout=300)
    worker.close()
    assert "Traceback" in str(raised.value)


def test_killed_worker_fails_its_future_and_leaves_no_process(contract: Contract) -> None:
    worker = SuiteWorker()
    future = worker.submit(_frame(3), contract, max_rows=3)
    worker.kill()
    with pytest.raises(SuiteWorkerError, match="exited with code -9"):
        future.result(timeout=60)
    assert worker._process.poll() == -9


def test_unused_worker_is_ended_by_close() -> None:
    worker = SuiteWorker()
    started = time.monotonic()
    worker.close()
    assert worker._process.poll() is not None
    assert time.monotonic() - started < 30


def test_worker_runs_its_math_single_threaded_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_environment({"PATH": "/bin", "OMP_NUM_THREADS": "4"}) == {
        **SINGLE_THREADED_MATH,
        "PATH": "/bin",
        "OMP_NUM_THREADS": "4",
    }
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    worker = SuiteWorker()
    try:
        environ = Path(f"/proc/{worker.pid}/environ")
        if not environ.exists():
            pytest.skip("no /proc on this system")
        # Popen returns once the exec has begun; the new program's environment is readable a moment later (an
        # empty read until then: seen in a loaded test run).
        deadline = time.monotonic() + 10
        while not (text := environ.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        variables = dict(item.split("=", 1) for item in text.split("\0") if "=" in item)
    finally:
        worker.close()
    assert variables["OPENBLAS_NUM_THREADS"] == "1"
    assert variables["OMP_NUM_THREADS"] == "3"
