"""Every switch of cnnlite in one place. Environment variables only set the defaults, read once at import.

| setting | environment variable (default) | what it does |
|---|---|---|
| `conv_algo` | `CNNLITE_CONV_ALGO` (`auto`) | forces the convolution algorithm of every pass that it applies to: `auto`, `gemm`, `winograd` or `direct`. Read when a model's execution plan is built (`model.plan` names the choice and says where a forced algorithm does not apply). |
| `dense_algo` | `CNNLITE_DENSE_ALGO` (`auto`) | the Dense layers' gradient GEMMs: `auto` (the skinny kernels, `gemm skinny`, for float32 layers of at most 16 units at the avx512 level; the same bits as `gemm`) or `gemm` (always the general GEMM). Read when a model's execution plan is built. |
| `isa` | `CNNLITE_ISA` (the best the CPU has; the older `CNNLITE_GEMM_ISA` / `CNNLITE_OPS_ISA` are read too, the lowest level named wins) | caps the instruction set of every kernel: `avx512`, `avx2` or `generic` (the portable C++ path); only a downgrade. `set_isa(name)` / `get_isa()`; plans built afterwards choose their algorithms for it. |
| `pool_fusion` | `CNNLITE_POOL_FUSION` (`1`) | `True`: a ReLU'd Winograd convolution followed by a 2x2, stride-2, unpadded `MaxPooling2D` over an output of even height and width max-pools in its kernel's store, and its gradient kernels read the pool's gradient and argmax (`model.plan` says "max-pool in the winograd store"); where the conv's forward is not Winograd but both its gradients are, the pool runs apart forward and hands its gradient and argmax to the conv's gradient kernels ("max-pool backward in the gradient kernels"); the same bits as unfused. `False` (or `0` in the variable) runs the two steps apart (`set_pool_fusion(flag)`). Read when a model's execution plan is built. |
| `conv_dense_fusion` | `CNNLITE_CONV_DENSE_FUSION` (`1`) | `True`: a `Conv2D` with the direct forward pass (ReLU or no activation) whose output a `Flatten` hands to a float32 `Dense` without ReLU runs that Dense's product in its kernel, a few images at a time from the output it just wrote ("runs the next dense's product"); and where that conv is the first layer with the direct weight gradient and the Dense has at most 16 units at the avx512 level (the CNN-8), the Dense hands the conv its dz and kernel instead of its input gradient, and the conv's weight-gradient kernel computes dy = dz @ kernel^T a few images at a time ("dy from the next dense's dz"). The same bits as unfused. `False` (or `0`) runs the layers apart (`set_conv_dense_fusion(flag)`). Read when a model's execution plan is built. |
| `gradient_shards` | `CNNLITE_GRADIENT_SHARDS` (`12`) | how many contiguous row ranges (reduction shards) a training batch's weight gradients are computed over and then added in shard order (`set_gradient_shards(n)`). It fixes the bits of training for every thread count and for every number of processes up to it (`cnnlite.distributed`): training on N ≤ n processes gives bitwise the one-process weights. `model.plan` shows it. |
| dtype policy | none (`float32`) | `cnnlite.mixed_precision.set_global_policy("mixed_bfloat16")` (Keras's API; per layer `dtype=`): bfloat16 products with float32 accumulation where the plan has a bfloat16 kernel (`model.plan` shows it per pass). Read by each layer when it is constructed; not a plan setting. |
| threads | `OMP_NUM_THREADS` (all cores) | `cnnlite.set_num_threads(n)` / `get_num_threads()`: process-wide, every thread; 1 in a forked child. |
| OpenMP spin | `GOMP_SPINCOUNT` (`2000` unless `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` is set) | how long idle OpenMP threads spin before sleeping; a short spin keeps one core's latency and degrades gracefully when other programs load the machine. Must be set before the extension loads, so it is read only at import. |
| allocator | `CNNLITE_MALLOC_TUNING` (`1`) | `0` leaves glibc's mmap/trim thresholds alone (cnnlite/_memory.py says why it raises them). Import time only. |
| data folder | `CNNLITE_DATA_DIR` (unset) | where `mnist.load_data()` / `fashion_mnist.load_data()` look for local files first; read at each call. |
| cache home | `CNNLITE_HOME` (`~/.cnnlite`) | where downloaded data sets are cached; read at each call. |
| mirrors | `CNNLITE_MNIST_MIRRORS`, `CNNLITE_FASHION_MNIST_MIRRORS` | URLs (spaces or commas) replacing the built-in download mirrors; read at each call. |
| Keras's cache | `KERAS_HOME` (`~/.keras`) | where the loaders also look for checksum-verified data sets Keras downloaded; read at each call. |
| memory check | `CNNLITE_MEMORY_CHECK` (`1`) | `0` skips the check that refuses, before allocating, a batch whose activations cannot fit in the memory available (cnnlite/_memory.py); read at each call. |
| HDF5 time bound | `CNNLITE_HDF5_TIMEOUT` (`10`) | seconds (plus 1 per 10 MB of file) an HDF5 file (`.h5`, `.weights.h5`, the store inside `.keras`) may take to read: the read runs first in a forked child, and one that hangs or crashes the HDF5 library is a `ValueError` naming the file (cnnlite/saving/h5_bounded.py); `0` reads in-process without a bound; read at each call. |

The settings a plan depends on are read through `plan_settings()`; change them with `set_conv_algo(...)` or, for
a block of code, `with cnnlite.config.override(conv_algo="gemm"): ...` (thread-local to that block's context).
This module is imported first by `cnnlite`: it puts the OpenMP and allocator defaults in place, then loads the
compiled extension (saying how to build it when it is missing) and applies the ISA default.
"""
import contextlib
import contextvars
import os
import warnings

