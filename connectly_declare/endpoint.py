"""Endpoints for people: the host of a base URL, and whether it is on loopback (where the
simulator listens)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

# --base-url's variable: where `apply` sends instead of declare.yaml's base_url (with
# --sim, a `connectly-declare sim` running apart; it prints the line that sets it).
BASE_URL_ENV = "DECLARE_BASE_URL"


def host_of(url: str) -> str:
    """host[:port] of `url` (never a user or password)."""
    parts = urlsplit(url)
    host = parts.hostname or url
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def clean_url(url: str) -> str:
    """`url` as plans record and show it: no user, password, query or fragment."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = ["BASE_URL_ENV", "clean_url", "host_of", "is_loopback"]
