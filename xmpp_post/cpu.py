"""The threads that CPU-bound work of a request runs in, off the event loop.

Template renders, the parsing of a large payload and the conversion of a long ntfy
Markdown message run here. The GIL lets one of them run at a time anyway, so the threads
are few: each CPU-bound thread that is ready to run makes the event loop wait longer
for the GIL, and a slow render must not hold the threads logins hash passwords in (the
loop's default executor). They are started together, before the first request
(:func:`start`): a thread being started waits for the GIL, and the loop with it.

:data:`SWITCH_INTERVAL` is how long a thread may keep the GIL while another one waits
for it (Python's default is 5 ms); ``serve`` sets it, so the loop gets its turn soon.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

THREADS = 2
SWITCH_INTERVAL = 0.001

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """The threads (made, and all started, on first use)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="cpu")
        ready = threading.Barrier(THREADS)
        for _ in range(THREADS):  # each waits for the others: THREADS threads start
            _pool.submit(ready.wait, 10)
    return _pool


def start() -> None:
    """Start the threads now, before the first request needs one."""
    pool()


async def run(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in one of the threads."""
    call = functools.partial(function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool(), call)
