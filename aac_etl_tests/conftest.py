"""Shared pytest configuration: fixtures per backend live in aac_etl_tests/fixtures/."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "aac_etl_tests.fixtures.databases",
    "aac_etl_tests.fixtures.typesense",
]

SHARED_DIR = Path(__file__).resolve().parent.parent.parent / "shared"
REAL_DATA_DIR = SHARED_DIR / "data" / "real"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Folder of the real demo catalogs (../shared/data/real), read-only."""
    if not REAL_DATA_DIR.is_dir():
        pytest.fail(f"real catalogs not found at {REAL_DATA_DIR}; ../shared must sit beside the repo")
    return REAL_DATA_DIR


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every test's state dir and Dagster home at tmp_path, never the working directory."""
    monkeypatch.setenv("AAC_ETL_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
