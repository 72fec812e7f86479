"""TypesenseClient against a real Typesense (session server) and tiny real HTTP servers for failures."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import polars as pl
import pytest

from aac_etl.lib import typesense_client
from aac_etl.lib.typesense_client import DELETE_CHUNK_SIZE, ImportResult, TypesenseClient, TypesenseError
from aac_etl_tests.fixtures.typesense import TypesenseEndpoint

pytestmark = pytest.mark.typesense

FIELDS: list[dict[str, Any]] = [
    {"name": "title", "type": "string"},
    {"name": "description", "type": "string", "optional": True},
    {"name": "sku", "type": "string", "optional": True},
    {"name": "brand", "type": "string", "facet": True, "optional": True},
    {"name": "categories", "type": "string[]", "facet": True, "optional": True},
    {"name": "price", "type": "float", "sort": True, "optional": True},
    {"name": "stock_quantity", "type": "int64", "optional": True},
]


def doc(doc_id: str, title: str, **extra: Any) -> str:
    return json.dumps({"id": doc_id, "title": title, **extra})


def make_collection(client: TypesenseClient, name: str, **options: Any) -> None:
    client.create_collection({"name": name, "fields": FIELDS, **options})


def test_collection_lifecycle(typesense_client: TypesenseClient, collection_name: Callable[[str], str]) -> None:
    name = collection_name("life")
    assert typesense_client.health()
    assert typesense_client.get_collection(name) is None
    created = typesense_client.create_collection({"name": name, "fields": FIELDS})
    assert created["name"] == name
    assert typesense_client.get_collection(name) is not None
    assert name in {c["name"] for c in typesense_client.list_collections()}
    assert typesense_client.count(name) == 0
    with pytest.raises(TypesenseError) as exc:
        typesense_client.create_collection({"name": name, "fields": FIELDS})
    assert exc.value.status == 409
    assert exc.value.message == f"A collection with name `{name}` already exists."
    typesense_client.delete_collection(name)
    typesense_client.delete_collection(name)  # 404 ignored
    assert typesense_client.get_collection(name) is None
    with pytest.raises(TypesenseError) as missing:
        typesense_client.count(name)
    assert missing.value.status == 404


def test_import_mixed_good_and_bad_lines(
    typesense_client: TypesenseClient, collection_name: Callable[[str], str]
) -> None:
    name = collection_name("mixed")
    make_collection(typesense_client, name)
    lines = [
        doc("1:en", "Walnut desk lamp", brand="Kestrel", price=49.5, categories=["Home", "Lamps"]),
        doc("2:en", "Broken price", price="forty"),
        json.dumps({"id": "3:en", "description": "no title"}),
        doc("4:en", "Copper kettle", stock_quantity=3, description=None),
        "",
        "{not json",
        doc("5:en", "Wrong stock type", stock_quantity=2.5),
        doc("6:en", "Linen jacket", price=120),
    ]
    results = typesense_client.import_jsonl(name, lines, action="upsert", batch_size=1000)

    assert len(results) == len(lines)
    assert [r.success for r in results] == [True, False, False, True, False, False, False, True]
    assert [r.document_id for r in results] == ["1:en", "2:en", "3:en", "4:en", None, None, "5:en", "6:en"]
    assert results[0] == ImportResult(True, "1:en", None, None)
    assert results[1] == ImportResult(False, "2:en", "Field `price` must be a float.", 400)
    assert results[2] == ImportResult(
        False, "3:en", "Field `title` has been declared in the schema, but is not found in the document.", 400
    )
    assert results[4].code == 400
    assert results[4].error is not None
    assert results[4].error.startswith("Empty line")
    assert results[5].code == 400
    assert results[5].error is not None
    assert results[5].error.startswith("Bad JSON")
    assert results[6] == ImportResult(False, "5:en", "Field `stock_quantity` must be an int64.", 400)

    assert typesense_client.count(name) == 3
    found = typesense_client.search(name, "kettle")
    assert [hit["document"]["id"] for hit in found["hits"]] == ["4:en"]
    assert "description" not in found["hits"][0]["document"]  # null optional value is dropped
    facets = typesense_client.search(name, "*", facet_by="brand", filter_by="price:>40")
    assert facets["found"] == 2
    assert facets["facet_counts"][0]["counts"] == [{"count": 1, "highlighted": "Kestrel", "value": "Kestrel"}]


def test_import_rejects_raw_newline_and_bad_action(
    typesense_client: TypesenseClient, collection_name: Callable[[str], str]
) -> None:
    name = collection_name("nl")
    make_collection(typesense_client, name)
    pretty = json.dumps({"id": "p", "title": "Pretty"}, indent=2)
    results = typesense_client.import_jsonl(name, [pretty, doc("ok", "Fine")])
    assert [r.success for r in results] == [False, True]
    assert results[0].document_id == "p"
    assert typesense_client.import_jsonl(name, []) == []
    with pytest.raises(ValueError, match="action"):
        typesense_client.import_jsonl(name, [doc("x", "X")], action="replace")


def test_import_frame_keeps_bytes_order_and_escaped_ids(
    typesense_client: TypesenseClient, collection_name: Callable[[str], str]
) -> None:
    name = collection_name("frame")
    make_collection(typesense_client, name)
    quoted = 'say "hi" \\ 7'
    payloads = pl.Series(
        [doc("u:de", "Größe Fußmatte – 40 €"), None, doc(quoted, "Quoted id"), doc("bad", "Bad", price="x")],
        dtype=pl.Utf8,
    )
    outcome = typesense_client.import_frame(name, payloads)
    assert outcome.columns == ["success", "document_id", "error", "code"]
    assert outcome.get_column("success").to_list() == [True, False, True, False]
    assert outcome.get_column("document_id").to_list() == ["u:de", None, quoted, "bad"]
    assert outcome.get_column("code").to_list() == [None, 400, None, 400]
    found = typesense_client.search(name, "Fußmatte")
    assert [hit["document"]["title"] for hit in found["hits"]] == ["Größe Fußmatte – 40 €"]
    assert typesense_client.count(name) == 2


def test_upsert_is_idempotent_and_create_conflicts(
    typesense_client: TypesenseClient, collection_name: Callable[[str], str]
) -> None:
    name = collection_name("idem")
    make_collection(typesense_client, name)
    lines = [doc(f"{i}:en", f"Item {i}", price=float(i)) for i in range(50)]
    assert all(r.success for r in typesense_client.import_jsonl(name, lines))
    assert all(r.success for r in typesense_client.import_jsonl(name, lines))
    assert typesense_client.count(name) == 50

    changed = typesense_client.import_jsonl(name, [doc("7:en", "Renamed seven")])
    assert changed == [ImportResult(True, "7:en", None, None)]
    assert typesense_client.search(name, "renamed")["hits"][0]["document"] == {
        "id": "7:en",
        "title": "Renamed seven",
    }
    assert typesense_client.count(name) == 50

    conflict = typesense_client.import_jsonl(name, [doc("8:en", "Again")], action="create")
    assert conflict == [ImportResult(False, "8:en", "A document with id 8:en already exists.", 409)]
    update_missing = typesense_client.import_jsonl(name, [doc("nope", "Ghost")], action="update")
    assert update_missing == [ImportResult(False, "nope", "Could not find a document with id: nope", 404)]


def test_delete_documents(typesense_client: TypesenseClient, collection_name: Callable[[str], str]) -> None:
    name = collection_name("del")
    make_collection(typesense_client, name)
    ids = [f"{i}:variant-{i % 7}:de" for i in range(DELETE_CHUNK_SIZE + 40)] + ["a,b:en", "x-1.y_z:fr"]
    assert all(r.success for r in typesense_client.import_jsonl(name, [doc(i, "Doc") for i in ids]))
    keep = ids[:5]
    deleted = typesense_client.delete_documents(name, [*ids[5:], "never-existed"])
    assert deleted == len(ids) - 5
    assert typesense_client.count(name) == 5
    remaining = typesense_client.search(name, "*", per_page=50, include_fields="id")
    assert sorted(hit["document"]["id"] for hit in remaining["hits"]) == sorted(keep)
    assert typesense_client.delete_documents(name, []) == 0
    assert typesense_client.delete_documents(collection_name("missing"), ["1"]) == 0
    with pytest.raises(ValueError, match="backtick"):
        typesense_client.delete_documents(name, ["bad`id"])


def test_alias_swap(typesense_client: TypesenseClient, collection_name: Callable[[str], str]) -> None:
    alias = collection_name("products")
    v1, v2 = collection_name("products_v1"), collection_name("products_v2")
    assert typesense_client.get_alias(alias) is None
    make_collection(typesense_client, v1)
    typesense_client.upsert_alias(alias, v1)
    assert typesense_client.get_alias(alias) == v1
    typesense_client.import_jsonl(alias, [doc("1:en", "Old oak chair")])  # import through the alias
    assert typesense_client.count(alias) == 1
    assert typesense_client.search(alias, "oak")["found"] == 1

    make_collection(typesense_client, v2)
    typesense_client.import_jsonl(v2, [doc("1:en", "New steel chair"), doc("2:en", "Steel stool")])
    typesense_client.upsert_alias(alias, v2)
    assert typesense_client.get_alias(alias) == v2
    assert typesense_client.search(alias, "oak")["found"] == 0
    assert typesense_client.search(alias, "steel")["found"] == 2
    typesense_client.delete_collection(v1)
    assert typesense_client.get_collection(v1) is None
    assert typesense_client.count(alias) == 2
    assert typesense_client.list_aliases()[alias] == v2
    typesense_client.delete_alias(alias)
    typesense_client.delete_alias(alias)  # 404 ignored
    assert typesense_client.get_alias(alias) is None
    assert alias not in typesense_client.list_aliases()
    assert typesense_client.count(v2) == 2  # the collection stays


def test_update_collection_fields(typesense_client: TypesenseClient, collection_name: Callable[[str], str]) -> None:
    name = collection_name("patch")
    make_collection(typesense_client, name)
    typesense_client.update_collection_fields(
        name, [{"name": "availability", "type": "string", "facet": True, "optional": True}]
    )
    info = typesense_client.get_collection(name)
    assert info is not None
    assert "availability" in {f["name"] for f in info["fields"]}
    typesense_client.import_jsonl(name, [doc("1", "Tent", availability="in_stock")])
    result = typesense_client.search(name, "*", facet_by="availability")
    assert result["facet_counts"][0]["counts"][0]["value"] == "in_stock"
    with pytest.raises(TypesenseError) as exc:
        typesense_client.update_collection_fields(name, [{"name": "availability", "type": "string"}])
    assert exc.value.status == 400
    assert "already part of the schema" in exc.value.message


def test_nested_object_semantics_of_typesense_024(
    typesense_client: TypesenseClient, collection_name: Callable[[str], str]
) -> None:
    """Pin the server behaviour the loader relies on for the ``attributes`` object."""
    name = collection_name("nested")
    typesense_client.create_collection(
        {
            "name": name,
            "enable_nested_fields": True,
            "fields": [
                {"name": "title", "type": "string"},
                {"name": "attributes", "type": "object", "facet": True, "optional": True},
            ],
        }
    )
    first = {"color": "red", "size": 42, "images": [{"url": "https://x/1.jpg", "alt": "front"}]}
    results = typesense_client.import_jsonl(
        name,
        [
            doc("1", "Red chair", attributes={**first, "price_by_currency": {"EUR": 9.5}}),
            doc("2", "Blue chair", attributes={"color": "blue", "size": "L"}),
            doc("3", "Green chair", attributes={"color": ["green"]}),
            doc("4", "Plain chair", attributes=None),
        ],
    )
    assert results[0].success
    assert results[1].error == "Field `attributes.size` must be an int64."  # first batch locks the type
    assert results[2].error == "Field `attributes.color` must be a string."
    assert results[3].success  # null object on an optional field is accepted
    info = typesense_client.get_collection(name)
    assert info is not None
    detected = {f["name"]: (f["type"], f["facet"]) for f in info["fields"]}
    assert detected["attributes.color"] == ("string", True)
    assert detected["attributes.size"] == ("int64", True)
    assert detected["attributes.images.url"] == ("string[]", True)
    assert detected["attributes.price_by_currency.EUR"] == ("float", True)
    facets = typesense_client.search(name, "*", query_by="title", facet_by="attributes.color")
    assert facets["facet_counts"][0]["counts"][0]["value"] == "red"
    assert typesense_client.search(name, "red", query_by="attributes")["found"] == 1


# ---------------------------------------------------------------------- failures on real sockets


@dataclass
class ScriptedServer:
    """A tiny HTTP server answering from a script of (status, body) and recording requests."""

    script: list[tuple[int, str]]
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    url: str = ""


@contextmanager
def scripted_server(script: list[tuple[int, str]], repeat_last: bool = False) -> Iterator[ScriptedServer]:
    state = ScriptedServer(list(script))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received = b""
            if length:
                received = self.rfile.read(length)
            elif self.headers.get("Transfer-Encoding") == "chunked":
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    received += self.rfile.read(size + 2)[:size]
                    if size == 0:
                        break
            with lock:
                state.requests.append((self.command, self.path, dict(self.headers.items())))
                state.bodies.append(received)
                status, body = state.script[0] if repeat_last and len(state.script) == 1 else state.script.pop(0)
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


SECRET = "s3cr3t-key-that-must-not-leak"


def test_transient_errors_are_retried() -> None:
    script = [(503, '{"message": "Not Ready or Lagging"}'), (503, "{}"), (200, '[{"name": "c1"}]')]
    with scripted_server(script) as server, TypesenseClient(server.url, SECRET, backoff=0.01) as client:
        assert client.list_collections() == [{"name": "c1"}]
    assert [(method, path) for method, path, _ in server.requests] == [("GET", "/collections")] * 3
    assert all(headers.get("X-TYPESENSE-API-KEY") == SECRET for _, _, headers in server.requests)


def test_import_retried_then_parsed() -> None:
    answer = '{"success":true,"id":"a"}\n{"success":false,"code":400,"error":"Field `title` must be a string."}'
    script = [(429, '{"message": "Rate limited"}'), (200, answer)]
    with scripted_server(script) as server, TypesenseClient(server.url, SECRET, backoff=0.01) as client:
        results = client.import_jsonl("c", [doc("a", "A"), json.dumps({"id": "b", "title": 5})])
    assert results == [
        ImportResult(True, "a", None, None),
        ImportResult(False, "b", "Field `title` must be a string.", 400),
    ]
    assert len(server.requests) == 2
    assert server.requests[-1][1] == "/collections/c/documents/import?action=upsert&batch_size=1000&return_id=true"


def test_successful_answers_in_either_key_order_skip_the_json_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typesense writes ``{"id":...,"success":true}``: such lines must not cost a JSON parse each."""
    parsed: list[str] = []
    original = typesense_client._parse_import_line

    def counting(answer: str, sent: str) -> ImportResult:
        parsed.append(answer)
        return original(answer, sent)

    monkeypatch.setattr(typesense_client, "_parse_import_line", counting)
    answer = "\n".join(
        [
            '{"id":"a","success":true}',
            '{"success":true,"id":"b"}',
            '{"id":"c\\"q","success":true}',
            '{"success":true}',
            '{"id":"e","success":false,"code":400,"error":"Bad."}',
        ]
    )
    sent = [doc("a", "A"), doc("b", "B"), doc('c"q', "C"), doc("d", "D"), doc("e", "E")]
    with scripted_server([(200, answer)]) as server, TypesenseClient(server.url, SECRET, backoff=0.01) as client:
        results = client.import_jsonl("c", sent)
    assert results == [
        ImportResult(True, "a", None, None),
        ImportResult(True, "b", None, None),
        ImportResult(True, 'c"q', None, None),
        ImportResult(True, "d", None, None),
        ImportResult(False, "e", "Bad.", 400),
    ]
    # Only the escaped id, the answer without an id and the failure are parsed one by one.
    assert len(parsed) == 3


