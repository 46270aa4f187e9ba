"""Let freed large buffers be reused instead of returned to the OS (glibc only).

Every kernel binding allocates its outputs, and a training step of the chapter's CNN frees and re-allocates arrays
of 10-75 MB each batch. glibc serves blocks that large with a fresh mmap and unmaps them on free, so each batch
pays for page faults and for the kernel zeroing every page again: measured at about 40% of the CPU time of a CNN
training step. Raising glibc's mmap and trim thresholds keeps such blocks in the heap, so the next batch reuses
them without faults (the process keeps its peak memory instead of shrinking between batches).
Applied by cnnlite.config at import; CNNLITE_MALLOC_TUNING=0 before importing cnnlite leaves the allocator alone.
"""
import ctypes
import os
import platform
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30          # blocks below 1 GiB come from the heap
TRIM_THRESHOLD = 2**31 - 1        # never shrink the heap top on free


def tune_malloc():
    """Apply the thresholds; returns True when they were set."""
    if os.environ.get("CNNLITE_MALLOC_TUNING", "1").strip() == "0":
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
