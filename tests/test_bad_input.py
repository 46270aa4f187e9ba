"""Bad input gets a clear built-in exception naming the argument, never a crash or a silent wrong answer.

Kernel bindings (cnnlite._kernels): every binding is called with its arguments broken one at a time — not an array,
a list, the wrong dtype, the wrong rank, Fortran order, a strided view, a mismatched shape, a wrong scalar — and
must raise TypeError/ValueError whose message names the broken argument. The list of bindings is the extension's
own (every public function of cnnlite._kernels): a binding without an entry in BINDINGS or NO_ARRAY_ARGUMENTS
fails test_every_binding_is_in_the_bad_input_matrix, by name.
"""
import numpy as np
import pytest

from cnnlite import _kernels as K


def f32(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _argmax():
    y, argmax = K.maxpool2d_forward(f32(2, 4, 4, 3), 2, 2, 2, 2, 0, 0, 0, 0)
    return argmax


def _pooled_argmax():
    """The argmax (2, 2, 2, 4) of conv2d_maxpool_forward on x (2, 6, 6, 3), w (3, 3, 3, 4)."""
    return K.conv2d_maxpool_forward(f32(2, 6, 6, 3), f32(3, 3, 3, 4), None, 1, 1, 0, 0, 0, 0, relu=True)[1]


# binding -> (function, good arguments, names of the array arguments (index -> name)). The good arguments are a list
# of positional arguments, or (positional list, keyword dict) where an array passed by keyword has its keyword as
# index.
BINDINGS = {
    "gemm": (K.gemm, lambda: [f32(3, 4), f32(4, 5)], {0: "a", 1: "b"}),
    "dense_forward": (K.dense_forward, lambda: [f32(3, 4), f32(4, 5), f32(5)], {0: "x", 1: "w", 2: "b"}),
    "dense_backward": (K.dense_backward, lambda: [f32(3, 5), f32(3, 4), f32(4, 5)], {0: "dy", 1: "x", 2: "w"}),
    "conv2d_forward": (K.conv2d_forward, lambda: [f32(2, 5, 5, 3), f32(3, 3, 3, 4), f32(4), 1, 1, 0, 0, 0, 0],
                       {0: "x", 1: "w", 2: "b"}),
    "conv2d_backward": (K.conv2d_backward, lambda: [f32(2, 3, 3, 4), f32(2, 5, 5, 3), f32(3, 3, 3, 4), 1, 1, 0, 0, 0, 0],
                        {0: "dy", 1: "x", 2: "w"}),
    "maxpool2d_forward": (K.maxpool2d_forward, lambda: [f32(2, 4, 4, 3), 2, 2, 2, 2, 0, 0, 0, 0], {0: "x"}),
    "avgpool2d_forward": (K.avgpool2d_forward, lambda: [f32(2, 4, 4, 3), 2, 2, 2, 2, 0, 0, 0, 0], {0: "x"}),
    "avgpool2d_backward": (K.avgpool2d_backward, lambda: [f32(2, 2, 2, 3), 4, 4, 2, 2, 2, 2, 0, 0, 0, 0], {0: "dy"}),
    "softmax_forward": (K.softmax_forward, lambda: [f32(3, 4)], {0: "x"}),
    "softmax_backward": (K.softmax_backward, lambda: [f32(3, 4), f32(3, 4)], {0: "dy", 1: "y"}),
    "softmax_xent": (K.softmax_xent, lambda: [f32(3, 4), f32(3, 4)], {0: "logits", 1: "targets"}),
    "xent_forward": (K.xent_forward, lambda: [f32(3, 4), f32(3, 4)], {0: "probs", 1: "targets"}),
    "xent_backward": (K.xent_backward, lambda: [f32(3, 4), f32(3, 4)], {0: "probs", 1: "targets"}),
    "mse_forward": (K.mse_forward, lambda: [f32(3, 4), f32(3, 4)], {0: "pred", 1: "targets"}),
    "mse_backward": (K.mse_backward, lambda: [f32(3, 4), f32(3, 4)], {0: "pred", 1: "targets"}),
    "relu_forward": (K.relu_forward, lambda: [f32(3, 4)], {0: "x"}),
    "relu_backward": (K.relu_backward, lambda: [f32(3, 4), f32(3, 4)], {0: "dy", 1: "y"}),
    "sigmoid_backward": (K.sigmoid_backward, lambda: [f32(3, 4), f32(3, 4)], {0: "dy", 1: "y"}),
    "dropout_forward": (K.dropout_forward, lambda: [f32(3, 4), 0.5, 1, 2], {0: "x"}),
    "dropout_backward": (K.dropout_backward, lambda: [f32(3, 4), 0.5, 1, 2], {0: "dy"}),
    "adam_update": (K.adam_update, lambda: [f32(3, 4), f32(3, 4), f32(3, 4), f32(3, 4), 1e-3, 0.9, 0.999, 1e-7],
                    {0: "w", 1: "g", 2: "m", 3: "v"}),
    "sgd_update": (K.sgd_update, lambda: [f32(3, 4), f32(3, 4), f32(3, 4), 0.01, 0.9, False],
                   {0: "w", 1: "g", 2: "velocity"}),
    "rmsprop_update": (K.rmsprop_update, lambda: [f32(3, 4), f32(3, 4), f32(3, 4), 1e-3, 0.9, 1e-7],
                       {0: "w", 1: "g", 2: "acc"}),
    # added when the matrix became generated from the extension's own list of bindings
    "maxpool2d_backward": (K.maxpool2d_backward,
                           lambda: ([f32(2, 2, 2, 3), _argmax(), 4, 4], {"window": (2, 2, 2, 2, 0, 0, 0, 0),
                                                                        "y": f32(2, 2, 2, 3)}),
                           {0: "dy", 1: "argmax", "y": "y"}),
    "partials_sum": (K.partials_sum, lambda: [f32(3, 4, 2)], {0: "parts"}),
    "categorical_matches": (K.categorical_matches, lambda: [f32(4, 3), f32(4, 3)], {0: "y_true", 1: "y_pred"}),
    "conv2d_forward_dense": (K.conv2d_forward_dense,
                             lambda: ([f32(2, 5, 5, 1), f32(3, 3, 1, 4), f32(4), 1, 1, 0, 0, 0, 0, f32(36, 3), f32(3)],
                                      {}), {0: "x", 1: "w", 2: "b", 9: "dense_w", 10: "dense_b"}),
    "conv2d_backward_weights_shards_from_dense": (
        K.conv2d_backward_weights_shards_from_dense,
        lambda: ([f32(2, 3), f32(36, 3), f32(2, 5, 5, 1), 3, 3, 4, 1, 1, 0, 0, 0, 0, [0, 1, 2]],
                 {"y": np.abs(f32(2, 3, 3, 4))}), {0: "dz", 1: "dense_w", 2: "x", "y": "y"}),
    "dense_backward_weights_shards": (K.dense_backward_weights_shards,
                                      lambda: ([f32(3, 5), f32(3, 4), [0, 1, 3]], {"y": np.abs(f32(3, 5))}),
                                      {0: "dy", 1: "x", "y": "y"}),
    "conv2d_backward_weights_shards": (K.conv2d_backward_weights_shards,
                                       lambda: ([f32(2, 3, 3, 4), f32(2, 5, 5, 3), 3, 3, 1, 1, 0, 0, 0, 0, [0, 1, 2]],
                                                {"y": np.abs(f32(2, 3, 3, 4))}), {0: "dy", 1: "x", "y": "y"}),
    "sparse_softmax_xent": (K.sparse_softmax_xent, lambda: [f32(3, 4), np.array([0, 3, 1], np.int64)],
                            {0: "logits", 1: "labels"}),
    "sigmoid_forward": (K.sigmoid_forward, lambda: [f32(3, 4)], {0: "x"}),
    "tanh_forward": (K.tanh_forward, lambda: [f32(3, 4)], {0: "x"}),
    "tanh_backward": (K.tanh_backward, lambda: [f32(3, 4), f32(3, 4)], {0: "dy", 1: "y"}),
    "take_rows": (K.take_rows, lambda: ([f32(5, 3), np.array([4, 0, 2], np.int64)], {"out": f32(3, 3)}),
                  {0: "src", 1: "rows", "out": "out"}),
    "dense_backward-y": (K.dense_backward, lambda: ([f32(3, 5), f32(3, 4), f32(4, 5)], {"y": np.abs(f32(3, 5))}),
                         {"y": "y"}),
    "conv2d_backward-y": (K.conv2d_backward, lambda: ([f32(2, 3, 3, 4), f32(2, 5, 5, 3), f32(3, 3, 3, 4), 1, 1, 0, 0,
                                                       0, 0], {"y": np.abs(f32(2, 3, 3, 4))}), {"y": "y"}),
    "conv2d_backward_input": (K.conv2d_backward_input,
                              lambda: ([f32(2, 3, 3, 4), f32(3, 3, 3, 4), 5, 5, 1, 1, 0, 0, 0, 0],
                                       {"y": np.abs(f32(2, 3, 3, 4))}), {0: "dy", 1: "w", "y": "y"}),
    "conv2d_backward_weights": (K.conv2d_backward_weights,
                                lambda: ([f32(2, 3, 3, 4), f32(2, 5, 5, 3), 3, 3, 1, 1, 0, 0, 0, 0],
                                         {"y": np.abs(f32(2, 3, 3, 4))}), {0: "dy", 1: "x", "y": "y"}),
    "rmsprop_update-centered": (K.rmsprop_update, lambda: ([f32(3, 4), f32(3, 4), np.abs(f32(3, 4)), 1e-3, 0.9, 1e-7],
                                                           {"momentum": 0.9, "mom": f32(3, 4),
                                                            "mean_grad": f32(3, 4)}),
                                {"mom": "mom", "mean_grad": "mean_grad"}),
    # max-pool in the Winograd store (cpp/conv2d_winograd.h)
    "conv2d_maxpool_forward": (K.conv2d_maxpool_forward,
                               lambda: [f32(2, 6, 6, 3), f32(3, 3, 3, 4), f32(4), 1, 1, 0, 0, 0, 0],
                               {0: "x", 1: "w", 2: "b"}),
    "conv2d_maxpool_backward_input": (K.conv2d_maxpool_backward_input,
                                      lambda: ([f32(2, 2, 2, 4), _pooled_argmax(), f32(3, 3, 3, 4), 6, 6, 1, 1, 0, 0,
                                                0, 0], {"y": np.abs(f32(2, 2, 2, 4))}),
                                      {0: "dy", 1: "argmax", 2: "w", "y": "y"}),
    "conv2d_maxpool_backward_weights_shards": (K.conv2d_maxpool_backward_weights_shards,
                                               lambda: ([f32(2, 2, 2, 4), _pooled_argmax(), f32(2, 6, 6, 3), 3, 3, 1,
                                                         1, 0, 0, 0, 0, [0, 1, 2]], {"y": np.abs(f32(2, 2, 2, 4))}),
                                               {0: "dy", 1: "argmax", 2: "x", "y": "y"}),
    # mixed precision (cpp/gemm_bf16.h)
    "gemm_bf16": (K.gemm_bf16, lambda: [f32(3, 4), f32(4, 5)], {0: "a", 1: "b"}),
    "dense_bf16_forward": (K.dense_bf16_forward, lambda: [f32(3, 4), f32(4, 5), f32(5)], {0: "x", 1: "w", 2: "b"}),
    "dense_bf16_backward": (K.dense_bf16_backward, lambda: ([f32(3, 5), f32(3, 4), f32(4, 5)],
                                                            {"y": np.abs(f32(3, 5))}),
                            {0: "dy", 1: "x", 2: "w", "y": "y"}),
}

# Public functions of the extension that take no array argument, each with what tests it instead.
NO_ARRAY_ARGUMENTS = {
    "conv2d_algo": "shapes as tuples; test_conv2d*.py test its choices",
    "conv2d_algo_applies": "a name and shapes; GEOMETRY below and test_conv2d*.py",
    "conv2d_maxpool_applies": "sizes only; test_pool_fusion.py",
    "cpu_isa": "no argument",
    "get_num_threads": "no argument",
    "set_num_threads": "an int; GEOMETRY below and test_faults.py::test_absurd_thread_counts_are_refused",
    "has_openmp": "no argument",
    "available_isas": "no argument",
    "get_isa": "no argument; test_ops_isa.py",
    "set_isa": "a name; test_ops_isa.py",
    "forked_serial": "no argument; test_threads.py (fork)",
    "requested_num_threads": "no argument; test_threads.py",
    "take_parallel_record": "no argument; test_thread_determinism.py",
    "num_procs": "no argument",
    "gemm_bf16_isa": "no argument; test_gemm_bf16.py",
    "cpu_has_avx512_bf16": "no argument; test_gemm_bf16.py",
    "skinny_gemm_max": "no argument; test_gemm_skinny.py",
    "skinny_gemm_native": "no argument; test_gemm_skinny.py",
}

# Array arguments whose dtype is not float32: the message a float64 array must get, or None when any number dtype is
# valid (take_rows copies rows of any dtype).
DTYPE_MESSAGE = {("maxpool2d_backward", "argmax"): r"argmax must have dtype int32, got float64",
                 ("conv2d_maxpool_backward_input", "argmax"): r"argmax must have dtype int32, got float64",
                 ("conv2d_maxpool_backward_weights_shards", "argmax"): r"argmax must have dtype int32, got float64",
                 ("sparse_softmax_xent", "labels"): r"labels must have dtype int32 or int64, got float64",
                 ("take_rows", "rows"): r"rows must be a 1-D numpy.ndarray of int64",
                 # src sets the dtype out must have: a float64 src is reported on out
                 ("take_rows", "src"): r"out must have the dtype of src \(float64\), got float32",
                 ("take_rows", "out"): r"out must have the dtype of src \(float32\), got float64"}


def _binding_name(binding):
    return binding.split("-")[0]


def test_every_binding_is_in_the_bad_input_matrix():
    public = sorted(n for n in dir(K) if not n.startswith("_") and callable(getattr(K, n))
                    and not isinstance(getattr(K, n), type) and type(getattr(K, n)).__name__ != "module")
    covered = {_binding_name(b) for b in BINDINGS} | set(NO_ARRAY_ARGUMENTS)
    missing = [n for n in public if n not in covered]
    assert not missing, (f"bindings of cnnlite._kernels without an entry in tests/test_bad_input.py (BINDINGS with "
                         f"their array arguments, or NO_ARRAY_ARGUMENTS with a reason): {missing}")
    stale = sorted(covered - set(public))
    assert not stale, f"entries in tests/test_bad_input.py for functions cnnlite._kernels no longer has: {stale}"
    assert len(public) >= 35


CASES = [(binding, index, name) for binding, (_, _, arrays) in BINDINGS.items() for index, name in arrays.items()]
IDS = [f"{b}-{n}" for b, _, n in CASES]


def _good(binding):
    fn, good, _ = BINDINGS[binding]
    args = good()
    return (args, {}) if isinstance(args, list) else args


def _call_with(binding, index, replace):
    fn = BINDINGS[binding][0]
    args, kwargs = _good(binding)
    fn(*args, **kwargs)                      # the unbroken call works
    args, kwargs = _good(binding)
    where = kwargs if isinstance(index, str) else args
    where[index] = replace(where[index])
    return lambda: fn(*args, **kwargs)


@pytest.mark.parametrize("binding, index, name", CASES, ids=IDS)
def test_a_list_is_rejected_with_the_argument_name(binding, index, name):
    call = _call_with(binding, index, lambda a: a.tolist())
    with pytest.raises(TypeError, match=rf"\b{name}\b.*numpy.ndarray"):
        call()


@pytest.mark.parametrize("binding, index, name", CASES, ids=IDS)
def test_float64_is_rejected_with_the_argument_name(binding, index, name):
    message = DTYPE_MESSAGE.get((_binding_name(binding), name),
                                rf"\b{name}\b must have dtype float32, got float64")
    call = _call_with(binding, index, lambda a: a.astype(np.float64))
    with pytest.raises(TypeError, match=message):
        call()


@pytest.mark.parametrize("binding, index, name", CASES, ids=IDS)
def test_a_strided_view_is_rejected_not_misread(binding, index, name):
    # A non-contiguous array must never be read as if it were contiguous (that would be a silent wrong answer).
    def strided(a):
        view = np.repeat(a, 2, axis=-1)[..., ::2]
        assert not view.flags.c_contiguous and np.array_equal(view, a)
        return view
    call = _call_with(binding, index, strided)
    with pytest.raises(ValueError, match=rf"\b{name}\b must be C-contiguous"):
        call()


# The axis to grow so that the shape conflicts with the other arguments (default: the last one).
CONFLICTING_AXIS = {("gemm", "b"): 0, ("dense_forward", "w"): 0, ("dense_backward", "w"): 0,
                    ("conv2d_forward", "w"): 2, ("conv2d_forward_dense", "w"): 2, ("conv2d_backward", "w"): 2, ("avgpool2d_backward", "dy"): 1,
                    ("conv2d_backward_weights", "dy"): 1, ("conv2d_backward_weights_shards", "dy"): 1,
                    ("dense_backward_weights_shards", "dy"): 0, ("gemm_bf16", "b"): 0, ("dense_bf16_forward", "w"): 0,
                    ("dense_bf16_backward", "w"): 0, ("conv2d_maxpool_forward", "w"): 2,
                    ("conv2d_maxpool_backward_weights_shards", "dy"): 1}


def _grow(a, axis):
    shape = list(a.shape)
    shape[axis] += 1
    return np.zeros(shape, a.dtype)


# Arguments whose shape is free, the others following it (elementwise kernels, pooling and softmax inputs, the
# class count of logits, the input of the weight gradient): grown, the call runs.
FREE_SHAPE = {("relu_forward", "x"), ("sigmoid_forward", "x"), ("tanh_forward", "x"), ("dropout_forward", "x"),
              ("dropout_backward", "dy"), ("softmax_forward", "x"), ("maxpool2d_forward", "x"),
              ("avgpool2d_forward", "x"), ("sparse_softmax_xent", "logits"), ("conv2d_backward_weights", "x"),
              ("conv2d_backward_weights_shards", "x"), ("dense_backward_weights_shards", "x"), ("partials_sum", "parts"),
              ("conv2d_maxpool_backward_weights_shards", "x"), ("conv2d_backward_weights_shards_from_dense", "x")}
# Arguments that set the geometry: the mismatch is reported on the argument that must follow them.
REPORTED_ON = {("conv2d_forward_dense", "dense_w"): "dense_b", ("conv2d_backward_weights_shards_from_dense", "dz"): "dense_w", ("take_rows", "src"): "out", ("take_rows", "rows"): "out", ("conv2d_backward_input", "w"): "dy",
               ("categorical_matches", "y_true"): "y_pred",
               ("conv2d_maxpool_backward_input", "w"): "dy"}


@pytest.mark.parametrize("binding, index, name", CASES, ids=IDS)
def test_a_wrong_shape_is_rejected_with_the_argument_name(binding, index, name):
    call = _call_with(binding, index, lambda a: _grow(a, CONFLICTING_AXIS.get((binding, name), -1)))
    if (binding, name) in FREE_SHAPE:
        call()
        return
    with pytest.raises(ValueError, match=rf"\b{REPORTED_ON.get((binding, name), name)}\b"):
        call()


@pytest.mark.parametrize("binding, index, name", [c for c in CASES if c[0] not in (
    "relu_forward", "relu_backward", "sigmoid_backward", "dropout_forward", "dropout_backward", "adam_update",
    "sgd_update", "rmsprop_update", "mse_forward", "mse_backward", "sigmoid_forward", "tanh_forward",
    "tanh_backward", "rmsprop_update-centered", "partials_sum") and (c[0], c[2]) != ("take_rows", "src")], ids=str)
def test_a_wrong_rank_is_rejected_with_the_argument_name(binding, index, name):
    call = _call_with(binding, index, lambda a: a[None])
    with pytest.raises(TypeError if (binding, name) == ("take_rows", "rows") else ValueError, match=name):
        call()


def test_fortran_order_is_rejected_by_the_kernels():
    with pytest.raises(ValueError, match=r"x must be C-contiguous"):
        K.dense_forward(np.asfortranarray(f32(3, 4)), f32(4, 5), None)


def test_read_only_state_is_rejected_before_it_is_written():
    w = f32(3)
    w.setflags(write=False)
    with pytest.raises(ValueError, match="w must be writeable"):
        K.sgd_update(w, f32(3), None, 0.1, 0.0, False)
    m = f32(3)
    m.setflags(write=False)
    with pytest.raises(ValueError, match="m must be writeable"):
        K.adam_update(f32(3), f32(3), m, np.abs(f32(3)), 1e-3, 0.9, 0.999, 1e-7)


GEOMETRY = [
    # (binding, args, exception, message)
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), None, 2.5, 1, 0, 0, 0, 0], TypeError, r"sh must be a positive integer, got float 2.5"),
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), None, "2", 1, 0, 0, 0, 0], TypeError, r"sh must be a positive integer, got str"),
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), None, True, 1, 0, 0, 0, 0], TypeError, r"sh must be a positive integer, got bool"),
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), None, None, 1, 0, 0, 0, 0], TypeError, r"sh must be a positive integer"),
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), None, 1, 0, 0, 0, 0, 0], ValueError, r"sw must be a positive integer, got 0"),
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), None, 1, 1, -1, 0, 0, 0], ValueError, r"pad_top must be a non-negative integer, got -1"),
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), None, 1, 1, 0, 0, 1.0, 0], TypeError, r"pad_left must be a non-negative integer"),
    ("conv2d_forward", [f32(1, 2, 5, 1), f32(3, 3, 1, 2), None, 1, 1, 0, 0, 0, 0], ValueError, r"kernel height kh=3 exceeds the padded input height"),
    ("conv2d_forward", [f32(1, 5, 2, 1), f32(3, 3, 1, 2), None, 1, 1, 0, 0, 0, 0], ValueError, r"kernel width kw=3 exceeds"),
    ("conv2d_forward", [f32(1, 5, 5, 2), f32(3, 3, 1, 2), None, 1, 1, 0, 0, 0, 0], ValueError, r"x has 2 channels .* but w expects 1"),
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), f32(3), 1, 1, 0, 0, 0, 0], ValueError, r"b must have shape \(2,\), got \(3,\)"),
    ("conv2d_forward", [f32(1, 5, 5, 0), f32(3, 3, 0, 2), None, 1, 1, 0, 0, 0, 0], ValueError, r"x must have non-zero height, width and channels"),
    # a named algorithm that does not apply is refused, never replaced by another one
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(2, 2, 1, 2), None, 1, 1, 0, 0, 0, 0, False, "winograd"], ValueError,
     r"winograd"),
    ("conv2d_backward_input", [f32(1, 3, 3, 2), f32(3, 3, 1, 2), 5, 5, 1, 1, 0, 0, 0, 0, None, "direct"],
     ValueError, r"direct"),
    ("conv2d_backward_input", [f32(1, 9, 9, 2), f32(3, 3, 1, 2), 5, 5, 1, 1, 3, 3, 3, 3, None, "winograd"],
     ValueError, r"winograd"),
    ("conv2d_forward", [f32(1, 5, 5, 1), f32(3, 3, 1, 2), None, 1, 1, 0, 0, 0, 0, False, "fft"], ValueError, r"fft"),
    ("conv2d_algo_applies", ["fft", (1, 5, 5, 1), (3, 3, 1, 2), 1, 1, 0, 0, 0, 0], ValueError, r"fft"),
    ("dense_forward", [f32(3, 4), f32(5, 2), None], ValueError, r"x has 4 features .* but w expects 5"),
    ("dense_forward", [f32(3, 0), f32(0, 2), None], ValueError, r"w must have non-zero \(in, out\)"),
    ("gemm", [f32(3, 4), f32(5, 2)], ValueError, r"inner dimensions differ"),
    ("gemm_bf16", [f32(3, 4), f32(5, 2)], ValueError, r"inner dimensions differ"),
    ("maxpool2d_forward", [f32(1, 4, 4, 1), 5, 2, 1, 1, 0, 0, 0, 0], ValueError, r"output height .* must be positive"),
    ("maxpool2d_forward", [f32(1, 4, 4, 1), 2, 2, 2, 2, 2, 0, 0, 0], ValueError, r"pad_top \(2\) must be smaller than the pool size ph \(2\)"),
    ("maxpool2d_forward", [f32(1, 4, 4, 1), 2, 2, 0, 2, 0, 0, 0, 0], ValueError, r"sh must be an int >= 1, got 0"),
    ("maxpool2d_forward", [f32(1, 4, 4, 1), 2.0, 2, 2, 2, 0, 0, 0, 0], TypeError, r"ph must be an int"),
    ("maxpool2d_backward", [f32(1, 2, 2, 1), np.zeros((1, 2, 2, 1), np.int64), 4, 4], TypeError, r"argmax must have dtype int32"),
    ("maxpool2d_backward", [f32(1, 2, 2, 1), np.full((1, 2, 2, 1), 16, np.int32), 4, 4], ValueError, r"argmax holds an index outside \[0, h\*w\)"),
    ("maxpool2d_backward", [f32(1, 2, 2, 1), np.full((1, 2, 2, 1), -1, np.int32), 4, 4], ValueError, r"argmax holds an index outside"),
    ("maxpool2d_backward", [f32(1, 2, 2, 1), np.zeros((1, 2, 3, 1), np.int32), 4, 4], ValueError, r"argmax and dy must have the same shape"),
    ("avgpool2d_backward", [f32(1, 3, 2, 1), 4, 4, 2, 2, 2, 2, 0, 0, 0, 0], ValueError, r"dy must have shape \(1, 2, 2, 1\), got \(1, 3, 2, 1\)"),
    ("sparse_softmax_xent", [f32(2, 3), np.array([0, 3])], ValueError, r"labels\[1\] = 3 is outside \[0, 3\)"),
    ("sparse_softmax_xent", [f32(2, 3), np.array([-1, 0])], ValueError, r"labels\[0\] = -1 is outside \[0, 3\)"),
    ("sparse_softmax_xent", [f32(2, 3), np.array([0.0, 1.0])], TypeError, r"labels must have dtype int32 or int64, got float64"),
    ("sparse_softmax_xent", [f32(2, 3), np.array([0, 1, 2])], ValueError, r"labels must have shape \(2,\), got \(3,\)"),
    ("softmax_xent", [f32(0, 3), f32(0, 3)], ValueError, r"logits must have at least one row and one column"),
    ("softmax_xent", [f32(2, 3), f32(2, 4)], ValueError, r"logits and targets must have the same shape"),
    ("dropout_forward", [f32(3), 1.0, 0, 0], ValueError, r"rate must be in \[0, 1\), got 1.0"),
    ("dropout_forward", [f32(3), -0.1, 0, 0], ValueError, r"rate must be in \[0, 1\)"),
    ("dropout_forward", [f32(3), float("nan"), 0, 0], ValueError, r"rate must be in \[0, 1\), got nan"),
    ("dropout_forward", [f32(3), "0.5", 0, 0], TypeError, r"rate must be a float"),
    ("dropout_forward", [f32(3), 0.5, -1, 0], ValueError, r"seed must be an int in \[0, 2\*\*64\)"),
    ("dropout_forward", [f32(3), 0.5, 1, 0, -5], ValueError, r"offset must be an int in \[0, 2\*\*64\)"),
    ("dense_backward_weights_shards", [f32(3, 5), f32(3, 4), [0, 2]], ValueError, r"shards must be increasing row indices from 0 to n=3, got \[0, 2\]"),
    ("dense_backward_weights_shards", [f32(3, 5), f32(3, 4), [0, 2, 2, 3]], ValueError, r"shards must be increasing"),
    ("dense_backward_weights_shards", [f32(3, 5), f32(3, 4), [0]], ValueError, r"shards must be increasing"),
    ("dense_backward_weights_shards", [f32(3, 5), f32(3, 4), [0, 1.5, 3]], TypeError, r"shards must hold ints"),
    ("dense_backward_weights_shards", [f32(3, 5), f32(3, 4), 3], TypeError, r"shards must be a sequence"),
    ("conv2d_backward_weights_shards", [f32(2, 3, 3, 4), f32(2, 5, 5, 3), 3, 3, 1, 1, 0, 0, 0, 0, [1, 2]], ValueError, r"shards must be increasing row indices from 0 to n=2"),
    ("partials_sum", [f32(0, 3)], ValueError, r"parts must have a leading axis of at least 1 partial"),
    ("partials_sum", [np.zeros((), np.float32)], ValueError, r"parts must have a leading axis"),
    ("adam_update", [f32(3), f32(3), f32(3), f32(3), float("nan"), 0.9, 0.999, 1e-7], ValueError, r"lr_t must be"),
    ("adam_update", [f32(3), f32(3), f32(3), f32(3), 1e-3, 1.0, 0.999, 1e-7], ValueError, r"beta1 must be in \[0.0, 1.0\)"),
    ("sgd_update", [f32(3), f32(3), None, 0.1, 0.9, False], ValueError, r"velocity is required when momentum != 0"),
    ("sgd_update", [f32(3), f32(3), None, 0.1, 0.0, "yes"], TypeError, r"nesterov must be a bool"),
    ("set_num_threads", [0], ValueError, r"n must be an int >= 1"),
    ("set_num_threads", [1.5], TypeError, r"n must be an int"),
]


