"""The options of ``bench.run`` (``python -m bench.run --help``)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULE = "mod_http_msg_reference"


def default_reference() -> Path:
    """``shared/reference/mod_http_msg_reference`` beside this checkout, or beside the
    folder it is in (a git worktree under a folder beside the main checkout)."""
    near = [folder / "shared" / "reference" / MODULE for folder in REPO.parents[:2]]
    return next((path for path in near if path.is_dir()), near[0])


def parse_args(argv: list[str] | None, description: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of hot-sender and ceiling load per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unmeasured load before each hot and ceiling run "
                             "(default 2)")
    parser.add_argument("--connections", type=int, default=8,
                        help="keep-alive connections of the hot sender (default 8)")
    parser.add_argument("--cold", type=int, default=500,
                        help="distinct accounts posting once each (default 500)")
    parser.add_argument("--cold-connections", type=int, default=8,
                        help="concurrent connections for cold senders (default 8)")
    parser.add_argument("--returning-idle-timeout", type=float, default=30.0,
                        metavar="SECONDS",
                        help="the gateway's --idle-timeout for the hot, cold and returning "
                             "runs: the cold senders post once more (the returning row) "
                             "once their sessions closed (default 30; 0 skips that row "
                             "and keeps sessions an hour)")
    parser.add_argument("--memory-sessions", type=lambda s: [int(x) for x in s.split(",")
                                                               if x],
                        default=[1, 100, 1000],
                        help="pooled idle session counts to measure RSS at "
                             "(default 1,100,1000; empty to skip)")
    parser.add_argument("--gateway-arg", action="append", metavar="ARG",
                        help="extra argument for 'xmpp-post serve' (repeatable), "
                             "e.g. --gateway-arg=--log-level=warning")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the gateway with py-spy during the hot and cold runs and "
                             "write collapsed stacks to DIR (slows the gateway; for profiling "
                             "only, not for figures)")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false",
                        default=importlib.util.find_spec("uvloop") is not None,
                        help="run the gateway on asyncio's own loop (default: --uvloop "
                             "when uvloop is installed)")
    parser.add_argument("--starttls", action="store_true",
                        help="the gateway logs in with STARTTLS on Prosody's c2s port "
                             "(default: direct TLS, XEP-0368, on its direct TLS port)")
    parser.add_argument("--skip-reference", action="store_true",
                        help="do not measure the in-server baseline")
    parser.add_argument("--reference", type=Path, default=default_reference(),
                        metavar="DIR",
                        help="the folder of mod_http_msg_reference (default: "
                             "shared/reference/ beside this checkout or beside its folder)")
    parser.add_argument("--skip-ceiling", action="store_true",
                        help="do not measure the ceiling (bench.ceiling)")
    parser.add_argument("--ceiling-window", type=int, default=256,
                        help="stanzas the ceiling sender leaves unacknowledged (default 256)")
    parser.add_argument("--ceiling-batch", type=int, default=64,
                        help="stanzas per write of the ceiling sender, each write ending in "
                             "an ack request (default 64)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json",
                        help="where to write the raw figures (JSON)")
    args = parser.parse_args(argv)
    args.accounts = max([args.cold, *args.memory_sessions])
    return args
