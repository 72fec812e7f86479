"""Thin, fast Typesense client on one pooled ``httpx.Client`` with tenacity retries.

Transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried with exponential
backoff; every other non-2xx answer raises :class:`TypesenseError` carrying the HTTP status and
Typesense's own message. The API key is sent only as a header: it never appears in a repr, a log
line or an exception message (it is scrubbed from every message built here).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import quote

import httpx
import polars as pl
import pyarrow as pa
from pydantic import SecretStr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from aac_etl.lib.redact import redact, register_secret
from aac_etl.lib.text import may_hold_bytes

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-TYPESENSE-API-KEY"
IMPORT_ACTIONS = frozenset({"create", "upsert", "update", "emplace"})
DELETE_CHUNK_SIZE = 250
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_REDACTED = "***"


class TypesenseError(Exception):
    """A Typesense request failed.

    Attributes:
        status: HTTP status of the answer, or 0 when no answer was received (connection error, timeout).
        message: Typesense's error message (or the transport error), with the API key scrubbed.

    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Typesense error {status}: {message}")
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[type[TypesenseError], tuple[int, str]]:
        """Pickle by the constructor's arguments, so the error crosses process boundaries (process pools)."""
        return (type(self), (self.status, self.message))


class _RetryableStatusError(Exception):
    """Internal: an HTTP answer with a status worth retrying (429, 5xx)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass(frozen=True)
class ImportResult:
    """Outcome of one JSONL line of an import.

    Attributes:
        success: True when Typesense indexed the document.
        document_id: The document id (from Typesense or the input line), None when unknown.
        error: Typesense's error text for a failed line, None on success.
        code: Typesense's error code for a failed line (400, 404, 409...), None on success.

    """

    success: bool
    document_id: str | None
    error: str | None
    code: int | None


class TypesenseClient:
    """Synchronous Typesense client with one keep-alive connection pool.

    Args:
        url: Base URL of the server, e.g. ``http://127.0.0.1:8108``.
        api_key: Admin API key; kept in a ``SecretStr`` and only ever sent as a header.
        timeout: Per-request timeout in seconds (connect, read, write and pool).
        retries: Attempts per request for transient failures (1 disables retrying).
        backoff: First backoff delay in seconds; doubles per attempt, capped at 10 s.

    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.2,
    ) -> None:
        self._url = url.rstrip("/")
        self._api_key = SecretStr(api_key)
        register_secret(api_key)
        self._retries = max(1, retries)
        self._backoff = backoff
        self._http = httpx.Client(
            base_url=self._url,
            headers={API_KEY_HEADER: api_key, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=60.0),
        )

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return self._url

    def __repr__(self) -> str:
        return f"TypesenseClient(url={self._url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # ------------------------------------------------------------------ health and collections

    def health(self) -> bool:
        """Return True when the server answers ``/health`` with ``ok: true`` (one attempt, no retry)."""
        try:
            response = self._http.get("/health", timeout=5.0)
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        try:
            return bool(response.json().get("ok"))
        except ValueError:
            return False

    def create_collection(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Create a collection.

        Args:
            schema: Typesense collection schema (``name``, ``fields``, ...).

        Returns:
            The created collection as Typesense describes it.

        Raises:
            TypesenseError: e.g. 409 when the collection exists, 400 for an invalid schema.

        """
        return self._json("POST", "/collections", json_body=schema)

    def get_collection(self, name: str) -> dict[str, Any] | None:
        """Return a collection's description (name or alias), or None when it does not exist."""
        return self._json_or_none("GET", f"/collections/{_seg(name)}")

    def delete_collection(self, name: str) -> None:
        """Drop a collection; a missing collection is not an error."""
        self._request("DELETE", f"/collections/{_seg(name)}", ignore=(404,))

    def list_collections(self) -> list[dict[str, Any]]:
        """Return every collection's description."""
        result = self._request("GET", "/collections").json()
        return list(result) if isinstance(result, list) else []

    def update_collection_fields(self, name: str, fields: list[dict[str, Any]]) -> None:
        """Alter a collection's schema (PATCH), e.g. add fields or ``{"name": f, "drop": true}``.

        Args:
            name: Collection name.
            fields: Field definitions to add (or drop markers), as Typesense expects them.

        Raises:
            TypesenseError: 400 when a field already exists or the change is invalid, 404 when missing.

        """
        self._request("PATCH", f"/collections/{_seg(name)}", json_body={"fields": fields})

    # ------------------------------------------------------------------ aliases

    def get_alias(self, alias: str) -> str | None:
        """Return the collection an alias points to, or None when the alias does not exist."""
        result = self._json_or_none("GET", f"/aliases/{_seg(alias)}")
        if result is None:
            return None
        name = result.get("collection_name")
        return str(name) if name is not None else None

    def upsert_alias(self, alias: str, collection: str) -> None:
        """Create or atomically repoint an alias to a collection."""
        self._request("PUT", f"/aliases/{_seg(alias)}", json_body={"collection_name": collection})

    def delete_alias(self, alias: str) -> None:
        """Drop an alias (not its collection); a missing alias is not an error."""
        self._request("DELETE", f"/aliases/{_seg(alias)}", ignore=(404,))

    def list_aliases(self) -> dict[str, str]:
        """Return every alias and the collection it points to."""
        result = self._request("GET", "/aliases").json()
        found = result.get("aliases", []) if isinstance(result, dict) else []
        return {str(a["name"]): str(a["collection_name"]) for a in found if isinstance(a, dict) and "name" in a}

    # ------------------------------------------------------------------ documents

    def import_jsonl(
        self,
        collection: str,
        lines: Sequence[str],
        *,
        action: str = "upsert",
        batch_size: int = 1000,
    ) -> list[ImportResult]:
        """Import JSONL documents in one request and parse every per-line result (see :meth:`import_frame`).

        Args:
            collection: Collection name or alias.
            lines: One JSON document per item, without trailing newline.
            action: ``create``, ``upsert``, ``update`` or ``emplace``.
            batch_size: Server-side indexing batch size (documents per batch inside Typesense).

        Returns:
            One ImportResult per input line, in input order.

        """
        outcome = self.import_frame(
            collection, pl.Series("payload", lines, dtype=pl.Utf8), action=action, batch_size=batch_size
        )
        return [ImportResult(*row) for row in outcome.iter_rows()]

    def import_frame(
        self,
        collection: str,
        payloads: pl.Series,
        *,
        action: str = "upsert",
        batch_size: int = 1000,
    ) -> pl.DataFrame:
        """Import a Utf8 series of JSON documents in one request and parse every per-line result, vectorized.

        Typesense answers 200 even when documents fail, with one JSON result per line. Blank (or null) lines
        and lines holding a raw newline are never sent (Typesense would silently skip or split them): they get a
        local failed result so the output stays aligned with the input. The body is built from the series'
        UTF-8 bytes without a Python string per document, and the usual ``{"success":true,...}`` answers are
        read without a JSON parse; only failed lines are parsed one by one.

        Args:
            collection: Collection name or alias.
            payloads: One JSON document per row, without trailing newline.
            action: ``create``, ``upsert``, ``update`` or ``emplace``.
            batch_size: Server-side indexing batch size (documents per batch inside Typesense).

        Returns:
            One row per input row, in input order: ``success`` (Boolean), ``document_id`` (Utf8, from Typesense
            or the line, null when unknown), ``error`` (Utf8, null on success), ``code`` (Int64, null on success).

        Raises:
            ValueError: For an unknown action or a non-positive batch size.
            TypesenseError: When the request fails, or the number of result lines differs from the
                number of lines sent.

        """
        if action not in IMPORT_ACTIONS:
            raise ValueError(f"action must be one of {sorted(IMPORT_ACTIONS)}, got {action!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        lines = payloads.cast(pl.Utf8).rename("line")
        if _all_sendable(lines):
            blank = pl.repeat(False, lines.len(), dtype=pl.Boolean, eager=True)
            sendable = ~blank
            to_send = lines
        else:
            blank = (lines.is_null() | ~lines.str.contains(r"\S")).fill_null(True)
            sendable = ~blank & ~lines.str.contains("\n", literal=True).fill_null(False)
            to_send = lines.filter(sendable)
        answers = pl.Series("answer", [], dtype=pl.Utf8)
        if to_send.len():
            body = _jsonl_body(to_send)
            params = {"action": action, "batch_size": str(batch_size), "return_id": "true"}
            response = self._request(
                "POST",
                f"/collections/{_seg(collection)}/documents/import",
                params=params,
                content_factory=lambda: iter((body,)),
                headers={"Content-Type": "text/plain"},
            )
            answers = pl.Series("answer", response.text.splitlines(), dtype=pl.Utf8)
            if answers.len() != to_send.len():
                raise TypesenseError(
                    response.status_code,
                    self._scrub(
                        f"import into {collection!r} returned {answers.len()} result lines "
                        f"for {to_send.len()} documents"
                    ),
                )
        return _import_outcome(lines, blank, sendable, answers)

    def delete_documents(self, collection: str, ids: Sequence[str]) -> int:
        """Delete documents by id, in chunks of filter ``id:[`a`,`b`,...]``.

        Args:
            collection: Collection name or alias.
            ids: Document ids; each is backtick-quoted, so commas and colons are safe.

        Returns:
            Number of documents Typesense deleted (missing ids and a missing collection count 0).

        Raises:
            ValueError: When an id contains a backtick (it cannot be escaped in a filter).

        """
        for doc_id in ids:
            if "`" in doc_id:
                raise ValueError(f"document id cannot contain a backtick: {doc_id!r}")
        deleted = 0
        for start in range(0, len(ids), DELETE_CHUNK_SIZE):
            chunk = ids[start : start + DELETE_CHUNK_SIZE]
            filter_by = "id:[" + ",".join(f"`{doc_id}`" for doc_id in chunk) + "]"
            response = self._request(
                "DELETE",
                f"/collections/{_seg(collection)}/documents",
                params={"filter_by": filter_by, "batch_size": str(DELETE_CHUNK_SIZE)},
                ignore=(404,),
            )
            if response.status_code == 404:
                return deleted
            deleted += int(response.json().get("num_deleted", 0))
        return deleted

    def search(
        self,
        collection_or_alias: str,
        q: str,
        *,
        query_by: str = "title,description,brand,categories,sku",
        filter_by: str | None = None,
        per_page: int = 10,
        **params: Any,
    ) -> dict[str, Any]:
        """Search a collection (or alias).

        Args:
            collection_or_alias: Collection name or alias.
            q: Query text, ``*`` for all.
            query_by: Comma-separated fields to search.
            filter_by: Optional Typesense filter expression.
            per_page: Hits per page.
            **params: Any other search parameter; booleans become ``true``/``false``, lists are comma-joined.

        Returns:
            Typesense's search answer (``found``, ``hits``, ``facet_counts``, ...).

        """
        query: dict[str, str] = {"q": q, "query_by": query_by, "per_page": str(per_page)}
        if filter_by is not None:
            query["filter_by"] = filter_by
        for key, value in params.items():
            if value is not None:
                query[key] = _param(value)
        return self._json("GET", f"/collections/{_seg(collection_or_alias)}/documents/search", params=query)

    def count(self, collection_or_alias: str) -> int:
        """Return the number of documents in a collection (or the collection behind an alias).

        Raises:
            TypesenseError: 404 when the collection does not exist.

        """
        info = self._json("GET", f"/collections/{_seg(collection_or_alias)}")
        return int(info.get("num_documents", 0))

    # ------------------------------------------------------------------ transport

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> dict[str, Any]:
        result = self._request(method, path, params=params, json_body=json_body).json()
        if not isinstance(result, dict):
            raise TypesenseError(200, f"unexpected answer to {method} {path}: not a JSON object")
        return result

    def _json_or_none(self, method: str, path: str) -> dict[str, Any] | None:
        response = self._request(method, path, ignore=(404,))
        if response.status_code == 404:
            return None
        result = response.json()
        return result if isinstance(result, dict) else None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        content_factory: Callable[[], Iterator[bytes | memoryview]] | None = None,
        headers: Mapping[str, str] | None = None,
        ignore: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one request with retries; return the response or raise TypesenseError.

        Args:
            method: HTTP method.
            path: Path below the base URL (segments already quoted).
            params: Query parameters.
            json_body: JSON body, or None.
            content_factory: Callable returning a fresh body iterator per attempt (streamed upload).
            headers: Extra headers.
            ignore: Error statuses returned instead of raised (e.g. 404).

        """

        def attempt() -> httpx.Response:
            # httpx and h11 write any bytes-like chunk (a memoryview of an Arrow buffer spares a copy).
            content = cast("Iterator[bytes]", content_factory()) if content_factory is not None else None
            response = self._http.request(method, path, params=params, json=json_body, content=content, headers=headers)
            if response.status_code in RETRY_STATUSES:
                response.read()
                raise _RetryableStatusError(response)
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self._retries),
            wait=wait_exponential(multiplier=self._backoff, min=self._backoff, max=10.0),
            retry=retry_if_exception_type((httpx.TransportError, _RetryableStatusError)),
            before_sleep=self._log_retry(method, path),
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except _RetryableStatusError as exc:
            response = exc.response
        except httpx.TransportError as exc:
            raise TypesenseError(0, self._scrub(f"{method} {path} failed: {type(exc).__name__}: {exc}")) from None
        if response.is_success or response.status_code in ignore:
            return response
        raise TypesenseError(response.status_code, self._scrub(_error_message(response)))

    def _log_retry(self, method: str, path: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            logger.warning(
                "Typesense %s %s: %s; retry %d in %.2fs",
                method,
                path,
                self._scrub(f"{type(error).__name__}: {error}") if error is not None else "transient error",
                state.attempt_number,
                wait,
            )

        return before_sleep

    def _scrub(self, text: str) -> str:
        key = self._api_key.get_secret_value()
        return redact(text.replace(key, _REDACTED) if key else text)


def _seg(name: str) -> str:
    """Quote one URL path segment (collection or alias name)."""
    return quote(name, safe="")


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _all_sendable(lines: pl.Series) -> bool:
    """Whether every line is a one-line JSON object (no null, starts with ``{``, no control byte), checked fast.

    False sends the lines through the exact checks (blank lines, raw newlines).
    """
    return lines.null_count() == 0 and not may_hold_bytes(lines, below=0x20) and bool(lines.str.starts_with("{").all())


def _jsonl_body(lines: pl.Series) -> memoryview:
    """Return the lines joined by newlines as UTF-8 bytes: a view of the joined value's Arrow buffer, no copy."""
    joined = lines.str.join("\n").to_arrow()
    if joined.type != pa.large_string():
        joined = joined.cast(pa.large_string())
    if not len(joined):
        return memoryview(b"")
    _, offsets, data = joined.buffers()
    start, end = memoryview(offsets).cast("q")[joined.offset : joined.offset + 2]
    return memoryview(data)[start:end]


_ANSWER_ID = r'"id":"((?:[^"\\]|\\.)*)"'
_SUCCESS_ANSWER = rf'^\{{(?:{_ANSWER_ID},"success":true|"success":true,{_ANSWER_ID})\}}$'
"""A successful result line with its id (``return_id``), read without a JSON parse: the id comes before ``success``
as Typesense writes it (``{"id":"p-1","success":true}``) or after it."""


def _import_outcome(lines: pl.Series, blank: pl.Series, sendable: pl.Series, answers: pl.Series) -> pl.DataFrame:
    """One result row per input line: Typesense's answers for the lines sent, local failures for the others.

    The usual ``{"id":"...","success":true}`` answer is read with a regex; every other row (a failed or unusual
    answer, an id with an escape sequence, a line that was not sent) gets an :class:`ImportResult` built in Python.
    """
    height = lines.len()
    sent_rows = sendable.arg_true()
    # One regex pass: the id is in the first group (Typesense's order) or in the second (the other order).
    groups = answers.str.extract_groups(_SUCCESS_ANSWER).struct.unnest()
    ids = groups.select(pl.coalesce(pl.all())).to_series()
    # Without an id (or with an escape sequence in it) the slow path takes the id from the line sent.
    fast = (ids.is_not_null() & ~ids.str.contains("\\", literal=True)).fill_null(False)
    if sent_rows.len() == height and fast.all():
        # Every line was sent and succeeded (the usual answer): no row to place one by one.
        return pl.DataFrame(
            {
                "success": pl.repeat(True, height, dtype=pl.Boolean, eager=True),
                "document_id": ids,
                "error": pl.repeat(None, height, dtype=pl.Utf8, eager=True),
                "code": pl.repeat(None, height, dtype=pl.Int64, eager=True),
            }
        )
    fast_rows, slow_rows = sent_rows.filter(fast), sent_rows.filter(~fast)
    slow = [
        (row, _parse_import_line(answer, line))
        for row, answer, line in zip(
            slow_rows.to_list(), answers.filter(~fast).to_list(), lines.gather(slow_rows).to_list(), strict=True
        )
    ]
    for row in (~sendable).arg_true().to_list():
        if blank[row]:
            result = ImportResult(False, None, "Empty line: no document to import.", 400)
        else:
            result = ImportResult(
                False, _line_id(lines[row]), "Line contains a raw newline: not a single JSONL document.", 400
            )
        slow.append((row, result))
    columns = {
        "success": pl.repeat(False, height, dtype=pl.Boolean, eager=True).scatter(fast_rows, True),
        "document_id": pl.repeat(None, height, dtype=pl.Utf8, eager=True).scatter(fast_rows, ids.filter(fast)),
        "error": pl.repeat(None, height, dtype=pl.Utf8, eager=True),
        "code": pl.repeat(None, height, dtype=pl.Int64, eager=True),
    }
    if slow:
        rows = [row for row, _ in slow]
        values = {
            "success": [r.success for _, r in slow],
            "document_id": [r.document_id for _, r in slow],
            "error": [r.error for _, r in slow],
            "code": [r.code for _, r in slow],
        }
        columns = {
            name: column.scatter(rows, pl.Series(values[name], dtype=column.dtype)) for name, column in columns.items()
        }
    return pl.DataFrame(columns)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return response.text[:500]


def _line_id(line: str) -> str | None:
    """Return the ``id`` of a JSON document line, None when it has none or is not JSON."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    if isinstance(document, dict):
        doc_id = document.get("id")
        return doc_id if isinstance(doc_id, str) else None
    return None


def _parse_import_line(answer: str, sent: str) -> ImportResult:
    try:
        result = json.loads(answer)
    except ValueError:
        return ImportResult(False, _line_id(sent), f"Unparseable import result: {answer[:200]}", None)
    if not isinstance(result, dict):
        return ImportResult(False, _line_id(sent), f"Unexpected import result: {answer[:200]}", None)
    doc_id = result.get("id")
    if not isinstance(doc_id, str):
        doc_id = _line_id(sent)
    if result.get("success") is True:
        return ImportResult(True, doc_id, None, None)
    code = result.get("code")
    error = result.get("error")
    return ImportResult(
        False,
        doc_id,
        str(error) if error is not None else "unknown import error",
        int(code) if isinstance(code, int) else None,
    )
