"""Source registry: platform name -> Source implementation (imported lazily)."""

from __future__ import annotations

from importlib import import_module

from aac_etl.sources.base import Source

_REGISTRY: dict[str, tuple[str, str]] = {
    "opencart": ("aac_etl.sources.opencart", "OpenCartSource"),
    "files": ("aac_etl.sources.files", "FilesSource"),
}


def platforms() -> list[str]:
    """Names of the supported platforms."""
    return sorted(_REGISTRY)


def get_source(platform: str) -> Source:
    """Return the Source implementation of a platform.

    Args:
        platform: A name from :func:`platforms`.

    Raises:
        KeyError: Unknown platform (the message lists the known ones).

    """
    try:
        module_name, class_name = _REGISTRY[platform]
    except KeyError:
        raise KeyError(f"unknown platform {platform!r}; known: {', '.join(platforms())}") from None
    return getattr(import_module(module_name), class_name)()
