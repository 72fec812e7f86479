"""Fixtures shared by the buffer tests: an empty buffer on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from aac_etl.lib.buffer import BufferStore


@pytest.fixture(
    params=["duckdb", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BufferStore:
    """An empty buffer on each backend."""
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'buffer.duckdb'}"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'buffer.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    buffer = BufferStore(url)
    buffer.ensure_schema()
    return buffer
