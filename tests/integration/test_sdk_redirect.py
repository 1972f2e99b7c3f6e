"""Cluster redirects in the SDK: fake follower replicas in front of a real coordinator.

A follower here is a tiny grpc.aio server that refuses every call (unary and the
Connect stream alike) with UNAVAILABLE and trailing metadata ``agentmesh-leader``,
as a coordinator replica that is not the leader does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from agent_sdk import Agent, Client, Task, UnavailableError
from agent_sdk._discovery import CoordinatorAddress, parse_address
from agentmesh.protocol import DEFAULT_PREFIX
from coordinator.server import Coordinator
from tests.conftest import eventually, free_port, running

CONNECT = "/agentmesh.v1.AgentService/Connect"


class Follower(grpc.GenericRpcHandler):
    """Refuses every RPC, naming ``leader`` (None: no leader known) in trailing metadata."""

    def __init__(self) -> None:
        self.leader: str | None = None
        self.electing = False  # with no leader: answer "agentmesh-election: pending"
        self.address = ""
        self.calls: list[str] = []
        self.connects: list[float] = []  # when each Connect arrived (monotonic)
        self.server = grpc.aio.server()

    async def start(self) -> None:
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self.server.add_generic_rpc_handlers((self,))
        await self.server.start()

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if self.leader is None:
            if self.electing:
                context.set_trailing_metadata((("agentmesh-election", "pending"),))
            await context.abort(grpc.StatusCode.UNAVAILABLE, "no leader elected yet")
        context.set_trailing_metadata((("agentmesh-leader", self.leader),))
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"coordinator {self.address} is not the leader; the leader is {self.leader}",
        )

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        self.calls.append(method)
        if method == CONNECT:
            self.connects.append(time.monotonic())

            async def stream(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
                await self._refuse(context)

            return grpc.stream_stream_rpc_method_handler(stream)

        async def unary(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            await self._refuse(context)
            return b""

        return grpc.unary_unary_rpc_method_handler(unary)

    def count(self, method: str) -> int:
        return sum(1 for m in self.calls if m == method)


def unary(follower: Follower) -> int:
    """The unary calls ``follower`` refused (every call but Connect)."""
    return len(follower.calls) - follower.count(CONNECT)


def gaps(times: list[float]) -> list[float]:
    """The time between each two successive ``times``."""
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.fixture
async def follower_factory() -> AsyncIterator[Callable[[str | None], Any]]:
    started: list[Follower] = []

    async def make(leader: str | None) -> Follower:
        f = Follower()
        f.leader = leader
        await f.start()
        started.append(f)
        return f

    try:
        yield make
    finally:
        for f in started:
            await f.server.stop(None)


def doubling_agent(address: str, **kw: Any) -> Agent:
    kw.setdefault("reconnect_max", 0.5)
    agent = Agent("doubler", address, **kw)

    @agent.capability("double")
    async def double(task: Task) -> dict[str, Any]:
        return {"value": task.input["value"] * 2}

    return agent


async def run_one(client: Client) -> None:
    t = await client.assign_task("double", {"value": 21})
    done = await client.wait_task(t.id, timeout=10)
    assert done.status == "completed" and done.result == {"value": 42}


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:50051", CoordinatorAddress(seeds=("localhost:50051",))),
        (" 127.0.0.1:1 ", CoordinatorAddress(seeds=("127.0.0.1:1",))),
        ("[::1]:50051", CoordinatorAddress(seeds=("[::1]:50051",))),
        ("a:1,b:2, c:3", CoordinatorAddress(seeds=("a:1", "b:2", "c:3"))),
        ("etcd://e1:2379", CoordinatorAddress(etcd=("e1:2379",))),
        ("etcd://e1:2379,e2:2379/", CoordinatorAddress(etcd=("e1:2379", "e2:2379"))),
        (
            "etcd://e1:2379,e2:2379/custom/prefix/",
            CoordinatorAddress(etcd=("e1:2379", "e2:2379"), prefix="/custom/prefix"),
        ),
        ("unix:/tmp/am.sock", CoordinatorAddress(seeds=("unix:/tmp/am.sock",))),
    ],
)
def test_address_forms_parse(text: str, expected: CoordinatorAddress) -> None:
    parsed = parse_address(text)
    assert parsed == expected
    assert parsed.replicated == (len(expected.seeds) > 1 or bool(expected.etcd))
    assert parse_address(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("localhost", "no port"),
        (":50051", "empty host"),
        ("host:", "bad port"),
        ("host:0", "bad port"),
        ("host:70000", "bad port"),
        ("host:http", "bad port"),
        ("a:1,,b:2", "empty entry"),
        ("a:1,", "empty entry"),
        ("etcd://", "no host:port"),
        ("etcd:///agentmesh", "no host:port"),
        ("etcd://e1/agentmesh", "no port"),
        ("etcd://e1:2379//x", "empty path segment"),
        ("http://h:1", "unsupported scheme"),
        ("[::1:50051", "IPv6"),
    ],
)
def test_malformed_addresses_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


def test_agent_and_client_validate_the_address_up_front(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="bad port"):
        Agent("a", "host:nope")
    with pytest.raises(ValueError, match="no port"):
        Client("etcd://nohost")
    monkeypatch.setenv("AGENTMESH_COORDINATOR", "etcd://e1:2379/p")
    agent = Agent("a")
    assert agent.coordinator == "etcd://e1:2379/p" and agent.connected_to is None
    assert parse_address(agent.coordinator).prefix == "/p"
    assert DEFAULT_PREFIX == "/agentmesh"


# ---------------------------------------------------------------- redirects


async def test_agent_and_client_follow_a_follower_to_the_leader(
    coordinator: Coordinator,
    follower_factory: Callable[[str | None], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    follower: Follower = await follower_factory(coordinator.address)
    caplog.set_level(logging.INFO, logger="agent_sdk")
    agent = doubling_agent(follower.address)
    async with running(agent), Client(follower.address, timeout=10) as client:
        assert agent.coordinator == follower.address
        assert agent.connected_to == coordinator.address
        assert agent.stats.sessions == 1
        assert follower.count(CONNECT) == 1
        assert any(
            "redirected to" in r.getMessage()
            and follower.address in r.getMessage()
            and coordinator.address in r.getMessage()
            for r in caplog.records
        ), "a redirect is logged with both addresses"
        await run_one(client)
        assert client.address == coordinator.address
        # the channel stays on the leader: later calls do not visit the follower
        unary_calls = len(follower.calls) - follower.count(CONNECT)
        assert unary_calls == 1
        assert [a.id for a in await client.list_agents()] == [agent.agent_id]
        assert len(follower.calls) - follower.count(CONNECT) == 1


async def test_a_seed_list_skips_a_dead_replica(coordinator: Coordinator) -> None:
    seeds = f"127.0.0.1:{free_port()},{coordinator.address}"
    agent = doubling_agent(seeds, reconnect_min=0.05)
    async with running(agent), Client(seeds, timeout=10) as client:
        assert agent.connected_to == coordinator.address
        await run_one(client)
        assert client.address == coordinator.address


async def test_a_redirect_to_a_dead_leader_falls_back_to_the_seeds(
    coordinator: Coordinator, follower_factory: Callable[[str | None], Any]
) -> None:
    stale: Follower = await follower_factory(f"127.0.0.1:{free_port()}")
    seeds = f"{stale.address},{coordinator.address}"
    agent = doubling_agent(seeds, reconnect_min=0.05)
    async with running(agent), Client(seeds, timeout=10) as client:
        assert agent.connected_to == coordinator.address
        await run_one(client)
        assert client.address == coordinator.address


async def test_a_single_address_still_fails_fast_when_down() -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with Client(dead, timeout=5) as client:
        with pytest.raises(UnavailableError):
            await client.list_agents()
        assert client.address == dead


async def test_a_redirect_loop_gives_up_without_spinning(
    follower_factory: Callable[[str | None], Any],
) -> None:
    a: Follower = await follower_factory(None)
    b: Follower = await follower_factory(a.address)
    a.leader = b.address
    async with Client(a.address, timeout=5) as client:
        with pytest.raises(UnavailableError, match="gave up after 3 leader redirects"):
            await client.list_agents()
    assert len(a.calls) + len(b.calls) == 4, "first try plus three hops"

    a.calls.clear()
    b.calls.clear()
    agent = doubling_agent(a.address, reconnect_min=0.2, reconnect_max=0.4)
    task = asyncio.create_task(agent.serve())
    try:
        # Three quick hops, then three attempts each after a backoff: it keeps trying.
        await eventually(lambda: a.count(CONNECT) + b.count(CONNECT) >= 4 + 3, timeout=10)
        between = gaps(sorted(a.connects + b.connects))
        # Past the quick hops, at most one attempt per backoff delay (>= 0.1 s here: half
        # of reconnect_min at least, by the jitter): the redirect loop does not spin.
        assert min(between[3:]) >= 0.1, between
        assert not agent._connected.is_set() and agent.connected_to is None
    finally:
        await agent.shutdown(grace=0.1)
        await asyncio.wait_for(task, 5)


async def test_no_leader_known_is_plain_unavailable(
    follower_factory: Callable[[str | None], Any],
) -> None:
    lone: Follower = await follower_factory(None)
    async with Client(lone.address, timeout=5) as client:
        with pytest.raises(UnavailableError, match="no leader elected yet"):
            await client.list_agents()
    assert len(lone.calls) == 1


async def test_during_an_election_client_and_agent_wait_instead_of_failing(
    coordinator: Coordinator, follower_factory: Callable[[str | None], Any]
) -> None:
    follower = await follower_factory(None)
    follower.electing = True
    agent = doubling_agent(follower.address, reconnect_min=5.0, reconnect_max=5.0)
    async with Client(follower.address, timeout=10) as client:
        listing = asyncio.create_task(client.list_agents())
        serving = asyncio.create_task(agent.serve())
        try:
            # Several "pending" answers to each, and nobody gave up: both keep asking.
            await eventually(
                lambda: listing.done() or (follower.count(CONNECT) >= 3 and unary(follower) >= 3),
                timeout=5,
            )
            assert not listing.done()
            between = gaps(follower.connects)
            # A backoff would be 2.5 s at least (half of reconnect_min, by the jitter).
            assert max(between) < 2.5, f"the agent asks again without backing off: {between}"
            follower.leader = coordinator.address  # the election ends
            await listing
            # reconnect_min is 5 s: the agent got in quickly only because it kept asking
            await agent.wait_connected(3)
            await run_one(client)
        finally:
            await agent.shutdown(grace=1)
            await asyncio.wait_for(serving, 5)
