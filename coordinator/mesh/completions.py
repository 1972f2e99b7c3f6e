"""Many tasks waited for at once: their completions in batches, as they happen.

``completions(tasks, timeout)`` yields the tasks already finished first, then, each time
the loop wakes, every task that finished since the last batch: a burst of completions is
one batch (sized by what is ready, never by a timer). Each waiting task holds one future
in its ``waiters`` (what ``Tasks._finish`` resolves); whatever is left is removed when the
iteration ends, however it ends.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Sequence

from coordinator import domain as d


async def completions(
    tasks: Sequence[d.Task], timeout: float | None
) -> AsyncGenerator[list[d.Task], None]:
    """Batches of ``tasks`` in the order they finish, until all have or ``timeout``
    seconds (None: no limit) pass. Leaving the iteration early leaves the tasks alone."""
    loop = asyncio.get_running_loop()
    ready: list[d.Task] = []
    wake = asyncio.Event()
    held: list[tuple[d.Task, asyncio.Future[None]]] = []

    def finished(task: d.Task, fut: asyncio.Future[None]) -> None:
        if not fut.cancelled():
            ready.append(task)
            wake.set()

    # Every wait is registered before the first yield, in the step that looked at the
    # statuses: a task that finishes while the caller sends the first batch is caught.
    done = []
    for task in tasks:
        if task.status.finished:
            done.append(task)
        else:
            fut: asyncio.Future[None] = loop.create_future()
            fut.add_done_callback(functools.partial(finished, task))
            task.waiters.append(fut)
            held.append((task, fut))
    left = len(held)
    end = None if timeout is None else loop.time() + timeout
    try:
        if done:
            yield done
        while left:
            if not ready:
                wake.clear()
                remaining = None if end is None else end - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(wake.wait(), remaining)
                except TimeoutError:
                    return
            batch, ready[:] = ready[:], []
            left -= len(batch)
            yield batch
    finally:
        for task, fut in held:
            if not fut.done():
                fut.cancel()
            if fut in task.waiters:
                task.waiters.remove(fut)
