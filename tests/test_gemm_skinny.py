"""The skinny GEMMs ('gemm skinny', cpp/gemm_skinny.h): a Dense layer's input and weight gradients for at most
skinny_gemm_max() units, vectorised across the long dimension. They must match NumPy at float32 tolerances and give
exactly the general GEMM's bits ('gemm') for every shape, thread count and ISA level (below avx512 they run it)."""
import numpy as np
import pytest

import cnnlite
from cnnlite import _kernels as K
from cnnlite import layers

from settings import isa, threads

TOL = dict(rtol=2e-4, atol=2e-4)

# (n, in, out): out from 1 to 16; in not a multiple of 16 (the vector width) and below / above a strip; n odd, below
# and above the 256-row depth block (several blocks for the weight gradient over the whole batch).
SHAPES = [(1, 1, 1), (7, 13, 1), (33, 17, 2), (65, 100, 5), (3, 47, 8), (129, 49, 9), (31, 785, 10), (257, 33, 12),
          (5, 6272, 10), (601, 95, 13), (17, 784, 16), (1000, 300, 16)]


def _data(rng, n, n_in, n_out):
    x = rng.standard_normal((n, n_in)).astype(np.float32)
    w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
    dy = rng.standard_normal((n, n_out)).astype(np.float32)
    return x, w, dy


def _bits(a):
    return None if a is None else a.view(np.int32)


@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_skinny_gradients_match_numpy(rng, n, n_in, n_out):
    x, w, dy = _data(rng, n, n_in, n_out)
    dx, dw, db = K.dense_backward(dy, x, w, algo="gemm skinny")
    np.testing.assert_allclose(dx, dy.astype(np.float64) @ w.T.astype(np.float64), **TOL)
    np.testing.assert_allclose(dw, x.T.astype(np.float64) @ dy.astype(np.float64), **TOL)
    np.testing.assert_allclose(db, dy.sum(0, dtype=np.float64), **TOL)


