"""A PostgreSQL connection string's secrets and whereabouts: `Redactor` removes the DSN and
its password (however libpq quotes them) from text that may be shown; `where` names host,
port and database only."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

_KEYWORD_PASSWORD = re.compile(r"password\s*=\s*('[^']*'|\S+)")


def _loose_passwords(dsn: str) -> set[str]:
    """The userinfo (`user:password`), the password alone and `password=...` of a DSN,
    found without parsing it: libpq quotes pieces of a DSN it cannot parse in its errors
    ('missing "=" after "postgresql:/user:PASSWORD@..."'), found by the secret sweep."""
    found = {m.strip("'") for m in _KEYWORD_PASSWORD.findall(dsn)}
    for token in dsn.split():
        head, at, _ = token.rpartition("@")
        if at:
            userinfo = head.rsplit("/", 1)[-1]
            found.add(userinfo)
            found.add(userinfo.partition(":")[2])
    return {f for f in found if len(f) >= 3}


class Redactor:
    """Removes connection strings and passwords from text that may be shown."""

    def __init__(self, dsns: Sequence[str]) -> None:
        secrets: set[str] = set()
        for dsn in dsns:
            secrets.add(dsn)
            password = _password_of(dsn)
            if password:
                secrets.update({password, unquote(password)})
            # A DSN that does not parse still holds its password: look for it loosely too.
            for loose in _loose_passwords(dsn):
                secrets.update({loose, unquote(loose)})
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def _password_of(dsn: str) -> str | None:
    if "://" in dsn:
        try:
            return urlsplit(dsn).password
        except ValueError:
            return None
    try:
        return conninfo_to_dict(dsn).get("password")  # type: ignore[return-value]
    except psycopg.Error:
        return None


def where(dsn: str) -> str:
    """host:port/dbname of a DSN, or a placeholder when it cannot be parsed."""
    try:
        parts: Mapping[str, Any] = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(unparsable connection string)"
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    port = str(parts.get("port") or 5432)
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or '?'}"
