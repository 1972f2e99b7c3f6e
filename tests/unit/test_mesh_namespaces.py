"""Namespaces partition the mesh core: an agent is routed its own namespace's tasks
only, waits and idempotency keys are per namespace, and ids of another namespace are
answered exactly as unknown ones. No network, no event loop: the fakes of test_mesh."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from coordinator import domain as d
from coordinator.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from coordinator.mesh import Mesh
from coordinator.waits import WaitChange
from tests.conftest import fast_settings
from tests.unit.test_mesh import ManualClock, Recorder, spec

A, B = "team-a", "team-b"


def ns_spec(
    namespace: str, name: str, caps: Sequence[str], credits: int = 1, agent_id: str = ""
) -> d.AgentSpec:
    return replace(spec(name, caps, credits, agent_id), namespace=namespace)


def task(
    namespace: str,
    capability: str = "x",
    *,
    agent_id: str = "",
    idempotency_key: str = "",
    max_retries: int | None = None,
) -> d.TaskSpec:
    return d.TaskSpec(
        capability,
        namespace=namespace,
        agent_id=agent_id,
        idempotency_key=idempotency_key,
        max_retries=max_retries,
    )


def ids(sink: Recorder) -> set[str]:
    return {task_id for task_id, _ in sink.sent}


def of(mesh: Mesh, namespace: str) -> set[str]:
    return {t.id for t in mesh.tasks.values() if t.namespace == namespace}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def mesh(clock: ManualClock) -> Mesh:
    return Mesh(fast_settings(retry_interval_ms=0, max_redeliveries=2), clock)


# ----------------------------------------------------------------- routing


@pytest.mark.parametrize("a_first", [True, False])
def test_an_agent_takes_queued_tasks_of_its_own_namespace_only(mesh: Mesh, a_first: bool) -> None:
    queued_a = [mesh.submit(task(A), wait_for_agent=True) for _ in range(3)]
    queued_b = [mesh.submit(task(B), wait_for_agent=True) for _ in range(3)]
    assert all(t.namespace == A for t in queued_a) and all(t.namespace == B for t in queued_b)
    sink_a, sink_b = Recorder(), Recorder()
    order = [(A, sink_a), (B, sink_b)] if a_first else [(B, sink_b), (A, sink_a)]
    agents = {
        ns: mesh.join(ns_spec(ns, f"w-{ns}", ["x"], credits=10), s, "stream") for ns, s in order
    }
    assert agents[A].namespace == A and agents[B].namespace == B
    assert ids(sink_a) == {t.id for t in queued_a}
    assert ids(sink_b) == {t.id for t in queued_b}
    # New tasks, routed at once, keep to their namespace too.
    more = [mesh.submit(task(ns)) for ns in (A, B) * 3]
    assert ids(sink_a) == of(mesh, A) and ids(sink_b) == of(mesh, B)
    assert all(t.agent_id == agents[t.namespace].id for t in more)
    assert mesh.pending_count == 0


def test_a_free_agent_of_another_namespace_never_takes_a_task(mesh: Mesh) -> None:
    """Queued behind a busy agent of its namespace, a task stays queued though an idle
    agent of another namespace has the capability, and goes when a credit frees up."""
    sink_a, sink_b = Recorder(), Recorder()
    busy = mesh.join(ns_spec(A, "busy", ["x"], credits=1), sink_a, "stream")
    mesh.join(ns_spec(B, "idle", ["x"], credits=10), sink_b, "stream")
    first, second = mesh.submit(task(A)), mesh.submit(task(A))
    assert ids(sink_a) == {first.id} and sink_b.sent == []
    assert second.status is d.TaskStatus.PENDING and mesh.waiting_reason(second.id) == ""
    mesh.on_result(busy, first.id, 1, output=1)
    assert ids(sink_a) == {first.id, second.id} and sink_b.sent == []


def test_redelivery_stays_in_the_namespace(mesh: Mesh) -> None:
    sink_b = Recorder()
    gone = mesh.join(ns_spec(A, "gone", ["x"]), Recorder(), "stream")
    mesh.join(ns_spec(B, "other", ["x"]), sink_b, "stream")
    held = mesh.submit(task(A))
    assert held.agent_id == gone.id
    mesh.leave(gone.id, "crashed")
    assert held.status is d.TaskStatus.PENDING and sink_b.sent == []
    sink_a = Recorder()
    mesh.join(ns_spec(A, "back", ["x"]), sink_a, "stream")
    assert sink_a.sent == [(held.id, 2)]


def test_pinned_tasks_go_to_their_agent_in_their_namespace(mesh: Mesh) -> None:
    sink_a, sink_b = Recorder(), Recorder()
    agent_a = mesh.join(ns_spec(A, "w", ["x"], credits=1), sink_a, "stream")
    mesh.join(ns_spec(B, "w", ["x"], credits=10), sink_b, "stream")
    first = mesh.submit(task(A, agent_id=agent_a.id))
    second = mesh.submit(task(A, agent_id=agent_a.id))  # queued: no credit left
    assert ids(sink_a) == {first.id} and sink_b.sent == []
    mesh.on_result(agent_a, first.id, 1, output=1)
    assert ids(sink_a) == {first.id, second.id} and sink_b.sent == []
    # By name, a workflow step's pin resolves within the namespace asked.
    assert mesh.pinned_agent("x", "w", A) == agent_a.id
    assert mesh.pinned_agent("x", "w", B) not in ("", agent_a.id)
    assert mesh.pinned_agent("x", "w", "nobody") == ""


def test_pinned_to_an_agent_of_another_namespace_is_not_found(mesh: Mesh) -> None:
    agent_a = mesh.join(ns_spec(A, "w", ["x"]), Recorder(), "stream")
    with pytest.raises(NotFound) as unknown:
        mesh.submit(task(B, agent_id="ghost"), wait_for_agent=True)
    with pytest.raises(NotFound) as foreign:
        mesh.submit(task(B, agent_id=agent_a.id), wait_for_agent=True)
    assert str(foreign.value).replace(agent_a.id, "ID") == str(unknown.value).replace("ghost", "ID")
    with pytest.raises(NotFound, match=r"tasks\[1\]: agent .* not found"):
        mesh.submit_many([task(B), task(B, agent_id=agent_a.id)], wait_for_agent=True)
    assert of(mesh, B) == set()
    # Its own namespace pins it fine.
    assert mesh.submit(task(A, agent_id=agent_a.id)).agent_id == agent_a.id


def test_a_pinned_retry_never_reaches_a_namesake_of_another_namespace(
    clock: ManualClock,
) -> None:
    """The id of a forgotten agent may be taken in another namespace: a task pinned to
    the old one (retrying meanwhile) still waits for its own namespace's agent."""
    mesh = Mesh(fast_settings(retry_interval_ms=100, retry_jitter=0.0), clock)
    old = mesh.join(ns_spec(A, "w", ["x"], agent_id="w-1"), Recorder(), "stream")
    pinned = mesh.submit(task(A, agent_id="w-1", max_retries=2))
    mesh.on_result(old, pinned.id, 1, failure=d.TaskFailure("E", "flaky", retryable=True))
    mesh.unregister("w-1")  # its backoff runs on: it is not in the pinned queue now
    sink_b = Recorder()
    namesake = mesh.join(ns_spec(B, "w", ["x"], agent_id="w-1"), sink_b, "stream")
    assert namesake.namespace == B
    clock.advance(1.0)
    assert sink_b.sent == [] and pinned.status is d.TaskStatus.PENDING
    assert mesh.waiting_reason(pinned.id) == "agent 'w-1' is not connected"
    assert mesh.counts(A) == (1, 0) and mesh.counts(B) == (0, 0)