from cnnlite import _memory

# GNU OpenMP spins for ~300k iterations at every barrier before sleeping. On a machine whose cores are also busy with
# other work, two spinning threads starve each other and a 1 ms kernel takes 40 ms; a short spin keeps the idle
# machine's latency and degrades gracefully under load. Only a default: it must be in the environment before the
# extension loads libgomp, and a user who set either variable keeps the choice.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "2000"
MALLOC_TUNED = _memory.tune_malloc()  # CNNLITE_MALLOC_TUNING=0 leaves the allocator alone


def missing_extension_message(package_init):
    """What to say when cnnlite/_kernels (the compiled extension) cannot be imported."""
    package = os.path.dirname(os.path.abspath(package_init))
    root = os.path.dirname(package)
    if os.path.exists(os.path.join(root, "CMakeLists.txt")) and os.path.isdir(os.path.join(root, "cpp")):
        return (f"cnnlite's compiled extension (cnnlite._kernels) is missing: Python is importing cnnlite from its "
                f"source checkout {root}, which has not been built. Either run from outside the checkout (e.g. "
                f"`cd ~`) to use the cnnlite that `pip install .` installed, or build the extension in place with "
                f"`dev/build.sh` (from {root}; needs cmake, ninja and Cython) and run from the checkout.")
    return (f"cnnlite's compiled extension (cnnlite._kernels) is missing from {package}: the installation is "
            f"incomplete; reinstall with `pip install --force-reinstall cnnlite` (or `pip install .` from a source "
            f"checkout).")


try:
    import cnnlite._kernels as _kernels
except ModuleNotFoundError as _error:
    if _error.name != "cnnlite._kernels":
        raise
    raise ImportError(missing_extension_message(__file__)) from None

ISA_LEVELS = ("avx512", "avx2", "generic")  # widest first


def _isa_default():
    """The lowest level named by CNNLITE_ISA / CNNLITE_GEMM_ISA / CNNLITE_OPS_ISA, or None. An unknown name is
    ignored with a warning; a level above the CPU's changes nothing."""
    wanted = []
    for var in ("CNNLITE_ISA", "CNNLITE_GEMM_ISA", "CNNLITE_OPS_ISA"):
        value = os.environ.get(var, "").strip().lower()
        if not value:
            continue
        if value not in ISA_LEVELS:
            warnings.warn(f"{var}={value!r} is not one of {', '.join(ISA_LEVELS)}; ignored", RuntimeWarning)
            continue
        wanted.append(value)
    return max(wanted, key=ISA_LEVELS.index) if wanted else None


_ISA = _isa_default()
if _ISA is not None and _ISA in _kernels.available_isas():
    _kernels.set_isa(_ISA)


def set_isa(name):
    """Cap every kernel's instruction set at `name` ('avx512', 'avx2', 'generic'); returns the previous level. Only
    a downgrade of what this CPU has (`available_isas()`); not while kernels run on other threads."""
    if not isinstance(name, str) or name not in ISA_LEVELS:
        raise ValueError(f"cnnlite.config: `isa` must be one of {list(ISA_LEVELS)}, received isa={name!r}")
    if name not in _kernels.available_isas():
        raise ValueError(f"cnnlite.config: this CPU's kernels go up to {_kernels.available_isas()[0]!r}, "
                         f"received isa={name!r}")
    return _kernels.set_isa(name)


def get_isa():
    """The instruction set the kernels use now."""
    return _kernels.get_isa()


def available_isas():
    """The levels set_isa accepts on this CPU, widest first."""
    return tuple(_kernels.available_isas())


CONV_ALGOS = ("auto", "gemm", "winograd", "direct")
DENSE_ALGOS = ("auto", "gemm")


def _env_choice(name, choices, default):
    value = os.environ.get(name, "").strip().lower()
    return value if value in choices else default


# How many reduction shards a training batch's weight gradients are summed over (cnnlite/engine/plan.py): the batch
# is cut into this many contiguous row ranges, each range's gradient is computed on its own and the partials are added
# in shard order. Any number of processes up to it (cnnlite.distributed) then gives bitwise the one-process result.
MAX_GRADIENT_SHARDS = 1024
DEFAULT_GRADIENT_SHARDS = 12


