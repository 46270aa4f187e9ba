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


# ----- memory bounds (issue 13) ---------------------------------------------------------------------------------------
# Before fit/evaluate/predict, a batch whose estimated need (ExecutionPlan.bytes_per_batch) exceeds the memory
# available is refused with MemoryError, before anything is allocated: under Linux overcommit the alternative is the
# OOM killer taking the whole process. CNNLITE_MEMORY_CHECK=0 turns the check off.

def _meminfo_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _vm_size():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_headroom():
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = _vm_size()
    return None if used is None else max(0, soft - used)


def _cgroup_headroom():
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            current = int(f.read().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError):
        return None


def available_bytes():
    """(bytes, {source: bytes}) the process may still allocate: the least of MemAvailable (/proc/meminfo), the
    RLIMIT_AS headroom (soft limit minus VmSize) and the cgroup's memory.max headroom, where known; (None, {}) when
    none is."""
    sources = {"MemAvailable": _meminfo_available(), "RLIMIT_AS headroom": _address_space_headroom(),
               "cgroup memory.max headroom": _cgroup_headroom()}
    sources = {k: v for k, v in sources.items() if v is not None}
    return (min(sources.values()) if sources else None), sources


def _human(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def check_batch_fits(plan, batch_size, training, what):
    """Raise MemoryError (naming the batch size, the bytes needed and the bytes available) when one batch of
    `batch_size` cannot fit in the memory available; returns the estimate in bytes."""
    needed = plan.bytes_per_batch(batch_size, training)
    if os.environ.get("CNNLITE_MEMORY_CHECK", "1").strip() == "0":
        return needed
    available, sources = available_bytes()
    if available is not None and needed > available:
        per_sample = max(1, plan.bytes_per_batch(2, training) - plan.bytes_per_batch(1, training))
        fits = max(0, (available - plan.bytes_per_batch(0, training)) // per_sample)
        known = ", ".join(f"{k} {v} bytes" for k, v in sources.items())
        raise MemoryError(
            f"{what}: a batch of batch_size={batch_size} needs about {needed} bytes ({_human(needed)}) "
            f"{'to train' if training else 'for inference'}, but only {available} bytes ({_human(available)}) are "
            f"available ({known}); nothing was allocated. Use a smaller batch_size (about {fits} would fit), or set "
            f"CNNLITE_MEMORY_CHECK=0 to skip this check")
    return needed