@pytest.mark.parametrize("binding, args, exc, match", GEOMETRY, ids=[f"{g[0]}-{g[3][:30]}" for g in GEOMETRY])
def test_bad_scalars_and_geometry_are_rejected_with_clear_messages(binding, args, exc, match):
    with pytest.raises(exc, match=match):
        getattr(K, binding)(*args)


# ===== The Keras-like API: every public entry point validates before anything reaches C++ ========================

from cnnlite import optimizers  # noqa: E402
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D  # noqa: E402
from cnnlite.models import Sequential  # noqa: E402

RNG = np.random.default_rng(7)
X = RNG.standard_normal((20, 8)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 20)]
XI = RNG.standard_normal((12, 8, 8, 1)).astype(np.float32)
YI = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 12)]


def _mlp(loss="categorical_crossentropy", compile=True):
    model = Sequential([Dense(16, activation="relu", input_shape=(8,)), Dropout(0.2),
                        Dense(3, activation="softmax")])
    if compile:
        model.compile("adam", loss, ["accuracy"])
    return model


def _cnn():
    model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), MaxPooling2D(2), Flatten(),
                        Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    return model


API_CASES = [
    # ----- data against the model: ranks, shapes, lengths, label width, emptiness, type
    ("x of the wrong width", lambda: _mlp().fit(X[:, :5], Y, verbose=0), ValueError,
     r"expected shape \(None, 8\), found shape \(None, 5\) in `x`"),
    ("x of the wrong rank", lambda: _mlp().fit(X[:, :, None], Y, verbose=0), ValueError,
     r"expected shape \(None, 8\), found shape \(None, 8, 1\) in `x`"),
    ("image without channel axis", lambda: _cnn().fit(XI[..., 0], YI, verbose=0), ValueError,
     r"expected shape \(None, 8, 8, 1\), found shape \(None, 8, 8\)"),
    ("flat images to a CNN", lambda: _cnn().predict(XI.reshape(12, 64), verbose=0), ValueError,
     r"expected shape \(None, 8, 8, 1\), found shape \(None, 64\)"),
    ("x and y lengths differ", lambda: _mlp().fit(X, Y[:10], verbose=0), ValueError,
     r"x has 20 samples but y has 10"),
    ("label width != output units", lambda: _mlp().fit(X, Y[:, :2], verbose=0), ValueError,
     r"Label width 2 of `y` .* does not match the model's output of 3 units"),
    ("integer labels with categorical loss", lambda: _mlp().fit(X, Y.argmax(1), verbose=0), ValueError,
     r"expects one-hot targets of shape \(n, 3\).*to_categorical"),
    ("sparse label out of range", lambda: _mlp("sparse_categorical_crossentropy").fit(X, np.full(20, 3), verbose=0),
     ValueError, r"labels must lie in \[0, 3\)"),
    ("sparse label negative", lambda: _mlp("sparse_categorical_crossentropy").fit(X, np.full(20, -1), verbose=0),
     ValueError, r"labels must lie in \[0, 3\)"),
    ("sparse label non-integer", lambda: _mlp("sparse_categorical_crossentropy").fit(X, np.full(20, 1.5), verbose=0),
     ValueError, r"labels must be integer class ids"),
    ("sparse label NaN", lambda: _mlp("sparse_categorical_crossentropy").fit(X, np.full(20, np.nan), verbose=0),
     ValueError, r"labels must be integer class ids"),
    ("empty training data", lambda: _mlp().fit(X[:0], Y[:0], verbose=0), ValueError, r"received 0 training samples"),
    ("empty evaluation data", lambda: _mlp().evaluate(X[:0], Y[:0], verbose=0), ValueError, r"received 0 samples"),
    ("x is None", lambda: _mlp().fit(None, Y, verbose=0), ValueError, r"`x` is required"),
    ("y is None", lambda: _mlp().fit(X, None, verbose=0), ValueError, r"`y` is required"),
    ("strings as x", lambda: _mlp().fit(np.full((20, 8), "a"), Y, verbose=0), TypeError,
     r"`x` must hold numbers .* received dtype <U1"),
    ("objects as x", lambda: _mlp().predict(np.full((20, 8), None), verbose=0), TypeError,
     r"`x` must hold numbers .* received dtype object"),
    ("complex as x", lambda: _mlp().fit(X.astype(np.complex64), Y, verbose=0), TypeError, r"received dtype complex64"),
    ("ragged list as x", lambda: _mlp().fit([[1.0, 2.0], [3.0]], Y[:2], verbose=0), TypeError,
     r"`x` must be an array-like of numbers"),
    ("a generator as x", lambda: _mlp().fit((r for r in X), Y, verbose=0), TypeError, r"generators .* not supported"),
    ("strings as y", lambda: _mlp().fit(X, np.full((20, 3), "a"), verbose=0), TypeError, r"`y` must hold numbers"),
    ("bad validation_data", lambda: _mlp().fit(X, Y, validation_data=(X[:, :5], Y), verbose=0), ValueError,
     r"in `x_val`"),
    # ----- arguments of fit / evaluate / predict
    ("batch_size 0", lambda: _mlp().fit(X, Y, batch_size=0, verbose=0), ValueError,
     r"`batch_size` must be a positive integer, received batch_size=0"),
    ("batch_size -1", lambda: _mlp().predict(X, batch_size=-1, verbose=0), ValueError,
     r"`batch_size` must be a positive integer, received batch_size=-1"),
    ("batch_size 2.0", lambda: _mlp().evaluate(X, Y, batch_size=2.0, verbose=0), ValueError,
     r"`batch_size` must be a positive integer, received batch_size=2.0"),
    ("negative epochs", lambda: _mlp().fit(X, Y, epochs=-1, verbose=0), ValueError,
     r"`epochs` must be a non-negative integer, received epochs=-1"),
    ("fractional epochs", lambda: _mlp().fit(X, Y, epochs=1.5, verbose=0), ValueError, r"epochs=1.5"),
    ("validation_split 1", lambda: _mlp().fit(X, Y, validation_split=1.0, verbose=0), ValueError,
     r"`validation_split` must be a float in \[0, 1\)"),
    ("verbose 3", lambda: _mlp().fit(X, Y, verbose=3), ValueError, r"`verbose` must be 'auto', 0, 1 or 2"),
    # ----- order of calls
    ("fit before compile", lambda: _mlp(compile=False).fit(X, Y, verbose=0), RuntimeError,
     r"You must compile your model before training it"),
    ("evaluate before compile", lambda: _mlp(compile=False).evaluate(X, Y, verbose=0), RuntimeError,
     r"You must compile your model before evaluating it"),
    ("train_on_batch before compile", lambda: _mlp(compile=False).train_on_batch(X, Y), RuntimeError,
     r"You must compile your model"),
    ("summary before build", lambda: Sequential([Dense(3)]).summary(), ValueError, r"has not yet been built"),
    # ----- set_weights
    ("set_weights: wrong count", lambda: _mlp().set_weights(_mlp().get_weights()[:-1]), ValueError,
     r"weight list of length 3, but the model was expecting 4 weights"),
    ("set_weights: wrong shapes", lambda: _mlp().set_weights([w.T for w in _mlp().get_weights()]), ValueError,
     r"Weight 0 of model .* has shape \(8, 16\), but the provided weight has shape \(16, 8\)"),
    ("set_weights: not a list", lambda: _mlp().set_weights(np.zeros(4)), TypeError, r"expects a list of arrays"),
    ("set_weights: strings", lambda: _mlp().set_weights([np.full(w.shape, "a") for w in _mlp().get_weights()]),
     TypeError, r"weight 0 \(kernel\) must be a numeric array"),
    ("layer.set_weights: wrong shape", lambda: _mlp().layers[0].set_weights([np.zeros((3, 3)), np.zeros(16)]),
     ValueError, r"weight shape \(8, 16\) is not compatible with provided weight shape \(3, 3\)"),
    # ----- layer arguments
    ("Dense units 0", lambda: Dense(0), ValueError, r"`units` must be a positive integer, received units=0"),
    ("Dense units -1", lambda: Dense(-1), ValueError, r"received units=-1"),
    ("Dense units 2.5", lambda: Dense(2.5), ValueError, r"received units=2.5"),
    ("Dropout rate 1", lambda: Dropout(1.0), ValueError, r"`rate` of Dropout: expected a float value in \[0, 1\)"),
    ("Dropout rate -0.1", lambda: Dropout(-0.1), ValueError, r"received rate=-0.1"),
    ("Dropout rate NaN", lambda: Dropout(float("nan")), ValueError, r"received rate=nan"),
    ("Conv2D filters 0", lambda: Conv2D(0, 3), ValueError, r"`filters` must be a positive integer"),
    ("Conv2D kernel 0", lambda: Conv2D(4, 0), ValueError, r"`kernel_size` must contain only positive ints"),
    ("Conv2D strides 0", lambda: Conv2D(4, 3, strides=0), ValueError, r"`strides` must contain only positive ints"),
    ("Conv2D padding 'full'", lambda: Conv2D(4, 3, padding="full"), ValueError, r"`padding` must be 'valid' or 'same'"),
    ("Conv2D kernel > valid input", lambda: Sequential([Conv2D(4, 9, input_shape=(8, 8, 1))]), ValueError,
     r"output of layer .* is <= 0: input shape \(None, 8, 8, 1\) with window \(9, 9\)"),
    ("MaxPooling2D pool > valid input", lambda: Sequential([Conv2D(4, 3, input_shape=(4, 4, 1)), MaxPooling2D(3)]),
     ValueError, r"input shape \(None, 2, 2, 4\) with window \(3, 3\)"),
    ("MaxPooling2D pool 0", lambda: MaxPooling2D(0), ValueError, r"`pool_size` must contain only positive ints"),
    ("Conv2D on rank-3 input", lambda: Sequential([Conv2D(4, 3, input_shape=(8, 8))]), ValueError,
     r"expected ndim=4 .* found ndim=3"),
    ("input_shape with 0", lambda: Dense(3, input_shape=(0,)), ValueError, r"`input_shape` must be a tuple of positive"),
    # ----- compile
    ("unknown loss", lambda: _mlp(compile=False).compile("adam", "foo"), ValueError, r"Unknown loss function: 'foo'"),
    ("unknown optimizer", lambda: _mlp(compile=False).compile("foo", "mse"), ValueError, r"Unknown optimizer: 'foo'"),
    ("unknown metric", lambda: _mlp(compile=False).compile("adam", "mse", ["foo"]), ValueError, r"Unknown metric"),
    ("learning rate NaN", lambda: optimizers.Adam(float("nan")), ValueError, r"`learning_rate` must be a finite"),
    ("learning rate < 0", lambda: optimizers.SGD(-1.0), ValueError, r"`learning_rate` must be >= 0.0"),
    # ----- sizes that overflow or cannot be allocated: an exception, never a crash (or a wrapped-around size)
    ("Dense with 2**62 units", lambda: Sequential([Dense(2**62, input_shape=(8,))]), ValueError,
     r"weight 'kernel' of shape \(8, 4611686018427387904\) has \d+ elements, more than this machine can address"),
    ("Dense with 2**40 units", lambda: Sequential([Dense(2**40, input_shape=(8,))]), MemoryError,
     r"cannot allocate weight 'kernel' of shape \(8, 1099511627776\) \(32768\.0 GiB of float32\)"),
    ("Conv2D with 2**31 filters", lambda: Sequential([Conv2D(2**31, 3, input_shape=(8, 8, 1))]), MemoryError,
     r"cannot allocate weight 'kernel' of shape \(3, 3, 1, 2147483648\)"),
    ("Flatten of 2**80 features", lambda: Sequential([Flatten(input_shape=(2**40, 2**40)), Dense(3)]), ValueError,
     r"weight 'kernel' of shape \(1208925819614629174706176, 3\) has \d+ elements, more than this machine can"),
]


