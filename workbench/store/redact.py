"""What is never saved: secrets in a model record (API keys, tokens, passwords in a URL).

A conversation keeps the model spec it was held with, for people to read. The spec of a remote model
carries its API key (``ModelSpec.api_key``); the key stays in the environment or the running session and
:func:`scrub_model` removes it, and any other secret-looking entry, before a record is written or shown.
Migration 0003 cleans the records of stores written before (with a frozen copy of these rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_NAMES = frozenset(
    {"api_key", "apikey", "key", "password", "passwd", "secret", "token", "authorization", "bearer"}
)
SECRET_SUFFIXES = ("_key", "_token", "_secret", "_password")
_URL_PREFIX = "openai:"


def is_secret_name(name: str) -> bool:
    """Whether an entry called ``name`` holds a secret (``api_key``, ``access_token``, ``password``...)."""
    lowered = name.lower().replace("-", "_")
    return lowered in SECRET_NAMES or lowered.endswith(SECRET_SUFFIXES)


def scrub_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a model record without its secrets.

    Entries with a secret name are dropped (in nested objects too), and a URL's password and
    secret-named query parameters are cut out of every string (``openai:http://me:pw@host/v1#m`` is
    saved as ``openai:http://me@host/v1#m``).
    """
    return {str(name): _scrub_value(value) for name, value in model.items() if not is_secret_name(str(name))}


def _scrub_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return scrub_model(value)
    if isinstance(value, list):
        return [_scrub_value(item) for item in value]
    if isinstance(value, str):
        return scrub_url(value)
    return value


def scrub_url(text: str) -> str:
    """Return ``text`` without a URL password or secret query parameters (other text is unchanged)."""
    prefix = _URL_PREFIX if text.startswith(_URL_PREFIX) else ""
    rest = text[len(prefix) :]
    if "://" not in rest:
        return text
    try:
        parts = urlsplit(rest)
        password = parts.password
    except ValueError:
        return text
    netloc = parts.netloc
    if password is not None:
        netloc = netloc.rpartition("@")[2]
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(name, value) for name, value in pairs if not is_secret_name(name)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    if netloc == parts.netloc and query == parts.query:
        return text
    return prefix + urlunsplit(parts._replace(netloc=netloc, query=query))
