"""How a student process hands memory back to the system (glibc; elsewhere these do nothing).

glibc keeps freed heap memory for reuse, and by default raises the size above which a block is mapped on
its own (and unmapped when freed) to the largest block freed so far. A training frees blocks of
activations, optimizer state and a whole model's weights, after which same-sized blocks stay on the heap,
where they fragment it: the process keeps its highest use, and the next large allocation grows it further.
So while a student trains, blocks over 128 KiB are mapped apart and go back the moment they are freed.

Generation wants the opposite: every decode step allocates and frees the same blocks of a few MB (each
layer's keys and values grown by one token, the MLP's activations), and a block mapped apart costs two
system calls and freshly zeroed pages each time, where the heap hands back the block it just freed. Outside
training the threshold is therefore glibc's highest (32 MiB), and what generation left on the heap is
trimmed before the next training. bench/training_peak.py and bench/training_memory.py measure both.
"""

import ctypes
import gc
import os
from contextlib import contextmanager

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
LARGE_BLOCK = 128 * 1024  # bytes: glibc's own starting threshold
HEAP_CEILING = 32 * 1024 * 1024  # bytes: the highest threshold glibc's own rule reaches on 64-bit


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl)
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _ours_to_set():
    """glibc, unless there is none or the environment already sets the threshold (MALLOC_MMAP_THRESHOLD_),
    which a user who sets it keeps."""
    libc = _glibc()
    return libc if libc is not None and "MALLOC_MMAP_THRESHOLD_" not in os.environ else None


@contextmanager
def training_memory():
    """Blocks over 128 KiB mapped apart while the block runs (a training: what each batch frees goes back
    at once, so the peak is what a batch needs, not a fragmented heap's), after the heap that generation
    left has been trimmed; afterwards large blocks come from the heap again, and what the training left
    there is trimmed."""
    libc = _ours_to_set()
    if libc is not None:
        libc.malloc_trim(0)
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, HEAP_CEILING)
        give_back_memory()


def give_back_memory() -> None:
    """Return the freed heap pages to the system (after a training: the peak of its small blocks)."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
