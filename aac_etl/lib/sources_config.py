"""sources.yaml: the declared catalog sources, parsed into validated pydantic models."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aac_etl import settings

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")


class ScheduleConfig(BaseModel):
    """Nightly full-sync schedule of one source."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    enabled: bool = True


class SourceConfig(BaseModel):
    """One catalog source as declared in sources.yaml.

    The connection is never inline: ``dsn_env`` names the environment variable holding the DSN.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str
    platform: Literal["opencart", "files"]
    dsn_env: str | None = None
    path: str | None = None
    organization: str
    index_slug: str
    languages: dict[str, str] = Field(default_factory=lambda: {"en-gb": "en"})
    default_currency: str = "USD"
    storefront_url: str
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    max_drop_share: float = Field(default=settings.DEFAULT_MAX_DROP_SHARE, ge=0, le=1)
    max_invalid_share: float = Field(default=settings.DEFAULT_MAX_INVALID_SHARE, ge=0, le=1)
    variant_documents: bool = False
    options: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"source name {value!r} must match {_NAME_RE.pattern} (it becomes a Dagster key)")
        return value

    @field_validator("organization", "index_slug")
    @classmethod
    def _check_slug(cls, value: str) -> str:
        if not _SLUG_RE.match(value):
            raise ValueError(f"{value!r} must match {_SLUG_RE.pattern} (it becomes a Typesense alias)")
        return value

    @field_validator("default_currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"default_currency {value!r} must be an uppercase ISO 4217 code")
        return value

    @field_validator("dsn_env")
    @classmethod
    def _check_dsn_env(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z_][A-Z0-9_]*", value):
            raise ValueError(
                f"dsn_env must name an environment variable (UPPER_SNAKE_CASE), not hold a DSN: got a value "
                f"of {len(value)} characters"
            )
        return value

    @model_validator(mode="after")
    def _check_connection(self) -> SourceConfig:
        if self.platform == "files" and not self.path:
            raise ValueError(f"source {self.name!r}: platform 'files' needs 'path'")
        if self.platform != "files" and not self.dsn_env:
            raise ValueError(f"source {self.name!r}: platform {self.platform!r} needs 'dsn_env'")
        if self.variant_documents:
            raise ValueError(
                f"source {self.name!r}: variant_documents is not supported by platform {self.platform!r} yet "
                "(OpenCart 3 options are flattened into attributes.option_*; file sources send documents as they are)"
            )
        return self

    @property
    def collection_alias(self) -> str:
        """Typesense alias of the tenant collection: ``<organization>_<index_slug>``."""
        return f"{self.organization}_{self.index_slug}"


class SourcesFile(BaseModel):
    """The whole sources.yaml file."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    sources: list[SourceConfig]

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesFile:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate source names: {', '.join(dupes)}")
        return self


def sources_file_path() -> Path:
    """Return the sources file path: ``$AAC_ETL_SOURCES`` or ``sources.yaml`` in the working directory."""
    return Path(os.environ.get(settings.ENV_SOURCES_FILE) or settings.DEFAULT_SOURCES_FILE).resolve()


def load_sources(path: Path | None = None) -> list[SourceConfig]:
    """Parse and validate the sources file.

    Args:
        path: File to read; defaults to :func:`sources_file_path`.

    Returns:
        The declared sources, in file order.

    Raises:
        FileNotFoundError: The file does not exist.
        pydantic.ValidationError: The file does not match the schema.

    """
    file_path = path or sources_file_path()
    data = yaml.safe_load(file_path.read_text(encoding="utf-8")) or {}
    base = file_path.parent
    parsed = SourcesFile.model_validate(data)
    resolved: list[SourceConfig] = []
    for declared in parsed.sources:
        if declared.path and not Path(declared.path).is_absolute():
            resolved.append(declared.model_copy(update={"path": str((base / declared.path).resolve())}))
        else:
            resolved.append(declared)
    return resolved