# -------------------------------------------------------------- admission


def test_no_live_agent_counts_only_the_tasks_namespace(mesh: Mesh) -> None:
    mesh.join(ns_spec(A, "w", ["x", "secret_a"]), Recorder(), "stream")
    mesh.join(ns_spec(B, "v", ["y"]), Recorder(), "stream")
    with pytest.raises(FailedPrecondition) as caught:
        mesh.submit(task(B, "x"))
    text = str(caught.value)
    assert "no live agent advertises capability 'x' in namespace 'team-b'" in text
    assert "['y']" in text and "secret_a" not in text and A not in text
    with pytest.raises(FailedPrecondition, match="available: none"):
        mesh.submit(task("empty", "x"))
    assert mesh.submit(task(A, "x")).namespace == A


def test_an_empty_namespace_is_refused(mesh: Mesh) -> None:
    with pytest.raises(InvalidArgument, match="namespace must not be empty"):
        mesh.submit(task(""), wait_for_agent=True)
    with pytest.raises(InvalidArgument, match="namespace must not be empty"):
        mesh.join(ns_spec("", "w", ["x"]), Recorder(), "stream")


def test_idempotency_keys_are_per_namespace(mesh: Mesh) -> None:
    in_a = mesh.submit(task(A, idempotency_key="k"), wait_for_agent=True)
    in_b = mesh.submit(task(B, idempotency_key="k"), wait_for_agent=True)
    assert in_a.id != in_b.id and (in_a.namespace, in_b.namespace) == (A, B)
    assert mesh.submit(task(A, idempotency_key="k"), wait_for_agent=True) is in_a
    assert mesh.submit(task(B, idempotency_key="k"), wait_for_agent=True) is in_b
    batch = mesh.submit_many(
        [
            task(A, idempotency_key="k"),
            task("c", idempotency_key="k"),
            task("c", idempotency_key="k"),  # a duplicate within the batch
            task(B, idempotency_key="k2"),
        ],
        wait_for_agent=True,
    )
    assert batch[0] is in_a and batch[1] is batch[2] and batch[1].namespace == "c"
    assert batch[3].namespace == B and len({t.id for t in batch}) == 3
    assert len(mesh.tasks) == 4