@pytest.mark.parametrize("case, call, exc, match", API_CASES, ids=[c[0] for c in API_CASES])
def test_the_api_rejects_bad_input_with_a_clear_builtin_exception(case, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_a_rejected_call_leaves_the_model_untouched():
    model = _mlp()
    before = model.get_weights()
    for call in (lambda: model.fit(X[:, :5], Y, verbose=0), lambda: model.fit(X, Y[:, :2], verbose=0),
                 lambda: model.set_weights([w.T for w in before]), lambda: model.fit(X, Y, batch_size=0, verbose=0)):
        with pytest.raises(ValueError):
            call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.fit(X, Y, epochs=1, verbose=0)      # and it still trains


# ===== Inputs users reasonably pass just work, with the same result as float32 C-contiguous arrays ===============

def _variants(x):
    return {
        "float64": x.astype(np.float64),
        "float16": x.astype(np.float16).astype(np.float32).astype(np.float16),
        "fortran": np.asfortranarray(x),
        "strided view": np.repeat(x, 2, axis=0)[::2],
        "reversed view": np.ascontiguousarray(x[::-1])[::-1],   # a negative-stride view of x's values
        "list": x.tolist(),
    }


@pytest.mark.parametrize("name", list(_variants(X)))
def test_dtypes_layouts_and_lists_give_the_same_predictions(name):
    model = _cnn()
    x = np.round(XI * 4) / 4                   # exactly representable in float16 too
    expected = model.predict(x.astype(np.float32), verbose=0)
    np.testing.assert_array_equal(model.predict(_variants(x)[name], verbose=0), expected)


def test_the_layout_variants_really_are_what_they_are_named():
    x = np.round(XI * 4) / 4
    variants = _variants(x)
    for name in ("fortran", "strided view", "reversed view"):
        assert not variants[name].flags.c_contiguous, name
        np.testing.assert_array_equal(variants[name], x)
    assert variants["reversed view"].strides[0] < 0 and variants["strided view"].base is not None
    assert isinstance(variants["list"], list)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.bool_])
