"""Buffer -> Typesense: incremental loads and zero-downtime full reindexes behind an alias.

:func:`load_alias` decides between two modes:

* **Reindex** when the alias has no collection, ``reindex=True``, the recorded schema hash differs from the
  given schema's, or a previous full import did not finish. A new collection ``<alias>_<UTC timestamp>`` is
  created, every live document of the buffer is imported into it (index state ``full_import=start``), the
  alias is swapped to it (``done``), the rows are marked, the old collection is dropped and a final
  incremental pass applies whatever changed during the build. Searches through the alias only ever see the
  old complete collection or the new complete one; if the build fails the half-built collection is dropped
  and the alias is untouched.
* **Incremental** otherwise: pending rows are streamed in id order; upserts go through ``import_jsonl``
  (every result line is read: successes are marked loaded, failures marked failed with Typesense's error),
  deletes through ``delete_documents``.

Rows are marked only after Typesense acknowledged them, and only where the buffer still holds what was sent,
so a crash at any point (even SIGKILL) leaves the unacknowledged rows pending and a re-run neither loses nor
duplicates documents (an upsert by id is idempotent, deleting a missing id is a no-op).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import polars as pl

from aac_etl import settings
from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.redact import redact
from aac_etl.lib.typesense_client import TypesenseClient

logger = logging.getLogger(__name__)

READ_PAGE_MIN_ROWS = 20_000
PREFETCH_PAGES = 2
IMPORTS_IN_FLIGHT = 2
"""Buffer rows read (and marked) per database round trip; imports are still sent ``batch_size`` at a time."""
DEFAULT_MAX_FAILED_SHARE = 0.5
"""A rebuild whose documents fail above this share is abandoned (the alias keeps the old collection)."""

_KEY_COLUMNS = ("external_id", "content_hash", "op")


class LoaderError(RuntimeError):
    """A load could not complete; the alias still serves the previous collection."""


@dataclass(frozen=True)
class LoadStats:
    """Result of :func:`load_alias`.

    Attributes:
        upserted: Documents Typesense accepted (imports that succeeded).
        deleted: Delete operations applied (a delete of a document Typesense did not hold counts too).
        failed: Documents Typesense rejected (marked failed with the error text).
        collection: The collection the alias points at after the load.
        reindexed: True when a new collection was built and swapped in.

    """

    upserted: int
    deleted: int
    failed: int
    collection: str
    reindexed: bool


def schema_hash(schema: Mapping[str, Any]) -> str:
    """Return a stable hash of a collection schema, ignoring its ``name``.

    Args:
        schema: Typesense collection schema.

    Returns:
        Hex MD5 of the canonical JSON (sorted keys) of the schema without ``name``.

    """
    canonical = {key: value for key, value in schema.items() if key != "name"}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def new_collection_name(alias: str) -> str:
    """Return ``<alias>_<UTC timestamp with microseconds>``, unique per build."""
    return f"{alias}_{datetime.now(UTC):%Y%m%d%H%M%S%f}"


@dataclass
class _Tally:
    upserted: int = 0
    deleted: int = 0
    failed: int = 0


def _slices(frame: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    """Yield consecutive row slices of at most ``size`` rows."""
    for offset in range(0, frame.height, size):
        yield frame.slice(offset, size)


def _import(
    client: TypesenseClient, collection: str, rows: pl.DataFrame, batch_size: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Import upsert rows; return (successes[external_id, content_hash, op], failures[..., error])."""
    results = client.import_jsonl(
        collection, rows.get_column("payload").to_list(), action="upsert", batch_size=batch_size
    )
    if len(results) != rows.height:
        raise LoaderError(f"import into {collection!r} returned {len(results)} results for {rows.height} rows")
    outcome = pl.DataFrame(
        {
            "success": [result.success for result in results],
            "message": [result.error for result in results],
            "code": [result.code for result in results],
        },
        schema={"success": pl.Boolean, "message": pl.Utf8, "code": pl.Int64},
    )
    joined = pl.concat([rows.select(_KEY_COLUMNS), outcome], how="horizontal")
    ok = joined.filter(pl.col("success")).select(_KEY_COLUMNS)
    bad = joined.filter(~pl.col("success")).select(
        *_KEY_COLUMNS,
        pl.when(pl.col("code").is_not_null())
        .then(pl.format("{}: {}", pl.col("code"), pl.col("message").fill_null("import failed")))
        .otherwise(pl.col("message").fill_null("import failed"))
        .alias("error"),
    )
    return ok, bad


