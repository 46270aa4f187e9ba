"""Reading an HDF5 file in bounded time: the read runs first in a forked child, and the caller reads only after the
child finished it.

Damaged HDF5 metadata can make the HDF5 library loop forever (a zeroed global-heap object header, where the
variable-length string attributes live, gives an object of size 0 that its decoder steps over again and again) or
crash the process; Python cannot interrupt a C library call. So `preflight(label, walk)` forks, the child runs
`walk()` (the very read the caller is about to do) and reports that it returned, whatever it returned or raised;
the parent waits at most `timeout()` seconds. A child that does not report in time is killed and one that dies
(a signal, e.g. SIGSEGV or the OOM killer) is reported: both are a ValueError naming the file. The same bytes make
the same library calls in the parent, which then reads the file as if nothing had happened: a clean error stays
the reader's own error, a good file gives its model. Cost: one fork and a second parse of the file (BENCHMARKS.md).

CNNLITE_HDF5_TIMEOUT (read at each call): seconds allowed per file (default 10, plus 1 per 10 MB of file);
`0` reads in-process without a bound. Without os.fork (Windows) the read is in-process too.
h5py holds its global lock across fork (its own at-fork handlers), so no other thread of the parent is inside the
HDF5 library when the child starts; the child runs no cnnlite kernels and leaves with os._exit (no atexit, no
flushing of buffers the parent owns).
"""
import faulthandler
import os
import select
import signal
import warnings

__all__ = ["preflight", "timeout"]

_DEFAULT_SECONDS = 10.0
_SECONDS_PER_BYTE = 1 / 10e6
_in_child = False  # True in a preflight child: a nested preflight just runs there


def timeout(size=0):
    """The seconds a read of a file of `size` bytes may take (0: unbounded, in-process)."""
    value = os.environ.get("CNNLITE_HDF5_TIMEOUT", "").strip()
    try:
        base = float(value) if value else _DEFAULT_SECONDS
    except ValueError:
        raise ValueError(f"CNNLITE_HDF5_TIMEOUT must be a number of seconds, received {value!r}") from None
    if base <= 0:
        return 0.0
    return base + size * _SECONDS_PER_BYTE


def preflight(label, walk, size=0):
    """Run `walk()` in a forked child; return once it has returned (or raised); ValueError naming `label` when the
    child hangs past `timeout(size)` or dies."""
    seconds = timeout(size)
    if _in_child or not seconds or not hasattr(os, "fork"):
        return
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns on fork in a threaded process (OpenMP's pool counts); the child only runs h5py
        warnings.filterwarnings("ignore", r".*fork\(\) may lead to deadlocks", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: read, say so, leave
        try:
            os.close(read_end)
            _child(walk)
            os.write(write_end, b"1")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        poller = select.poll()  # not select.select: any descriptor number works
        poller.register(read_end, select.POLLIN)
        report = os.read(read_end, 1) if poller.poll(seconds * 1000) else None
    except BaseException:  # e.g. KeyboardInterrupt: a child that may be looping must not outlive the wait
        _kill(pid)
        raise
    finally:
        os.close(read_end)
    if report is None:
        _kill(pid)
        raise ValueError(f"cannot load {label!r}: the HDF5 library did not finish reading it within {seconds:.3g} s "
                         "(damaged metadata can make it loop forever); CNNLITE_HDF5_TIMEOUT sets the limit")
    status = _reap(pid)
    if report != b"1":
        how = ("exit status unknown" if status is None else f"signal {os.WTERMSIG(status)}"
               if os.WIFSIGNALED(status) else f"exit status {os.waitstatus_to_exitcode(status)}")
        raise ValueError(f"cannot load {label!r}: the HDF5 library crashed reading it ({how}); the file is damaged")


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # it ended (and was reaped) meanwhile
        return
    _reap(pid)


def _reap(pid):
    """The child's wait status, or None when it was reaped already (SIGCHLD set to SIG_IGN reaps children)."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def _child(walk):
    global _in_child
    _in_child = True
    warnings.simplefilter("ignore")
    faulthandler.disable()  # a crash here is an expected outcome, reported by the parent: no traceback dump
    try:
        walk()
    except BaseException:  # noqa: BLE001 - the parent reads again and meets the same error itself
        pass
