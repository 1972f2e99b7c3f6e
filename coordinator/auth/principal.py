"""Who is calling: the principal an authenticated call runs as.

``coordinator.api.guard`` sets it for the length of each call (a context variable, so
every servicer and everything it awaits sees the caller without passing it along);
``current()`` reads it. Without auth there is no principal and ``current()`` answers
``UNRESTRICTED``, which may do everything, so the code that checks a grant (an agent's
capabilities, later a namespace) reads the same way whether auth is on or off.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from agentmesh.protocol import DEFAULT_NAMESPACE

ANY = "*"
__all__ = ["ANY", "DEFAULT_NAMESPACE", "UNRESTRICTED", "Principal", "current"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a name, its roles, the namespaces and (for agents) the
    capabilities it is granted (``*``: all), and how it proved who it is (``via``:
    ``token``, ``jwt``, ``certificate`` or ``none`` when auth is off)."""

    name: str
    roles: frozenset[str]
    namespaces: frozenset[str] = frozenset({DEFAULT_NAMESPACE})
    capabilities: frozenset[str] = frozenset()
    via: str = "token"

    def in_namespace(self, namespace: str) -> bool:
        """Whether the principal may act in ``namespace``."""
        return ANY in self.namespaces or namespace in self.namespaces

    def may_serve(self, capability: str) -> bool:
        """Whether the principal, joined as an agent, may serve ``capability``."""
        return ANY in self.capabilities or capability in self.capabilities

    def refused_capabilities(self, capabilities: Iterable[str]) -> list[str]:
        """The ``capabilities`` the principal may not serve, in their order."""
        return [c for c in capabilities if not self.may_serve(c)]

    def serving_refusal(self, capabilities: Iterable[str]) -> str:
        """Why the principal may not serve ``capabilities`` (naming the ones refused,
        itself and its grant), or "" when it may serve them all."""
        refused = self.refused_capabilities(capabilities)
        if not refused:
            return ""
        allowed = ", ".join(sorted(self.capabilities)) or "none"
        return (
            f"{self.describe()} may not serve the capabilit"
            f"{'y' if len(refused) == 1 else 'ies'} {', '.join(refused)} (its grant: {allowed})"
        )

    def describe(self) -> str:
        """``name (roles a, b)``: how refusals name the caller."""
        roles = ", ".join(sorted(self.roles)) or "none"
        return f"{self.name} (roles: {roles})"


#: The caller when auth is off: everything is allowed.
UNRESTRICTED = Principal(
    "anonymous",
    roles=frozenset({"admin", "agent"}),
    namespaces=frozenset({ANY}),
    capabilities=frozenset({ANY}),
    via="none",
)

_CALLER: ContextVar[Principal] = ContextVar("agentmesh_caller", default=UNRESTRICTED)


def current() -> Principal:
    """The principal of the call being served (``UNRESTRICTED`` without auth)."""
    return _CALLER.get()


def act_as(principal: Principal) -> None:
    """Make ``principal`` the caller for the rest of the current context.

    gRPC runs each call in its own asyncio task, whose context is a copy taken when the
    task was made, so this reaches everything the call awaits (and the tasks it starts)
    and never another call; nothing needs undoing. (A reset would be wrong for streams: an
    abandoned stream's generator is closed later, from another context.)"""
    _CALLER.set(principal)
