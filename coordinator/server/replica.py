"""A coordinator replica in cluster mode: session, registration, election, terms.

Life of a replica (``ClusterNode``), repeated until it is stopped::

    open a session (a lease, kept alive)        etcd unreachable: health NOT_SERVING, retry
    register replicas/<id> under the lease      so `agentmesh cluster status` lists it
    campaign on election/ (watch the leader)    follower: refuse calls, naming the leader
    elected -> a new Term on EtcdStore          recover executions from etcd, serve
    lose the session / fenced / engine failed   step down at once: write nothing more,
                                                disconnect agents, drop the term, start over

Every write a leader makes carries its fence (its election key's create revision,
and a session still trusted on the monotonic clock), so a deposed leader that has
not noticed yet cannot write. Stepping down drops everything in memory; the next
leader (perhaps this replica again) rebuilds the state from etcd.

Health: ``""`` is SERVING while the replica holds a session and etcd answers; each
``agentmesh.v1`` service is SERVING only on the leader (a Kubernetes readiness
probe on ``agentmesh.v1.AgentService`` selects the leader).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from coordinator import errors
from coordinator.api.follower import encode_agent, follower_handlers
from coordinator.cluster.directory import AgentDirectory, mirrored_agents
from coordinator.cluster.membership import (
    Replica,
    election_for,
    leader_of,
    leader_value,
    register,
)
from coordinator.config import Settings
from coordinator.kv import Compare, KVError
from coordinator.kv.election import Election, ElectionError, Fenced, Session
from coordinator.kv.etcd import EtcdKV
from coordinator.store import EtcdStore

if TYPE_CHECKING:
    from coordinator.server.process import Coordinator
    from coordinator.server.term import Term

log = logging.getLogger(__name__)

HEALTH_PERIOD_S = 0.5


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """The leader a replica last saw: its id, advertised address and election revision."""

    id: str
    address: str
    term: int


def make_kv(settings: Settings) -> EtcdKV:
    s = settings
    return EtcdKV(
        s.endpoints,
        timeout=s.etcd_timeout_s,
        ca_cert=s.etcd_ca_cert or None,
        cert_cert=s.etcd_cert or None,
        cert_key=s.etcd_key or None,
        user=s.etcd_user or None,
        password=s.etcd_password or None,
    )


class ClusterNode:
    """Runs a coordinator as one replica of a cluster; see the module docstring."""

    def __init__(self, coordinator: Coordinator, settings: Settings) -> None:
        self.coordinator = coordinator
        self.settings = settings
        self.id = coordinator.coordinator_id
        self.leader: LeaderInfo | None = None
        self.etcd_ok = False
        self.etcd_error = "not connected yet"
        self.session: Session | None = None
        self._stop = asyncio.Event()
        self._grace = settings.shutdown_grace_s
        self._task: asyncio.Task[None] | None = None
        self._fatal: list[Callable[[], None]] = []
        self._elected = asyncio.Event()
        self._address: str | None = None

    @property
    def address(self) -> str:
        """Where other replicas, agents and clients reach this one."""
        if self._address is None:
            self._address = self.settings.advertise_address or self._default_address()
        return self._address

    def _default_address(self) -> str:
        host = self.settings.listen.rpartition(":")[0].strip("[]")
        if host not in ("0.0.0.0", "::", ""):
            return self.coordinator.address
        # Listening on every interface: advertise the local address on the route to etcd,
        # which the other replicas (sharing that etcd) can most likely reach too.
        etcd_host, _, etcd_port = self.settings.endpoints[0].rpartition(":")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((etcd_host, int(etcd_port)))  # UDP: nothing is sent
                local = str(probe.getsockname()[0])
        except OSError:
            local = socket.gethostname()
        log.warning(
            "replica %s listens on %s without advertise_address: advertising %s:%d "
            "(set advertise_address to what the other replicas and agents can dial)",
            self.id,
            self.settings.listen,
            local,
            self.coordinator.port,
        )
        return f"{local}:{self.coordinator.port}"

    @property
    def leading(self) -> bool:
        """Whether this replica leads now (it has installed its term)."""
        return self._elected.is_set()

    @property
    def prefix(self) -> str:
        """The etcd key prefix of this cluster."""
        return self.settings.etcd_prefix

    def start(self) -> None:
        """Start the replica's life in the background (``stop`` ends it)."""
        self._task = asyncio.create_task(self._run(), name="cluster-node")
        self._task.add_done_callback(self._ended)

    def on_fatal(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` if the replica's loop dies of an unexpected error."""
        self._fatal.append(callback)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error("cluster node stopped unexpectedly", exc_info=task.exception())
        for callback in self._fatal:
            callback()

    async def wait_leading(self, timeout: float | None = None) -> None:
        """Wait until this replica leads. Raises TimeoutError after ``timeout`` s;
        cancelling it stops waiting only."""
        await asyncio.wait_for(self._elected.wait(), timeout)

    async def stop(self, grace: float) -> None:
        """Graceful: a leader drains, resigns (another replica takes over at once)
        and revokes its lease; a follower revokes its lease."""
        self._grace = grace
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------ refusals

    def refusal(self) -> errors.NotLeader:
        """Why this replica refuses a call now, and where the caller should go."""
        leader = self.leader
        if leader is None or not leader.address:
            return errors.NotLeader(
                f"coordinator {self.id} is not the leader; no leader elected yet"
            )
        if leader.id == self.id:
            return errors.NotLeader(f"coordinator {self.id} is taking over as leader; retry")
        return errors.NotLeader(
            f"coordinator {self.id} is not the leader; the leader is {leader.id} "
            f"at {leader.address}",
            leader.address,
        )

    def persist_refusal(self) -> errors.Unavailable | None:
        """While etcd is unreachable, why calls that must persist are refused."""
        if self.etcd_ok:
            return None
        return errors.Unavailable(
            f"etcd is unreachable ({self.etcd_error}): this coordinator cannot persist "
            "the request now; nothing was changed, retry when etcd is back"
        )

    # ---------------------------------------------------------------- loop

    async def _run(self) -> None:
        kv = make_kv(self.settings)
        self.coordinator.router.extra = follower_handlers(lambda: mirrored_agents(kv, self.prefix))
        delay = 0.2
        try:
            while not self._stop.is_set():
                try:
                    await self._session(kv)
                    delay = 0.2
                except (KVError, TimeoutError, ElectionError) as e:
                    await self._unreachable(str(e) or type(e).__name__)
                if self._stop.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(2.0, delay * 2)
        finally:
            await kv.close()

    async def _unreachable(self, error: str) -> None:
        if self.etcd_ok or self.etcd_error != error:
            log.warning("replica %s: etcd unavailable: %s", self.id, error)
        self.etcd_ok, self.etcd_error = False, error
        await self.coordinator.set_overall_health(False)

    async def _session(self, kv: EtcdKV) -> None:
        session = Session(kv, self.settings.lease_ttl_s)
        await session.open()
        self.session = session
        election = election_for(session, self.prefix)
        background: list[asyncio.Task[None]] = []
        try:
            await register(
                session,
                self.prefix,
                Replica(self.id, self.address, datetime.now(UTC).isoformat(), _version()),
            )
            self.etcd_ok, self.etcd_error = True, ""
            await self.coordinator.set_overall_health(True)
            log.info("replica %s joined the cluster (lease %x)", self.id, session.lease)
            background = [
                asyncio.create_task(self._watch_health(session), name="etcd-health"),
                asyncio.create_task(self._observe(election), name="leader-observer"),
            ]
            campaign = asyncio.create_task(
                election.campaign(leader_value(self.id, self.address)), name="campaign"
            )
            if await self._until(campaign, session):
                await self._lead(session, election, kv)
        finally:
            for t in background:
                t.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self._stop.is_set():
                await election.resign()
            await session.close()
            self.session = None
            if self.leader is not None and self.leader.id == self.id:
                self.leader = None  # not us any more; another leader's address stays a hint

    async def _until(self, campaign: asyncio.Task[None], session: Session) -> bool:
        """Wait for the campaign to win; False if the session or the replica ends first."""
        lost = asyncio.create_task(session.done.wait())
        stop = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({campaign, lost, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            stop.cancel()
        if campaign.done():
            campaign.result()  # raise what the campaign raised
            return session.alive and not self._stop.is_set()
        campaign.cancel()  # withdraws the candidacy
        with contextlib.suppress(asyncio.CancelledError, KVError, ElectionError):
            await campaign
        return False

    async def _lead(self, session: Session, election: Election, kv: EtcdKV) -> None:
        def fence() -> Compare:
            # The session must still be trusted on our own clock: a process that was
            # paused past its TTL must not write even if etcd has not expired it yet.
            if not session.alive:
                raise Fenced("session lease no longer trusted")
            return election.fence()

        term_no = election.revision
        deposed = asyncio.Event()
        store = EtcdStore(kv, self.prefix, fence=fence, on_fenced=deposed.set)
        term: Term = self.coordinator.new_term(store)
        log.info("replica %s elected leader (term %d); recovering from etcd", self.id, term_no)
        try:
            await term.start()
        except Exception as e:
            log.error("replica %s could not take over (term %d): %s", self.id, term_no, e)
            await term.abandon(f"leader {self.id} failed to take over: {e}")
            await term.close()
            raise ElectionError(f"take-over failed: {e}") from e
        await self.coordinator.install(term)
        directory = AgentDirectory(
            kv, self.prefix, term.mesh.list_agents, self.settings.lease_ttl_s, fence, encode_agent
        )
        directory.start()
        self._elected.set()
        log.info("replica %s leads (term %d)", self.id, term_no)
        waits = [
            asyncio.create_task(session.done.wait()),
            asyncio.create_task(term.runtime.failed.wait()),
            asyncio.create_task(deposed.wait()),
            asyncio.create_task(self._stop.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in waits:
                t.cancel()
        self._elected.clear()
        healthy = session.alive and not term.runtime.failed.is_set() and not deposed.is_set()
        if self._stop.is_set() and healthy:
            log.info("replica %s stepping down gracefully (term %d)", self.id, term_no)
            await term.drain(self._grace)
            await directory.stop()
            with contextlib.suppress(KVError, ElectionError):
                await directory.sync()  # the drained agents are gone: remove them
            await self.coordinator.uninstall()
            await term.close()
            return
        if deposed.is_set():
            why = "etcd refused a write fenced by our election key (another replica leads)"
        elif term.runtime.failed.is_set():
            why = f"engine stopped: {term.runtime.failure}"
        else:
            why = "session lease lost"
        log.warning("replica %s lost leadership (term %d): %s", self.id, term_no, why)
        await directory.stop()
        await self.coordinator.uninstall()
        await term.abandon(f"coordinator {self.id} lost leadership")
        await term.close()

    async def _watch_health(self, session: Session) -> None:
        """Report NOT_SERVING while etcd does not answer our keepalives or writes."""
        while True:
            await asyncio.sleep(HEALTH_PERIOD_S)
            store_ok = True
            term = self.coordinator.term
            if term is not None and isinstance(term.store, EtcdStore):
                store_ok = term.store.available
            ok = session.reachable and store_ok
            if ok != self.etcd_ok:
                error = session.last_error or ("" if store_ok else "store writes failing")
                if ok:
                    log.info("replica %s: etcd reachable again", self.id)
                else:
                    log.warning("replica %s: etcd unreachable: %s", self.id, error)
                self.etcd_ok, self.etcd_error = ok, error
                await self.coordinator.set_overall_health(ok)

    async def _observe(self, election: Election) -> None:
        """Keep ``self.leader`` current, for redirects and status."""
        while True:
            try:
                async for leader in election.observe():
                    if leader is None:
                        self.leader = None
                    else:
                        id_, address = leader_of(leader.value)
                        self.leader = LeaderInfo(id_, address, leader.create_revision)
            except KVError as e:
                log.debug("leader observer: %s", e)
            await asyncio.sleep(0.5)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentmesh")
    except PackageNotFoundError:
        return ""
