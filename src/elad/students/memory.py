"""How a student process hands memory back to the system (glibc; elsewhere these do nothing).

glibc keeps freed heap memory for reuse, and by default raises the size above which a block is mapped on
its own (and unmapped when freed) to the largest block freed so far. A training frees blocks of
activations, optimizer state and a whole model's weights, after which same-sized blocks stay on the heap,
where they fragment it: the process keeps its highest use, and the next large allocation grows it further.
bench/training_peak.py and bench/training_memory.py measure both effects.
"""

import ctypes
import gc
import os

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
LARGE_BLOCK = 128 * 1024  # bytes: glibc's own starting threshold


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl)
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def map_large_blocks_apart() -> None:
    """Keep blocks over 128 KiB (tensors) out of the heap for good: each is unmapped when freed, so the
    memory a training frees goes back at once. Process-wide; left alone where the environment already
    sets the threshold (MALLOC_MMAP_THRESHOLD_)."""
    libc = _glibc()
    if libc is not None and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)


def give_back_memory() -> None:
    """Return the freed heap pages to the system (after a training: the peak of its small blocks)."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
