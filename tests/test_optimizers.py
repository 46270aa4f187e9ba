"""Optimizers: one SGD step and a few Adam steps on a small conv net (odd sizes, stride 2, 'same' padding) move every
weight as an independent float64 reference says; identifiers, configs, state and argument checks."""
import numpy as np
import pytest

import reference_net as ref
from cnnlite import optimizers
from cnnlite.layers import AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D
from cnnlite.models import Sequential


def small_net(pool):
    pool_layer = (MaxPooling2D(2, padding="same") if pool == "max"
                  else AveragePooling2D((2, 2), strides=1, padding="same"))
    model = Sequential([
        Conv2D(3, (3, 2), strides=2, padding="same", activation="relu", input_shape=(7, 5, 2)),
        pool_layer,
        Flatten(),
        Dense(5, activation="tanh"),
        Dense(4, activation="softmax"),
    ])
    pool_cfg = (dict(pool=(2, 2), stride=(2, 2), padding="same") if pool == "max"
                else dict(pool=(2, 2), stride=(1, 1), padding="same"))
    spec = [("conv", dict(stride=(2, 2), padding="same", act="relu")), (pool + "pool", pool_cfg),
            ("flatten", {}), ("dense", dict(act="tanh")), ("dense", dict(act="softmax"))]
    return model, spec


def batch(seed, n=6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 7, 5, 2)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    return x, y


def randomise(model, seed):
    """Non-zero biases too, so every weight's gradient is exercised."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_one_sgd_step_matches_reference(pool):
    model, spec = small_net(pool)
    randomise(model, 3)
    assert model.output_shape == (None, 4)
    x, y = batch(0)
    lr = 0.5
    model.compile(optimizer=optimizers.SGD(learning_rate=lr), loss="categorical_crossentropy")
    before = [w.astype(np.float64) for w in model.get_weights()]
    loss_ref, grads = ref.gradients(spec, before, x.astype(np.float64), y.astype(np.float64))
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    after = model.get_weights()
    for i, (w0, w1, g) in enumerate(zip(before, after, grads)):
        assert np.abs(g).max() > 0, f"weight {i} got no gradient in the reference"
        np.testing.assert_allclose(w1 - w0, -lr * g, rtol=1e-3, atol=2e-6, err_msg=f"weight {i}")


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_adam_steps_match_reference(pool):
    model, spec = small_net(pool)
    randomise(model, 4)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    params = [w.astype(np.float64) for w in model.get_weights()]
    adam = ref.AdamRef(lr=0.01)
    for step in range(4):
        x, y = batch(10 + step)
        _, grads = ref.gradients(spec, params, x.astype(np.float64), y.astype(np.float64))
        params = adam.step(params, grads)
        model.train_on_batch(x, y)
    assert model.optimizer.iterations == 4
    # Adam normalises each step to about lr (0.01): where a gradient is ~1e-7 of the largest, float32 rounding
    # changes m/√v noticeably, so the tolerance is 1% of one step rather than float32 epsilon.
    for i, (got, want) in enumerate(zip(model.get_weights(), params)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"weight {i}")


def test_sgd_momentum_and_rmsprop_move_weights_like_keras():
    """Keras's update rules on a one-layer linear model with mse: v = m·v − lr·g, w += v; RMSprop as tf.keras 2
    (ε inside the square root)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    for opt, rule in [(optimizers.SGD(0.1, momentum=0.9), "momentum"),
                      (optimizers.SGD(0.1, momentum=0.9, nesterov=True), "nesterov"),
                      (optimizers.RMSprop(0.01), "rmsprop")]:
        model = Sequential([Dense(2, input_shape=(3,))])
        model.compile(opt, "mse")
        w = [a.astype(np.float64) for a in model.get_weights()]
        state = [np.zeros_like(a) for a in w]
        for _ in range(3):
            pred = x @ w[0] + w[1]
            d = 2 * (pred - y) / pred.size
            grads = [x.T @ d, d.sum(0)]
            for i, g in enumerate(grads):
                if rule == "rmsprop":
                    state[i] = 0.9 * state[i] + 0.1 * g * g
                    w[i] = w[i] - 0.01 * g / np.sqrt(state[i] + 1e-7)
                else:
                    state[i] = 0.9 * state[i] - 0.1 * g
                    w[i] = w[i] + (0.9 * state[i] - 0.1 * g if rule == "nesterov" else state[i])
            model.train_on_batch(x, y)
        for got, want in zip(model.get_weights(), w):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=rule)


