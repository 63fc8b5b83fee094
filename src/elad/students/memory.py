"""How a student process hands memory back to the system (glibc; elsewhere these do nothing).

glibc keeps freed heap memory for reuse, and by default raises the size above which a block is mapped on
its own (and unmapped when freed) to the largest block freed so far. A training frees blocks of
activations, optimizer state and a whole model's weights, after which same-sized blocks stay on the heap,
where they fragment it: the process keeps its highest use, and the next large allocation grows it further.
So while a student trains with gradient checkpointing (the setting for a low peak), blocks over 128 KiB are
mapped apart and go back the moment they are freed. That costs a page fault for every page of every
activation: on a CPU with native bf16, where the products are fast, a LoRA training of Qwen2.5-0.5B took
51 s instead of 32 s (peak 4.6 GB against 5.7 GB). Without checkpointing a training keeps its blocks on
the heap, as generation does (below), and the heap is trimmed after it.

Generation wants the opposite: every decode step allocates and frees the same blocks of a few MB (each
layer's keys and values grown by one token, the MLP's activations), and a block mapped apart costs two
system calls and freshly zeroed pages each time, where the heap hands back the block it just freed. Outside
training the threshold is therefore glibc's highest (32 MiB), and what generation left on the heap is
trimmed before the next training. bench/training_peak.py and bench/training_memory.py measure both.

glibc maps every block over 32 MiB apart whatever the threshold, and the blocks of a prompt pass or of
scoring a pool's explanations are larger (an MLP activation of 96 prompts x 80 tokens is 75 MB in bf16);
freed at the top of the heap, smaller ones are trimmed back to the system too. While the student generates
or scores (`inference_memory`), nothing is mapped apart and the heap is not trimmed, so each pass reuses
the pages of the last one: scoring 64 pool items' explanations took 12.8 s instead of 22.7 s. The heap
keeps the passes' largest use until the next training trims it.
"""

import ctypes
import gc
import os
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # mallopt's parameter numbers, from glibc's malloc.h
LARGE_BLOCK = 128 * 1024  # bytes: glibc's own starting threshold
HEAP_CEILING = 32 * 1024 * 1024  # bytes: the highest threshold glibc's own rule reaches on 64-bit
TRIM_DEFAULT, MMAP_MAX_DEFAULT = 128 * 1024, 65536  # glibc's defaults
KEEP_ALL = 2**31 - 1  # bytes: the highest trim threshold mallopt takes (a C int)


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl)
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _ours_to_set(*settings: str):
    """glibc, unless there is none or the environment already sets one of these (MALLOC_MMAP_THRESHOLD_,
    ...), which a user who sets it keeps."""
    libc = _glibc()
    names = settings or ("MALLOC_MMAP_THRESHOLD_",)
    return libc if libc is not None and not any(name in os.environ for name in names) else None


_inference_depth = 0  # nested inference blocks set and restore the settings once


@contextmanager
def inference_memory():
    """While the block runs (generating or scoring), no block is mapped apart and the heap is never trimmed:
    each pass reuses the pages the last one freed. Afterwards glibc's defaults are back; the pages stay
    on the heap until a training trims it."""
    global _inference_depth
    libc = _ours_to_set("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_") if _inference_depth == 0 else None
    if libc is not None:
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, KEEP_ALL)
    _inference_depth += 1
    try:
        yield
    finally:
        _inference_depth -= 1
        if libc is not None:
            libc.mallopt(M_MMAP_MAX, MMAP_MAX_DEFAULT)
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_DEFAULT)


@contextmanager
def training_memory(lean: bool = True):
    """A training's memory, after the heap that generation left has been trimmed. `lean`: blocks over 128
    KiB mapped apart while the block runs (what each batch frees goes back at once, so the peak is what a
    batch needs, not a fragmented heap's), large blocks from the heap again afterwards. Not lean: the heap
    kept whole, as while generating (`inference_memory`), for speed. Either way what the training left on
    the heap is trimmed after it."""
    if not lean:
        _trim()
        with inference_memory():
            try:
                yield
            finally:
                give_back_memory()
        return
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


def _trim() -> None:
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def give_back_memory() -> None:
    """Return the freed heap pages to the system (after a training: the peak of its small blocks)."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
