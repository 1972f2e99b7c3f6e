"""Service steps' calls to external services, carried out for the runtime.

Each ``CallService`` runs as its own asyncio task through the ``ServiceCaller`` (the
service registry), so a slow service never holds the engine loop; its answer comes back
as ``TaskCompleted`` (the decoded body is the step's output) or ``TaskFailed``, posted to
the runtime like a task's. After a restart an outstanding call is made again (at least
once, like tasks): operations that must not repeat belong behind an idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coordinator.engine import events as ev
from coordinator.engine.ports import ServiceCaller
from coordinator.errors import CoordinatorError, ServiceRefused, ServiceUnavailable, Unavailable

log = logging.getLogger(__name__)

Post = Callable[[str, ev.Input], None]

#: What a service step fails with when no service registry is wired in.
NO_REGISTRY = "service steps need the coordinator's service registry"


def _now() -> datetime:
    return datetime.now(UTC)


def step_error(e: Exception) -> ev.StepError:
    """The step error a failed call becomes: ``ServiceUnavailable`` (and any other
    ``Unavailable``) is retryable, a refusal (4xx), an unknown service or bad params are
    not; the HTTP status (and a refusal's body) travel in ``details``."""
    if isinstance(e, ServiceRefused):
        refusal: dict[str, Any] = {"status": e.status}
        if e.body:
            refusal["body"] = e.body
        return ev.StepError("ServiceRefused", str(e), False, refusal)
    if isinstance(e, ServiceUnavailable):
        status = {"status": e.status} if e.status else None
        return ev.StepError("ServiceUnavailable", str(e), True, status)
    if isinstance(e, CoordinatorError):
        return ev.StepError(type(e).__name__, str(e), isinstance(e, Unavailable))
    log.exception("service call failed unexpectedly", exc_info=e)
    return ev.StepError("ServiceCallError", f"{type(e).__name__}: {e}", True)


class ServiceCalls:
    """The service calls under way, by (execution, key)."""

    def __init__(self, post: Post, on_end: Callable[[tuple[str, str]], None] | None = None) -> None:
        self._post = post
        self._on_end = on_end  # (execution, key) of each call that ended
        #: Set by the server assembly; None: every service step fails (``NO_REGISTRY``).
        self.caller: ServiceCaller | None = None
        self._calls: dict[tuple[str, str], asyncio.Task[None]] = {}

    def start(self, exec_id: str, c: ev.CallService, namespace: str) -> None:
        """Make the call ``c`` of ``exec_id`` (of ``namespace``); its end is posted."""
        owner = (exec_id, c.key)
        if owner in self._calls:
            return  # already under way (a recovery re-established it twice)
        task = asyncio.create_task(self._call(exec_id, c, namespace), name=f"call {c.service}")
        self._calls[owner] = task
        task.add_done_callback(lambda _: self._ended(owner))

    def _ended(self, owner: tuple[str, str]) -> None:
        self._calls.pop(owner, None)
        if self._on_end is not None:
            self._on_end(owner)

    def cancel(self, exec_id: str, key: str) -> None:
        """Abandon the call under ``key`` (its answer, if it comes, is dropped)."""
        task = self._calls.pop((exec_id, key), None)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        """Abandon every call (the runtime stopped; recovery makes them again)."""
        calls, self._calls = list(self._calls.values()), {}
        for task in calls:
            task.cancel()

    async def _call(self, exec_id: str, c: ev.CallService, namespace: str) -> None:
        event: ev.Input
        try:
            if self.caller is None:
                raise Unavailable(NO_REGISTRY)
            answer = await self.caller.call(
                namespace, c.service, c.operation, c.params, c.timeout_ms
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            event = ev.TaskFailed(_now(), c.key, step_error(e))
        else:
            event = ev.TaskCompleted(_now(), c.key, answer.value)
        self._post(exec_id, event)
