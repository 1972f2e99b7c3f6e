"""Small example agents that do real local work (used by ``agentmesh demo``).

- ``text``: ``word_count`` (counts words and lines of ``input.text``)
- ``math``: ``primes`` (counts primes below ``input.limit`` with a sieve,
  reporting progress as it goes)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from agent_sdk import Agent, Task, TaskError

MAX_LIMIT = 50_000_000


def text_agent(coordinator: str, max_concurrency: int = 4) -> Agent:
    """The ``text`` example agent (``word_count``)."""
    agent = Agent("text", coordinator, max_concurrency=max_concurrency)

    @agent.capability("word_count", description="count words and lines of input.text")
    def word_count(task: Task) -> dict[str, Any]:
        text = task.input.get("text")
        if not isinstance(text, str):
            raise TaskError("input.text must be a string", type="BadInput")
        words = text.split()
        top = Counter(w.lower().strip(".,;:!?") for w in words).most_common(3)
        return {"words": len(words), "lines": text.count("\n") + 1, "top": top}

    return agent


def _count_primes(limit: int, task: Task) -> int:
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    root = math.isqrt(limit - 1)
    for i in range(2, root + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit, i)))
            if i % 64 == 0:
                task.progress(min(0.99, i / root), f"sieving multiples of {i}")
    return sum(sieve)


def math_agent(coordinator: str, name: str = "math", max_concurrency: int = 2) -> Agent:
    """The ``math`` example agent (``primes``), named ``name``."""
    agent = Agent(name, coordinator, type="math", max_concurrency=max_concurrency)

    @agent.capability("primes", description="count primes below input.limit")
    def primes(task: Task) -> dict[str, Any]:
        limit = task.input.get("limit")
        if not isinstance(limit, int) or not 2 <= limit <= MAX_LIMIT:
            raise TaskError(f"input.limit must be an integer in [2, {MAX_LIMIT}]", type="BadInput")
        return {"limit": limit, "primes": _count_primes(limit, task)}

    return agent


AGENTS: dict[str, Callable[[str], Agent]] = {"text": text_agent, "math": math_agent}
