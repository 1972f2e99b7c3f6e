"""``system_monitoring``: load, memory, disk and process figures from /proc and the
standard library; ``None`` where a figure is unavailable."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_sdk import Task
from agentmesh.agents import _sandbox
from agentmesh.agents._inputs import bad


def monitor(task: Task, root: Path) -> dict[str, Any]:
    """``system_monitoring``: CPU, memory, disk and process figures (``None`` where
    unavailable), and the disk of each of ``paths``."""
    paths = task.input.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise bad("paths: must be a list of paths")
    resolved = [_sandbox.confine(root, p, "paths") for p in paths]
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": {"count": os.cpu_count(), "loadAverage": load, "percent": _cpu_percent()},
        "memory": _memory(),
        "disk": _disk(root),
        "paths": [
            {"path": str(p), "exists": p.exists(), "disk": _disk(p) if p.exists() else None}
            for p in resolved
        ],
        "processes": sum(1 for d in os.listdir("/proc") if d.isdigit())
        if os.path.isdir("/proc")
        else None,
        "uptimeSeconds": _uptime(),
    }


def _cpu_times() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def _cpu_percent(sample: float = 0.1) -> float | None:
    first = _cpu_times()
    time.sleep(sample)
    second = _cpu_times()
    if first is None or second is None or second[0] == first[0]:
        return None
    busy = 1 - (second[1] - first[1]) / (second[0] - first[0])
    return round(100 * busy, 1)


def _memory() -> dict[str, Any]:
    info: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {"totalBytes": None, "availableBytes": None, "usedBytes": None, "percent": None}
    total, available = info.get("MemTotal", 0), info.get("MemAvailable", info.get("MemFree", 0))
    return {
        "totalBytes": total,
        "availableBytes": available,
        "usedBytes": total - available,
        "percent": round(100 * (total - available) / total, 1) if total else None,
        "swapTotalBytes": info.get("SwapTotal"),
        "swapFreeBytes": info.get("SwapFree"),
    }


def _disk(path: Path) -> dict[str, Any]:
    usage = shutil.disk_usage(path)
    return {
        "path": str(path),
        "totalBytes": usage.total,
        "usedBytes": usage.used,
        "freeBytes": usage.free,
        "percent": round(100 * usage.used / usage.total, 1) if usage.total else None,
    }


def _uptime() -> float | None:
    try:
        with open("/proc/uptime") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
