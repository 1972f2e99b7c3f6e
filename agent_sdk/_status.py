"""An agent's connection status, visible even where nobody configured logging.

Every report is a record at INFO (or the level given) on the ``agent_sdk`` logger.
When the application has configured no logging at all at that moment (see
:func:`logging_configured`), a report is *also* printed on stderr as one line,
``agent_sdk: <message>``, but only when it is a change: reporting the same state
again for the same scope (say every failed reconnect attempt to one address for one
reason) prints nothing more.  The logger's level and handlers are never touched, so an
application that configures logging later gets the records, and the stderr lines stop.

Only connection state goes through here (connected, disconnected, reconnecting,
redirects, shutdown: :func:`report_retry` words the reconnect loop's); per-task
messages are logged directly and never reach stderr.
"""

from __future__ import annotations

import logging
import sys

from agent_sdk._failover import Outcome, Result, Retry

PREFIX = "agent_sdk: "


def logging_configured(logger: logging.Logger) -> bool:
    """Whether the application configured logging that covers ``logger``: the root
    logger has a handler, ``logger`` or an ancestor below the root has one, or
    ``logger`` has a level of its own."""
    if logging.root.handlers or logger.level != logging.NOTSET:
        return True
    node: logging.Logger | None = logger
    while node is not None and node is not logging.root:
        if node.handlers:
            return True
        node = node.parent
    return False


class StatusReporter:
    """Reports state changes of one agent (not thread-safe: use it on the agent's loop).

    ``report(scope, state, fmt, *args)`` logs ``fmt % args``; the stderr fallback shows
    it only if ``state`` differs from the last state reported for ``scope`` since the
    last :meth:`reset` (the agent resets when it connects, so a later loss shows again).
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._last: dict[str, str] = {}

    def report(
        self,
        scope: str,
        state: str,
        fmt: str,
        *args: object,
        level: int = logging.INFO,
        repeat_level: int | None = None,
    ) -> None:
        """Log at ``level`` (a repeat of the last state of ``scope`` at ``repeat_level``,
        default ``level``); print on stderr once per change if logging is unconfigured."""
        changed = self._last.get(scope) != state
        self._last[scope] = state
        if not changed and repeat_level is not None:
            level = repeat_level
        self._logger.log(level, fmt, *args, stacklevel=2)  # the record names the caller
        if changed and not logging_configured(self._logger):
            _print_line(PREFIX + (fmt % args if args else fmt))

    def reset(self) -> None:
        """Forget what was shown: the next report of every scope counts as a change."""
        self._last.clear()


def _print_line(line: str) -> None:
    stream = sys.stderr  # looked up per call: it may be redirected after import
    if stream is None:  # pythonw: no console
        return
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):  # closed or broken stderr: status is best effort
        pass


def report_retry(status: StatusReporter, name: str, o: Outcome, retry: Retry) -> None:
    """Report why agent ``name``'s last attempt ended and when the next one starts.
    Quick retries (several a second) repeat at DEBUG; backoff retries at INFO."""
    repeat = logging.DEBUG if retry.quick else None
    then = "at once" if retry.delay <= 0 else f"in {round(retry.delay, 2):g}s"
    refused = o.result in (Result.LEADER, Result.ELECTION)
    if o.welcomed and refused:
        report_disconnected(status, name, o, "")
    if o.result is Result.LEADER:
        status.report(
            o.target,
            f"redirected to {o.leader}",
            "agent %s: %s is not the leader; redirected to %s; reconnecting %s",
            name,
            o.target,
            o.leader,
            then,
            repeat_level=repeat,
        )
    elif o.result is Result.ELECTION:
        status.report(
            o.target,
            "election pending",
            "agent %s: %s knows no leader yet (election under way); retrying %s",
            name,
            o.target,
            then,
            repeat_level=repeat,
        )
    elif o.welcomed:
        report_disconnected(status, name, o, f"; reconnecting {then}")
    elif o.target:
        status.report(
            o.target,
            f"unreachable: {o.kind}",
            "agent %s: cannot reach %s: %s; retrying %s",
            name,
            o.target,
            o.reason,
            then,
            repeat_level=repeat,
        )
    else:
        status.report(
            "leader lookup",
            o.kind,
            "agent %s: %s; retrying %s",
            name,
            o.reason,
            then,
            repeat_level=repeat,
        )


def report_disconnected(status: StatusReporter, name: str, o: Outcome, then: str) -> None:
    """Report that a welcomed session ended (``then``: what happens next, or "")."""
    status.report(
        "",
        f"disconnected from {o.target}: {o.kind}",
        "agent %s: disconnected from %s: %s%s",
        name,
        o.target,
        o.reason,
        then,
    )
