"""Webhook signatures: HMAC-SHA256 over a timestamp and the body, in one header.

Outbound deliveries and inbound events (``POST /v1/events/{event}``) are signed the same
way, Stripe's scheme under our name::

    AgentMesh-Signature: t=1764770000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

``v1`` is ``hex(HMAC-SHA256(secret, f"{t}.{body}"))``, ``t`` the signing time in Unix
seconds. A receiver recomputes it over the raw body, compares in constant time, and
refuses a ``t`` outside its replay window (``REPLAY_WINDOW_S``, five minutes), so a
captured request cannot be played again later. Several ``v1`` values may be present
(a secret being rotated): any one matching is enough.

Inbound, GitHub's ``X-Hub-Signature-256: sha256=<hex HMAC of the body>`` is accepted too,
so a GitHub webhook can wake an event step directly; it carries no timestamp, so it has no
replay window (GitHub's delivery id, ``X-GitHub-Delivery``, is the event's id).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

#: The header carrying the signature.
HEADER: Final = "AgentMesh-Signature"
#: GitHub's header (inbound only).
GITHUB_HEADER: Final = "X-Hub-Signature-256"
#: How far a signature's ``t`` may be from the receiver's clock, either way.
REPLAY_WINDOW_S: Final = 300


def _mac(secret: str, signed: bytes) -> str:
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``AgentMesh-Signature`` value for ``body`` signed at ``timestamp``."""
    return f"t={timestamp},v1={_mac(secret, str(timestamp).encode() + b'.' + body)}"


def check(
    header: str | None,
    secret: str,
    body: bytes,
    now: float,
    window: float = REPLAY_WINDOW_S,
) -> str:
    """Why ``header`` does not sign ``body`` with ``secret`` at ``now``, or "" when it
    does. The reasons never quote the expected signature."""
    if not header:
        return f"missing {HEADER} header"
    timestamp = ""
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if not timestamp.isdigit() or not candidates:
        return f"malformed {HEADER} header (expected t=<unix seconds>,v1=<hex>)"
    if abs(now - int(timestamp)) > window:
        return f"signature timestamp is outside the {window:g} s replay window"
    expected = _mac(secret, timestamp.encode() + b"." + body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        return "signature does not match"
    return ""


def check_github(header: str | None, secret: str, body: bytes) -> str:
    """Why GitHub's ``X-Hub-Signature-256`` does not sign ``body``, or ""."""
    if not header or not header.startswith("sha256="):
        return f"malformed {GITHUB_HEADER} header (expected sha256=<hex>)"
    if not hmac.compare_digest(_mac(secret, body), header.removeprefix("sha256=")):
        return "signature does not match"
    return ""
