"""Project-level promises: the README's commands and generated table, CI's entry point, the code location."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from aac_etl.defs.location import build_definitions
from aac_etl.lib.contract import render_readme_table
from aac_etl.lib.sources_config import load_sources

REPO = Path(__file__).resolve().parent.parent


def test_readme_field_table_is_generated_from_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "README.md"
    shutil.copyfile(REPO / "README.md", copy)
    assert render_readme_table(copy) is False, "README's field table is stale: run `aac-etl contract table --readme`"
    text = copy.read_text(encoding="utf-8")
    assert "| `external_id` | string | yes |" in text


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`bash scripts/demo`" in readme
    assert "`bash scripts/test`" in readme
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test" in ci


def test_code_location_loads_from_the_repo_sources_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AAC_ETL_DEMO_DSN", "sqlite:///unused.sqlite")
    sources = load_sources(REPO / "sources.yaml")
    defs = build_definitions(sources)
    dg.Definitions.validate_loadable(defs)
    source = sources[0]
    assert defs.resolve_job_def(f"sync_{source.name}") is not None
    assert defs.resolve_schedule_def(f"{source.name}_nightly_full_sync").execution_timezone == source.schedule.timezone
    assert defs.resolve_sensor_def("search_buffer_sensor") is not None
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {f"{source.name}/{stage}" for stage in ("extract", "normalized", "validated", "search_buffer")} <= keys
    assert f"typesense/{source.collection_alias}" in keys


def test_dagster_cli_loads_the_workspace(tmp_path: Path) -> None:
    env_dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(env_dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(env_dagster.parent), "DAGSTER_HOME": str(tmp_path), "AAC_ETL_HOME": str(tmp_path / "s")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
