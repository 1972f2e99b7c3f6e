"""Admission: what a task spec must be for the mesh to take it, and the task it makes.

``Admission.prepare`` runs every check a submission passes (shutting down, its
namespace, its capability, the agent it is pinned to, its limits, the room left in the
queues) and makes the task under a fresh id, in the spec's namespace; it records and
routes nothing (``Tasks`` does). Only the task's namespace counts: an agent of another
namespace is, to it, an agent that does not exist (the same NotFound), and its
capabilities are neither live nor listed. It owns the task ids and the submission
order.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

from agentmesh import payload
from coordinator import domain as d
from coordinator.config import Settings
from coordinator.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from coordinator.mesh.registry import Registry, in_namespace
from coordinator.retry import RetryStrategy


class Admission:
    """The checks of a submission against this mesh's settings and agents.

    ``accepting()`` false means shutting down: everything is refused."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        payload_bytes: int,
        accepting: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._policy = settings.retry_policy
        self._registry = registry
        self._payload_bytes = payload_bytes
        self._accepting = accepting
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:16]
        #: With tracing on: the trace of a task outside workflows, from its id.
        self.trace_standalone: Callable[[str], d.TraceParent] | None = None

    def prepare(
        self, spec: d.TaskSpec, wait_for_agent: bool, pending: int, extra: int = 0
    ) -> d.Task:
        """A new task made from ``spec``, with ``pending`` tasks queued already (and
        ``extra`` more admitted before it in the same batch).

        Raises InvalidArgument, NotFound (pinned agent: unknown, or of another
        namespace), FailedPrecondition (the pinned agent lacks the capability, or no
        live agent of the namespace advertises it and ``wait_for_agent`` is false),
        ResourceExhausted (``max_pending_tasks``) or Unavailable (shutting down)."""
        if not self._accepting():
            raise Unavailable("coordinator is shutting down; submit to another replica or retry")
        namespace = spec.namespace
        if not namespace:
            raise InvalidArgument("task namespace must not be empty")
        capability = spec.capability.strip()
        if spec.agent_id:
            agent = self._registry.require(spec.agent_id, namespace)
            if not capability:
                if len(agent.capability_names) != 1:
                    raise InvalidArgument(
                        f"task needs a capability: agent {agent.id!r} has "
                        f"{sorted(agent.capability_names)}"
                    )
                capability = next(iter(agent.capability_names))
            elif capability not in agent.capability_names:
                raise FailedPrecondition(
                    f"agent {agent.id!r} does not advertise capability {capability!r} "
                    f"(it has {sorted(agent.capability_names)})"
                )
        elif not capability:
            raise InvalidArgument("task.capability is required when no agent_id is given")
        elif not wait_for_agent and not self._registry.has_live((namespace, capability)):
            known = self._registry.live_capabilities(namespace)
            raise FailedPrecondition(
                f"no live agent advertises capability {capability!r}{in_namespace(namespace)}; "
                f"available: {known or 'none'} (set wait_for_agent to queue it anyway)"
            )
        if spec.timeout_ms < 0:
            raise InvalidArgument(f"timeout_ms must not be negative, got {spec.timeout_ms}")
        try:
            if not spec.input_checked:
                payload.check(spec.input, "task input", self._payload_bytes)
        except payload.PayloadError as e:
            raise InvalidArgument(str(e)) from None
        if spec.max_retries is not None and not 0 <= spec.max_retries <= 100:
            raise InvalidArgument(f"max_retries must be between 0 and 100, got {spec.max_retries}")
        if pending + extra >= self._settings.max_pending_tasks:
            raise ResourceExhausted(
                f"{pending} tasks pending (limit {self._settings.max_pending_tasks}); retry later"
            )
        if spec.max_retries is not None:
            max_retries = spec.max_retries
        elif self._policy.strategy is RetryStrategy.NONE:
            max_retries = 0
        else:
            max_retries = self._policy.max_retries
        # Unique across restarts (random prefix) and cheap per task (a counter).
        task_id = f"{self._id_prefix}{next(self._ids):08x}"
        return d.Task(
            id=task_id,
            name=spec.name or capability,
            capability=capability,
            input=spec.input,
            timeout_ms=spec.timeout_ms or self._settings.default_timeout_ms,
            idempotency_key=spec.idempotency_key or task_id,
            max_retries=max_retries,
            priority=spec.priority,
            labels=dict(spec.labels),
            execution_id=spec.execution_id,
            step_id=spec.step_id,
            pinned_agent=spec.agent_id,
            created_at=d.utcnow(),
            seq=next(self._seq),
            namespace=namespace,
            secret_names=spec.secret_names,
            secret_values=spec.secret_values,
            trace=spec.trace or self._standalone_trace(spec, task_id),
        )

    def _standalone_trace(self, spec: d.TaskSpec, task_id: str) -> d.TraceParent | None:
        if self.trace_standalone is None or spec.execution_id:
            return None
        return self.trace_standalone(task_id)
