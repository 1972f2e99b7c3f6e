"""Authorization (``coordinator.auth.policy`` and ``permissions``): what the built-in
roles may call, the refusals and the sentences that explain them, and the policy file
that redefines and extends the roles. Real files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.auth import (
    DEFAULT_POLICY,
    DEFAULT_ROLES,
    METHODS,
    PERMISSIONS,
    READ_ONLY,
    UNRESTRICTED,
    Policy,
    Principal,
    parse_policy,
)
from coordinator.auth.permissions import HEALTH, is_reflection
from coordinator.auth.policy import SETTING, expand
from coordinator.errors import ConfigError

V1 = "/agentmesh.v1."
CONNECT = V1 + "AgentService/Connect"
LIST_AGENTS = V1 + "RegistryService/ListAgents"
GET_STATUS = V1 + "ExecutionService/GetExecutionStatus"
SUBSCRIBE = V1 + "EventService/Subscribe"
START = V1 + "ExecutionService/StartWorkflow"
STOP = V1 + "ExecutionService/StopWorkflow"
DEFINE = V1 + "WorkflowService/DefineWorkflow"
REGISTER_SERVICE = V1 + "IntegrationService/RegisterExternalService"
ASSIGN = V1 + "TaskService/AssignTask"
LIST_WORKFLOWS = V1 + "WorkflowService/ListWorkflows"


def who(*roles: str, namespaces: tuple[str, ...] = ("default",), name: str = "pat") -> Principal:
    return Principal(name, roles=frozenset(roles), namespaces=frozenset(namespaces))


# ------------------------------------------------------------------ the tables


def test_every_method_needs_a_known_permission() -> None:
    assert METHODS
    for method, permission in METHODS.items():
        assert method.startswith(V1), method
        assert permission in PERMISSIONS, (method, permission)


def test_every_built_in_role_grants_only_known_permissions() -> None:
    assert set(DEFAULT_ROLES) == {"agent", "viewer", "operator", "admin"}
    for role, permissions in DEFAULT_ROLES.items():
        assert permissions, role
        assert permissions <= PERMISSIONS, (role, permissions - PERMISSIONS)


def test_read_only_is_exactly_the_read_and_subscribe_permissions() -> None:
    expected = {p for p in PERMISSIONS if p.endswith((".read", ".subscribe"))}
    assert expected == READ_ONLY
    assert "events.subscribe" in READ_ONLY
    assert "executions.read" in READ_ONLY
    assert "executions.stop" not in READ_ONLY
    assert "agents.connect" not in READ_ONLY


def test_the_roles_nest() -> None:
    assert DEFAULT_ROLES["viewer"] == READ_ONLY
    assert DEFAULT_ROLES["viewer"] < DEFAULT_ROLES["operator"] < DEFAULT_ROLES["admin"]
    assert DEFAULT_ROLES["admin"] == PERMISSIONS - {"agents.connect"}
    assert DEFAULT_ROLES["agent"] == {"agents.connect", "caller.read"}  # and who it is


def test_health_and_reflection_are_not_in_the_method_table() -> None:
    assert not HEALTH & set(METHODS)
    assert is_reflection("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert is_reflection("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    assert not is_reflection(LIST_AGENTS)


# ------------------------------------------------------------------ the built-in roles


ALL_SAMPLE = [CONNECT, LIST_AGENTS, GET_STATUS, SUBSCRIBE, START, STOP, DEFINE, ASSIGN]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {LIST_AGENTS, GET_STATUS, SUBSCRIBE, LIST_WORKFLOWS}),
        ("operator", {LIST_AGENTS, GET_STATUS, SUBSCRIBE, LIST_WORKFLOWS, START, STOP, ASSIGN}),
        (
            "admin",
            {LIST_AGENTS, GET_STATUS, SUBSCRIBE, LIST_WORKFLOWS, START, STOP, ASSIGN, DEFINE}
            | {REGISTER_SERVICE},
        ),
        ("agent", {CONNECT}),
    ],
)
def test_the_built_in_roles(role: str, allowed: set[str]) -> None:
    principal = who(role)
    for method in [*ALL_SAMPLE, LIST_WORKFLOWS, REGISTER_SERVICE]:
        decision = DEFAULT_POLICY.decide(principal, method, "default")
        assert decision.allowed == (method in allowed), (role, method, decision.reason)
        assert decision.permission == METHODS[method]


def test_viewer_may_read_but_not_stop() -> None:
    assert DEFAULT_POLICY.decide(who("viewer"), GET_STATUS, "default").allowed
    assert DEFAULT_POLICY.decide(who("viewer"), SUBSCRIBE, "default").allowed
    assert not DEFAULT_POLICY.decide(who("viewer"), STOP, "default").allowed


def test_operator_may_stop_but_not_define() -> None:
    assert DEFAULT_POLICY.decide(who("operator"), STOP, "default").allowed
    assert not DEFAULT_POLICY.decide(who("operator"), DEFINE, "default").allowed
    assert not DEFAULT_POLICY.decide(who("operator"), REGISTER_SERVICE, "default").allowed


def test_admin_may_define() -> None:
    decision = DEFAULT_POLICY.decide(who("admin"), DEFINE, "default")
    assert decision.allowed
    assert decision.permission == "workflows.define"
    assert "role admin" in decision.reason


def test_agent_may_connect_but_not_list_agents() -> None:
    assert DEFAULT_POLICY.decide(who("agent"), CONNECT, "default").allowed
    assert not DEFAULT_POLICY.decide(who("agent"), LIST_AGENTS, "default").allowed
    assert not DEFAULT_POLICY.decide(who("admin"), CONNECT, "default").allowed


def test_roles_add_up() -> None:
    both = who("agent", "viewer")
    assert DEFAULT_POLICY.decide(both, CONNECT, "default").allowed
    assert DEFAULT_POLICY.decide(both, LIST_AGENTS, "default").allowed
    assert not DEFAULT_POLICY.decide(both, STOP, "default").allowed
    assert DEFAULT_POLICY.granted(both) == DEFAULT_ROLES["agent"] | DEFAULT_ROLES["viewer"]


def test_unrestricted_may_do_everything_anywhere() -> None:
    for method in METHODS:
        assert DEFAULT_POLICY.decide(UNRESTRICTED, method, "anywhere").allowed, method


# ------------------------------------------------------------------ refusals and reasons


def test_a_missing_permission_names_the_permission_and_the_principal() -> None:
    decision = DEFAULT_POLICY.decide(who("viewer", name="ci-bot"), STOP, "default")
    assert not decision.allowed
    assert decision.permission == "executions.stop"
    assert STOP in decision.reason
    assert "executions.stop" in decision.reason
    assert "ci-bot (roles: viewer)" in decision.reason


def test_no_roles_at_all() -> None:
    decision = DEFAULT_POLICY.decide(who(name="nobody"), LIST_AGENTS, "default")
    assert not decision.allowed
    assert "nobody (roles: none)" in decision.reason
    assert "agents.read" in decision.reason


def test_an_unknown_role_is_named_in_the_refusal() -> None:
    decision = DEFAULT_POLICY.decide(who("viewer", "deployer", "zz"), DEFINE, "default")
    assert not decision.allowed
    assert "workflows.define" in decision.reason
    assert "(unknown role(s): deployer, zz)" in decision.reason


def test_another_namespace_is_refused() -> None:
    principal = who("admin", namespaces=("default", "staging"), name="ops")
    assert DEFAULT_POLICY.decide(principal, STOP, "staging").allowed
    decision = DEFAULT_POLICY.decide(principal, STOP, "prod")
    assert not decision.allowed
    assert decision.permission == "executions.stop"
    assert "ops (roles: admin)" in decision.reason
    assert "'prod'" in decision.reason
    assert "default, staging" in decision.reason


def test_the_namespace_does_not_matter_without_the_permission() -> None:
    """The missing permission is what a refusal names first."""
    decision = DEFAULT_POLICY.decide(who("viewer", namespaces=("a",)), STOP, "b")
    assert not decision.allowed
    assert "executions.stop" in decision.reason


def test_every_namespace() -> None:
    principal = who("viewer", namespaces=("*",))
    assert DEFAULT_POLICY.decide(principal, LIST_AGENTS, "anything").allowed
    assert DEFAULT_POLICY.decide(principal, LIST_AGENTS, "default").allowed


@pytest.mark.parametrize(
    "method",
    [
        V1 + "ExecutionService/Teleport",
        "/grpc.health.v1.Health/Check",
        "/other.v1.Service/Method",
        "",
    ],
)
def test_a_method_without_a_rule_is_refused_to_everyone(method: str) -> None:
    for principal in (who("admin"), UNRESTRICTED):
        decision = DEFAULT_POLICY.decide(principal, method, "default")
        assert not decision.allowed
        assert decision.permission == ""
        assert "has no authorization rule" in decision.reason


# ------------------------------------------------------------------ the policy file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as e:
        parse_policy(path)
    assert SETTING in str(e.value)
    assert str(path) in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("text", ["", "# nothing\n", "roles:\n", "roles: {}\n"])
def test_an_empty_policy_is_the_built_in_one(tmp_path: Path, text: str) -> None:
    assert parse_policy(write(tmp_path, text)).roles == DEFAULT_POLICY.roles


def test_redefining_a_built_in_role(tmp_path: Path) -> None:
    policy = parse_policy(
        write(
            tmp_path, "roles:\n  operator: [executions.read, executions.start, executions.stop]\n"
        )
    )
    assert policy.roles["operator"] == {"executions.read", "executions.start", "executions.stop"}
    # The other built-in roles stay as they are.
    for role in ("agent", "viewer", "admin"):
        assert policy.roles[role] == DEFAULT_ROLES[role]
    operator = who("operator")
    assert policy.decide(operator, STOP, "default").allowed
    assert not policy.decide(operator, ASSIGN, "default").allowed  # no longer granted
    assert not policy.decide(operator, LIST_AGENTS, "default").allowed
    assert DEFAULT_POLICY.decide(operator, ASSIGN, "default").allowed  # the default is intact


def test_adding_a_role(tmp_path: Path) -> None:
    policy = parse_policy(
        write(
            tmp_path, "roles:\n  deployer: [workflows.read, workflows.define, executions.start]\n"
        )
    )
    assert policy.roles["deployer"] == {"workflows.read", "workflows.define", "executions.start"}
    deployer = who("deployer")
    assert policy.decide(deployer, DEFINE, "default").allowed
    assert policy.decide(deployer, START, "default").allowed
    assert not policy.decide(deployer, STOP, "default").allowed
    # Unknown to the built-in policy.
    decision = DEFAULT_POLICY.decide(deployer, DEFINE, "default")
    assert not decision.allowed
    assert "unknown role(s): deployer" in decision.reason


def test_star_grants_every_permission(tmp_path: Path) -> None:
    policy = parse_policy(write(tmp_path, "roles:\n  root: ['*']\n"))
    assert policy.roles["root"] == PERMISSIONS
    for method in METHODS:
        assert policy.decide(who("root"), method, "default").allowed


def test_a_prefix_pattern(tmp_path: Path) -> None:
    policy = parse_policy(
        write(tmp_path, "roles:\n  auditor: ['executions.*', events.subscribe]\n")
    )
    assert policy.roles["auditor"] == {
        "executions.read",
        "executions.start",
        "executions.stop",
        "executions.pause",
        "executions.resume",
        "events.subscribe",
    }
    assert policy.decide(who("auditor"), STOP, "default").allowed
    assert not policy.decide(who("auditor"), LIST_AGENTS, "default").allowed


def test_grants_and_role_names_are_stripped_and_a_role_may_grant_nothing(
    tmp_path: Path,
) -> None:
    policy = parse_policy(write(tmp_path, "roles:\n  ' ro ': ['  agents.read ']\n  admin: []\n"))
    assert policy.roles["ro"] == {"agents.read"}
    assert policy.roles["admin"] == frozenset()
    assert not policy.decide(who("admin"), DEFINE, "default").allowed


def test_json_is_accepted(tmp_path: Path) -> None:
    policy = parse_policy(write(tmp_path, '{"roles": {"ro": ["agents.read"]}}'))
    assert policy.roles["ro"] == {"agents.read"}


@pytest.mark.parametrize("grant", ["executions.delete", "execution.read", "exec", "", "nope.*"])
def test_an_unknown_permission_is_refused_naming_it(tmp_path: Path, grant: str) -> None:
    message = refused(write(tmp_path, f"roles:\n  viewer: [agents.read, '{grant}']\n"))
    assert f"roles.viewer: {grant!r} names no permission" in message
    assert "known: " in message
    assert "executions.stop" in message  # the known ones are listed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[viewer]\n", "expected a mapping with 'roles'"),
        ("viewer\n", "expected a mapping with 'roles'"),
        ("roles: {}\nusers: {}\n", "unknown top-level key(s) users"),
        ("role: {}\n", "unknown top-level key(s) role"),
        ("roles: [viewer]\n", "roles must map role names to lists of permissions"),
        ("roles: viewer\n", "roles must map role names to lists of permissions"),
        ("roles:\n  viewer: agents.read\n", "roles.viewer must be a list of permissions"),
        ("roles:\n  viewer: {agents.read: true}\n", "roles.viewer must be a list"),
        ("roles:\n  viewer: [agents.read, 3]\n", "roles.viewer must be a list of permissions"),
        ("roles:\n  viewer:\n", "roles.viewer must be a list of permissions"),
        ("roles:\n  '': [agents.read]\n", "role names must be non-empty strings"),
        ("roles:\n  1: [agents.read]\n", "role names must be non-empty strings"),
        ("roles: {\n", "not valid YAML"),
    ],
)
def test_bad_shapes(tmp_path: Path, text: str, says: str) -> None:
    assert says in refused(write(tmp_path, text))


def test_a_missing_policy_file(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path / "absent.yaml")


def test_expand() -> None:
    assert expand("*", "here") == PERMISSIONS
    assert expand("agents.*", "here") == {"agents.read", "agents.connect"}
    assert expand("agents.read", "here") == {"agents.read"}
    with pytest.raises(ConfigError, match=r"here: 'agents\.write' names no permission"):
        expand("agents.write", "here")


def test_granted_ignores_unknown_roles() -> None:
    policy = Policy({"a": frozenset({"agents.read"})})
    assert policy.granted(who("a", "b")) == {"agents.read"}
    assert policy.granted(who("b")) == frozenset()
