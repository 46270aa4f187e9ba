"""Synchronous data-parallel training over MPI (mpi4py), bitwise equal to one process.

    import cnnlite.distributed as dist
    dist.init()                  # then the unchanged model.fit(...), started with `mpiexec -n N python train.py`

Every process is given the same full arrays. Each global batch of `batch_size` rows is cut into its reduction
shards (cnnlite/engine/plan.py: min(gradient_shards, batch_size // 64) contiguous row ranges, at least one), and
each rank runs the forward and backward passes of a contiguous run of shards. The weight gradients of a batch are
one partial per shard, added in shard order: here the ranks exchange the partials so that each owns a slice of the
elements, add them with the same kernel one process uses (`_kernels.partials_sum`), and gather the slices back.
The outputs of the last layer are gathered in batch order, so the loss, its gradient and the metrics are computed
on the whole batch exactly as one process computes them. Dropout draws its masks by batch row. Hence: with the same
seed, batch size and `gradient_shards`, N processes give bitwise the weights and History of one process, for any
N <= gradient_shards (a rank whose run of shards is empty for a small last batch waits for that step).

At the start of fit the weights, the optimizer state and the random state of rank 0 are broadcast, and the ranks
check that they were given the same data. Only rank 0 prints progress and writes files (`model.save`,
`ModelCheckpoint`); `evaluate` and `predict` split their batches across the ranks and return the whole result on
every rank, as Keras does on each worker. An exception on one rank while the ranks train, evaluate or predict
together ends every rank (MPI_Abort) after printing it, and so does an uncaught exception anywhere once init() ran.

`train_on_batch` and `test_on_batch` are collective the same way (the first train_on_batch broadcasts rank 0's
state); `predict_on_batch` and `model(x)` run on the calling rank alone.

Without mpiexec, or with one process, init() changes nothing: every call behaves exactly as without it.
"""
import os
import sys
import time
import traceback
import warnings
import zlib

import numpy as np

from cnnlite import _kernels, config
from cnnlite.engine.plan import MIN_SHARD_ROWS, BatchPart, shard_bounds, shard_count

__all__ = ["init", "rank", "size", "is_primary", "allgather", "barrier", "World"]

_WORLD = None  # the World after init() with more than one process; None: one process


