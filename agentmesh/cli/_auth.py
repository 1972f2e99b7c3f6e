"""``agentmesh auth``: make tokens, hash them, and explain authorization decisions.

All offline: ``check`` reads the same tokens and policy files a coordinator would and
asks the same ``coordinator.auth.Policy`` it uses, so the answer is the one the server
gives (``PERMISSION_DENIED`` texts included).
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from pathlib import Path

from agentmesh.cli._parser import UsageError
from coordinator.auth import DEFAULT_POLICY, METHODS, Policy, Principal, parse_policy
from coordinator.auth.tokens import parse_tokens, token_digest
from coordinator.config import load_settings
from coordinator.errors import ConfigError

DENIED = 1
_PLAIN = re.compile(r"[\w.:/@-]+|\*")


def run(args: argparse.Namespace) -> int:
    """Run ``auth new-token``, ``auth hash-token``, ``auth new-history-key`` or
    ``auth check``."""
    if args.auth_command == "new-token":
        return new_token(args)
    if args.auth_command == "new-history-key":
        from cryptography.fernet import Fernet

        print(Fernet.generate_key().decode())
        return 0
    if args.auth_command == "hash-token":
        return hash_token(args)
    return check(args)


def new_token(args: argparse.Namespace) -> int:
    """Print a new token and its tokens-file entry."""
    for what, values in (
        ("name", [args.name]),
        ("--role", args.role),
        ("--namespace", args.namespace),
        ("--capability", args.capability),
    ):
        for value in values:
            if not _PLAIN.fullmatch(value):
                raise UsageError(
                    f"{what} {value!r}: use letters, digits and . _ - : / @ (or * alone)"
                )
    token = secrets.token_urlsafe(32)
    entry = [
        f"  - name: {args.name}",
        f"    sha256: {token_digest(token)}",
        f"    roles: [{', '.join(args.role)}]",
        f"    namespaces: [{', '.join(map(_quoted, args.namespace or ['default']))}]",
    ]
    if args.capability:
        entry.append(f"    capabilities: [{', '.join(map(_quoted, args.capability))}]")
    if args.expires:
        entry.append(f"    expires: {args.expires}")
    if args.append:
        _append(Path(args.append), entry)
        print(token)  # alone, for TOKEN=$(agentmesh auth new-token ... --append FILE)
        return 0
    print(f"token (shown once; give it to {args.name}, e.g. as AGENTMESH_TOKEN):")
    print(f"  {token}")
    print("add to the tokens file (under tokens:):")
    print("\n".join(entry))
    return 0


def _quoted(value: str) -> str:
    return '"*"' if value == "*" else value


def _append(path: Path, entry: list[str]) -> None:
    """Append ``entry`` to the tokens file at ``path`` (made when missing), as text so
    its comments stay; the result must parse, or the file is left as it was."""
    try:
        before = path.read_text(encoding="utf-8") if path.exists() else None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    text = before if before is not None and before.strip() else "tokens:\n"
    if not text.endswith("\n"):
        text += "\n"
    try:
        path.write_text(text + "\n".join(entry) + "\n", encoding="utf-8")
        path.chmod(0o600)
        parse_tokens(path)
    except (OSError, ConfigError) as e:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(before, encoding="utf-8")
        why = e.strerror if isinstance(e, OSError) else str(e)
        raise UsageError(f"cannot add the entry to {path} (left as it was): {why}") from None


def hash_token(args: argparse.Namespace) -> int:
    """Print the SHA-256 of the token given or read from stdin."""
    token = args.token if args.token is not None else sys.stdin.readline().rstrip("\r\n")
    if not token:
        raise UsageError("hash-token: no token given (as an argument or on stdin)")
    print(token_digest(token))
    return 0


def resolve_method(name: str) -> str:
    """The full method path ``name`` means (``StopWorkflow``,
    ``ExecutionService/StopWorkflow`` or the path itself)."""
    if name in METHODS:
        return name
    short = name.strip("/")
    matches = [m for m in METHODS if m.endswith("/" + short) or m.endswith("." + short)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"{name!r} is ambiguous: {', '.join(sorted(matches))}")
    raise UsageError(f"{name!r} is not an agentmesh.v1 method (e.g. ExecutionService/StopWorkflow)")


def _principal(args: argparse.Namespace, tokens_file: str) -> Principal:
    if args.role:
        return Principal(
            args.principal,
            roles=frozenset(args.role),
            namespaces=frozenset({args.namespace}),
            via="check",
        )
    if not tokens_file:
        raise UsageError("check: give --role, or a tokens file (--tokens-file, --config)")
    try:
        table = parse_tokens(Path(tokens_file))
    except ConfigError as e:
        raise UsageError(str(e)) from None
    every = (*table.by_digest.values(), *table.by_spiffe.values(), *table.by_common_name.values())
    entries = [e.principal for e in every if e.principal.name == args.principal]
    if not entries:
        raise UsageError(f"check: {args.principal!r} is not named in {tokens_file}")
    return entries[0]


def check(args: argparse.Namespace) -> int:
    """Print whether the principal may call the method, and why; 1 when denied."""
    try:
        settings = load_settings(file=args.config)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    tokens_file = args.tokens_file if args.tokens_file is not None else settings.auth_tokens_file
    policy_file = args.policy_file if args.policy_file is not None else settings.auth_policy_file
    method = resolve_method(args.method)
    principal = _principal(args, tokens_file)
    policy: Policy = DEFAULT_POLICY
    if policy_file:
        try:
            policy = parse_policy(Path(policy_file))
        except ConfigError as e:
            raise UsageError(str(e)) from None
    decision = policy.decide(principal, method, args.namespace)
    print(f"{'allowed' if decision.allowed else 'denied'}: {decision.reason}")
    if decision.allowed and principal.capabilities and method.endswith("/Connect"):
        print(f"  as an agent it may serve: {', '.join(sorted(principal.capabilities))}")
    return 0 if decision.allowed else DENIED
