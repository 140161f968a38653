"""CPU time and resident memory of a process, read from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def rss_kib(pid: int) -> int:
    """Resident set size in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(t) for t in text]
    return found


def descendant_named(pid: int, name: str) -> int:
    """The first process under ``pid`` (itself included) whose command name starts so."""
    todo = [pid]
    while todo:
        current = todo.pop(0)
        comm = Path(f"/proc/{current}/comm").read_text().strip()
        if comm.startswith(name):
            return current
        todo += children(current)
    raise LookupError(f"no process named {name!r} under {pid}")
