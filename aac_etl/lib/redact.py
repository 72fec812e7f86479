"""Mask secrets (passwords in URLs and DSNs, API keys) in text before it is logged or raised.

:func:`redact` masks:

* the password of any ``scheme://user:password@host`` URL (SQLAlchemy URLs, libpq URIs, HTTP URLs);
* ``password=...`` / ``passwd=...`` / ``pwd=...`` / ``api_key=...`` / ``token=...`` / ``secret=...`` pairs in
  libpq key/value DSNs, ODBC strings and URL query strings;
* the exact values of known secret environment variables (the Typesense API key, the DSN variables and
  any variable whose name contains PASSWORD, SECRET, TOKEN or API_KEY), plus the passwords inside DSN
  values, wherever they appear;
* any value registered at run time with :func:`register_secret` (e.g. a generated Typesense key).
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from aac_etl import settings

MASK = "***"
_MIN_SECRET_LEN = 6

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<password>[^@\s/]*)(?=@)")
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|api[_-]?key|apikey|token|secret|x-typesense-api-key)"
    r"\s*[=:]\s*[\"']?)(?P<value>[^\s\"'&;,}]+)",
    re.IGNORECASE,
)
_SECRET_ENV_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|APIKEY|DSN|_URL$", re.IGNORECASE)
_SECRET_ENV_NAMES = (
    settings.ENV_TYPESENSE_API_KEY,
    settings.ENV_BUFFER_URL,
    settings.ENV_DEMO_DSN,
)

_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so :func:`redact` masks it wherever it appears.

    Args:
        value: The secret; ``None`` and values shorter than 6 characters are ignored.

    """
    if value and len(value) >= _MIN_SECRET_LEN:
        _registered.add(value)


def _url_password(value: str) -> str | None:
    """Return the password embedded in a URL-like value, if any."""
    if "://" not in value:
        return None
    try:
        password = urlsplit(value).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _secret_values() -> list[str]:
    """Return the secret values to mask, longest first (so a longer secret wins over its substring)."""
    values = set(_registered)
    for name, value in os.environ.items():
        if not value or not (name in _SECRET_ENV_NAMES or _SECRET_ENV_NAME.search(name)):
            continue
        password = _url_password(value)
        if password is not None:
            values.add(password)
            continue
        if "://" in value:
            # A URL without a password (e.g. TYPESENSE_URL) is not a secret.
            continue
        values.add(value)
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact(text: str) -> str:
    """Return ``text`` with passwords, API keys and known secret values replaced by ``***``.

    Args:
        text: Any text: an exception message, a URL, a DSN, a log line.

    Returns:
        The same text with secrets masked; text without secrets is returned unchanged.

    """
    if not text:
        return text
    masked = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    masked = _KEY_VALUE.sub(lambda m: m.group("head") + MASK, masked)
    for value in _secret_values():
        masked = masked.replace(value, MASK)
    return masked
