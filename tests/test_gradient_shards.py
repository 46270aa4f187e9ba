"""Reduction shards (cnnlite/engine/plan.py): a training batch's weight gradients are the per-shard gradients of
min(gradient_shards, n // 64) contiguous row ranges, added in shard order by partials_sum. This is what makes
N processes (tests/test_distributed.py) give the one-process bits."""
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnlite import _kernels as K, config, losses
from cnnlite.engine.plan import MIN_SHARD_ROWS, shard_bounds, shard_count
from cnnlite.layers import Conv2D, Dense, Flatten, MaxPooling2D
from cnnlite.models import Sequential


@pytest.mark.parametrize("rows", [1, 63, 64, 127, 128, 300, 767, 768, 1000, 60000])
@pytest.mark.parametrize("count", [1, 2, 12, 64])
def test_shards_cover_the_batch_in_order_with_near_equal_sizes(rows, count):
    bounds = shard_bounds(rows, count)
    assert len(bounds) == shard_count(rows, count) == max(1, min(count, rows // MIN_SHARD_ROWS))
    assert bounds[0][0] == 0 and bounds[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= min(rows, MIN_SHARD_ROWS)


def _model():
    np.random.seed(3)
    model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 2)), MaxPooling2D(), Flatten(),
                        Dense(6, activation="relu"), Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    model.build((None, 8, 8, 2))
    return model


def test_the_batch_gradient_is_the_in_order_sum_of_the_shard_gradients(rng):
    model = _model()
    x = rng.standard_normal((200, 8, 8, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 200)]
    plan = model.plan
    out, tape = plan.forward(x, True, to_loss=True)
    loss = losses.CategoricalCrossentropy()
    _, dout, _ = loss.model_step(out, y, True)
    _, grads = plan.backward(dout, tape)
    bounds = shard_bounds(200, config.get("gradient_shards"))
    assert len(bounds) == 3  # 200 // 64
    # The last Dense: relu-free, its input is the previous Dense's output; recompute its shard gradients directly.
    h = x
    for step in plan.steps[:4]:
        h = step.layer.forward(h, step, False)[0]
    dense = plan.steps[4].layer
    parts = [K.dense_backward(np.ascontiguousarray(dout[a:b]), np.ascontiguousarray(h[a:b]), dense.kernel,
                              need_dx=False)[1:] for a, b in bounds]
    np.testing.assert_array_equal(grads[4][0], K.partials_sum(np.stack([p[0] for p in parts])))
    np.testing.assert_array_equal(grads[4][1], K.partials_sum(np.stack([p[1] for p in parts])))
    # One shard for the whole batch is a different (equally valid) rounding, never far from it.
    with config.override(gradient_shards=1):
        plan1 = model.plan
        out1, tape1 = plan1.forward(x, True, to_loss=True)
        _, grads1 = plan1.backward(loss.model_step(out1, y, True)[1], tape1)
    for g, g1 in zip([g for s in grads for g in s], [g for s in grads1 for g in s]):
        np.testing.assert_allclose(g, g1, rtol=1e-4, atol=1e-6)


def test_the_plan_names_its_shard_setting():
    model = _model()
    assert "gradient_shards=12" in model.plan.table().splitlines()[0]
    with config.override(gradient_shards=4):
        assert "gradient_shards=4" in model.plan.table().splitlines()[0]


@pytest.mark.parametrize("bad", [0, -1, 1025, 2.0, "4", True, None])
def test_bad_gradient_shards_are_refused_naming_the_setting(bad):
    with pytest.raises(ValueError, match=r"`gradient_shards` must be an integer in \[1, 1024\], received"):
        config.set_gradient_shards(bad)
    with pytest.raises(ValueError, match="gradient_shards"):
        with config.override(gradient_shards=bad):
            pass


def test_set_gradient_shards_returns_the_previous_default():
    previous = config.set_gradient_shards(5)
    try:
        assert config.get("gradient_shards") == 5
    finally:
        assert config.set_gradient_shards(previous) == 5


@pytest.mark.parametrize("value, expected, warns", [("3", 3, False), ("0", 12, True), ("many", 12, True)])
def test_the_environment_sets_the_default(value, expected, warns, tmp_path):
    code = "import warnings, cnnlite; print(cnnlite.config.get('gradient_shards'))"
    env = dict(os.environ, CNNLITE_GRADIENT_SHARDS=value)
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, cwd=tmp_path)  # not the checkout: import the installed cnnlite
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(expected)]
    assert ("CNNLITE_GRADIENT_SHARDS" in out.stderr) == warns
