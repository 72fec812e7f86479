"""Pure helpers of the pipelined sync (no services needed)."""

from __future__ import annotations

from aac_etl.defs.catalog.pipeline import code_salt


def test_code_salt_is_stable_within_a_version() -> None:
    salt = code_salt()
    code_salt.cache_clear()
    assert code_salt() == salt
    assert 0 < salt < 2**64