def prefetch(pages: Iterator[pl.DataFrame], depth: int = PREFETCH_PAGES) -> Iterator[pl.DataFrame]:
    """Read buffer pages in a background thread so database reads overlap the Typesense imports.

    Args:
        pages: The page iterator (each page is read in its own short transaction).
        depth: Pages read ahead at most (bounds memory).

    Yields:
        The pages, in order; an exception of the reader is raised in the consumer.

    """
    done = object()
    box: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        box.put(page, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as exc:  # handed to the consumer
            box.put(exc)

    thread = threading.Thread(target=reader, name="buffer-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(pl.DataFrame, item)
    finally:
        stop.set()
        thread.join(timeout=10)


def _page_size(batch_size: int) -> int:
    return max(batch_size, READ_PAGE_MIN_ROWS)


def _incremental(
    store: BufferStore,
    client: TypesenseClient,
    *,
    alias: str,
    collection: str,
    batch_size: int,
    progress: Callable[[int], None] | None,
    tally: _Tally,
) -> None:
    """Apply every pending row of the alias to ``collection`` and mark the outcome per page."""
    for page in prefetch(store.pending_batches(alias, _page_size(batch_size))):
        loaded: list[pl.DataFrame] = []
        failed: list[pl.DataFrame] = []
        try:
            upserts = page.filter(pl.col("op") == "upsert")
            for chunk in _slices(upserts, batch_size):
                ok, bad = _import(client, collection, chunk, batch_size)
                loaded.append(ok)
                failed.append(bad)
                tally.upserted += ok.height
                tally.failed += bad.height
                if progress is not None:
                    progress(chunk.height)
            deletes = page.filter(pl.col("op") == "delete")
            for chunk in _slices(deletes, batch_size):
                client.delete_documents(collection, chunk.get_column("external_id").to_list())
                loaded.append(chunk.select(_KEY_COLUMNS))
                tally.deleted += chunk.height
                if progress is not None:
                    progress(chunk.height)
        finally:
            # Whatever Typesense acknowledged is marked even when a later request of the page failed.
            if loaded:
                store.mark_loaded(alias, pl.concat(loaded))
            if failed:
                store.mark_failed(alias, pl.concat(failed))


def _rebuild(
    store: BufferStore,
    client: TypesenseClient,
    *,
    alias: str,
    schema: Mapping[str, Any],
    wanted_hash: str,
    current: str | None,
    batch_size: int,
    progress: Callable[[int], None] | None,
    tally: _Tally,
    max_failed_share: float,
) -> str:
    """Build a new collection from all live documents, swap the alias to it and drop the old one."""
    previous = store.get_index_state(alias)
    if previous is not None and previous.full_import != "done" and previous.collection_name != current:
        # A build that died (e.g. SIGKILL) left a half-built collection behind.
        client.delete_collection(previous.collection_name)
    live = store.count_live(alias)
    if live == 0 and current is not None:
        info = client.get_collection(current) or {}
        if int(info.get("num_documents", 0)) > 0:
            raise LoaderError(
                f"refusing to replace {current!r} ({info.get('num_documents')} documents) with an empty "
                f"collection: the buffer holds no live documents for alias {alias!r}"
            )
    name = new_collection_name(alias)
    store.set_index_state(alias, name, wanted_hash, "start")
    client.create_collection({**schema, "name": name})
    n_ok = 0
    failed: list[pl.DataFrame] = []
    max_id_sent = 0
    in_flight: deque[Future[tuple[pl.DataFrame, pl.DataFrame]]] = deque()

    def settle(future: Future[tuple[pl.DataFrame, pl.DataFrame]]) -> None:
        nonlocal n_ok
        ok, bad = future.result()
        n_ok += ok.height
        failed.append(bad)
        if progress is not None:
            progress(ok.height + bad.height)

    try:
        # Typesense indexes one request while the next is parsed: two requests in flight keep it busy.
        with ThreadPoolExecutor(max_workers=IMPORTS_IN_FLIGHT, thread_name_prefix="import") as pool:
            for page in prefetch(store.all_live_documents(alias, _page_size(batch_size))):
                for chunk in _slices(page, batch_size):
                    while len(in_flight) >= IMPORTS_IN_FLIGHT:
                        settle(in_flight.popleft())
                    in_flight.append(pool.submit(_import, client, name, chunk, batch_size))
                if page.height:
                    max_id_sent = max(max_id_sent, int(page.get_column("id").max()))  # type: ignore[arg-type]
            while in_flight:
                settle(in_flight.popleft())
        n_bad = sum(frame.height for frame in failed)
        if n_bad and n_bad > max_failed_share * (n_ok + n_bad):
            first = pl.concat(failed).get_column("error").head(1).to_list()
            raise LoaderError(
                f"rebuild of alias {alias!r} abandoned: {n_bad} of {n_ok + n_bad} documents failed "
                f"(first error: {redact(str(first[0]) if first else '?')})"
            )
        client.upsert_alias(alias, name)
    except BaseException:
        with contextlib.suppress(Exception):
            client.delete_collection(name)
        with contextlib.suppress(Exception):
            if previous is not None and previous.full_import == "done":
                store.set_index_state(alias, previous.collection_name, previous.schema_hash, "done")
        raise
    store.set_index_state(alias, name, wanted_hash, "done")
    logger.info("alias %s now points at %s (was %s)", alias, name, current)
    bad_rows = pl.concat(failed) if failed else None
    if bad_rows is not None and bad_rows.height:
        # First: failed rows get new ids past max_id_sent, so the set-based marking below skips them.
        store.mark_failed(alias, bad_rows)
        tally.failed += bad_rows.height
    if max_id_sent:
        store.mark_upserts_loaded_through(alias, max_id_sent)
    tally.upserted += n_ok
    if current is not None and current != name:
        client.delete_collection(current)
    return name


def load_alias(
    store: BufferStore,
    client: TypesenseClient,
    alias: str,
    schema: Mapping[str, Any],
    *,
    batch_size: int = settings.IMPORT_BATCH_SIZE,
    reindex: bool = False,
    progress: Callable[[int], None] | None = None,
    max_failed_share: float = DEFAULT_MAX_FAILED_SHARE,
) -> LoadStats:
    """Bring the Typesense collection behind ``alias`` up to date with the buffer.

    Args:
        store: The buffer.
        client: Typesense client (retries transient errors itself).
        alias: Collection alias (the name searches use).
        schema: Collection schema (its ``name`` is ignored; each build gets ``<alias>_<timestamp>``).
        batch_size: Documents per import request (and per delete chunk).
        reindex: Force a rebuild into a new collection even when the schema did not change.
        progress: Called with the number of rows handled after every request (increments, not totals).
        max_failed_share: A rebuild with a larger share of rejected documents is abandoned and the alias keeps
            the old collection.

    Returns:
        Counts of upserted, deleted and failed documents, the serving collection and whether it was rebuilt.

    Raises:
        LoaderError: When a rebuild is abandoned or Typesense answers inconsistently.
        TypesenseError: When Typesense keeps failing after the client's retries (rows stay pending).

    """
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    wanted_hash = schema_hash(schema)
    current = client.get_alias(alias)
    if current is not None and client.get_collection(current) is None:
        current = None
    state = store.get_index_state(alias)
    if (
        state is not None
        and current is not None
        and state.full_import == "start"
        and state.collection_name == current
        and state.schema_hash == wanted_hash
    ):
        # A build finished and swapped the alias but died before recording it: the collection is complete;
        # its rows are still pending and the incremental pass below re-sends them.
        store.set_index_state(alias, current, wanted_hash, "done")
        state = store.get_index_state(alias)
    needs_rebuild = (
        reindex
        or current is None
        or state is None
        or state.full_import != "done"
        or state.collection_name != current
        or state.schema_hash != wanted_hash
    )
    tally = _Tally()
    collection = current
    if needs_rebuild:
        collection = _rebuild(
            store,
            client,
            alias=alias,
            schema=schema,
            wanted_hash=wanted_hash,
            current=current,
            batch_size=batch_size,
            progress=progress,
            tally=tally,
            max_failed_share=max_failed_share,
        )
    if collection is None:
        raise LoaderError(f"alias {alias!r} has no collection")
    _incremental(
        store,
        client,
        alias=alias,
        collection=collection,
        batch_size=batch_size,
        progress=progress,
        tally=tally,
    )
    return LoadStats(
        upserted=tally.upserted,
        deleted=tally.deleted,
        failed=tally.failed,
        collection=collection,
        reindexed=needs_rebuild,
    )
