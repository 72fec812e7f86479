"""Buffer -> Typesense: incremental loads and zero-downtime full reindexes behind an alias.

:func:`load_alias` decides between two modes:

* **Reindex** when the alias has no collection, ``reindex=True``, the recorded schema hash differs from the
  given schema's, or a previous full import did not finish. A new collection ``<alias>_<UTC timestamp>`` is
  created, every live document of the buffer is imported into it (index state ``full_import=start``), the
  alias is swapped to it (``done``), the rows are marked, the old collection is dropped and a final
  incremental pass applies whatever changed during the build. Searches through the alias only ever see the
  old complete collection or the new complete one; if the build fails the half-built collection is dropped
  and the alias is untouched.
* **Incremental** otherwise: pending rows are streamed in id order; upserts go through ``import_frame``
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
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import polars as pl

from aac_etl import settings
from aac_etl.lib.buffer import BufferStore, IndexState
from aac_etl.lib.redact import redact
from aac_etl.lib.typesense_client import TypesenseClient

logger = logging.getLogger(__name__)

READ_PAGE_MIN_ROWS = 20_000
"""Buffer rows read (and marked) per database round trip; imports are still sent ``batch_size`` at a time."""
PREFETCH_PAGES = 2
IMPORTS_IN_FLIGHT = 2
"""Import requests kept in flight: one is indexed while the next is parsed. One in flight measured 0.79-0.80 of the
bare import rate at 100k products against 0.84-0.85 with two (benchmarks/run_benchmark.py, same hour)."""
DEFAULT_MAX_FAILED_SHARE = 0.5
"""A rebuild whose documents fail above this share is abandoned (the alias keeps the old collection)."""

_KEY_COLUMNS = ("external_id", "content_hash", "op")
T = TypeVar("T")


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
        skipped: Why nothing was done (another run is rebuilding the alias), else None.

    """

    upserted: int
    deleted: int
    failed: int
    collection: str
    reindexed: bool
    skipped: str | None = None


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


def _no_failures(rows: pl.DataFrame) -> pl.DataFrame:
    """Return an empty failures frame shaped like :func:`_import`'s."""
    return rows.select(_KEY_COLUMNS).clear().with_columns(pl.lit(None, dtype=pl.Utf8).alias("error"))


