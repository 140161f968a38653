"""CPU time and resident memory of a process, read from /proc (Linux only)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
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



def machine_ticks() -> tuple[int, int]:
    """Busy and total clock ticks of all CPUs since boot (idle and iowait are not busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # user .. steal; guest time is already in user time
    return total - fields[3] - fields[4], total


@dataclass(frozen=True)
class Usage:
    """CPU seconds each process used between two readings, the wall time between them,
    and how many of the machine's cores were busy on average (every process, ours or
    not)."""

    cpu_s: dict[str, float]
    wall_s: float
    cores_busy: float


@dataclass(frozen=True)
class Reading:
    """CPU time of some processes and of the whole machine at one moment."""

    cpu_s: dict[str, float]
    wall_s: float
    busy_ticks: int
    total_ticks: int

    @classmethod
    def now(cls, pids: dict[str, int]) -> Reading:
        busy, total = machine_ticks()
        return cls({name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic(),
                   busy, total)

    def until(self, later: Reading) -> Usage:
        total = later.total_ticks - self.total_ticks
        cores = (later.busy_ticks - self.busy_ticks) / total * (os.cpu_count() or 1)
        return Usage({k: later.cpu_s[k] - v for k, v in self.cpu_s.items()},
                     later.wall_s - self.wall_s, cores if total else 0.0)


def machine_load(usage: Usage, cpu: dict[str, float]) -> dict[str, float]:
    """How busy the machine was while the load ran, and how much of that was not ours
    (other engineers' work shares the cores)."""
    ours = sum(cpu.values()) / usage.wall_s if usage.wall_s else 0.0
    return {"measured_wall_s": usage.wall_s, "machine_cores_busy": usage.cores_busy,
            "other_cores_busy": max(0.0, usage.cores_busy - ours)}


def per_message(cpu: dict[str, float], messages: int) -> dict[str, float | None]:
    """CPU microseconds per message, per process."""
    return {k: (v / messages * 1e6 if messages else None) for k, v in cpu.items()}
