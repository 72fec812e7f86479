"""Pure helpers of the pipelined sync (no services needed)."""

from __future__ import annotations

import os
import threading

from aac_etl.defs.catalog.pipeline import code_salt, lower_cpu_priority


def test_lower_cpu_priority_renices_every_thread() -> None:
    started = threading.Event()
    stop = threading.Event()
    seen: list[int] = []

    def worker() -> None:
        seen.append(threading.get_native_id())
        started.set()
        stop.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait(10)
    try:
        before = os.getpriority(os.PRIO_PROCESS, seen[0])
        target = min(19, max(before, 0) + 1)
        assert lower_cpu_priority(target) >= 1
        # The thread started before the call was reniced too (Linux keeps one nice value per thread).
        assert os.getpriority(os.PRIO_PROCESS, seen[0]) == target
        assert lower_cpu_priority(target) == 0
    finally:
        stop.set()
        thread.join()


def test_code_salt_is_stable_within_a_version() -> None:
    salt = code_salt()
    code_salt.cache_clear()
    assert code_salt() == salt
    assert 0 < salt < 2**64
