"""What the mesh tells the event log about tasks: one method per ``task.*`` live event.

``TaskReports`` does nothing until the mesh is given a sink (``Mesh.observe``), so the
task life in ``tasks`` reads as one call per event and pays one attribute test when
nobody listens. It also numbers streamed output: each ``task.output`` carries the
chunk's offset in its attempt's output (characters streamed before it).
"""

from __future__ import annotations

from coordinator import domain as d


class TaskReports:
    """The ``task.*`` live events of one mesh (see the module docstring)."""

    def __init__(self) -> None:
        self.sink: d.EventSink | None = None
        # (task id, attempt) -> characters of partial output streamed so far
        self._streamed: dict[tuple[str, int], int] = {}

    def _emit(self, sink: d.EventSink, type_: str, task: d.Task, **data: d.Json) -> None:
        sink.emit(
            type_,
            namespace=task.namespace,
            execution_id=task.execution_id,
            step_id=task.step_id,
            task_id=task.id,
            agent_id=task.agent_id,
            data=data,
        )

    def submitted(self, task: d.Task) -> None:
        """``task.submitted``: accepted by the mesh."""
        if self.sink is not None:
            self._emit(self.sink, "task.submitted", task, capability=task.capability)

    def assigned(self, task: d.Task) -> None:
        """``task.assigned``: an attempt went to an agent."""
        if self.sink is not None:
            self._emit(self.sink, "task.assigned", task, attempt=task.attempt)

    def acked(self, task: d.Task) -> None:
        """``task.acked``: the agent started the attempt."""
        if self.sink is not None:
            self._emit(self.sink, "task.acked", task, attempt=task.attempt)

    def progressed(self, task: d.Task, message: str) -> None:
        """``task.progress``: the agent reported progress."""
        if self.sink is not None:
            self._emit(
                self.sink,
                "task.progress",
                task,
                attempt=task.attempt,
                progress=task.progress,
                message=message,
            )

    def output(self, task: d.Task, chunk: str) -> None:
        """``task.output``: a chunk of partial output, with its offset."""
        key = (task.id, task.attempt)
        offset = self._streamed.get(key, 0)
        self._streamed[key] = offset + len(chunk)
        if self.sink is not None:
            self._emit(
                self.sink, "task.output", task, attempt=task.attempt, offset=offset, chunk=chunk
            )

    def redelivered(self, task: d.Task, attempt: int, reason: str) -> None:
        """``task.redelivered``: its agent went; the attempt is queued again."""
        if self.sink is not None:
            self._emit(self.sink, "task.redelivered", task, attempt=attempt, reason=reason)

    def finished(self, task: d.Task) -> None:
        """``task.finished``: completed, failed or cancelled."""
        if self._streamed:
            for attempt in range(1, task.attempt + 1):
                self._streamed.pop((task.id, attempt), None)
        if self.sink is not None:
            self._emit(
                self.sink,
                "task.finished",
                task,
                status=task.status.value,
                attempt=task.attempt,
                error=task.error.type if task.error is not None else "",
            )