class World:
    """The processes training together: an MPI communicator and what the engine asks of it."""

    def __init__(self, comm):
        from mpi4py import MPI
        self._mpi = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    # ----- who runs which rows ----------------------------------------------------------------------------------
    def check_shards(self, batch_size, what):
        """ValueError when this many processes cannot all hold reduction shards (more ranks than gradient_shards)."""
        count = config.get("gradient_shards")
        if self.size > count:
            raise ValueError(f"{what}: {self.size} processes but gradient_shards={count}: every rank needs at least "
                             f"one reduction shard of a batch. Run at most {count} processes, or raise it with "
                             f"cnnlite.config.set_gradient_shards(n) (the same n in the one-process run you compare "
                             f"with)")
        shards = shard_count(batch_size, count)
        if shards < self.size and self.rank == 0:
            warnings.warn(f"{what}: a batch of {batch_size} rows has {shards} reduction shard(s) (one per "
                          f"{MIN_SHARD_ROWS} rows at least), fewer than the {self.size} processes: "
                          f"{self.size - shards} rank(s) sit out every such step (the result is still the one-process "
                          f"result). Use batch_size >= {MIN_SHARD_ROWS * self.size} to keep every rank busy",
                          RuntimeWarning, stacklevel=3)

    def training_part(self, batch_rows, shard_setting):
        """(BatchPart, start, stop): this rank's contiguous run of the batch's reduction shards, rows [start, stop)."""
        start, stop, shards = self._shard_run(self.rank, batch_rows, shard_setting)
        return BatchPart(start, [(a - start, b - start) for a, b in shards]), start, stop

    def _shard_run(self, rank, batch_rows, shard_setting):
        bounds = shard_bounds(batch_rows, shard_setting)
        k = len(bounds)
        mine = bounds[rank * k // self.size:(rank + 1) * k // self.size]
        if not mine:
            return 0, 0, []
        return mine[0][0], mine[-1][1], mine

    def training_layout(self, batch_rows, shard_setting):
        """([(start, stop)] rows, [shard count]) of every rank for a training batch."""
        runs = [self._shard_run(r, batch_rows, shard_setting) for r in range(self.size)]
        return [(start, stop) for start, stop, _ in runs], [len(shards) for _, _, shards in runs]

    def inference_rows(self, batch_rows):
        """[(start, stop)] of every rank for an inference batch: near-equal contiguous splits."""
        return [(r * batch_rows // self.size, (r + 1) * batch_rows // self.size) for r in range(self.size)]

    # ----- collectives ------------------------------------------------------------------------------------------
    def gather_rows(self, local, rows, template_shape):
        """The whole batch's array on every rank from each rank's rows (`rows`: every rank's (start, stop)), in
        batch order; `template_shape` is the shape of one row."""
        width = int(np.prod(template_shape, dtype=np.int64))
        out = np.empty((max(stop for _, stop in rows),) + tuple(template_shape), np.float32)
        counts = [(stop - start) * width for start, stop in rows]
        displs = [start * width for start, _ in rows]
        send = np.ascontiguousarray(local, dtype=np.float32)
        self.comm.Allgatherv([send, self._mpi.FLOAT], [out, counts, displs, self._mpi.FLOAT])
        return out

    def combine(self, step_partials, shard_counts):
        """The weight gradients of every step from each rank's per-shard partials (ordered reduce-scatter, then
        allgather): rank j receives every rank's partials of its element slice, which arrive in shard order because
        ranks hold consecutive runs of shards, adds them with partials_sum, and the slices are gathered back.
        shard_counts: how many shards each rank holds (training_layout's, the same on every rank)."""
        MPI = self._mpi
        arrays = [p for partials in step_partials for p in partials]
        if not arrays:
            return [[] for _ in step_partials]
        mine = shard_counts[self.rank]
        sizes = [int(np.prod(p.shape[1:], dtype=np.int64)) for p in arrays]
        elements = sum(sizes)
        local = np.empty((mine, elements), np.float32)
        at = 0
        for p, n in zip(arrays, sizes):
            local[:, at:at + n] = p.reshape(mine, n)
            at += n
        cuts = [j * elements // self.size for j in range(self.size + 1)]
        widths = [cuts[j + 1] - cuts[j] for j in range(self.size)]
        send = np.concatenate([local[:, cuts[j]:cuts[j + 1]].ravel() for j in range(self.size)])
        send_counts = [mine * w for w in widths]
        send_displs = np.concatenate([[0], np.cumsum(send_counts)[:-1]]).tolist()
        my_width = widths[self.rank]
        recv_counts = [c * my_width for c in shard_counts]
        recv_displs = np.concatenate([[0], np.cumsum(recv_counts)[:-1]]).tolist()
        recv = np.empty(sum(shard_counts) * my_width, np.float32)
        self.comm.Alltoallv([send, send_counts, send_displs, MPI.FLOAT], [recv, recv_counts, recv_displs, MPI.FLOAT])
        mine_total = _kernels.partials_sum(recv.reshape(sum(shard_counts), my_width))
        flat = np.empty(elements, np.float32)
        self.comm.Allgatherv([mine_total, MPI.FLOAT], [flat, widths, cuts[:-1], MPI.FLOAT])
        grads, at, i = [], 0, 0
        for partials in step_partials:
            step_grads = []
            for p in partials:
                n = sizes[i]
                step_grads.append(flat[at:at + n].reshape(p.shape[1:]))
                at += n
                i += 1
            grads.append(step_grads)
        return grads

    def sync_model(self, model):
        """Put rank 0's weights, optimizer state and random state (the model's and every layer's) on every rank."""
        bcast = self.comm.bcast
        for w in model.weights:
            self.comm.Bcast([w, self._mpi.FLOAT], root=0)
        opt = model.optimizer
        if opt is not None and opt.built:
            for v in opt.variables():
                self.comm.Bcast([v, self._mpi.FLOAT], root=0)
            opt.set_iterations(bcast(int(opt.iterations), root=0))
        model.set_rng_state(bcast(model.get_rng_state(), root=0))
        for layer, state in zip(model.layers, bcast([layer.get_rng_state() for layer in model.layers], root=0)):
            layer.set_rng_state(state)

    def check_same_data(self, arrays, what):
        """ValueError on every rank unless every rank holds the same arrays (shape, dtype and CRC-32 of the bytes)."""
        mine = [(tuple(a.shape), str(a.dtype), zlib.crc32(np.ascontiguousarray(a).data)) for a in arrays]
        everyone = self.comm.allgather(mine)
        differing = [r for r, theirs in enumerate(everyone) if theirs != everyone[0]]
        if differing:
            raise ValueError(f"{what}: every process must be given the same full arrays (cnnlite.distributed splits "
                             f"each batch itself), but ranks {differing} hold arrays that differ from rank 0's "
                             f"(shape, dtype or content)")

    def abort(self, error):
        """Print `error` with this rank's traceback and end every rank of the job (never returns)."""
        sys.stderr.write(f"cnnlite.distributed: rank {self.rank} of {self.size} failed; ending all ranks:\n")
        sys.stderr.write("".join(traceback.format_exception(type(error), error, error.__traceback__)))
        _abort(self.comm)


def _abort(comm):
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(0.5)  # mpiexec stops forwarding output once it kills the job: let what was printed arrive first
    comm.Abort(1)
    os._exit(1)  # MPI_Abort may return before the runtime ends this process: never run on


def init(comm=None, threads=None):
    """Join the MPI job this process was started in (`mpiexec -n N python script.py`); returns the World, or None
    for a single process (then nothing changes). `comm` defaults to MPI.COMM_WORLD. The kernels' thread count per
    rank is `threads`, else OMP_NUM_THREADS when set, else the cores divided by the ranks on this node."""
    global _WORLD
    if _WORLD is not None and (comm is None or comm is _WORLD.comm):
        return _WORLD  # already joined
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("cnnlite.distributed needs mpi4py and an MPI runtime: pip install 'cnnlite[distributed]' "
                          "(mpi4py with MPICH's wheel; with a cluster's own MPI, build mpi4py against it instead: "
                          "see README)") from e
    comm = MPI.COMM_WORLD if comm is None else comm
    if comm.Get_size() == 1:
        _WORLD = None
        return None
    world = World(comm)
    if threads is None and not os.environ.get("OMP_NUM_THREADS"):
        local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
        threads = max(1, _kernels.num_procs() // local)
    if threads is not None:
        _kernels.set_num_threads(int(threads))
    _WORLD = world
    previous_hook = sys.excepthook

    def abort_all_ranks(kind, value, tb):
        previous_hook(kind, value, tb)
        sys.stderr.write(f"cnnlite.distributed: uncaught exception on rank {world.rank}; ending all ranks\n")
        _abort(comm)

    sys.excepthook = abort_all_ranks
    return world


def world():
    """The World of this process after init() with several processes, else None (one process)."""
    return _WORLD


def rank():
    """This process's rank (0 without init() or MPI)."""
    return 0 if _WORLD is None else _WORLD.rank


def size():
    """How many processes train together (1 without init() or MPI)."""
    return 1 if _WORLD is None else _WORLD.size


def is_primary():
    """True on rank 0, the rank that prints and writes files (and in a single process)."""
    return _WORLD is None or _WORLD.rank == 0


def allgather(value):
    """[value of rank 0, value of rank 1, ...] on every rank (any picklable value; [value] in one process)."""
    return [value] if _WORLD is None else _WORLD.comm.allgather(value)


def barrier():
    """Wait until every rank arrives here (nothing to wait for in one process)."""
    if _WORLD is not None:
        _WORLD.comm.Barrier()