def _env_shards():
    value = os.environ.get("CNNLITE_GRADIENT_SHARDS", "").strip()
    if not value:
        return DEFAULT_GRADIENT_SHARDS
    if value.isdigit() and 1 <= int(value) <= MAX_GRADIENT_SHARDS:
        return int(value)
    warnings.warn(f"CNNLITE_GRADIENT_SHARDS={value!r} is not an integer in [1, {MAX_GRADIENT_SHARDS}]; "
                  f"using {DEFAULT_GRADIENT_SHARDS}", RuntimeWarning)
    return DEFAULT_GRADIENT_SHARDS


def _env_flag(name, default):
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    warnings.warn(f"{name}={value!r} is not 0 or 1; using {int(default)}", RuntimeWarning)
    return default


_DEFAULTS = {"conv_algo": _env_choice("CNNLITE_CONV_ALGO", CONV_ALGOS, "auto"),
             "dense_algo": _env_choice("CNNLITE_DENSE_ALGO", DENSE_ALGOS, "auto"), "gradient_shards": _env_shards(),
             "pool_fusion": _env_flag("CNNLITE_POOL_FUSION", True),
             "conv_dense_fusion": _env_flag("CNNLITE_CONV_DENSE_FUSION", True)}
_OVERRIDES = contextvars.ContextVar("cnnlite_config_overrides", default=None)


def _check(name, value):
    if name == "conv_algo":
        if not isinstance(value, str) or value not in CONV_ALGOS:
            raise ValueError(f"cnnlite.config: `conv_algo` must be one of {list(CONV_ALGOS)}, "
                             f"received conv_algo={value!r}")
        return value
    if name == "dense_algo":
        if not isinstance(value, str) or value not in DENSE_ALGOS:
            raise ValueError(f"cnnlite.config: `dense_algo` must be one of {list(DENSE_ALGOS)}, "
                             f"received dense_algo={value!r}")
        return value
    if name == "gradient_shards":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GRADIENT_SHARDS:
            raise ValueError(f"cnnlite.config: `gradient_shards` must be an integer in [1, {MAX_GRADIENT_SHARDS}], "
                             f"received gradient_shards={value!r}")
        return int(value)
    if name in ("pool_fusion", "conv_dense_fusion"):
        if not isinstance(value, bool):
            raise ValueError(f"cnnlite.config: `{name}` must be True or False, received {name}={value!r}")
        return value
    raise TypeError(f"cnnlite.config: unknown setting {name!r}; known settings: {sorted(_DEFAULTS)}")


def get(name):
    """The current value of setting `name` (an override of this context, else the process default)."""
    overrides = _OVERRIDES.get()
    if overrides and name in overrides:
        return overrides[name]
    if name not in _DEFAULTS:
        raise TypeError(f"cnnlite.config: unknown setting {name!r}; known settings: {sorted(_DEFAULTS)}")
    return _DEFAULTS[name]


def set_conv_algo(name):
    """Set the process default of `conv_algo`; returns the previous default. Plans built afterwards use it."""
    previous = _DEFAULTS["conv_algo"]
    _DEFAULTS["conv_algo"] = _check("conv_algo", name)
    return previous


def set_dense_algo(name):
    """Set the process default of `dense_algo` ('auto' or 'gemm'); returns the previous default. Plans built
    afterwards use it."""
    previous = _DEFAULTS["dense_algo"]
    _DEFAULTS["dense_algo"] = _check("dense_algo", name)
    return previous


def set_gradient_shards(count):
    """Set the process default of `gradient_shards` (how many row ranges a training batch's weight gradients are
    summed over, in order); returns the previous default. It decides the bits of training: a one-process run and a
    run on N <= count processes (cnnlite.distributed) with the same count give the same weights."""
    previous = _DEFAULTS["gradient_shards"]
    _DEFAULTS["gradient_shards"] = _check("gradient_shards", count)
    return previous


def set_pool_fusion(flag):
    """Set the process default of `pool_fusion` (max-pool in the Winograd store where it applies); returns the
    previous default. Plans built afterwards use it; the bits of training do not depend on it."""
    previous = _DEFAULTS["pool_fusion"]
    _DEFAULTS["pool_fusion"] = _check("pool_fusion", flag)
    return previous


def set_conv_dense_fusion(flag):
    """Set the process default of `conv_dense_fusion` (a direct Conv2D running the next Dense's product, and the
    first conv's weight-gradient kernel computing that Dense's input gradient, where they apply); returns the
    previous default. Plans built afterwards use it; the bits
    of training do not depend on it."""
    previous = _DEFAULTS["conv_dense_fusion"]
    _DEFAULTS["conv_dense_fusion"] = _check("conv_dense_fusion", flag)
    return previous


@contextlib.contextmanager
def override(**settings):
    """`with override(conv_algo="gemm"):` — the settings hold for plans built inside the block, in this thread
    (context) only."""
    checked = {name: _check(name, value) for name, value in settings.items()}
    merged = dict(_OVERRIDES.get() or {})
    merged.update(checked)
    token = _OVERRIDES.set(merged)
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def plan_settings():
    """The settings an execution plan depends on, as a dict (the ISA too: algorithm choices depend on it)."""
    settings = {name: get(name) for name in _DEFAULTS}
    settings["isa"] = _kernels.get_isa()
    return settings