@pytest.mark.parametrize("name,cls", [("adam", optimizers.Adam), ("Adam", optimizers.Adam),
                                      ("sgd", optimizers.SGD), ("rmsprop", optimizers.RMSprop)])
def test_get_by_name(name, cls):
    assert isinstance(optimizers.get(name), cls)


def test_keras_defaults():
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    sgd = optimizers.SGD()
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)
    rms = optimizers.RMSprop()
    assert (rms.learning_rate, rms.rho, rms.epsilon) == (0.001, 0.9, 1e-7)


def test_lr_alias_and_settable_learning_rate():
    opt = optimizers.Adam(lr=0.05)
    assert opt.learning_rate == 0.05 and opt.lr == 0.05
    opt.learning_rate = 0.2
    assert opt.lr == 0.2
    opt.lr = 0.3
    assert opt.learning_rate == 0.3
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1


def test_serialize_round_trip():
    opt = optimizers.SGD(learning_rate=0.2, momentum=0.5, nesterov=True)
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert isinstance(again, optimizers.SGD)
    assert again.get_config() == opt.get_config()
    assert optimizers.get({"class_name": "Adam", "config": {"learning_rate": 0.1}}).learning_rate == 0.1


def test_variables_order_and_set_variables():
    model = Sequential([Dense(3, input_shape=(2,)), Dense(1)])
    model.compile("adam", "mse")
    model.train_on_batch(np.ones((4, 2)), np.ones((4, 1)))
    opt = model.optimizer
    shapes = [v.shape for v in opt.variables()]
    assert shapes == [(2, 3), (2, 3), (3,), (3,), (3, 1), (3, 1), (1,), (1,)]  # (m, v) per weight in model order
    new = [np.full(s, 0.5, np.float32) for s in shapes]
    opt.set_variables(new)
    assert all((v == 0.5).all() for v in opt.variables())
    with pytest.raises(ValueError, match="expected 8 arrays, received 1"):
        opt.set_variables(new[:1])
    with pytest.raises(ValueError, match="shape"):
        opt.set_variables([np.zeros((9, 9))] + new[1:])
    opt.set_iterations(7)
    assert opt.iterations == 7


def test_set_variables_before_build_is_an_error():
    with pytest.raises(ValueError, match="build"):
        optimizers.Adam().set_variables([])


@pytest.mark.parametrize("make,match", [
    (lambda: optimizers.Adam(learning_rate=-0.1), "learning_rate"),
    (lambda: optimizers.Adam(learning_rate="fast"), "learning_rate"),
    (lambda: optimizers.Adam(beta_1=1.0), "beta_1"),
    (lambda: optimizers.SGD(momentum=1.5), "momentum"),
    (lambda: optimizers.SGD(nesterov="yes"), "nesterov"),
    (lambda: optimizers.RMSprop(rho=-0.1), "rho"),
    (lambda: optimizers.get("adagrad"), "adagrad"),
])
def test_bad_arguments_are_reported(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="momentun"):
        optimizers.SGD(momentun=0.9)


def test_unsupported_variants_say_so():
    with pytest.raises(NotImplementedError, match="amsgrad"):
        optimizers.Adam(amsgrad=True)
    with pytest.raises(NotImplementedError, match="centered"):
        optimizers.RMSprop(centered=True)


def test_clipvalue_limits_the_step():
    w = np.zeros(3, np.float32)
    opt = optimizers.SGD(learning_rate=1.0, clipvalue=0.5)
    opt.apply([np.array([2.0, -3.0, 0.1], np.float32)], [w])
    np.testing.assert_allclose(w, [-0.5, 0.5, -0.1], rtol=1e-6)


def test_decay_lowers_the_learning_rate_per_iteration():
    w = np.zeros(1, np.float32)
    opt = optimizers.SGD(learning_rate=1.0, decay=1.0)
    for _ in range(2):
        opt.apply([np.ones(1, np.float32)], [w])
    np.testing.assert_allclose(w, [-1.5])  # 1/(1+0) + 1/(1+1)
