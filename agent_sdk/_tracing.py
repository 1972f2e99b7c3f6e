"""The agent's span of each task attempt, a child of the coordinator's.

A coordinator that traces sends each attempt's W3C ``traceparent`` in
``TaskDispatch.traceparent``; the runner then runs the handler inside a ``CONSUMER``
span ``run <capability>`` of that trace, made current, so the spans the handler opens
(an HTTP call, a model call) hang under it. Spans go to ``tracer_provider`` (the
Agent's argument), else to OpenTelemetry's global provider: an agent that configured
no tracing pays for a no-op span only when the coordinator traces.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agentmesh import __version__
from agentmesh.v1 import agent_pb2

#: The instrumentation scope of the agents' spans.
SCOPE = "agentmesh.agent_sdk"
_PROPAGATOR = TraceContextTextMapPropagator()


class TaskSpans:
    """Spans of one agent's task attempts (see the module docstring)."""

    def __init__(self, agent_name: str, tracer_provider: Any = None) -> None:
        self.agent_name = agent_name
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)

    @contextlib.contextmanager
    def attempt(self, d: agent_pb2.TaskDispatch) -> Iterator[None]:
        """Run the block in the attempt's span (none when ``d`` carries no trace); an
        exception leaving it marks the span as failed."""
        if not d.traceparent:
            yield
            return
        parent = _PROPAGATOR.extract({"traceparent": d.traceparent})
        attributes: dict[str, str | int] = {
            "agentmesh.task.id": d.task_id,
            "agentmesh.task.attempt": d.attempt,
            "agentmesh.capability": d.capability,
            "agentmesh.agent.name": self.agent_name,
        }
        if d.execution_id:
            attributes["agentmesh.execution.id"] = d.execution_id
            attributes["agentmesh.step.id"] = d.step_id
        with self._tracer.start_as_current_span(
            f"run {d.capability}", parent, SpanKind.CONSUMER, attributes
        ):
            yield
