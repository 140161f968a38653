"""One setting of the C allocator for a process that holds many idle TLS connections.

Every TLS connection of uvloop keeps a 256 KiB read buffer (``malloc``, never written
past what one read decrypts). glibc serves blocks that large with ``mmap``, whose
untouched pages cost no memory, until the first such block is freed: it then raises
its threshold to that size and serves later ones from the heap, where pages that
earlier blocks used are already resident. A threshold fixed at that buffer's size keeps
every such buffer mapped, and leaves smaller blocks to the heap as before (the memory
row of ``python -m bench.run``: ~100 to ~92 KiB per idle pooled session).
Elsewhere (another C library, or no ``mallopt``) nothing changes.
"""

from __future__ import annotations

import ctypes
import logging

M_MMAP_THRESHOLD = -3  # glibc's malloc.h; setting it turns the dynamic threshold off
THRESHOLD = 256 * 1024  # uvloop's TLS read buffer: blocks from this size up are mapped

log = logging.getLogger(__name__)


def keep_large_blocks_mapped() -> bool:
    """Fix glibc's mmap threshold at ``THRESHOLD``; False where that cannot be done."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    log.debug("fixed mmap threshold of %d bytes: %s", THRESHOLD, applied)
    return applied
