"""aac_etl: catalog-to-search pipeline as a Dagster code location."""

import os

# polars allocates through its own jemalloc, which by default keeps one arena per thread group and freed pages
# for 10 s: a sync's many short-lived chunk frames then hold hundreds of MB of resident memory they no longer
# use. One arena and a 1 s decay keep the same speed (measured) with a smaller footprint. Read once, when polars
# first allocates, so it is set here, before any module imports polars; a value set by the operator wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0")
