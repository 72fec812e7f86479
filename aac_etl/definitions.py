"""Dagster code location entry point (see workspace.yaml)."""

import dagster as dg

from aac_etl.defs.location import build_definitions

defs: dg.Definitions = build_definitions()