def test_import_body_is_the_lines_bytes_and_all_successes_take_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One-line JSON objects go out as they are (a slice of a longer series, multi-byte text), read back fast."""
    parsed: list[str] = []
    monkeypatch.setattr(typesense_client, "_parse_import_line", lambda answer, sent: parsed.append(answer))
    lines = pl.Series("payload", [doc("x", "X"), doc("a", "Crème brûlée"), doc("b", "日本"), doc("y", "Y")])
    answer = '{"id":"a","success":true}\n{"id":"b","success":true}'
    with scripted_server([(200, answer)]) as server, TypesenseClient(server.url, SECRET, backoff=0.01) as client:
        outcome = client.import_frame("c", lines.slice(1, 2))
    assert server.bodies == ["\n".join(lines.slice(1, 2).to_list()).encode()]
    assert outcome.to_dict(as_series=False) == {
        "success": [True, True],
        "document_id": ["a", "b"],
        "error": [None, None],
        "code": [None, None],
    }
    assert parsed == []


def test_lines_that_are_not_plain_json_objects_get_the_exact_checks() -> None:
    assert typesense_client._all_sendable(pl.Series([doc("a", "A"), doc("b", "B")]))
    assert not typesense_client._all_sendable(pl.Series([doc("a", "A"), None]))
    assert not typesense_client._all_sendable(pl.Series([doc("a", "A"), "  "]))
    assert not typesense_client._all_sendable(pl.Series([doc("a", "A"), '{"id":"b",\n"title":"B"}']))
    assert not typesense_client._all_sendable(pl.Series([doc("a", "A"), ' {"id":"b"}']))


def test_client_errors_are_not_retried_and_never_leak_the_key() -> None:
    script = [(400, json.dumps({"message": f"Bad filter; you sent key {SECRET}"}))]
    with scripted_server(script) as server, TypesenseClient(server.url, SECRET, backoff=0.01) as client:
        with pytest.raises(TypesenseError) as exc:
            client.search("c", "q", filter_by="price:>")
        assert SECRET not in repr(client)
    assert len(server.requests) == 1
    assert exc.value.status == 400
    assert exc.value.message == "Bad filter; you sent key ***"
    assert SECRET not in str(exc.value)
    assert SECRET not in repr(exc.value)


def test_retries_give_up_with_status() -> None:
    with (
        scripted_server([(502, "<html>bad gateway</html>")], repeat_last=True) as server,
        TypesenseClient(server.url, SECRET, retries=3, backoff=0.01) as client,
        pytest.raises(TypesenseError) as exc,
    ):
        client.get_collection("c")
    assert exc.value.status == 502
    assert len(server.requests) == 3


def test_import_result_count_mismatch_raises() -> None:
    with (
        scripted_server([(200, '{"success":true}')]) as server,
        TypesenseClient(server.url, SECRET, backoff=0.01) as client,
        pytest.raises(TypesenseError, match="1 result lines for 2 documents"),
    ):
        client.import_jsonl("c", [doc("a", "A"), doc("b", "B")])


def test_connection_refused_is_retried_then_raised() -> None:
    with scripted_server([]) as server:
        url = server.url  # the port is free again once the server is closed
    with TypesenseClient(url, SECRET, retries=2, backoff=0.01) as client:
        assert not client.health()
        with pytest.raises(TypesenseError) as exc:
            client.list_collections()
    assert exc.value.status == 0
    assert "ConnectError" in exc.value.message
    assert SECRET not in str(exc.value)


def test_wrong_key_on_real_server(typesense_server: TypesenseEndpoint) -> None:
    wrong = SECRET + "-wrong"
    with TypesenseClient(typesense_server.url, wrong) as client, pytest.raises(TypesenseError) as exc:
        client.list_collections()
    assert exc.value.status == 401
    assert "x-typesense-api-key" in exc.value.message
    assert wrong not in str(exc.value)
    assert typesense_server.api_key not in repr(typesense_server)


def test_typesense_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(TypesenseError(404, "Not Found")))  # noqa: S301 - our own bytes
    assert isinstance(error, TypesenseError)
    assert (error.status, error.message, str(error)) == (404, "Not Found", "Typesense error 404: Not Found")
