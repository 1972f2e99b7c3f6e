"""An exclusive, advisory lock that says who holds it: one coordinator per SQLite store.

The lock is ``flock`` on a file beside the database (``<db>.lock``), never on the
database itself: SQLite takes POSIX record locks on its own files, and on systems where
``flock`` is emulated with record locks the two would collide. The kernel drops the lock
when its holder exits, SIGKILL included, so a crashed coordinator never leaves the store
locked; the file itself stays, holding the last holder's description, which is only
read when the lock is taken and cannot be had.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from ._errors import StoreLocked


class FileLock:
    """``acquire()`` takes the lock or raises ``StoreLocked``; ``describe(text)`` replaces
    what the lock file says about its holder; ``release()`` is safe to call twice."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, holder: str) -> None:
        """Take the lock (non-blocking) or raise ``StoreLocked`` naming its holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = _read(fd)
            os.close(fd)
            raise StoreLocked(self.path.removesuffix(".lock"), text) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.describe(holder)

    def describe(self, holder: str) -> None:
        """Replace what the lock file says about its holder."""
        if self._fd is None:
            return
        data = holder.encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Give the lock up; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 4096, 0).decode(errors="replace").strip()
    return ""
