"""Who may do what: principals, their authentication, the roles and the audit log.

``Authenticator`` turns a call's credentials (a bearer token of the tokens file, a JWT,
a client certificate) into a ``Principal``; its ``policy`` decides, deny by default,
whether that principal may call a method in a namespace (``permissions.METHODS`` says
what each method needs); ``AuditLog`` records every write and refusal; ``OpenStreams``
decides open streams again and ends the ones revoked since they opened. No gRPC here:
``coordinator.api.guard`` applies all of it to each call. docs/security.md is the guide.
"""

from coordinator.auth.audit import AuditLog, AuditRecord
from coordinator.auth.authenticator import Authenticator, Credentials
from coordinator.auth.permissions import DEFAULT_ROLES, METHODS, PERMISSIONS, READ_ONLY
from coordinator.auth.policy import DEFAULT_POLICY, Decision, Policy, parse_policy
from coordinator.auth.principal import (
    ANY,
    DEFAULT_NAMESPACE,
    UNRESTRICTED,
    Principal,
    current,
)
from coordinator.auth.streams import OpenStream, OpenStreams
from coordinator.auth.tokens import TokenTable, parse_tokens, token_digest

__all__ = [
    "ANY",
    "DEFAULT_NAMESPACE",
    "DEFAULT_POLICY",
    "DEFAULT_ROLES",
    "METHODS",
    "PERMISSIONS",
    "READ_ONLY",
    "UNRESTRICTED",
    "AuditLog",
    "AuditRecord",
    "Authenticator",
    "Credentials",
    "Decision",
    "OpenStream",
    "OpenStreams",
    "Policy",
    "Principal",
    "TokenTable",
    "current",
    "parse_policy",
    "parse_tokens",
    "token_digest",
]
