"""The CLI from a clean state: `aac-etl demo` makes the generated shop searchable, `status --json` reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aac_etl.lib.sqldump import load_mysql_dump

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


@pytest.mark.mariadb
def test_demo_dsn_on_real_opencart3_then_search_iphone(tmp_path: Path, mariadb_url: str, opencart3_dump: Path) -> None:
    load_mysql_dump(opencart3_dump, mariadb_url)
    env = {k: v for k, v in os.environ.items() if k not in {"TYPESENSE_URL", "TYPESENSE_API_KEY", "DAGSTER_HOME"}}
    env["AAC_ETL_HOME"] = str(tmp_path / "state")
    try:
        demo = _cli(["demo", "--dsn", mariadb_url], env)
        assert demo.returncode == 0, demo.stdout + demo.stderr

        found = _cli(["search", "iphone", "--json"], env)
        assert found.returncode == 0, found.stderr
        hits = json.loads(found.stdout)["hits"]
        iphone = next(h for h in hits if h["title"] == "iPhone")
        assert iphone["price"] == pytest.approx(101.0)
        assert iphone["description"].startswith("iPhone is a revolutionary new mobile phone")
        assert "<" not in iphone["description"]

        cinema = json.loads(_cli(["search", "cinema", "--json"], env).stdout)["hits"]
        assert any(h["title"] == 'Apple Cinema 30"' for h in cinema)

        status = json.loads(_cli(["status", "--json"], env).stdout)["sources"][0]
        assert status["product_count"] == 19
        assert status["status"] == "normal"
    finally:
        _cli(["typesense", "stop"], env, timeout=60)


@pytest.mark.mariadb
def test_failed_sync_never_leaks_the_dsn_password(tmp_path: Path) -> None:
    secret = "S3cret-Pa55-xyz"
    env = {k: v for k, v in os.environ.items() if k not in {"TYPESENSE_URL", "TYPESENSE_API_KEY", "DAGSTER_HOME"}}
    env["AAC_ETL_HOME"] = str(tmp_path / "state")
    try:
        demo = _cli(["demo", "--dsn", f"mysql+pymysql://nobody:{secret}@127.0.0.1:3306/missing_db"], env)
        assert demo.returncode != 0
        assert "failed" in demo.stdout + demo.stderr
        assert secret not in demo.stdout + demo.stderr
        status = _cli(["status", "--json"], env)
        report = json.loads(status.stdout)["sources"][0]
        assert report["status"] == "error"
        assert report["last_sync"]["status"] == "failed"
        assert report["error"]
        assert secret not in status.stdout
        stored = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
        assert secret.encode() not in stored, "the password reached the Dagster event log, buffer or run files"
    finally:
        _cli(["typesense", "stop"], env, timeout=60)
