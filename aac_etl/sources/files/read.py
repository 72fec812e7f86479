"""Extract of the files source: resolve ``config.path``, read JSONL/CSV/Parquet in blocks, delta, chunking.

Raw ``documents`` rows keep the source as-is plus ``_format``, ``_file`` (path relative to the folder or glob
root), ``_line`` (JSONL: physical line; CSV: record number with the header as 1; Parquet: row number) and, for
JSONL, ``_raw`` (the line, decoded leniently) and ``_utf8_error`` (why the line's bytes are not UTF-8).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from aac_etl.sources.base import ExtractRequest, RawChunk
from aac_etl.sources.files import attributes
from aac_etl.sources.files import settings as fs
from aac_etl.sources.files.common import changed_since, connect, iso_strings, query

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    """One file to read.

    Attributes:
        path: Absolute path.
        name: Path relative to the folder or glob root (the file's name for a single file).
        format: ``jsonl``, ``csv`` or ``parquet``.

    """

    path: Path
    name: str
    format: fs.FileFormat


def resolve_files(path: str) -> list[InputFile]:
    """List the input files of ``config.path``: a file, a folder (searched recursively) or a glob.

    Args:
        path: The configured path.

    Returns:
        Supported files (``.jsonl``, ``.ndjson``, ``.csv``, ``.parquet``), sorted by relative name.

    Raises:
        ValueError: A single file with an unsupported suffix.
        FileNotFoundError: Nothing to read.

    """
    target = Path(path)
    if target.is_file():
        file_format = fs.SUFFIX_FORMATS.get(target.suffix.lower())
        if file_format is None:
            raise ValueError(f"{target.name}: unsupported file type (expected {', '.join(fs.SUFFIX_FORMATS)})")
        return [InputFile(target, target.name, file_format)]
    if target.is_dir():
        root = target
        candidates = [p for p in target.rglob("*") if p.is_file()]
    else:
        parts = target.parts
        cut = next((i for i, part in enumerate(parts) if _GLOB_CHARS & set(part)), len(parts))
        root = Path(*parts[:cut]) if cut else Path()
        pattern = Path(*parts[cut:]).as_posix() if cut < len(parts) else ""
        candidates = [p for p in root.glob(pattern) if p.is_file()] if pattern else []
    files = [
        InputFile(p, p.relative_to(root).as_posix(), fs.SUFFIX_FORMATS[p.suffix.lower()])
        for p in candidates
        if p.suffix.lower() in fs.SUFFIX_FORMATS
    ]
    if not files:
        raise FileNotFoundError(f"no .jsonl/.ndjson/.csv/.parquet files at {path}")
    return sorted(files, key=lambda f: f.name)


def _utf8_lines(block: bytes) -> tuple[list[str], list[str | None] | None]:
    """Split a block into lines; when it is not valid UTF-8, decode each line leniently and say why."""
    try:
        return block.decode("utf-8").split("\n"), None
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    errors: list[str | None] = []
    for raw in block.split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
            errors.append(None)
        except UnicodeDecodeError as exc:
            lines.append(raw.decode("utf-8", errors="replace"))
            bad = raw[exc.start : exc.end].hex(" ")
            errors.append(f"invalid UTF-8 byte(s) 0x{bad} at byte {exc.start + 1} of the line")
    return lines, errors


def _jsonl_frame(block: bytes, file: InputFile, first_line: int) -> pl.DataFrame:
    lines, errors = _utf8_lines(block)
    frame = pl.DataFrame(
        {fs.RAW_COL: lines, fs.UTF8_ERROR_COL: errors if errors is not None else [None] * len(lines)},
        schema={fs.RAW_COL: pl.String, fs.UTF8_ERROR_COL: pl.String},
    )
    raw = pl.col(fs.RAW_COL).str.strip_suffix("\r")
    if first_line == 1:
        raw = pl.when(pl.int_range(pl.len()) == 0).then(raw.str.strip_prefix("\ufeff")).otherwise(raw)
    return (
        frame.with_row_index(fs.LINE_COL, offset=first_line)
        .with_columns(
            pl.lit(file.format).alias(fs.FORMAT_COL),
            pl.lit(file.name).alias(fs.FILE_COL),
            pl.col(fs.LINE_COL).cast(pl.Int64),
            raw.alias(fs.RAW_COL),
        )
        .filter(pl.col(fs.RAW_COL).str.strip_chars() != "")
        .select(fs.FORMAT_COL, fs.FILE_COL, fs.LINE_COL, fs.RAW_COL, fs.UTF8_ERROR_COL)
    )


def _jsonl_blocks(file: InputFile) -> Iterator[pl.DataFrame]:
    """Read a JSONL file in blocks of whole lines (blank lines dropped, line numbers kept)."""
    next_line = 1
    carry = b""
    with file.path.open("rb") as handle:
        while data := handle.read(fs.READ_BLOCK_BYTES):
            data = carry + data
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut + 1 :]
            yield _jsonl_frame(block, file, next_line)
            next_line += block.count(b"\n") + 1
    if carry:
        yield _jsonl_frame(carry, file, next_line)


def _csv_frame(file: InputFile) -> pl.DataFrame:
    data = file.path.read_bytes()
    try:
        data.decode("utf-8")
        valid_utf8 = True
    except UnicodeDecodeError:
        valid_utf8 = False
    frame = pl.read_csv(data, infer_schema=False, encoding="utf8-lossy", raise_if_empty=False)
    frame = frame.rename({c: c.removeprefix("\ufeff").strip() for c in frame.columns})
    text_columns = [c for c in frame.columns if frame.schema[c] == pl.String]
    if valid_utf8 or not text_columns:
        utf8_error = pl.lit(None, dtype=pl.String)
    else:
        replaced = pl.any_horizontal(pl.col(c).str.contains("\ufffd", literal=True) for c in text_columns)
        utf8_error = pl.when(replaced).then(pl.lit("invalid UTF-8 bytes (shown as U+FFFD)"))
    return frame.with_row_index(fs.LINE_COL, offset=2).with_columns(
        pl.lit(file.format).alias(fs.FORMAT_COL),
        pl.lit(file.name).alias(fs.FILE_COL),
        pl.col(fs.LINE_COL).cast(pl.Int64),
        utf8_error.alias(fs.UTF8_ERROR_COL),
    )


def _parquet_blocks(file: InputFile, rows: int) -> Iterator[pl.DataFrame]:
    next_row = 1
    for batch in pq.ParquetFile(file.path).iter_batches(batch_size=max(rows, 1)):
        frame = pl.DataFrame(pl.from_arrow(batch))
        yield frame.with_row_index(fs.LINE_COL, offset=next_row).with_columns(
            pl.lit(file.format).alias(fs.FORMAT_COL),
            pl.lit(file.name).alias(fs.FILE_COL),
            pl.col(fs.LINE_COL).cast(pl.Int64),
        )
        next_row += frame.height


def _record_ids(frame: pl.DataFrame) -> pl.Series:
    return frame.select(pl.format("{}:{}", fs.FILE_COL, fs.LINE_COL).alias(fs.RECORD_ID))[fs.RECORD_ID]


def block_types(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> pl.DataFrame:
    """First kind of each attribute key in one block of raw rows (in file order).

    Args:
        con: Connection from :func:`aac_etl.sources.files.common.connect`.
        frame: Raw ``documents`` rows of one format.

    Returns:
        An ``attribute_types`` table.

    """
    if frame.is_empty():
        return attributes.empty_types()
    ids = _record_ids(frame)
    indexed = frame.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64), ids)
    file_format = frame[fs.FORMAT_COL][0]
    found = attributes.empty_types()
    if file_format == "jsonl":
        return _jsonl_types(con, indexed)
    if frame.schema.get(fs.ATTRIBUTES_FIELD) == pl.String:
        entries = attributes.json_entries(con, indexed, fs.ATTRIBUTES_FIELD, "$")
        found = attributes.first_kinds(entries, indexed)
    if file_format == "csv":
        return attributes.merge_types(found, attributes.infer_csv_kinds(frame, ids))
    struct = frame.schema.get(fs.ATTRIBUTES_FIELD)
    if isinstance(struct, pl.Struct):
        frame = frame.select(pl.col(fs.ATTRIBUTES_FIELD).struct.unnest().name.prefix(fs.ATTRIBUTE_PREFIX))
    return attributes.merge_types(found, attributes.typed_kinds(frame, ids))


def _jsonl_types(con: duckdb.DuckDBPyConnection, indexed: pl.DataFrame) -> pl.DataFrame:
    """First kinds of JSONL attributes, parsing values only where a key first occurs.

    Keys whose first value does not determine a type (null, ``[]``, mixed array) are resolved by a scan of
    every record holding them.
    """
    path = f"$.{fs.ATTRIBUTES_FIELD}"
    con.register("_type_lines", indexed.select("_row", fs.RAW_COL))
    try:
        objects = query(
            con,
            f"""SELECT _row, a, json_keys(a) AS keys FROM (
                    SELECT _row, CASE WHEN json_valid(_raw) AND json_type(_raw, '{path}') = 'OBJECT'
                                      THEN json_extract(_raw, '{path}')::VARCHAR END AS a
                    FROM _type_lines)
                WHERE a IS NOT NULL ORDER BY _row""",
        )
    finally:
        con.unregister("_type_lines")
    ids = indexed.select("_row", fs.RECORD_ID)
    firsts = (
        objects.select("_row", pl.col("keys").alias("key"))
        .explode("key")
        .drop_nulls("key")
        .unique("key", keep="first", maintain_order=True)
    )
    candidates = objects.join(firsts.select("_row").unique(), on="_row", how="semi")
    entries = attributes.json_entries(con, candidates, "a", "$").join(firsts, on=["_row", "key"], how="semi")
    found = attributes.first_kinds(entries, ids)
    unresolved = firsts.join(found, on="key", how="anti")
    if not unresolved.is_empty():
        holders = objects.filter(pl.col("keys").list.eval(pl.element().is_in(unresolved["key"].implode())).list.any())
        rest = attributes.json_entries(con, holders, "a", "$").join(
            unresolved.select("key"), on="key", how="semi", maintain_order="left"
        )
        found = attributes.merge_types(found, attributes.first_kinds(rest, ids))
    order = firsts.with_row_index("_order").select("key", "_order")
    return found.join(order, on="key", how="left").sort("_order").drop("_order")


def _updated_at(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> pl.Series:
    if frame[fs.FORMAT_COL][0] != "jsonl":
        column = frame.get_column("updated_at", default=None)
        if column is None or column.dtype.is_nested():
            return pl.Series("u", [None] * frame.height, dtype=pl.String)
        return iso_strings(column)
    con.register("_delta_lines", frame.select(fs.RAW_COL).with_row_index("i"))
    try:
        return query(
            con,
            f"""SELECT CASE WHEN json_valid({fs.RAW_COL}) AND json_type({fs.RAW_COL}) = 'OBJECT'
                            THEN json_extract_string({fs.RAW_COL}, '$.updated_at') END AS u
                FROM _delta_lines ORDER BY i""",
        )["u"]
    finally:
        con.unregister("_delta_lines")


def _blocks(files: list[InputFile], rows: int) -> Iterator[pl.DataFrame]:
    for file in files:
        if file.format == "jsonl":
            yield from _jsonl_blocks(file)
        elif file.format == "csv":
            yield _csv_frame(file)
        else:
            yield from _parquet_blocks(file, rows)


def extract(path: str, request: ExtractRequest) -> Iterator[RawChunk]:
    """Read the files of ``path`` into raw chunks of at most ``request.chunk_rows`` records.

    Every chunk is ``{"documents": rows, "attribute_types": map}``; the map holds the first kind of every
    attribute key seen so far in file order (so all chunks type a key alike). A chunk never mixes formats.
    In delta mode only records whose ``updated_at`` is at or after ``request.since`` are kept (records
    without one, and unreadable lines, are kept so validation reports them).

    Args:
        path: File, folder or glob.
        request: Mode, since and chunk size.

    Yields:
        Raw chunks in file order.

    """
    rows = max(request.chunk_rows, 1)
    con = connect()
    types = attributes.empty_types()
    pending: list[pl.DataFrame] = []
    pending_rows = 0
    try:
        for block in _blocks(resolve_files(path), rows):
            if block.is_empty():
                continue
            if pending and pending[0][fs.FORMAT_COL][0] != block[fs.FORMAT_COL][0]:
                yield from _emit(pending, types, rows, final=True)
                pending, pending_rows = [], 0
            types = attributes.merge_types(types, block_types(con, block))
            kept = block
            if request.mode == "delta" and request.since is not None:
                kept = block.filter(changed_since(con, _updated_at(con, block), request.since))
            pending.append(kept)
            pending_rows += kept.height
            if pending_rows >= rows:
                rest = yield from _emit(pending, types, rows, final=False)
                pending = [rest] if rest.height else []
                pending_rows = rest.height
        if pending:
            yield from _emit(pending, types, rows, final=True)
    finally:
        con.close()


def _emit(
    pending: list[pl.DataFrame], types: pl.DataFrame, rows: int, *, final: bool
) -> Generator[RawChunk, None, pl.DataFrame]:
    """Yield full chunks of ``pending``; return the remainder (yield it too when ``final``)."""
    frame = pl.concat(pending, how="diagonal_relaxed")
    start = 0
    while frame.height - start >= rows or (final and start < frame.height):
        yield {fs.MAIN_TABLE: frame.slice(start, rows), fs.ATTRIBUTE_TYPES_TABLE: types}
        start += rows
    return frame.slice(start)
