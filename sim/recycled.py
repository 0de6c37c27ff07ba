"""Large per-chunk arrays handed out again once nothing holds them any more.

Fresh memory of a chunk's size (tens of MB) costs a page fault per 4 KiB page, and the kernel
zeroes each page first: for a KAVA chunk that costs more than the code filling the array. A
`Recycler` keeps the arrays it handed out and gives one back again when the only reference left
is its own: numpy views, and Arrow arrays made over them without a copy (`pa.py_buffer`,
`pa.array`), all hold a reference to the array they point into, so an array the send-order merge
or a writer still holds is never reused; a new one is made instead.

    recycler = Recycler()
    out = recycler.take((21, rows), np.float64)   # C-contiguous, contents undefined
"""

from __future__ import annotations

import mmap
import sys
import threading

import numpy as np

# Owners kept per dtype: the rows of the chunk being made, of the previous one still held by
# the merge or the writer, and of one more.
KEEP = 3
# Room made for later, larger chunks (sizes vary a little from chunk to chunk).
HEADROOM = 1.25
# numpy's threshold for asking the kernel for huge pages (numpy/_core/src/multiarray/alloc.c)
HUGE_PAGES_FROM = 4 << 20


class Recycler:
    """Arrays of any shape over flat owner buffers, each reused once nothing else refers to it.
    Per thread: a buffer is never handed to two threads."""

    def __init__(self, keep: int = KEEP):
        self._keep = keep
        self._local = threading.local()

    def _owners(self, dtype: np.dtype) -> list[np.ndarray]:
        pools = getattr(self._local, "pools", None)
        if pools is None:
            pools = self._local.pools = {}
        return pools.setdefault(dtype, [])

    def take(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of `shape`, over an owner nothing else holds."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape))
        owners = self._owners(dtype)
        # getrefcount(owners[i]) counts the list's reference and its own argument: 2 means free
        for i in range(len(owners)):
            if owners[i].size >= size and sys.getrefcount(owners[i]) == 2:
                return owners[i][:size].reshape(shape)
        # None free and large enough: forget free ones (too small), keep the newest others.
        busy = [owners[i] for i in range(len(owners)) if sys.getrefcount(owners[i]) > 2]
        owners[:] = busy[max(0, len(busy) - self._keep + 1) :]
        owner = small_pages(max(size, int(size * HEADROOM)), dtype)
        owners.append(owner)
        return owner[:size].reshape(shape)


def small_pages(size: int, dtype: np.dtype) -> np.ndarray:
    """An array of `size` on 4 KiB pages. numpy asks for transparent huge pages for arrays of
    HUGE_PAGES_FROM bytes or more; the kernel then zeroes, and often first compacts memory for,
    2 MiB at a fault, which cost more system time in a run than all the 4 KiB faults of these
    arrays (they are touched once, then reused). Smaller ones come from malloc, which reuses
    freed memory without a fault."""
    nbytes = size * dtype.itemsize
    if nbytes < HUGE_PAGES_FROM:
        return np.empty(size, dtype)
    memory = mmap.mmap(-1, nbytes)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):  # Linux
        memory.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(memory, dtype, size)