def _import(
    client: TypesenseClient, collection: str, rows: pl.DataFrame, batch_size: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Import upsert rows; return (successes[external_id, content_hash, op], failures[..., error])."""
    outcome = client.import_frame(
        collection, rows.get_column("payload"), action="upsert", batch_size=batch_size
    ).select("success", pl.col("error").alias("message"), "code")
    if outcome.height != rows.height:
        raise LoaderError(f"import into {collection!r} returned {outcome.height} results for {rows.height} rows")
    if outcome.get_column("success").all():
        return rows.select(_KEY_COLUMNS), _no_failures(rows)
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


def prefetch(pages: Iterator[T], depth: int = PREFETCH_PAGES, *, name: str = "buffer-prefetch") -> Iterator[T]:
    """Produce items in a background thread so reads (buffer pages, source chunks) overlap the consumer's work.

    Args:
        pages: The iterator to drain (for buffer pages: each page is read in its own short transaction).
        depth: Items read ahead at most (bounds memory).
        name: Name of the reader thread (shows in stack dumps).

    Yields:
        The items, in order; an exception of the reader is raised in the consumer.

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

    thread = threading.Thread(target=reader, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        thread.join(timeout=10)


def _import_pipelined(
    client: TypesenseClient, collection: str, frames: Iterable[pl.DataFrame], batch_size: int
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Import upsert rows request by request, keeping ``IMPORTS_IN_FLIGHT`` requests in flight.

    Typesense indexes one request while the next is parsed, so two in flight keep it busy.

    Args:
        client: Typesense client.
        collection: Target collection.
        frames: Upsert rows (``external_id``, ``payload``, ``content_hash``, ``op``), sliced into requests of
            ``batch_size``; consumed lazily, as requests complete.
        batch_size: Documents per request.

    Yields:
        ``(successes, failures)`` of each request, in order (see :func:`_import`).

    """
    in_flight: deque[Future[tuple[pl.DataFrame, pl.DataFrame]]] = deque()
    with ThreadPoolExecutor(max_workers=IMPORTS_IN_FLIGHT, thread_name_prefix="import") as pool:
        for frame in frames:
            for chunk in _slices(frame, batch_size):
                while len(in_flight) >= IMPORTS_IN_FLIGHT:
                    yield in_flight.popleft().result()
                in_flight.append(pool.submit(_import, client, collection, chunk, batch_size))
        while in_flight:
            yield in_flight.popleft().result()


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

    def pages() -> Iterator[pl.DataFrame]:
        nonlocal max_id_sent
        for page in prefetch(store.all_live_documents(alias, _page_size(batch_size))):
            if page.height:
                max_id_sent = max(max_id_sent, int(page.get_column("id").max()))  # type: ignore[arg-type]
            yield page

    try:
        for ok, bad in _import_pipelined(client, name, pages(), batch_size):
            n_ok += ok.height
            failed.append(bad)
            if progress is not None:
                progress(ok.height + bad.height)
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


STALE_BUILD_SECONDS = 180
"""A streaming build whose index state was not refreshed for this long is taken for dead (its run crashed)."""
HEARTBEAT_SECONDS = 30
"""A streaming build refreshes its index state at most this often, well within :data:`STALE_BUILD_SECONDS` (a write to
the buffer database after every chunk cost about 0.3 CPU-s per 100k products)."""
STREAMING = "streaming"
"""Index state of a build fed by a running full sync (:class:`ShadowBuild`); it refreshes it as it imports."""


def build_in_progress(state: IndexState | None, current: str | None) -> bool:
    """Tell whether another run is building a new collection for the alias right now (fresh heartbeat)."""
    if state is None or state.full_import != STREAMING or state.collection_name == current or state.updated_at is None:
        return False
    age = datetime.now(UTC).replace(tzinfo=None) - state.updated_at.replace(tzinfo=None)
    return age.total_seconds() < STALE_BUILD_SECONDS


def rebuild_reason(
    store: BufferStore, client: TypesenseClient, alias: str, schema: Mapping[str, Any], *, reindex: bool = False
) -> tuple[str | None, str | None]:
    """Decide whether the alias needs a new collection, adopting a build that swapped but was never recorded.

    Args:
        store: The buffer (holds the index state).
        client: Typesense client.
        alias: Collection alias.
        schema: Collection schema the alias must be served with.
        reindex: A rebuild was asked for explicitly.

    Returns:
        ``(reason, current)``: why a rebuild is needed (None when the alias can be loaded incrementally) and the
        collection the alias points at now (None when there is none).

    """
    wanted_hash = schema_hash(schema)
    current = client.get_alias(alias)
    if current is not None and client.get_collection(current) is None:
        current = None
    state = store.get_index_state(alias)
    if (
        state is not None
        and current is not None
        and state.full_import in ("start", STREAMING)
        and state.collection_name == current
        and state.schema_hash == wanted_hash
    ):
        # A build finished and swapped the alias but died before recording it: the collection is complete;
        # its rows are still pending and the incremental pass re-sends them.
        store.set_index_state(alias, current, wanted_hash, "done")
        state = store.get_index_state(alias)
    if reindex:
        return "reindex requested", current
    if current is None:
        return "the alias has no collection", current
    if state is None or state.collection_name != current:
        return "the alias points at a collection this buffer did not build", current
    if state.full_import != "done":
        return "the previous full import did not finish", current
    if state.schema_hash != wanted_hash:
        return "the collection schema changed", current
    return None, current


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
    reason, current = rebuild_reason(store, client, alias, schema, reindex=reindex)
    needs_rebuild = reason is not None
    state = store.get_index_state(alias)
    if state is not None and build_in_progress(state, current):
        logger.warning(
            "alias %s is being rebuilt into %s by another run (heartbeat %s): this load leaves its rows pending",
            alias,
            state.collection_name,
            state.updated_at,
        )
        return LoadStats(0, 0, 0, current or "", reindexed=False, skipped="rebuild in progress")
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


SHADOW_QUEUE_CHUNKS = 2
"""Payload chunks waiting for the shadow importer at most (the sync blocks beyond: bounded memory)."""

KEY_PARTITION_ROWS = 250_000
"""Rows (live and sent together) per partition of :func:`unacknowledged`."""


def unacknowledged(live: pl.DataFrame, sent: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """Compare a build's live buffer rows with the documents it sent, exactly.

    The set differences are computed one hash partition of ``external_id`` at a time (a row's partitions agree on
    both sides): the anti join on two text columns over a whole catalog at once took about 240 MB at 960,000
    documents, in the steps that set a first load's peak; a partition at a time, about 50 MB.

    Args:
        live: ``id``, ``external_id``, ``content_hash`` of the live buffer rows.
        sent: ``external_id``, ``content_hash`` of the documents sent (acknowledged or rejected).

    Returns:
        The live rows whose exact version was not sent, and the sent external ids that are not live.

    """
    partitions = max(1, (live.height + sent.height) // KEY_PARTITION_ROWS)
    pairs: Iterable[tuple[pl.DataFrame, pl.DataFrame]] = [(live, sent)]
    if partitions > 1:
        part = (pl.col("external_id").cast(pl.Utf8).hash() % partitions).alias("_part")
        live_parts, sent_parts = live.with_columns(part), sent.with_columns(part)

        def one(frame: pl.DataFrame, number: int) -> pl.DataFrame:
            return frame.filter(pl.col("_part") == number).drop("_part")

        pairs = ((one(live_parts, n), one(sent_parts, n)) for n in range(partitions))
    missing: list[pl.DataFrame] = []
    orphans: list[pl.Series] = []
    for live_part, sent_part in pairs:
        missing.append(live_part.join(sent_part, on=["external_id", "content_hash"], how="anti"))
        orphans.append(sent_part.join(live_part, on="external_id", how="anti").get_column("external_id"))
    return pl.concat(missing), pl.concat(orphans)


class ShadowBuild:
    """A zero-downtime rebuild fed by a running full sync: documents reach the new collection as they are made.

    A full sync that finds the alias in need of a rebuild (no collection yet, schema changed, reindex asked)
    creates the new collection first and hands each payload chunk to :meth:`feed`; a background thread imports
    the chunks (two requests in flight, every result line read) while the sync extracts and normalizes the next
    ones. After the sync passed its checks and enqueued into the buffer, :meth:`finish` imports whatever live
    buffer row was not streamed (other sources of the alias, last good versions of quarantined records), checks
    the failure share, swaps the alias, records the state, marks exactly the acknowledged rows and drops the old
    collection. :meth:`abort` drops the new collection and leaves the alias and the buffer untouched.

    The index state says ``streaming`` while the build runs and is refreshed as chunks are imported (at most every
    :data:`HEARTBEAT_SECONDS`), so a load launched meanwhile leaves the alias alone; after a crash the state goes
    stale and the next load rebuilds from the buffer as usual.
    """

    def __init__(
        self,
        store: BufferStore,
        client: TypesenseClient,
        alias: str,
        schema: Mapping[str, Any],
        *,
        current: str | None,
        batch_size: int = settings.IMPORT_BATCH_SIZE,
        max_failed_share: float = DEFAULT_MAX_FAILED_SHARE,
    ) -> None:
        """Prepare a build of ``alias`` (nothing is created before :meth:`start`)."""
        self.store = store
        self.client = client
        self.alias = alias
        self.schema = dict(schema)
        self.current = current
        self.batch_size = batch_size
        self.max_failed_share = max_failed_share
        self.name = new_collection_name(alias)
        self.hash = schema_hash(schema)
        self.feed_wait_seconds = 0.0
        """Seconds the sync waited for the importer (Typesense was the bottleneck)."""
        self.finish_wait_seconds = 0.0
        """Seconds :meth:`finish` waited for the streamed chunks still being imported."""
        self._previous: IndexState | None = None
        self._queue: queue.Queue[pl.DataFrame | None] = queue.Queue(maxsize=SHADOW_QUEUE_CHUNKS)
        self._ok: list[pl.DataFrame] = []
        self._bad: list[pl.DataFrame] = []
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Create the new collection, record the ``streaming`` state and start the importer thread."""
        self._previous = self.store.get_index_state(self.alias)
        previous = self._previous
        if previous is not None and previous.full_import != "done" and previous.collection_name != self.current:
            with contextlib.suppress(Exception):  # a half-built collection of a crashed build
                self.client.delete_collection(previous.collection_name)
        self.store.set_index_state(self.alias, self.name, self.hash, STREAMING)
        self.client.create_collection({**self.schema, "name": self.name})
        self._thread = threading.Thread(target=self._importer, name="shadow-import", daemon=True)
        self._thread.start()

    def feed(self, payloads: pl.DataFrame) -> None:
        """Queue one chunk of payloads (``external_id``, ``payload``, ``content_hash``) for import.

        Blocks while the importer is two chunks behind. Raises the importer's error, if it died.
        """
        if payloads.height == 0:
            return
        rows = payloads.select("external_id", "payload", "content_hash").with_columns(op=pl.lit("upsert"))
        started = time.perf_counter()
        try:
            while True:
                self._raise_importer_error()
                try:
                    self._queue.put(rows, timeout=0.5)
                    return
                except queue.Full:
                    continue
        finally:
            self.feed_wait_seconds += time.perf_counter() - started

    def _raise_importer_error(self) -> None:
        if self._error is not None:
            raise LoaderError(f"streaming import into {self.name!r} failed: {redact(str(self._error))}") from (
                self._error
            )

    def _record(self, results: Iterable[tuple[pl.DataFrame, pl.DataFrame]]) -> None:
        for ok, bad in results:
            self._ok.append(ok.select("external_id", "content_hash"))  # bounded: two short columns per document
            self._bad.append(bad)

    def _importer(self) -> None:
        def queued() -> Iterator[pl.DataFrame]:
            beat = time.monotonic()
            while (rows := self._queue.get()) is not None:
                yield rows
                # Heartbeat: a load launched meanwhile sees a live build and leaves the alias alone.
                if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                    self.store.set_index_state(self.alias, self.name, self.hash, STREAMING)
                    beat = time.monotonic()

        try:
            self._record(_import_pipelined(self.client, self.name, queued(), self.batch_size))
        except BaseException as exc:  # handed to the sync thread
            self._error = exc
            with contextlib.suppress(queue.Empty):
                while self._queue.get_nowait() is not None:
                    pass

    def _join(self) -> None:
        if self._thread is None:
            return
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._thread = None

    def finish(self, *, progress: Callable[[int], None] | None = None) -> LoadStats:
        """Complete the build after the sync enqueued into the buffer; swap the alias to it.

        Args:
            progress: Called with the number of rows handled after every request of the remainder and final pass.

        Returns:
            Counts of the whole build (streamed + remainder + pending deletes applied afterwards).

        Raises:
            LoaderError: The importer failed or too many documents were rejected (the build is dropped, the alias
                keeps its collection).

        """
        try:
            # The buffer is written (the sync enqueued before this call): its live keys are read while the last
            # streamed requests are still being indexed, not after.
            live = self.store.live_keys(self.alias)
            max_id = int(live.get_column("id").max()) if live.height else None  # type: ignore[arg-type]
            started = time.perf_counter()
            self._join()
            self.finish_wait_seconds = time.perf_counter() - started
            self._raise_importer_error()
            keys = pl.DataFrame(schema={"external_id": pl.Utf8, "content_hash": pl.Utf8})
            # One copy of the streamed keys (a catalog's worth): the per-chunk lists are released as they merge.
            ok = pl.concat([keys, *self._ok], rechunk=True)
            bad = pl.concat(self._bad, rechunk=True) if self._bad else None
            self._ok, self._bad = [], []
            sent = ok if bad is None else pl.concat([ok, bad.select(keys.columns)])
            # Orphans: streamed documents the buffer does not hold live (nothing should, but never leave one).
            missing, orphans = unacknowledged(live, sent)
            if missing.height:
                self._import_remainder(missing)
            for offset in range(0, orphans.len(), self.batch_size):
                self.client.delete_documents(self.name, orphans.slice(offset, self.batch_size).to_list())
            # The remainder's results went to the (emptied) lists.
            n_ok = ok.height + sum(frame.height for frame in self._ok)
            failed = [frame for frame in (bad, *self._bad) if frame is not None]
            bad = pl.concat(failed) if failed else None
            del ok, sent, live, missing, orphans
            n_bad = 0 if bad is None else bad.height
            if n_bad and n_bad > self.max_failed_share * (n_ok + n_bad):
                first = bad.get_column("error").head(1).to_list() if bad is not None else []
                raise LoaderError(
                    f"rebuild of alias {self.alias!r} abandoned: {n_bad} of {n_ok + n_bad} documents failed "
                    f"(first error: {redact(str(first[0]) if first else '?')})"
                )
            self.client.upsert_alias(self.alias, self.name)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self.store.set_index_state(self.alias, self.name, self.hash, "done")
        logger.info("alias %s now points at %s (was %s), built while the sync ran", self.alias, self.name, self.current)
        tally = _Tally(upserted=n_ok, failed=n_bad)
        if bad is not None and n_bad:
            # First: failed rows get new ids past max_id, so the set-based marking below skips them.
            self.store.mark_failed(self.alias, bad)
        if max_id is not None:
            # Every live row up to max_id is in the new collection (streamed or imported above, or rejected).
            self.store.mark_upserts_loaded_through(self.alias, max_id)
        if self.current is not None and self.current != self.name:
            with contextlib.suppress(Exception):
                self.client.delete_collection(self.current)
        # Deletes of documents that left the source (absent from the new collection anyway) and any change
        # enqueued meanwhile.
        _incremental(
            self.store,
            self.client,
            alias=self.alias,
            collection=self.name,
            batch_size=self.batch_size,
            progress=progress,
            tally=tally,
        )
        return LoadStats(tally.upserted, tally.deleted, tally.failed, self.name, reindexed=True)

    def _import_remainder(self, missing: pl.DataFrame) -> None:
        """Import the live buffer rows the sync did not stream (read by id, two requests in flight)."""
        max_id = int(missing.get_column("id").max())  # type: ignore[arg-type]
        wanted = missing.select("id")
        pages = prefetch(self.store.all_live_documents(self.alias, _page_size(self.batch_size), max_id=max_id))
        rows = (page.join(wanted, on="id", how="semi") for page in pages)
        self._record(_import_pipelined(self.client, self.name, rows, self.batch_size))

    def abort(self) -> None:
        """Drop the new collection; the alias keeps serving its collection and the state is restored."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(BaseException):
            self._join()
        with contextlib.suppress(Exception):
            self.client.delete_collection(self.name)
        previous = self._previous
        with contextlib.suppress(Exception):
            if previous is not None and previous.full_import == "done":
                self.store.set_index_state(self.alias, previous.collection_name, previous.schema_hash, "done")
            else:
                self.store.set_index_state(self.alias, self.name, self.hash, "aborted")
