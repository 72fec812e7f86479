"""The CLI from a clean state: `aac-etl demo` makes the generated shop searchable, `status --json` reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.typesense, pytest.mark.slow]


def _cli(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aac_etl.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_from_clean_state(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"TYPESENSE_URL", "TYPESENSE_API_KEY", "DAGSTER_HOME"}}
    env["AAC_ETL_HOME"] = str(tmp_path / "state")
    env.pop("AAC_ETL_DEMO_DSN", None)
    try:
        demo = _cli(["demo", "--products", "40"], env)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        status = _cli(["status", "--json"], env)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)["sources"]
        demo_row = next(r for r in report if r["source"] == "demo_shop")
        assert demo_row["status"] == "normal"
        assert demo_row["full_import"] == "done"
        assert demo_row["pending"] == 0
        assert demo_row["product_count"] > 0
        assert demo_row["last_sync"]["status"] == "succeeded"

        found = _cli(["search", "*", "--json", "--limit", "3"], env)
        assert found.returncode == 0, found.stderr
        hits = json.loads(found.stdout)
        assert hits["found"] == demo_row["product_count"]
        assert all("<" not in (h.get("description") or "") for h in hits["hits"])

        runs = list((tmp_path / "state" / "dagster").rglob("*.db"))
        assert runs, "CLI runs must be recorded in the Dagster instance"
    finally:
        _cli(["typesense", "stop"], env, timeout=60)
