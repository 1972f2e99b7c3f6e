"""``Mesh.completions`` on the mesh core (no network): every completion is caught, in
the order tasks finish, including one that finishes while the caller is still busy with
the first batch (the waits are registered before anything is handed out), and the waits
are removed however the iteration ends."""

from __future__ import annotations

import asyncio

import pytest

from coordinator import domain as d
from coordinator.errors import NotFound
from coordinator.mesh import Mesh
from tests.conftest import fast_settings
from tests.unit.test_mesh import ManualClock, Recorder, spec


@pytest.fixture
def mesh() -> Mesh:
    return Mesh(fast_settings(retry_interval_ms=0), ManualClock())


async def test_a_task_that_finishes_during_the_first_batch_is_not_lost(mesh: Mesh) -> None:
    agent = mesh.join(spec("a", ["x"], credits=3), Recorder(), "stream")
    early, late, last = (mesh.submit(d.TaskSpec("x")) for _ in range(3))
    mesh.on_result(agent, early.id, 1, output="early")
    batches = mesh.completions([early.id, late.id, last.id], timeout=None)
    assert await anext(batches) == [early]
    # The caller is still sending that batch: meanwhile two more finish.
    mesh.on_result(agent, late.id, 1, output="late")
    mesh.on_result(agent, last.id, 1, output="last")
    await asyncio.sleep(0)  # the futures' callbacks run
    assert await asyncio.wait_for(anext(batches), 1) == [late, last]  # one batch
    with pytest.raises(StopAsyncIteration):
        await anext(batches)
    assert not late.waiters and not last.waiters


async def test_a_timeout_or_leaving_early_removes_the_waits(mesh: Mesh) -> None:
    mesh.join(spec("a", ["x"], credits=2), Recorder(), "stream")
    one, two = mesh.submit(d.TaskSpec("x")), mesh.submit(d.TaskSpec("x"))
    assert [b async for b in mesh.completions([one.id, two.id], timeout=0.05)] == []
    assert not one.waiters and not two.waiters
    batches = mesh.completions([one.id, two.id], timeout=None)
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0)
    assert len(one.waiters) == 1 and len(two.waiters) == 1
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await batches.aclose()
    assert not one.waiters and not two.waiters


def test_an_unknown_id_is_refused_before_anything_is_waited_for(mesh: Mesh) -> None:
    mesh.join(spec("a", ["x"]), Recorder(), "stream")
    task = mesh.submit(d.TaskSpec("x"))
    with pytest.raises(NotFound):
        mesh.completions([task.id, "nope"], timeout=None)
    assert not task.waiters
