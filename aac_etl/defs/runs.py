"""Reading what a finished run reported (used by the CLI, the benchmark and the tests)."""

from typing import Any

import dagster as dg


def materialization_metadata(result: dg.ExecuteInProcessResult, *key: str) -> dict[str, Any]:
    """Return the metadata values of the run's last materialization of the asset ``key``.

    Args:
        result: An in-process run result.
        *key: The asset key's path, e.g. ``("demo_shop", "search_buffer")`` or ``("typesense", alias)``.

    Returns:
        Plain values by metadata key; empty when the run did not materialize the asset.

    """
    wanted = dg.AssetKey(list(key))
    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        data = event.step_materialization_data
        if event.asset_key == wanted and data is not None:
            metadata = {name: getattr(value, "value", value) for name, value in data.materialization.metadata.items()}
    return metadata
