"""ListExecutions' request: its filters as the store's ``ExecutionWhere``, and its page
tokens (opaque to clients: the (created, id) of a page's last row, base64url JSON)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from agentmesh.v1 import workflow_pb2
from coordinator.errors import InvalidArgument
from coordinator.store import ExecutionRecord, ExecutionWhere

# Rows when the request says 0, and the most it may ask for.
DEFAULT_LIST = 50
MAX_LIST = 1000
MAX_QUERY = 256


@dataclass(frozen=True, slots=True)
class Listing:
    """What one ListExecutions call asks the runtime for."""

    workflow_name: str
    statuses: set[str] | None
    limit: int
    where: ExecutionWhere


def listing_of(
    request: workflow_pb2.ListExecutionsRequest,
    status_name: Mapping[workflow_pb2.ExecutionStatus, str],
) -> Listing:
    """The request's filters, checked; ``status_name`` maps enum numbers to the
    store's status names. Raises ``InvalidArgument`` naming the bad field."""
    if request.limit > MAX_LIST:
        raise InvalidArgument(f"limit must be at most {MAX_LIST}, got {request.limit}")
    if len(request.query) > MAX_QUERY:
        raise InvalidArgument(f"query must be at most {MAX_QUERY} characters")
    statuses: set[str] | None = None
    if request.statuses:
        statuses = set()
        for code in request.statuses:
            name = status_name.get(code)
            if name is None:
                raise InvalidArgument(f"statuses: {code} is not an execution status")
            statuses.add(name)
    after = request.started_after.ToDatetime(UTC) if request.HasField("started_after") else None
    before = request.started_before.ToDatetime(UTC) if request.HasField("started_before") else None
    where = ExecutionWhere(
        parent_id=request.parent_execution_id or None,
        created_after=after,
        created_before=before,
        after=decode_token(request.page_token) if request.page_token else None,
        text=request.query,
    )
    return Listing(request.workflow_name, statuses, request.limit or DEFAULT_LIST, where)


def encode_token(last: ExecutionRecord) -> str:
    """The page token that continues past ``last``."""
    raw = json.dumps([last.created.isoformat(), last.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, str]:
    """The (created, id) ``token`` continues past. Raises ``InvalidArgument`` for a
    token this coordinator did not issue."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, id_ = json.loads(raw)
        when = datetime.fromisoformat(created)
        if not isinstance(id_, str) or when.tzinfo is None:
            raise ValueError(token)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidArgument(
            "page_token is not one a ListExecutions response gave (pass next_page_token unchanged)"
        ) from None
    return when, id_
