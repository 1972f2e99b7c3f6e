"""Submit-and-wait and many-at-once waiting: ``Client.run_task`` and
``Client.as_completed`` (a mixin).

``run_task`` is ``assign_task`` then ``wait_task`` in one call (``RunTask``): one round
trip instead of two, what most callers want. ``as_completed(ids)`` follows one
``WaitTasks`` stream: the coordinator sends the tasks that finished since its last message
as one message, so waiting for a thousand tasks is a handful of messages, not a thousand
calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import grpc

from agent_sdk._discovery import find_leader
from agent_sdk._errors import rpc_error
from agent_sdk._failover import Route
from agent_sdk._types import TaskAssignment, TaskRequest
from agentmesh.v1 import task_pb2


class TaskWaitMethods:
    """Mixed into Client: ``self._tasks``, ``self._route``, ``self._connect``,
    ``self._metadata``, ``self.timeout`` and ``self._invoke`` come from there."""

    _tasks: Any
    _route: Route
    _metadata: tuple[tuple[str, str], ...]
    timeout: float

    def _connect(self, address: str) -> None:
        raise NotImplementedError

    async def _invoke(self, method: Any, request: Any, timeout: float | None) -> Any:
        raise NotImplementedError

    async def run_task(
        self,
        capability: str = "",
        input: Mapping[str, Any] | None = None,
        *,
        agent_id: str = "",
        wait_for_agent: bool = False,
        timeout: float | None = None,
        **options: Any,
    ) -> TaskAssignment:
        """Submit a task (as ``assign_task``: the same ``options`` and errors) and wait
        until it finishes, or ``timeout`` seconds pass (None: no limit), in one call;
        return it, finished or not.  Cancelling it stops waiting and leaves the task
        running: an ``idempotency_key`` lets a retry find it instead of submitting
        another."""
        task = TaskRequest(capability=capability, input=input or {}, **options)
        req = task_pb2.RunTaskRequest(
            agent_id=agent_id,
            task=task.to_proto(),
            wait_for_agent=wait_for_agent,
            timeout_ms=int((timeout or 0) * 1000),
        )
        rpc_timeout = None if timeout is None else timeout + self.timeout
        resp = await self._invoke(self._tasks.RunTask, req, rpc_timeout)
        return TaskAssignment.from_proto(resp)

    async def as_completed(
        self, task_ids: Iterable[str], timeout: float | None = None
    ) -> AsyncIterator[TaskAssignment]:
        """Each task of ``task_ids`` once it has finished (completed, failed or
        cancelled), in the order they finish, those already finished first; it ends
        when every one has, or after ``timeout`` seconds (None: no limit) with the
        others still unfinished.  NotFoundError, before anything is yielded, for an
        unknown id; InvalidArgumentError for duplicates or more than 10 000 ids.
        Leaving the loop (or cancelling it) stops waiting; the tasks go on."""
        ids = list(task_ids)
        if not ids:
            return
        req = task_pb2.WaitTasksRequest(task_ids=ids, timeout_ms=int((timeout or 0) * 1000))
        target = self._route.target()
        if target is None:  # etcd:// and no replica to try: ask etcd
            address = self._route.address
            target = await find_leader(address.etcd, address.prefix, self.timeout)
            self._route.resolved(target)
        self._connect(target)
        call = self._tasks.WaitTasks(
            req,
            metadata=self._metadata,
            timeout=None if timeout is None else timeout + self.timeout,
        )
        try:
            async for batch in call:
                for assignment in batch.finished:
                    yield TaskAssignment.from_proto(assignment)
        except grpc.aio.AioRpcError as e:
            raise rpc_error(e) from None
        finally:  # done, left early or cancelled: the coordinator drops the waits
            call.cancel()