def test_an_evicted_key_is_freed_in_its_namespace_only(clock: ManualClock) -> None:
    mesh = Mesh(fast_settings(task_retention=1), clock)
    agent = mesh.join(ns_spec(A, "w", ["x"], credits=5), Recorder(), "stream")
    done = mesh.submit(task(A, idempotency_key="k"))
    kept = mesh.submit(task(B, idempotency_key="k"), wait_for_agent=True)
    mesh.on_result(agent, done.id, 1, output=1)
    other = mesh.submit(task(A, idempotency_key="other"))
    mesh.on_result(agent, other.id, 1, output=1)  # evicts ``done``
    assert done.id not in mesh.tasks
    assert mesh.submit(task(A, idempotency_key="k")).id != done.id
    assert mesh.submit(task(B, idempotency_key="k"), wait_for_agent=True) is kept


# ------------------------------------------------------------------ waits


def test_waits_are_per_namespace(mesh: Mesh) -> None:
    changes: list[tuple[str, str, str]] = []

    def note(c: WaitChange) -> None:
        changes.append((c.task.id, c.reason, c.agent_id))

    mesh.add_wait_listener(note)
    agent_a = mesh.join(ns_spec(A, "w", ["x"], credits=5), Recorder(), "stream")
    waiting = mesh.submit(task(B), wait_for_agent=True)
    reason = "no live agent advertises 'x' in namespace 'team-b'"
    assert changes == [(waiting.id, reason, "")]
    assert mesh.waiting_reason(waiting.id) == reason
    # Another agent of A changes nothing for B; A's task never waits.
    mesh.join(ns_spec(A, "w2", ["x"]), Recorder(), "stream")
    routed = mesh.submit(task(A))
    assert routed.agent_id and len(changes) == 1
    # One of A's agents going starts no wait (A has another) and leaves B's as it was.
    mesh.leave(agent_a.id, "gone")
    assert len(changes) == 1 and mesh.waiting_reason(waiting.id) == reason
    sink_b = Recorder()
    agent_b = mesh.join(ns_spec(B, "v", ["x"]), sink_b, "stream")
    assert (waiting.id, "", agent_b.id) in changes and sink_b.sent == [(waiting.id, 1)]
    assert mesh.waiting_reason(waiting.id) == ""


