"""Chunked Parquet files of a run on disk: the kept raw extract (for replays) and the payload parts.

Every run writes under ``<state>/runs/<run_id>/<source>/<stage>/``: the extract keeps the raw tables of each
chunk (``chunk-00000/<table>.parquet``) so a later run can replay them, and the validated stage writes one
payload part per chunk (``payload-00000.parquet``) that the buffer stage reads back one at a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from aac_etl import settings


@dataclass(frozen=True)
class StagedDataset:
    """A stage's output: a folder of Parquet parts (or chunk folders of raw tables).

    Attributes:
        root: Folder of the dataset.
        parts: Part files (or chunk folders for raw extracts), in order.
        rows: Total rows (for raw extracts: rows of the main table).
        mode: ``full`` or ``delta``: travels with the data so later stages know whether deletes apply.
        run_id: The Dagster run that wrote it.
        extra: Small per-stage facts (for example table row counts).

    """

    root: Path
    parts: tuple[Path, ...]
    rows: int
    mode: Literal["full", "delta"]
    run_id: str
    extra: dict[str, int] = field(default_factory=dict)

    def raw_chunks(self) -> Iterator[dict[str, pl.DataFrame]]:
        """Yield raw extract chunks as ``{table: frame}``, one chunk at a time."""
        for chunk_dir in self.parts:
            yield {p.stem: pl.read_parquet(p) for p in sorted(chunk_dir.glob("*.parquet"))}


def run_dir(run_id: str, source: str, stage: str, base: Path | None = None) -> Path:
    """Return (and create) the folder of one stage of one run.

    Args:
        run_id: Dagster run id.
        source: Source name.
        stage: Stage name (extract, normalized, validated).
        base: State folder; defaults to :func:`aac_etl.settings.state_dir`.

    """
    path = (base or settings.state_dir()) / "runs" / run_id / source / stage
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


class PartWriter:
    """Writes numbered raw chunks (one Parquet file per table) into a stage folder."""

    def __init__(self, root: Path) -> None:
        """Create a writer for ``root`` (which must exist)."""
        self.root = root
        self._parts: list[Path] = []
        self.rows = 0

    def write_chunk(self, tables: dict[str, pl.DataFrame], main_table: str) -> Path:
        """Write one raw chunk (one Parquet file per table) into ``chunk-NNNNN/``."""
        chunk_dir = self.root / f"chunk-{len(self._parts):05d}"
        chunk_dir.mkdir()
        for name, frame in tables.items():
            frame.write_parquet(chunk_dir / f"{name}.parquet", compression="zstd", compression_level=1)
        self._parts.append(chunk_dir)
        main = tables.get(main_table)
        self.rows += main.height if main is not None else 0
        return chunk_dir


def find_extract(run_id: str, source: str, base: Path | None = None) -> StagedDataset:
    """Re-open the raw extract kept by an earlier run, for a replay.

    Args:
        run_id: The earlier run's id.
        source: Source name.
        base: State folder; defaults to :func:`aac_etl.settings.state_dir`.

    Raises:
        FileNotFoundError: That run kept no extract for that source.

    """
    root = (base or settings.state_dir()) / "runs" / run_id / source / "extract"
    chunks = tuple(sorted(p for p in root.glob("chunk-*") if p.is_dir()))
    if not chunks:
        raise FileNotFoundError(f"run {run_id} kept no extract for source {source!r} under {root}")
    return StagedDataset(root=root, parts=chunks, rows=-1, mode="full", run_id=run_id)


def prune_runs(
    source: str, *, current_run_id: str, keep: int = settings.KEEP_EXTRACTS, base: Path | None = None
) -> int:
    """Free disk after a successful sync: drop its intermediate stages and all but the newest ``keep`` extracts.

    The raw extract of the newest ``keep`` runs of the source stays (for ``--replay``); the normalized and
    validated parts of the current run are deleted (they are rebuilt from the extract on replay).

    Args:
        source: Source name.
        current_run_id: The run that just finished.
        keep: Extracts to keep per source.
        base: State folder; defaults to :func:`aac_etl.settings.state_dir`.

    Returns:
        Folders removed.

    """
    runs_root = (base or settings.state_dir()) / "runs"
    removed = 0
    for stage in ("normalized", "validated"):
        path = runs_root / current_run_id / source / stage
        if path.exists():
            shutil.rmtree(path)
            removed += 1
    extracts = sorted(
        (p for p in runs_root.glob(f"*/{source}/extract") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in extracts[keep:]:
        shutil.rmtree(old.parent)
        removed += 1
        run_folder = old.parent.parent
        if run_folder.exists() and not any(run_folder.iterdir()):
            run_folder.rmdir()
    return removed
