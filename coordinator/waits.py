"""Pending tasks that no live agent can take, and who hears of it.

A task *waits* when no live (connected) agent of its namespace advertises its
capability, or when the agent it is pinned to is not connected; a task queued only
because every capable agent is busy does not wait in this sense. Agents of other
namespaces never count: a task of namespace B waits even while an agent of A has the
capability. The mesh decides when a task starts waiting and when an agent that can take
it arrives; ``Waits`` keeps the book (task id -> why, and by what each waits on: its
group, ``(kind, namespace, name)``) and tells the listeners once per change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from coordinator import domain as d


@dataclass(frozen=True, slots=True)
class WaitChange:
    """A pending task started (``reason`` set) or stopped (``reason`` "") waiting."""

    task: d.Task
    # e.g. "no live agent advertises 'x'" (outside the default namespace: "... 'x' in
    # namespace 'b'"); "" when the wait ended
    reason: str
    agent_id: str = ""  # the agent whose arrival ended the wait


WaitListener = Callable[[WaitChange], None]
#: ("capability", namespace, name) or ("agent", namespace, id): what tasks wait on.
Group = tuple[str, str, str]


def group_of(task: d.Task) -> Group:
    """What a waiting task waits for: its pinned agent, or any agent of its namespace
    with its capability."""
    if task.pinned_agent:
        return ("agent", task.namespace, task.pinned_agent)
    return ("capability", task.namespace, task.capability)


class Waits:
    """The book of waiting tasks (see the module docstring)."""

    def __init__(self) -> None:
        self._reason: dict[str, str] = {}
        self._by_group: dict[Group, dict[str, d.Task]] = {}
        self._listeners: list[WaitListener] = []

    def __bool__(self) -> bool:
        return bool(self._reason)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._reason

    def reason(self, task_id: str) -> str:
        """Why task ``task_id`` waits for an agent, or "" when it does not."""
        return self._reason.get(task_id, "")

    def add_listener(self, listener: WaitListener) -> None:
        """Call ``listener`` with every change: a task starts or stops waiting."""
        self._listeners.append(listener)

    def start(self, task: d.Task, reason: str) -> None:
        """``task`` waits, because of ``reason``."""
        self._reason[task.id] = reason
        self._by_group.setdefault(group_of(task), {})[task.id] = task
        self._notify(WaitChange(task, reason))

    def unblock(self, group: Group, agent_id: str) -> None:
        """End the wait of every task waiting on ``group``: ``agent_id`` can take them."""
        for task in self._by_group.pop(group, {}).values():
            if self._reason.pop(task.id, None) is not None:
                self._notify(WaitChange(task, "", agent_id))

    def forget(self, task: d.Task, agent_id: str = "") -> None:
        """The task no longer waits: it was assigned to ``agent_id`` (which is told to
        the listeners) or it finished (which is not: its end is news enough)."""
        if self._reason.pop(task.id, None) is None:
            return
        group = group_of(task)
        waiting = self._by_group.get(group)
        if waiting is not None:
            waiting.pop(task.id, None)
            if not waiting:
                del self._by_group[group]
        if agent_id:
            self._notify(WaitChange(task, "", agent_id))

    def _notify(self, change: WaitChange) -> None:
        for listener in self._listeners:
            listener(change)