def test_losing_the_last_agent_of_a_namespace_starts_waits_there_only(mesh: Mesh) -> None:
    changes: list[tuple[str, str]] = []
    mesh.add_wait_listener(lambda c: changes.append((c.task.id, c.reason)))
    agent_a = mesh.join(ns_spec(A, "w", ["x"], credits=1), Recorder(), "stream")
    agent_b = mesh.join(ns_spec(B, "w", ["x"], credits=1), Recorder(), "stream")
    held_a, queued_a = mesh.submit(task(A)), mesh.submit(task(A))
    held_b, queued_b = mesh.submit(task(B)), mesh.submit(task(B))
    assert changes == []
    mesh.leave(agent_a.id, "stream broken")
    reason = "no live agent advertises 'x' in namespace 'team-a'"
    assert sorted(changes) == sorted([(held_a.id, reason), (queued_a.id, reason)])
    assert held_b.agent_id == agent_b.id and mesh.waiting_reason(queued_b.id) == ""


def test_the_default_namespace_reads_as_before(mesh: Mesh) -> None:
    waiting = mesh.submit(d.TaskSpec("x"), wait_for_agent=True)
    assert waiting.namespace == d.TaskSpec("x").namespace
    assert mesh.waiting_reason(waiting.id) == "no live agent advertises 'x'"


# ------------------------------------------------------- scoped lookups


def test_tasks_of_another_namespace_are_not_found(mesh: Mesh) -> None:
    mine = mesh.submit(task(A), wait_for_agent=True)

    def text(e: pytest.ExceptionInfo[NotFound], ident: str) -> str:
        return str(e.value).replace(ident, "ID")

    def get(task_id: str) -> d.Task:
        return mesh.get_task(task_id, B)

    def cancel(task_id: str) -> d.Task:
        return mesh.cancel(task_id, "no", namespace=B)

    for call in (get, cancel):
        with pytest.raises(NotFound) as foreign:
            call(mine.id)
        with pytest.raises(NotFound) as unknown:
            call("nope")
        assert text(foreign, mine.id) == text(unknown, "nope")
    assert mine.status is d.TaskStatus.PENDING
    assert mesh.get_task(mine.id, A) is mine and mesh.get_task(mine.id) is mine
    assert mesh.cancel(mine.id, namespace=A).status is d.TaskStatus.CANCELLED


async def test_waiting_on_a_task_of_another_namespace_is_not_found(mesh: Mesh) -> None:
    mine = mesh.submit(task(A), wait_for_agent=True)
    with pytest.raises(NotFound, match="not found"):
        await mesh.wait(mine.id, 0.01, namespace=B)
    assert (await mesh.wait(mine.id, 0.01, namespace=A)) is mine
    assert (await mesh.wait(mine.id, 0.01)) is mine


