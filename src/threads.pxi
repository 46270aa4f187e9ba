cdef extern from "threads.h" namespace "cnnlite":
    int c_get_num_threads "cnnlite::get_num_threads"() nogil
    void c_set_num_threads "cnnlite::set_num_threads"(int n) nogil
    int c_requested_num_threads "cnnlite::requested_num_threads"() nogil
    void c_sync_thread "cnnlite::sync_thread"() nogil
    bint c_forked_serial "cnnlite::forked_serial"() nogil
    int c_probe_team_size "cnnlite::probe_team_size"() nogil
    int c_num_procs "cnnlite::num_procs"() nogil
    bint c_has_openmp "cnnlite::has_openmp"() nogil
    void c_take_parallel_record "cnnlite::take_parallel_record"(int* team, int* workers) nogil


MAX_THREADS = 256


def get_num_threads():
    """Number of threads the kernels use, in every thread of the process (1 in a forked child whose parent had run
    a parallel kernel: see forked_serial)."""
    return c_get_num_threads()


def requested_num_threads():
    """The count last given to set_num_threads (or the OMP_NUM_THREADS default), even where a fork limits it."""
    return c_requested_num_threads()


def forked_serial():
    """True in a process forked after the parent had run a parallel kernel: OpenMP's thread pool does not survive
    fork, so kernels run on one thread there (same results, bitwise)."""
    return c_forked_serial()


def _probe_team_size():
    """Team size of an OpenMP parallel region without a num_threads clause started from the calling thread (as the
    kernels start theirs); for tests."""
    cdef int n
    with nogil:
        n = c_probe_team_size()
    return n


def set_num_threads(n):
    """Set the number of threads the kernels use (an int in [1, MAX_THREADS]), process-wide: it holds for kernel
    calls from every thread from then on."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int >= 1, got {type(n).__name__} {n!r}")
    if n < 1 or n > MAX_THREADS:
        # Far more threads than cores only slows the kernels down, and OpenMP crashes when it cannot create them.
        raise ValueError(f"n must be an int >= 1 and <= {MAX_THREADS}, got {n}")
    c_set_num_threads(<int> n)


def num_procs():
    """Logical processors visible to OpenMP (1 without OpenMP)."""
    return c_num_procs()


def has_openmp():
    """True when the extension was built with OpenMP."""
    return c_has_openmp()


def take_parallel_record():
    """(team, workers) of the parallel regions the kernels ran since the previous call, which starts a new record:
    the largest OpenMP team and the number of distinct threads that ran a piece of work. (0, 0) when no kernel ran
    in parallel (one thread, too little work, or no OpenMP). For tests that must see a kernel split its work."""
    cdef int team = 0, workers = 0
    c_take_parallel_record(&team, &workers)
    return team, workers
