"""Run the Great Expectations suite in a child process, started early so its seconds of import overlap the sync.

Why a process and not a thread: importing great_expectations in a thread while the sync's main thread works
raced with the main thread's own lazy imports. The import lock only serializes ``import`` statements; code that
reads a module attribute (SQLAlchemy's ``util.preloaded``, polars' optional-dependency checks) can see a module
the other thread is still initializing, and fail with "partially initialized module". A child process shares no
modules, takes its import and suite off the sync's GIL, and gives its ~260 MB back when it exits, usually long
before the sync's own memory peak.

Protocol: the parent starts ``python -m aac_etl.lib.suite_worker``; the child imports great_expectations, writes
:data:`READY`, then reads one pickled ``(sample, contract, max_rows)`` from stdin and writes one pickled
``("ok", SuiteResult)`` or ``("error", traceback)`` to its original stdout (anything else it prints goes to
stderr). A closed stdin with no job (an unchanged sync, an aborted one, a dead parent) ends it quietly.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import select
import subprocess
import sys
import traceback
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import polars as pl

from aac_etl.lib.contract import Contract, SuiteResult

SUITE_TIMEOUT_S = 900.0
"""Longest wait for the suite (import included) before the worker is killed and the check fails."""

READY = b"R"
"""Written by the worker once great_expectations is imported (before the answer, which starts with b"\x80")."""

STDERR_TAIL_CHARS = 2_000
"""How much of a failed worker's stderr goes into the error message."""


SINGLE_THREADED_MATH = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Set for the worker unless the environment sets them: a suite over a few thousand rows gains nothing from BLAS
threads, whose spinning after each call cost the worker about 7% more CPU (2.6 against 2.4 CPU-s per suite), taken
from the sync and the Typesense import beside it."""


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the worker's environment: ``environ`` with :data:`SINGLE_THREADED_MATH` where it sets none."""
    return {**SINGLE_THREADED_MATH, **environ}


class SuiteWorkerError(RuntimeError):
    """The suite could not run: the worker raised, died or timed out (the message says which)."""


class SuiteWorker:
    """One child process that imports great_expectations now and runs the suite on one sample later.

    Example:
        worker = SuiteWorker()              # the import starts
        ...                                 # the sync goes on
        future = worker.submit(sample, contract, max_rows=5_000)
        result = future.result()            # a SuiteResult, or SuiteWorkerError
        worker.close()

    """

    def __init__(self) -> None:
        """Start the child process."""
        self._process = subprocess.Popen(  # noqa: S603 - our own module, run by the current interpreter
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_environment(os.environ),
        )
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[SuiteResult] | None = None
        self._ready = False

    def ready(self) -> bool:
        """Return whether the worker has imported great_expectations (never blocks; a dead worker counts as ready).

        A caller with a partial sample can send it as soon as this is true instead of keeping an idle worker
        (and its memory) waiting for more rows.
        """
        stdout = self._process.stdout
        if self._ready or self._future is not None or stdout is None:
            return True
        readable, _, _ = select.select([stdout], [], [], 0)
        if readable:
            os.read(stdout.fileno(), len(READY))  # READY, or b"" from a dead worker: submit then reports the failure
            self._ready = True
        return self._ready

    @property
    def pid(self) -> int:
        """Process id of the worker."""
        return self._process.pid

    def submit(self, sample: pl.DataFrame, contract: Contract, *, max_rows: int) -> Future[SuiteResult]:
        """Send the sample to the worker; the returned future resolves when the suite has run.

        Args:
            sample: Documents to check (the worker samples ``max_rows`` of them, seeded).
            contract: The contract the suite is derived from.
            max_rows: Row cap of the suite's sample.

        Returns:
            A future of the :class:`~aac_etl.lib.contract.SuiteResult`; it raises :class:`SuiteWorkerError`.

        Raises:
            RuntimeError: When a sample was already submitted.

        """
        if self._future is not None:
            raise RuntimeError("SuiteWorker runs one sample; start another worker for the next one")
        job = pickle.dumps((sample, contract, max_rows), protocol=pickle.HIGHEST_PROTOCOL)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-suite")
        self._future = self._pool.submit(self._exchange, job)
        return self._future

    def _exchange(self, job: bytes) -> SuiteResult:
        try:
            out, err = self._process.communicate(job, timeout=SUITE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            raise SuiteWorkerError(f"Great Expectations suite did not finish within {SUITE_TIMEOUT_S:.0f} s") from None
        if not self._ready and out.startswith(READY):
            out = out[len(READY) :]
        tail = err.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:].strip()
        if self._process.returncode != 0 or not out:
            raise SuiteWorkerError(f"Great Expectations worker exited with code {self._process.returncode}: {tail}")
        status, value = pickle.loads(out)  # noqa: S301 - written by our own child process
        if status != "ok":
            raise SuiteWorkerError(f"Great Expectations suite failed: {value}")
        return value

    def close(self) -> None:
        """Stop the worker: wait for a submitted suite to end; a worker that never got a sample is ended now."""
        if self._pool is not None:
            self._pool.shutdown()
        self._reap()

    def kill(self) -> None:
        """Stop the worker at once (an aborted sync); a pending future fails."""
        with contextlib.suppress(OSError):
            self._process.kill()
        self.close()

    def _reap(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()


def _serve() -> int:
    """Serve one job: the worker's side of the protocol (see the module docstring)."""
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints of the libraries must not corrupt the answer
    # The import makes a few hundred thousand long-lived objects and hardly any garbage: without the cyclic
    # collector's passes over them it takes about 10% less CPU, and frozen they stay out of the suite's passes.
    gc.disable()
    importlib.import_module("great_expectations")
    from aac_etl.lib.contract import run_expectation_suite

    gc.freeze()
    gc.enable()

    answer.write(READY)
    answer.flush()

    try:
        sample, contract, max_rows = pickle.load(sys.stdin.buffer)  # noqa: S301 - written by our own parent
    except EOFError:
        return 0
    result: tuple[str, Any]
    try:
        result = ("ok", run_expectation_suite(sample, contract, max_rows=max_rows))
    except Exception as exc:  # any failure goes to the parent, which fails the check
        result = ("error", "".join(traceback.format_exception(exc)).strip())
    answer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    answer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