def test_listings_are_scoped(mesh: Mesh) -> None:
    agent_a = mesh.join(ns_spec(A, "w", ["x", "only_a"], credits=5), Recorder(), "stream")
    agent_b = mesh.join(ns_spec(B, "w", ["x"], credits=5), Recorder(), "stream")
    offline = mesh.join(ns_spec(B, "gone", ["later"]), Recorder(), "stream")
    mesh.leave(offline.id, "gone")
    ta, tb = mesh.submit(task(A)), mesh.submit(task(B))
    assert [a.id for a in mesh.list_agents(namespace=A)] == [agent_a.id]
    assert [a.id for a in mesh.list_agents(namespace=B)] == [agent_b.id]
    assert {a.id for a in mesh.list_agents(True, namespace=B)} == {agent_b.id, offline.id}
    assert {a.id for a in mesh.list_agents()} == {agent_a.id, agent_b.id}
    assert mesh.list_agents(namespace="c") == []
    assert mesh.capabilities(A) == {"x", "only_a"} and mesh.capabilities(B) == {"x", "later"}
    assert mesh.capabilities() == {"x", "only_a", "later"}
    assert [a.id for a in mesh.find_agents("x", namespace=A)] == [agent_a.id]
    assert mesh.find_agents("only_a", True, B) == []
    assert [t.id for t in mesh.list_tasks(namespace=A)] == [ta.id]
    assert [t.id for t in mesh.list_tasks(agent_id=agent_a.id, namespace=B)] == []
    assert [t.id for t in mesh.list_tasks()] == [tb.id, ta.id]


def test_agents_of_another_namespace_are_not_found(mesh: Mesh) -> None:
    sink = Recorder()
    agent_a = mesh.join(ns_spec(A, "w", ["x"]), sink, "stream")
    for call in (mesh.get_agent, mesh.unregister):
        with pytest.raises(NotFound) as foreign:
            call(agent_a.id, B)
        with pytest.raises(NotFound) as unknown:
            call("ghost", B)
        assert str(foreign.value).replace(agent_a.id, "ID") == str(unknown.value).replace(
            "ghost", "ID"
        )
    assert agent_a.connected and not sink.closed
    assert mesh.get_agent(agent_a.id, A) is agent_a and mesh.get_agent(agent_a.id) is agent_a
    # Acting as the agent needs only its secret.
    assert mesh.act_as(agent_a.id, agent_a.session_secret) is agent_a
    mesh.unregister(agent_a.id, A)
    assert sink.closed and agent_a.id not in mesh.agents


def test_resuming_into_another_namespace_is_refused(mesh: Mesh) -> None:
    old = mesh.join(ns_spec(A, "w", ["x"], agent_id="w-1"), Recorder(), "stream")
    for secret in (old.session_secret, "", "wrong"):
        resume = replace(ns_spec(B, "w", ["x"], agent_id="w-1"), session_secret=secret)
        with pytest.raises(PermissionDenied, match="belongs to another namespace") as caught:
            mesh.join(resume, Recorder(), "stream")
        assert A not in str(caught.value) and "connected" not in str(caught.value)
    assert mesh.agents["w-1"] is old and old.connected
    mesh.leave(old.id, "stream broken")  # offline, still known: refused alike
    with pytest.raises(PermissionDenied, match="belongs to another namespace"):
        mesh.join(
            replace(ns_spec(B, "w", ["x"], agent_id="w-1"), session_secret=old.session_secret),
            Recorder(),
            "stream",
        )
    back = mesh.join(
        replace(ns_spec(A, "w", ["x"], agent_id="w-1"), session_secret=old.session_secret),
        Recorder(),
        "stream",
    )
    assert back.namespace == A and mesh.agents["w-1"] is back


# ----------------------------------------------------------------- counts


def test_counts_per_namespace(mesh: Mesh) -> None:
    agent = mesh.join(ns_spec(A, "w", ["x"], credits=1), Recorder(), "stream")
    running = mesh.submit(task(A))
    mesh.on_ack(running.id, 1)
    mesh.submit(task(A))
    mesh.submit(task(A))
    mesh.submit(task(B), wait_for_agent=True)
    assert mesh.counts(A) == (2, 1) and mesh.counts(B) == (1, 0) and mesh.counts("c") == (0, 0)
    assert (mesh.pending_count, mesh.active_count) == (3, 1)
    mesh.on_result(agent, running.id, 1, output=1)
    assert mesh.counts(A) == (1, 1)
    mesh.cancel(next(iter(of(mesh, B))))
    assert mesh.counts(B) == (0, 0)
