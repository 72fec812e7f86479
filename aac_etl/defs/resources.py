"""Connections as Dagster resources; every secret comes from an environment variable (dg.EnvVar)."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import PrivateAttr

from aac_etl import settings
from aac_etl.lib.buffer import BufferStore
from aac_etl.lib.typesense_client import TypesenseClient


def default_buffer_url() -> str:
    """Return the embedded default buffer: a DuckDB file in the state folder."""
    return f"duckdb:///{settings.state_dir() / 'buffer.duckdb'}"


class SourceDatabaseResource(dg.ConfigurableResource):
    """Connection to a CMS database; ``dsn`` is bound to the environment variable named in sources.yaml."""

    dsn: str


class BufferResource(dg.ConfigurableResource):
    """The search_ingest_buffer database: DuckDB file by default, any SQLAlchemy URL by config."""

    url: str | None = None

    _store: BufferStore | None = PrivateAttr(default=None)

    def store(self) -> BufferStore:
        """Return the (schema-checked) buffer store."""
        if self._store is None:
            self._store = BufferStore(self.url or default_buffer_url())
            self._store.ensure_schema()
        return self._store


class TypesenseResource(dg.ConfigurableResource):
    """A Typesense server: TYPESENSE_URL/TYPESENSE_API_KEY when set, else the embedded local server."""

    url: str | None = None
    api_key: str | None = None

    def client(self) -> TypesenseClient:
        """Return a client; starts (or reuses) the embedded local server when no URL is configured."""
        if self.url:
            return TypesenseClient(self.url, self.api_key or "")
        from aac_etl.lib.typesense_server import ensure_local_server

        server = ensure_local_server()
        return TypesenseClient(server.url, server.api_key_value)


def env_or_none(name: str) -> dg.EnvVar | None:
    """Bind a resource field to an environment variable only when it is set (so defaults still apply)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def shared_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources shared by every source and the loader."""
    buffer_url = env_or_none(settings.ENV_BUFFER_URL)
    ts_url = env_or_none(settings.ENV_TYPESENSE_URL)
    ts_key = env_or_none(settings.ENV_TYPESENSE_API_KEY)
    return {
        "buffer": BufferResource(url=buffer_url) if buffer_url else BufferResource(),
        "typesense": TypesenseResource(url=ts_url, api_key=ts_key) if ts_url else TypesenseResource(),
    }
