"""The planner's timeline: list scheduling of dependent tasks onto workers and dated days."""

from __future__ import annotations

import heapq
import math
from datetime import date, timedelta
from typing import Any

from agentmesh.agents._inputs import bad
from agentmesh.agents._planner_model import PlanTask


def schedule(
    tasks: list[PlanTask],
    start: date,
    hours_per_day: float,
    workers: int = 1,
    skip_weekends: bool = True,
) -> dict[str, Any]:
    """List scheduling: tasks in dependency order (ties by input order), each on the worker
    that is free first; hours are mapped onto (working) days of ``hours_per_day``."""
    index = {t["id"]: i for i, t in enumerate(tasks)}
    waiting = [len(set(t["dependsOn"])) for t in tasks]
    users: dict[str, list[int]] = {}
    for i, t in enumerate(tasks):
        for d in set(t["dependsOn"]):
            users.setdefault(d, []).append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    order: list[int] = []
    while ready:
        order.append(i := heapq.heappop(ready))
        for j in users.get(tasks[i]["id"], []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(tasks):
        cycle = sorted(t["id"] for i, t in enumerate(tasks) if waiting[i] > 0)
        raise bad(f"tasks: dependency cycle among {', '.join(cycle)}")
    free = [0.0] * workers
    ends: dict[str, float] = {}
    chain: dict[str, tuple[float, str | None]] = {}  # longest dependency chain ending here
    placed: list[tuple[float, int, float, int]] = []
    for i in order:
        tid, hours, deps = tasks[i]["id"], tasks[i]["estimateHours"], tasks[i]["dependsOn"]
        earliest = max((ends[d] for d in deps), default=0.0)
        w = min(range(workers), key=lambda k: (max(free[k], earliest), k))
        begin = max(free[w], earliest)
        ends[tid] = free[w] = begin + hours
        prev = max(deps, key=lambda d: (chain[d][0], -index[d]), default=None)
        chain[tid] = (hours + (chain[prev][0] if prev else 0.0), prev)
        placed.append((begin, i, begin + hours, w))
    makespan = max(ends.values(), default=0.0)
    total_days = math.ceil(makespan / hours_per_day - 1e-9)
    days: list[date] = []
    day = start
    while len(days) < max(total_days, 1):
        if not skip_weekends or day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)

    def on(hour: float, *, end: bool) -> str:
        n = math.ceil(hour / hours_per_day - 1e-9) - 1 if end else int(hour / hours_per_day + 1e-9)
        return days[min(max(n, 0), len(days) - 1)].isoformat()

    rows = [
        tasks[i]
        | {
            "start": on(b, end=False),
            "end": on(e, end=e > b),
            "startHour": b,
            "endHour": e,
            "worker": w + 1,
        }
        for b, i, e, w in sorted(placed)
    ]
    critical: list[str] = []
    node = max(chain, key=lambda k: (chain[k][0], -index[k]), default=None)
    while node is not None:
        critical.append(node)
        node = chain[node][1]
    return {
        "startDate": days[0].isoformat(),
        "endDate": on(makespan, end=makespan > 0),
        "totalDays": total_days,
        "totalHours": sum(t["estimateHours"] for t in tasks),
        "makespanHours": makespan,
        "hoursPerDay": hours_per_day,
        "workers": workers,
        "schedule": rows,
        "criticalPath": critical[::-1],
    }
