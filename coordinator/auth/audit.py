"""The audit log: who did what, when, and how it ended.

Every call that may change something (every method whose permission is not a read) and
every refused call is one record::

    {"time": "2026-12-02T07:10:00.123Z", "principal": "ops", "via": "token",
     "roles": ["operator"], "method": "/agentmesh.v1.ExecutionService/StopWorkflow",
     "namespace": "default", "peer": "ipv4:127.0.0.1:53412", "outcome": "OK"}

``outcome`` is the gRPC status name the call ended with (``OK``, ``PERMISSION_DENIED``,
...) and ``detail`` the refusal's message when there is one. Records go to the
``agentmesh.audit`` logger and, with ``audit_log`` set, are appended to that file as JSON
lines (one ``write`` each, so concurrent records never interleave); listeners
(``subscribe``) see each record too, which is how the event stream will show them.
Records carry no request payloads: a secret in a workflow input never reaches the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from coordinator.errors import ConfigError

log = logging.getLogger("agentmesh.audit")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited call (see the module docstring for the fields)."""

    principal: str
    via: str
    roles: tuple[str, ...]
    method: str
    namespace: str
    peer: str
    outcome: str
    detail: str = ""
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def as_json(self) -> str:
        """The record as one JSON line (no newline)."""
        data: dict[str, Any] = {"time": self.time, **asdict(self)}
        data["roles"] = list(self.roles)
        if not self.detail:
            del data["detail"]
        return json.dumps(data, separators=(",", ":"))


class AuditLog:
    """Where audit records go: the logger, the ``audit_log`` file, the listeners."""

    def __init__(self, path: str = "") -> None:
        self.path = path
        self._file: TextIO | None = None
        self._listeners: list[Callable[[AuditRecord], None]] = []
        if path:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            except OSError as e:
                raise ConfigError(f"audit_log: cannot append to {path}: {e.strerror}") from None

    def subscribe(self, listener: Callable[[AuditRecord], None]) -> Callable[[], None]:
        """Call ``listener`` with every record from now on; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def record(self, record: AuditRecord) -> None:
        """Write ``record`` everywhere it goes (a failing listener is logged, not raised)."""
        line = record.as_json()
        log.log(logging.DEBUG if self._file is not None else logging.INFO, "%s", line)
        if self._file is not None:
            try:
                self._file.write(line + "\n")
            except OSError as e:
                log.error("audit_log %s: cannot write: %s", self.path, e)
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception:
                log.exception("audit listener failed")

    def close(self) -> None:
        """Close the file (records after this go to the logger and listeners only)."""
        if self._file is not None:
            self._file.close()
            self._file = None
