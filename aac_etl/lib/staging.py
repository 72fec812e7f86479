"""Chunked Parquet files of a run on disk: the kept raw extract (for replays) and the payload parts.

Every run writes under ``<state>/runs/<run_id>/<source>/<stage>/``: the extract keeps the raw tables of each
chunk (``chunk-00000/<table>.parquet``) so a later run can replay them, and the validated stage writes one
payload part per chunk (``payload-00000.parquet``) that the buffer stage reads back one at a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from aac_etl import settings


@dataclass(frozen=True)
class RawExtract:
    """The raw extract a run kept: one folder per chunk, one Parquet file per table.

    Attributes:
        root: Folder of the extract.
        chunks: Chunk folders, in order.

    """

    root: Path
    chunks: tuple[Path, ...]

    def raw_chunks(self) -> Iterator[dict[str, pl.DataFrame]]:
        """Yield the chunks as ``{table: frame}``, one chunk at a time."""
        for chunk_dir in self.chunks:
            yield {p.stem: pl.read_parquet(p) for p in sorted(chunk_dir.glob("*.parquet"))}


def stage_path(run_id: str, source: str, stage: str, base: Path | None = None) -> Path:
    """Return the folder of one stage of one run (``<state>/runs/<run_id>/<source>/<stage>``), not created."""
    return (base or settings.state_dir()) / "runs" / run_id / source / stage


def run_dir(run_id: str, source: str, stage: str, base: Path | None = None) -> Path:
    """Return (and create) the folder of one stage of one run.

    Args:
        run_id: Dagster run id.
        source: Source name.
        stage: Stage name (``extract``, or ``validated`` for the payload parts).
        base: State folder; defaults to :func:`aac_etl.settings.state_dir`.

    """
    path = stage_path(run_id, source, stage, base)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


class ChunkWriter:
    """Writes numbered raw chunks (one Parquet file per table) into an extract folder."""

    def __init__(self, root: Path) -> None:
        """Create a writer for ``root`` (which must exist)."""
        self.root = root
        self.chunks = 0

    def write(self, tables: dict[str, pl.DataFrame]) -> Path:
        """Write one raw chunk into ``chunk-NNNNN/`` and return its folder."""
        chunk_dir = self.root / f"chunk-{self.chunks:05d}"
        chunk_dir.mkdir()
        for name, frame in tables.items():
            frame.write_parquet(chunk_dir / f"{name}.parquet", compression="zstd", compression_level=1)
        self.chunks += 1
        return chunk_dir


def find_extract(run_id: str, source: str, base: Path | None = None) -> RawExtract:
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
    return RawExtract(root=root, chunks=chunks)


def prune_runs(
    source: str, *, current_run_id: str, keep: int = settings.KEEP_EXTRACTS, base: Path | None = None
) -> int:
    """Free disk after a successful sync: drop its intermediate stages and all but the newest ``keep`` extracts.

    The raw extract of the newest ``keep`` runs of the source stays (for ``--replay``); the payload parts of the
    current run are deleted (a replay makes them again from the extract).

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
    payloads = stage_path(current_run_id, source, "validated", base)
    if payloads.exists():
        shutil.rmtree(payloads)
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
