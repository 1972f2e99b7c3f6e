"""A settings file that is parsed at start and again whenever it changes.

The tokens file, the policy file and a JWKS file are each a ``Watched``: the first load
must succeed (a ``ConfigError`` naming the setting stops the coordinator at start); after
that, each ``current()`` compares the file's stat signature (inode, size, mtime) with the
last one, a cheap ``stat`` and no read, and parses it again only when it changed. A
change that does not parse (a half-written file, a typo) is logged and the last good
content stays in force, so a bad edit never opens or closes the door by accident.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from coordinator.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")
Signature = tuple[int, int, int]


def read_yaml(path: Path, setting: str) -> Any:
    """The YAML (or JSON) document in ``path``; ``ConfigError`` naming ``setting``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{setting}: cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting}: {path} is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{setting}: {path} is not valid YAML: {e}") from None


class Watched(Generic[T]):
    """``parse(path)`` of one file, kept current: see the module docstring.

    ``generation`` counts the successful loads, so a cache built from the content can
    tell it is stale; ``reloads`` counts the loads after the first.
    """

    def __init__(self, path: str | Path, setting: str, parse: Callable[[Path], T]) -> None:
        self.path = Path(path)
        self.setting = setting
        self._parse = parse
        self._signature = self._stat()
        self._value = parse(self.path)  # ConfigError: the coordinator does not start
        self.generation = 1
        self.reloads = 0

    def _stat(self) -> Signature | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def current(self) -> T:
        """The content, parsed again first if the file changed since the last look."""
        signature = self._stat()
        if signature != self._signature:
            self._signature = signature
            self._reload()
        return self._value

    def _reload(self) -> None:
        try:
            value = self._parse(self.path)
        except ConfigError as e:
            log.error("%s changed but cannot be used, keeping the last good one: %s", self.path, e)
            return
        self._value = value
        self.generation += 1
        self.reloads += 1
        log.info("%s: %s reloaded", self.setting, self.path)
