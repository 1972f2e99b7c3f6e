"""Authorization: may this principal call this method in this namespace?

Deny by default: a call is allowed only when the method has a row in
``permissions.METHODS``, the namespace is one of the principal's, and one of its roles
grants the method's permission. The roles are the built-in ones
(``permissions.DEFAULT_ROLES``) as the optional policy file (``auth_policy_file``,
re-read when it changes) redefines or extends them::

    roles:
      operator: [executions.read, executions.start, executions.stop]   # replaces it
      deployer: [workflows.read, workflows.define, executions.start]   # a new role
      auditor: ["executions.*", events.subscribe]                      # a pattern

A grant is a permission, ``*`` (every permission) or a prefix ending in ``*``. A grant
that matches no permission is refused at load, so a typo never grants less (or more)
than meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from coordinator.auth.files import read_yaml
from coordinator.auth.permissions import DEFAULT_ROLES, METHODS, PERMISSIONS
from coordinator.auth.principal import Principal
from coordinator.errors import ConfigError

SETTING = "auth_policy_file"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one call: allowed or not, the permission it needs (empty for a
    method without a rule) and a sentence that explains it (what refusals say)."""

    allowed: bool
    permission: str
    reason: str


def expand(grant: str, where: str) -> frozenset[str]:
    """The permissions ``grant`` names: itself, or every one a trailing ``*`` matches."""
    if grant.endswith("*"):
        prefix = grant[:-1]
        matched = frozenset(p for p in PERMISSIONS if p.startswith(prefix))
    else:
        matched = frozenset({grant}) & PERMISSIONS
    if not matched:
        known = ", ".join(sorted(PERMISSIONS))
        raise ConfigError(f"{where}: {grant!r} names no permission (known: {known})")
    return matched


@dataclass(frozen=True, slots=True)
class Policy:
    """Roles -> the permissions they grant."""

    roles: Mapping[str, frozenset[str]]

    def granted(self, principal: Principal) -> frozenset[str]:
        """Every permission ``principal``'s roles grant."""
        out: set[str] = set()
        for role in principal.roles:
            out |= self.roles.get(role, frozenset())
        return frozenset(out)

    def decide(self, principal: Principal, method: str, namespace: str) -> Decision:
        """Whether ``principal`` may call ``method`` in ``namespace``, and why."""
        permission = METHODS.get(method)
        if permission is None:
            return Decision(False, "", f"{method} has no authorization rule: refused to all")
        who = principal.describe()
        granting = sorted(r for r in principal.roles if permission in self.roles.get(r, ()))
        if not granting:
            unknown = sorted(r for r in principal.roles if r not in self.roles)
            note = f" (unknown role(s): {', '.join(unknown)})" if unknown else ""
            return Decision(
                False,
                permission,
                f"{method} needs the permission {permission}, which no role of {who} grants{note}",
            )
        if not principal.in_namespace(namespace):
            mine = ", ".join(sorted(principal.namespaces)) or "none"
            return Decision(
                False,
                permission,
                f"{who} may not use {permission} in namespace {namespace!r} "
                f"(its namespaces: {mine})",
            )
        return Decision(
            True,
            permission,
            f"{who} has {permission} (role {granting[0]}) in namespace {namespace!r}",
        )


DEFAULT_POLICY = Policy(DEFAULT_ROLES)


def parse_policy(path: Path) -> Policy:
    """The built-in roles as the policy file at ``path`` redefines and extends them."""
    doc = read_yaml(path, SETTING)
    if doc is None:
        return DEFAULT_POLICY
    where = f"{SETTING}: {path}"
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping with 'roles'")
    unknown = sorted(set(map(str, doc)) - {"roles"})
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {', '.join(unknown)}")
    raw = doc.get("roles") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: roles must map role names to lists of permissions")
    roles = dict(DEFAULT_ROLES)
    for name, grants in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: role names must be non-empty strings")
        if not isinstance(grants, list) or not all(isinstance(g, str) for g in grants):
            raise ConfigError(f"{where}: roles.{name} must be a list of permissions")
        permissions: set[str] = set()
        for grant in grants:
            permissions |= expand(grant.strip(), f"{where}: roles.{name}")
        roles[name.strip()] = frozenset(permissions)
    return Policy(roles)
