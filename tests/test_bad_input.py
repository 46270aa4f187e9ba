"""Bad input gets a clear built-in exception naming the argument, never a crash or a silent wrong answer.

Kernel bindings (cnnlite._kernels): every binding is called with its arguments broken one at a time — not an array,
a list, the wrong dtype, the wrong rank, Fortran order, a strided view, a mismatched shape, a wrong scalar — and
must raise TypeError/ValueError whose message names the broken argument.
"""
import numpy as np
import pytest

from cnnlite import _kernels as K


def f32(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


# binding -> (function, good positional arguments, names of the array arguments (index -> name))
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
}

CASES = [(binding, index, name) for binding, (_, _, arrays) in BINDINGS.items() for index, name in arrays.items()]
IDS = [f"{b}-{n}" for b, _, n in CASES]


def _call_with(binding, index, replace):
    fn, good, _ = BINDINGS[binding]
    args = good()
    fn(*good())                      # the unbroken call works
    args[index] = replace(args[index])
    return fn, args


@pytest.mark.parametrize("binding, index, name", CASES, ids=IDS)
def test_a_list_is_rejected_with_the_argument_name(binding, index, name):
    fn, args = _call_with(binding, index, lambda a: a.tolist())
    with pytest.raises(TypeError, match=rf"\b{name}\b.*numpy.ndarray"):
        fn(*args)


@pytest.mark.parametrize("binding, index, name", CASES, ids=IDS)
def test_float64_is_rejected_with_the_argument_name(binding, index, name):
    fn, args = _call_with(binding, index, lambda a: a.astype(np.float64))
    with pytest.raises(TypeError, match=rf"\b{name}\b must have dtype float32, got float64"):
        fn(*args)


@pytest.mark.parametrize("binding, index, name", CASES, ids=IDS)
def test_a_strided_view_is_rejected_not_misread(binding, index, name):
    # A non-contiguous array must never be read as if it were contiguous (that would be a silent wrong answer).
    fn, args = _call_with(binding, index, lambda a: np.repeat(a, 2, axis=-1)[..., ::2])
    with pytest.raises(ValueError, match=rf"\b{name}\b must be C-contiguous"):
        fn(*args)


# The axis to grow so that the shape conflicts with the other arguments (default: the last one).
CONFLICTING_AXIS = {("gemm", "b"): 0, ("dense_forward", "w"): 0, ("dense_backward", "w"): 0,
                    ("conv2d_forward", "w"): 2, ("conv2d_backward", "w"): 2, ("avgpool2d_backward", "dy"): 1}


def _grow(a, axis):
    shape = list(a.shape)
    shape[axis] += 1
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("binding, index, name", CASES, ids=IDS)
def test_a_wrong_shape_is_rejected_with_the_argument_name(binding, index, name):
    fn, args = _call_with(binding, index, lambda a: _grow(a, CONFLICTING_AXIS.get((binding, name), -1)))
    if binding in ("relu_forward", "dropout_forward", "dropout_backward") or (binding, name) in (
            ("softmax_forward", "x"), ("maxpool2d_forward", "x"), ("avgpool2d_forward", "x")):
        pytest.skip("any shape is valid for this argument")
    with pytest.raises(ValueError, match=name):
        fn(*args)


@pytest.mark.parametrize("binding, index, name", [c for c in CASES if c[0] not in (
    "relu_forward", "relu_backward", "sigmoid_backward", "dropout_forward", "dropout_backward", "adam_update",
    "sgd_update", "rmsprop_update", "mse_forward", "mse_backward")], ids=str)
def test_a_wrong_rank_is_rejected_with_the_argument_name(binding, index, name):
    fn, args = _call_with(binding, index, lambda a: a[None])
    with pytest.raises(ValueError, match=name):
        fn(*args)


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
    ("dense_forward", [f32(3, 4), f32(5, 2), None], ValueError, r"x has 4 features .* but w expects 5"),
    ("dense_forward", [f32(3, 0), f32(0, 2), None], ValueError, r"w must have non-zero \(in, out\)"),
    ("gemm", [f32(3, 4), f32(5, 2)], ValueError, r"inner dimensions differ"),
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