@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("relu", [False, True])
def test_skinny_gradients_have_the_bits_of_gemm(rng, n, n_in, n_out, nthreads, relu):
    x, w, dy = _data(rng, n, n_in, n_out)
    y = np.maximum(rng.standard_normal((n, n_out)).astype(np.float32), 0) if relu else None
    with threads(nthreads):
        ref = K.dense_backward(dy, x, w, y=y)
        got = K.dense_backward(dy, x, w, y=y, algo="gemm skinny")
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(_bits(a), _bits(b))
        k = max(1, min(12, n // 64))
        bounds = [s * n // k for s in range(k + 1)]
        ref = K.dense_backward_weights_shards(dy, x, bounds, y=y)
        got = K.dense_backward_weights_shards(dy, x, bounds, y=y, algo="gemm skinny")
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(_bits(a), _bits(b))


@pytest.mark.parametrize("level", ["avx2", "generic"])
def test_skinny_gradients_have_the_bits_of_gemm_at_lower_isa_levels(rng, level):
    if level not in K.available_isas():
        pytest.skip(f"no {level} on this CPU")
    x, w, dy = _data(rng, 129, 785, 10)
    with isa(level):
        assert not K.skinny_gemm_native()
        ref = K.dense_backward(dy, x, w)
        got = K.dense_backward(dy, x, w, algo="gemm skinny")
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(_bits(a), _bits(b))


def test_skinny_empty_batch(rng):
    x, w, dy = _data(rng, 0, 20, 10)
    dx, dw, db = K.dense_backward(dy, x, w, algo="gemm skinny")
    assert dx.shape == (0, 20) and not dw.any() and not db.any()


def test_skinny_bad_arguments_are_refused_naming_them(rng):
    x, w, dy = _data(rng, 4, 6, 10)
    with pytest.raises(ValueError, match=r"algo must be one of \('gemm', 'gemm skinny'\), got 'skinny'"):
        K.dense_backward(dy, x, w, algo="skinny")
    with pytest.raises(ValueError, match=r"algo must be one of"):
        K.dense_backward_weights_shards(dy, x, [0, 4], algo=None)
    x17, w17, dy17 = _data(rng, 4, 6, 17)
    with pytest.raises(ValueError, match=r"algo='gemm skinny' needs at most 16 output columns, got 17"):
        K.dense_backward(dy17, x17, w17, algo="gemm skinny")
    with pytest.raises(ValueError, match=r"algo='gemm skinny' needs at most 16 output columns, got 17"):
        K.dense_backward_weights_shards(dy17, x17, [0, 4], algo="gemm skinny")
    with pytest.raises(ValueError, match=r"algo='gemm skinny' is float32 only"):
        K.dense_backward_weights_shards(dy, x, [0, 4], algo="gemm skinny", precision="bfloat16")
    assert K.skinny_gemm_max() == 16


def _plan(units_list, input_shape=(28, 28, 1)):
    model = cnnlite.Sequential([layers.Flatten(input_shape=input_shape)] +
                               [layers.Dense(u, activation="relu") for u in units_list] +
                               [layers.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model.plan


def test_plan_chooses_skinny_for_at_most_16_units_at_avx512_only():
    if "avx512" not in K.available_isas():
        pytest.skip("no avx512 on this CPU")
    with isa("avx512"):
        plan = _plan([16, 17, 128, 1])
        want = {16: "gemm skinny", 17: "gemm", 128: "gemm", 1: "gemm skinny", 10: "gemm skinny"}
        for step in plan.steps[1:]:
            a = step.algorithms
            assert a["forward"] == "gemm"
            assert a["weight_grad"] == want[step.layer.units], step
            assert a["input_grad"] == want[step.layer.units], step
        assert "gemm skinny" in plan.table()
    for level in ("avx2", "generic"):
        if level in K.available_isas():
            with isa(level):
                plan = _plan([16])
            assert all(s.algorithms.get("weight_grad") in (None, "gemm") for s in plan.steps)
            assert "skinny" not in plan.table()


def test_plan_keeps_gemm_under_mixed_bfloat16():
    from cnnlite import mixed_precision
    old = mixed_precision.global_policy()
    mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        plan = _plan([16])
    finally:
        mixed_precision.set_global_policy(old)
    assert all(s.algorithms.get("weight_grad") in (None, "gemm") for s in plan.steps)


def test_dense_algo_setting_forces_the_general_gemm_with_the_same_bits(rng):
    from cnnlite import config
    with pytest.raises(ValueError, match=r"`dense_algo` must be one of \['auto', 'gemm'\], received dense_algo='x'"):
        with config.override(dense_algo="x"):
            pass
    x = rng.standard_normal((300, 28, 28, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 300)]
    weights = {}
    for algo in ("auto", "gemm"):
        with config.override(dense_algo=algo):
            model = cnnlite.Sequential([layers.Flatten(input_shape=(28, 28, 1)), layers.Dense(16, activation="relu"),
                                        layers.Dense(10, activation="softmax")])
            model.compile(loss="categorical_crossentropy", optimizer="adam")
            skinny = any(s.algorithms.get("weight_grad") == "gemm skinny" for s in model.plan.steps)
            assert skinny == (algo == "auto" and K.get_isa() == "avx512")
            if algo == "gemm":
                model.set_weights(weights["auto"][0])
            start = [w.copy() for w in model.get_weights()]
            model.fit(x, y, batch_size=100, epochs=1, verbose=0, shuffle=False)
            weights[algo] = (start, model.get_weights())  # "gemm" starts from "auto"'s initial weights
    for a, b in zip(weights["auto"][1], weights["gemm"][1]):
        np.testing.assert_array_equal(a.view(np.int32), b.view(np.int32))


@pytest.mark.parametrize("n_out", range(1, 17))
def test_every_unit_count_has_the_bits_of_gemm(rng, n_out):
    # n = 301: the whole-batch weight gradient runs two depth blocks (151 + 150); in = 37 and 101: one strip and a
    # partial one, for every strip width (48, 32 or 16 rows by the unit count).
    for n_in in (37, 101):
        x, w, dy = _data(rng, 301, n_in, n_out)
        with threads(2):
            ref = K.dense_backward(dy, x, w)
            got = K.dense_backward(dy, x, w, algo="gemm skinny")
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(_bits(a), _bits(b))
        np.testing.assert_allclose(got[1], x.T.astype(np.float64) @ dy, **TOL)