def test_integer_and_bool_images_train_like_their_float32_values(dtype):
    pixels = (RNG.random((12, 8, 8, 1)) * (2 if dtype is np.bool_ else 200)).astype(dtype)
    weights = _cnn().get_weights()
    results = []
    for x in (pixels, pixels.astype(np.float32)):
        model = _cnn()
        model.set_weights(weights)
        model.fit(x, YI, batch_size=4, epochs=1, verbose=0, shuffle=False)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def _fitted(loss, y, weights):
    """The weights and History after one seeded epoch of _mlp(loss) from `weights` on (X, y)."""
    np.random.seed(11)                         # the same shuffles and dropout masks for every fit
    model = _mlp(loss)
    model.set_weights(weights)
    history = model.fit(X, y, batch_size=8, epochs=2, verbose=0)
    return model.get_weights(), history.history


def _assert_same_fit(got, want, what):
    for i, (a, b) in enumerate(zip(got[0], want[0])):
        assert a.tobytes() == b.tobytes(), f"{what}: weight {i} differs from the canonical fit"
    assert got[1] == want[1], what


def test_labels_as_lists_and_other_dtypes_work():
    """Each accepted label form trains bitwise like the canonical one: float32 one-hot for categorical
    cross-entropy, int64 class ids (n,) for the sparse loss; and the sparse loss on ids trains like the categorical
    loss on their one-hot rows, bit for bit (the sparse fused kernel computes what the one-hot one does)."""
    labels = Y.argmax(1)
    weights = _mlp().get_weights()
    canonical_sparse = _fitted("sparse_categorical_crossentropy", labels.astype(np.int64), weights)
    for name, y in (("list", labels.tolist()), ("uint8", labels.astype(np.uint8)),
                    ("float64", labels.astype(np.float64)), ("(n, 1)", labels[:, None])):
        _assert_same_fit(_fitted("sparse_categorical_crossentropy", y, weights), canonical_sparse, f"sparse {name}")
    canonical = _fitted("categorical_crossentropy", Y.astype(np.float32), weights)
    for name, y in (("list", Y.tolist()), ("float64", Y.astype(np.float64)), ("uint8", Y.astype(np.uint8)),
                    ("fortran", np.asfortranarray(Y))):
        _assert_same_fit(_fitted("categorical_crossentropy", y, weights), canonical, f"one-hot {name}")
    _assert_same_fit(canonical_sparse, canonical, "sparse ids against their one-hot rows")
