"""The benchmark's tables, drawn from the raw figures that ``bench.run`` collects."""

from __future__ import annotations

from typing import Any

# The processes whose CPU time is read for each scenario, in table order.
PROCESSES = ("gateway", "prosody", "receiver", "load")

# Scenario keys of ``results["scenarios"]``, in table order, with their labels.
ROWS = (
    ("ceiling_before", "ceiling, before"),
    ("gateway_hot", "xmpp-post, hot sender"),
    ("gateway_cold", "xmpp-post, cold senders"),
    ("gateway_returning", "xmpp-post, returning senders"),
    ("ceiling_after", "ceiling, after"),
    ("reference_hot", "in-server baseline, hot sender"),
    ("reference_cold", "in-server baseline, cold senders"),
)
TARGETS = {"gateway_hot": "share ≥ 0.30; p99 ≤ 10 ms", "gateway_cold": "≥ 0.6x baseline",
           "gateway_returning": "≥ 1.0x baseline"}
BASELINE_OF = {"gateway_hot": "reference_hot", "gateway_cold": "reference_cold",
               "gateway_returning": "reference_cold"}


def _fmt(value: Any, spec: str = ".0f") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def ceiling_per_s(scenarios: dict[str, Any]) -> float | None:
    """The ceiling as the mean of its runs (before and after the other scenarios)."""
    runs = [scenarios[k]["delivered_per_s"] for k in ("ceiling_before", "ceiling_after")
            if k in scenarios]
    return sum(runs) / len(runs) if runs else None


def _row(key: str, label: str, scenarios: dict[str, Any], ceiling: float | None) -> str:
    s = scenarios[key]
    rate = s["delivered_per_s"]
    share = rate / ceiling if ceiling and not key.startswith("ceiling") else None
    base = scenarios.get(BASELINE_OF.get(key, ""), {}).get("delivered_per_s")
    per = s["cpu_us_per_msg"]
    known = [per[p] for p in PROCESSES if per.get(p) is not None]
    check = ("yes" if s["exactly_once"] else "NO") + f" ({s['delivered']})"
    cells = [label, _fmt(rate), _fmt(share, ".3f"),
             f"{rate / base:.1f}x" if rate and base else "-",
             _fmt(s.get("p50_ms"), ".2f"), _fmt(s.get("p99_ms"), ".2f"),
             *(_fmt(per.get(p), ".1f") for p in PROCESSES),
             _fmt(sum(known), ".1f") if known else "-",
             f"{s['machine_cores_busy']:.2f} ({s['other_cores_busy']:.2f})", check,
             TARGETS.get(key, "")]
    return "| " + " | ".join(cells) + " |"


def scenario_table(results: dict[str, Any]) -> str:
    scenarios = results["scenarios"]
    ceiling = ceiling_per_s(scenarios)
    head = ("", "delivered/s", "share of ceiling", "vs baseline", "p50 ms", "p99 ms",
            "CPU µs/msg gateway", "Prosody", "receiver", "load generator", "total",
            "cores busy (not ours)", "exactly once (messages)", "target")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    lines += [_row(key, label, scenarios, ceiling) for key, label in ROWS if key in scenarios]
    return "\n".join(lines)


def memory_table(memory: dict[str, Any]) -> str:
    lines = ["| RSS | gateway MiB | Prosody MiB |", "|---|---|---|"]
    server = memory.get("prosody_rss_kib", {})
    for count, kib in memory.get("rss_kib", {}).items():
        lines.append(f"| {count} pooled idle sessions | {kib / 1024:.1f} | "
                     f"{_fmt(server.get(count, 0) / 1024 or None, '.1f')} |")
    per, server_per = memory.get("per_session_kib"), memory.get("prosody_per_session_kib")
    lines.append(f"| per session (KiB; gateway target ≤ 100) | {_fmt(per, '.1f')} | "
                 f"{_fmt(server_per, '.1f')} |")
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    """The scenario table, the memory table (when measured) and what the columns mean."""
    scenarios = results["scenarios"]
    parts = [scenario_table(results)]
    ceiling = ceiling_per_s(scenarios)
    hot = scenarios.get("gateway_hot", {})
    notes = [f"hot: 1 account, {hot.get('connections', '?')} wrk connections; "
             f"cold: {scenarios.get('gateway_cold', {}).get('senders', '?')} accounts "
             "posting once each"]
    if "gateway_returning" in scenarios:
        notes.append("returning: the cold accounts once more, after the gateway's idle "
                     f"timeout ({results['config']['returning_idle_timeout']:g} s) closed "
                     "their sessions")
    if ceiling:
        notes.append(f"share of ceiling = delivered/s ÷ {ceiling:.0f}/s, the mean of the "
                     "ceiling runs")
    notes.append("receiver = the bench's own process (counter); load generator = wrk, "
                 "or the ceiling's own sender")
    notes.append(f"cores busy = the machine's busy cores (of {results['machine']['nproc']}) "
                 "while the load ran; in brackets, what other processes than these took")
    parts.append("\n".join(f"- {note}" for note in notes))
    if "memory" in results:
        parts.append(memory_table(results["memory"]))
    return "\n\n".join(parts)
