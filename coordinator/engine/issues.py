"""Problems found in a workflow definition, and how to report many of them in bounded space.

    ValueError
    └── DefinitionError   the definition is malformed; ``.issues`` lists every problem

A definition can have thousands of problems (2 000 steps that each name a missing step),
and every channel that carries them is bounded: a gRPC status message travels in
metadata (about 8 KB in all), a response body should not grow with an attacker's
input. ``issues_text`` turns a list into one message of bounded length and
``cap_issues`` keeps the first ``MAX_ISSUES`` and the total.

This module depends on nothing else in the engine, so ``limits``, ``files``,
``definition`` and ``validate`` can all build issues.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence

from coordinator.errors import Issue

# How many issues a report carries before "... and K more": enough to fix a definition
# from, few enough that the report stays small whatever the definition.
MAX_ISSUES = 100
# Bytes of a status message as gRPC sends it (percent-encoded). The hard limit is on all
# metadata together (8 KiB by default), so the message keeps half of it.
MAX_ISSUE_TEXT = 4096
# Words longer than this get no "did you mean": difflib's cost grows with the square of
# the length, and a 4 KB step id is not a typo.
MAX_HINT_WORD = 64
# Characters of one issue in a message; longer ones (a message quoting a 4 KB
# expression) are cut with an ellipsis.
MAX_ISSUE_CHARS = 300


def did_you_mean(word: str, candidates: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``""``. Costs a scan of
    the candidates: use ``Hints`` where there may be many such words."""
    if len(word) > MAX_HINT_WORD:
        return ""
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Hints:
    """``did_you_mean`` for the first ``limit`` words asked about, then ``""``: a
    definition with 2 000 misspelt targets gets five suggestions, not 2 000 scans of
    every step id."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def __call__(self, word: str, candidates: Collection[str]) -> str:
        if self.left <= 0:
            return ""
        self.left -= 1
        return did_you_mean(word, candidates)


def cap_issues(issues: Sequence[Issue], limit: int = MAX_ISSUES) -> tuple[list[Issue], int]:
    """The first ``limit`` issues and how many there are in all, for a response body
    (``ValidateWorkflow``) that must not grow without bound. Never raises."""
    return list(issues[: max(limit, 0)]), len(issues)


def issues_text(
    issues: Sequence[Issue],
    max_bytes: int = MAX_ISSUE_TEXT,
    max_issue_chars: int = MAX_ISSUE_CHARS,
) -> str:
    """One message for a gRPC status: ``location: message`` joined by ``"; "``, each
    issue cut to ``max_issue_chars``, as many as fit in ``max_bytes`` (counted as gRPC
    percent-encodes the message), then ``... and K more issues (N in all)``.

    Never raises; an empty list gives ``""``.
    """
    total = len(issues)
    # Room for the longest possible tail, so adding it never overflows the budget.
    tail_room = len(f"; ... and {total} more issues ({total} in all)")
    budget = max(max_bytes - tail_room, 0)
    parts: list[str] = []
    used = 0
    for issue in issues[:MAX_ISSUES]:
        text = f"{issue.location}: {issue.message}" if issue.location else issue.message
        # A lone surrogate (valid in a JSON string) cannot be sent; '?' stands for it.
        text = _cut(text.encode("utf-8", "replace").decode("utf-8"), max_issue_chars)
        cost = _wire_size(text) + (2 if parts else 0)
        if used + cost > budget:
            break
        parts.append(text)
        used += cost
    rest = total - len(parts)
    if rest:
        parts.append(f"... and {rest} more issue{'s' if rest != 1 else ''} ({total} in all)")
    return "; ".join(parts)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _wire_size(text: str) -> int:
    # gRPC percent-encodes every byte outside printable ASCII, and '%' itself.
    return sum(1 if " " <= c <= "~" and c != "%" else 3 * len(c.encode()) for c in text)


__all__ = [
    "MAX_ISSUES",
    "MAX_ISSUE_CHARS",
    "MAX_ISSUE_TEXT",
    "Hints",
    "Issue",
    "cap_issues",
    "did_you_mean",
    "issues_text",
]
