"""What both sides of the protocol must agree on beyond the ``.proto`` files: the
metadata a follower answers with, where the leader is written in etcd, and the keepalive
numbers. The coordinator and the SDK import these; neither defines its own copy.

Leader discovery. A cluster replica that is not the leader refuses a call with
``UNAVAILABLE`` and the trailing metadata ``LEADER_METADATA: host:port``, or, while no
leader is known (an election is under way), ``ELECTION_METADATA: ELECTION_PENDING``.
In etcd, the leader is the candidate with the lowest create revision under
``election_prefix(prefix)``; its value is JSON ``{"id": ..., "address": "host:port"}``.
"""

from __future__ import annotations

#: Trailing metadata of a follower's refusal: the leader's address.
LEADER_METADATA = "agentmesh-leader"
#: Trailing metadata of a follower's refusal while no leader is known: retry shortly.
ELECTION_METADATA = "agentmesh-election"
ELECTION_PENDING = "pending"

#: Request metadata naming the namespace a call acts in (absent: ``DEFAULT_NAMESPACE``).
NAMESPACE_METADATA = "agentmesh-namespace"

# EventService.Subscribe's initial metadata: the last sequence of the event log when the
# subscription was registered ("from now" starts after it), so a client that loses the
# stream before its first event resumes from there and misses nothing.
EVENT_HEAD_METADATA = "agentmesh-event-head"
DEFAULT_NAMESPACE = "default"
#: What a namespace name is (a DNS label, as a Kubernetes namespace): lowercase letters,
#: digits and ``-``, 1 to 63, starting and ending with a letter or digit.
NAMESPACE_PATTERN = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
#: Request metadata carrying the caller's credentials: ``Bearer <token>``.
AUTHORIZATION_METADATA = "authorization"
#: Request metadata the HTTP gateway adds to the calls it forwards over its private
#: socket: the HTTP client's address (what the audit log records as the peer). Honoured
#: only on that socket; the gateway drops a client's own.
HTTP_PEER_METADATA = "agentmesh-http-peer"

#: The default key prefix of a mesh's state in etcd.
DEFAULT_PREFIX = "/agentmesh"
#: The election candidates' folder under the prefix.
ELECTION = "election"

#: The SDK pings an idle connection this often; a coordinator must accept pings at
#: least this frequent (``SERVER_MIN_PING_INTERVAL_MS``), or it answers GOAWAY
#: too_many_pings and drops the agent.
CLIENT_KEEPALIVE_MS = 20_000
CLIENT_KEEPALIVE_TIMEOUT_MS = 10_000
SERVER_MIN_PING_INTERVAL_MS = CLIENT_KEEPALIVE_MS // 2
#: The coordinator pings every connection this often and drops one whose ping goes
#: unanswered this long: how a stream agent that sends no Heartbeat messages is judged
#: (a dead or frozen peer's stream ends within about 15 s, the default heartbeat timeout).
SERVER_KEEPALIVE_MS = 10_000
SERVER_KEEPALIVE_TIMEOUT_MS = 5_000


def election_prefix(prefix: str) -> str:
    """The key folder (ending in ``/``) holding the election candidates of ``prefix``."""
    return f"{prefix.rstrip('/')}/{ELECTION}/"


def prefix_end(prefix: bytes) -> bytes:
    """The exclusive end of the key range holding every key that starts with ``prefix``.

    Same rule as etcd's ``clientv3.GetPrefixRangeEnd``: increment the last byte that
    is not 0xff; an empty or all-0xff prefix means "to the end of the keyspace" (``\\0``).
    """
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"
