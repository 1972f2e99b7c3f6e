"""Running one admitted command: stdin from /dev/null, a new session, output kept in
temporary files and capped (the head of stdout, the tail of stderr, ``MAX_OUTPUT`` each),
the whole process group killed at the end or on timeout."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from agent_sdk import RetryableTaskError, TaskError

MAX_OUTPUT = 64 * 1024  # bytes kept of stdout (its head) and of stderr (its tail)


@dataclass(frozen=True, slots=True)
class Command:
    """A command the gate let through: what to execute, where, with what, for how long."""

    argv: list[str]
    exe: str  # the file executed (argv[0] names it for the program)
    text: str  # the command as the task gave it (for messages)
    cwd: Path
    env: dict[str, str]
    timeout: float


def _head(f: IO[bytes]) -> tuple[str, bool]:
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    return f.read(MAX_OUTPUT).decode("utf-8", "replace"), size > MAX_OUTPUT


def _tail(f: IO[bytes]) -> tuple[str, bool]:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - MAX_OUTPUT))
    return f.read().decode("utf-8", "replace"), size > MAX_OUTPUT


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run(command: Command) -> dict[str, Any]:
    """Run ``command`` to its end or its timeout; its output, or CommandFailed (non-zero
    exit), CommandNotFound, retryable CommandTimeout. Its process group is killed either
    way, so nothing it started in the background outlives it."""
    argv, exe, text = command.argv, command.exe, command.text
    cwd, env, timeout = command.cwd, command.env, command.timeout
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                argv,
                executable=exe,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as e:
            raise TaskError(
                f"cannot run {argv[0]!r}: {e.strerror}",
                type="CommandNotFound",
                details={"command": text[:500]},
            ) from None
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            stdout, _ = _head(out)
            raise RetryableTaskError(
                f"command timed out after {timeout:g} s",
                type="CommandTimeout",
                details={"timeoutSeconds": timeout, "stdoutTail": stdout[-2000:]},
            ) from None
        finally:
            _kill_group(proc.pid)  # whatever it left running in the background
        stdout, cut_out = _head(out)
        stderr, cut_err = _tail(err)
    if code != 0:
        raise TaskError(
            f"command exited with {code}",
            type="CommandFailed",
            details={"exitCode": code, "stderr": stderr[-2000:], "command": text[:500]},
        )
    return {
        "exitCode": code,
        "stdout": stdout,
        "stderr": stderr,
        "result": stdout.strip(),
        "durationMs": int((time.monotonic() - started) * 1000),
        "truncated": cut_out or cut_err,
        "argv": argv,
    }
