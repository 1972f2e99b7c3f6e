"""Bearer-token authentication to the coordinator: which token (``resolve_token``: the
``token`` argument of ``Agent`` and ``Client``, else ``AGENTMESH_TOKEN``) and the gRPC
metadata that carries it on every call (``auth_metadata``: ``authorization: Bearer
<token>``), computed once when the agent or client is made.

The token itself never appears in a message, a log line or a repr: errors say where the
token came from and what is wrong with it, not what it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TOKEN_ENV = "AGENTMESH_TOKEN"
AUTHORIZATION = "authorization"

Metadata = tuple[tuple[str, str], ...]


def check_token(token: str, where: str) -> str:
    """``token``, if it can go in an ``authorization`` header: printable ASCII without
    spaces.  ValueError naming ``where`` (the argument, flag, file or variable it came
    from) otherwise; the message never contains the token."""
    for c in token:
        if "!" <= c <= "~":
            continue
        if c in "\r\n":
            what = "a line break"
        elif c.isspace():
            what = "whitespace"
        elif c.isascii():
            what = "a control character"
        else:
            what = "a non-ASCII character"
        raise ValueError(
            f"{where}: the bearer token contains {what}; a token is printable ASCII "
            "without spaces or line breaks"
        )
    return token


def resolve_token(token: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The token to send: ``token`` when given (``""``: explicitly none), else the
    ``AGENTMESH_TOKEN`` of ``environ`` (unset or empty: none).  None for no token.
    ValueError, naming the ``token`` argument or ``AGENTMESH_TOKEN``, for a token with
    whitespace, line breaks or characters outside printable ASCII."""
    if token is None:
        value, where = environ.get(TOKEN_ENV, ""), TOKEN_ENV
    else:
        value, where = token, "token argument"
    if not value:
        return None
    return check_token(value, where)


def auth_metadata(token: str | None) -> Metadata:
    """The call metadata that authenticates with ``token``: ``(("authorization",
    "Bearer <token>"),)``, or ``()`` for no token (None or empty)."""
    if not token:
        return ()
    return ((AUTHORIZATION, f"Bearer {token}"),)
