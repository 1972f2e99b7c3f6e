"""Open streams, decided again while they last: a revoked credential ends its stream.

A stream (an agent's ``AgentService/Connect``, an event subscription) is admitted when it
opens and may last for hours. ``OpenStreams`` holds each open one: the credentials it
presented, the principal they proved, its method and namespace, the capabilities it
serves (an agent's ``Hello``), until when its credentials hold, and how to end it (a
callback the gRPC guard supplies). ``check`` decides a stream again, exactly as a new
call with the same credentials would be decided:

- when the tokens file, the key set or the policy file changed (the authenticator's
  ``generation``), once the change has held for one check: a file caught half-written
  (an editor's truncate-then-write) cuts nothing;
- when its credentials expire: a JWT's ``exp`` plus the clock skew forgiven, a tokens
  file entry's ``expires``.

A stream whose credentials no longer prove a principal is ended with ``Unauthenticated``,
one whose principal is no longer allowed (roles, namespaces, the capabilities it serves)
with ``PermissionDenied``; both messages say the stream was revoked and why. A check
that cannot decide (the issuer's key set unreachable) keeps the stream and tries again.

``watch`` runs ``check`` every ``PERIOD_S``, so a revocation ends its streams within
about a second of the file changing. Cost: nothing per message; per check, one ``stat``
per watched file and one pass over the open streams; credentials are verified again
only for the streams a change or an expiry concerns (and then mostly from the
authenticator's cache).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from coordinator.auth.authenticator import Authenticator, Credentials
from coordinator.auth.principal import Principal
from coordinator.errors import MeshError, PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)

#: Seconds between two checks (a change is acted on at the second check that sees it).
PERIOD_S = 0.4
Generation = tuple[int, int, int]


@dataclass(eq=False, slots=True)
class OpenStream:
    """One open stream, as ``OpenStreams.open`` registered it. ``revoked`` is set (the
    error to end it with) before ``end`` is called."""

    credentials: Credentials
    principal: Principal
    method: str
    namespace: str
    needs_permission: bool
    until: float
    generation: Generation
    end: Callable[[OpenStream], None]
    capabilities: tuple[str, ...] = ()
    revoked: MeshError | None = None

    def serves(self, capabilities: Iterable[str]) -> None:
        """Note the capabilities the stream serves (checked again with its grant)."""
        self.capabilities = tuple(capabilities)


class OpenStreams:
    """The open streams of one coordinator and their re-decision (module docstring)."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator
        self._open: set[OpenStream] = set()
        self._seen: Generation | None = None  # the generation the last check saw
        self.revocations = 0

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[OpenStream]:
        return iter(list(self._open))

    def generation(self) -> Generation:
        """The authenticator's generation now: read it *before* authenticating a stream,
        so a change made meanwhile is seen as one."""
        return self._auth.generation

    def open(
        self,
        credentials: Credentials,
        principal: Principal,
        method: str,
        namespace: str,
        *,
        until: float,
        generation: Generation,
        end: Callable[[OpenStream], None],
        needs_permission: bool = True,
    ) -> OpenStream:
        """Register a stream just admitted (``generation``: read before it was)."""
        stream = OpenStream(
            credentials, principal, method, namespace, needs_permission, until, generation, end
        )
        self._open.add(stream)
        return stream

    def close(self, stream: OpenStream) -> None:
        """The stream ended (however): forget it."""
        self._open.discard(stream)

    async def check(self, now: float | None = None) -> list[OpenStream]:
        """Decide again the streams a settled change or an expiry concerns; end the ones
        now refused. Returns them."""
        generation = self._auth.generation
        settled = generation == self._seen
        self._seen = generation
        now = time.time() if now is None else now
        ended: list[OpenStream] = []
        for stream in list(self._open):
            if stream.revoked is not None:
                continue
            changed = settled and stream.generation != generation
            if not changed and now < stream.until:
                continue
            try:
                refusal = await self._decide(stream)
            except MeshError as e:  # e.g. Unavailable: the issuer's keys cannot be fetched
                log.warning(
                    "cannot decide again %s's stream %s (keeping it, trying again): %s",
                    stream.principal.name,
                    stream.method,
                    e,
                )
                continue
            if refusal is None:
                stream.generation = generation
                continue
            if stream not in self._open or stream.revoked is not None:
                continue  # ended while we decided
            stream.revoked = refusal
            self.revocations += 1
            log.info(
                "%s's stream %s (namespace %s) revoked: %s",
                stream.principal.name,
                stream.method,
                stream.namespace,
                refusal,
            )
            ended.append(stream)
            try:
                stream.end(stream)
            except Exception:
                log.exception("ending a revoked stream failed")
        return ended

    async def _decide(self, stream: OpenStream) -> MeshError | None:
        """Why ``stream`` would be refused now (None: it would not); raises what keeps
        it from being decided."""
        try:
            principal, until = await self._auth.authenticate_until(stream.credentials)
        except Unauthenticated as e:
            return Unauthenticated(f"stream revoked: its credentials are no longer valid: {e}")
        if stream.needs_permission:
            decision = self._auth.policy.decide(principal, stream.method, stream.namespace)
            if not decision.allowed:
                return PermissionDenied(f"stream revoked: no longer allowed: {decision.reason}")
        refusal = principal.serving_refusal(stream.capabilities)
        if refusal:
            return PermissionDenied(f"stream revoked: no longer allowed: {refusal}")
        stream.until = until
        return None

    async def watch(self, period: float = PERIOD_S) -> None:
        """``check`` every ``period`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(period)
            try:
                await self.check()
            except Exception:
                log.exception("checking the open streams failed")
