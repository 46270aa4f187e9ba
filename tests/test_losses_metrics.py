"""Loss objects and functions, metric objects and functions, activation functions (Keras semantics)."""
import numpy as np
import pytest

from cnnlite import activations, losses, metrics


@pytest.fixture
def probs_and_targets(rng):
    logits = rng.normal(size=(6, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 4, 6)
    return logits.astype(np.float32), probs.astype(np.float32), labels, np.eye(4, dtype=np.float32)[labels]


def test_crossentropy_functions_and_objects(probs_and_targets):
    logits, probs, labels, onehot = probs_and_targets
    want = -np.log(probs[np.arange(6), labels])
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, probs), want, rtol=1e-5)
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, logits, from_logits=True), want, rtol=1e-5)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, probs), want, rtol=1e-5)
    assert losses.CategoricalCrossentropy()(onehot, probs) == pytest.approx(want.mean(), rel=1e-5)
    assert losses.CategoricalCrossentropy(from_logits=True)(onehot, logits) == pytest.approx(want.mean(), rel=1e-5)
    assert losses.SparseCategoricalCrossentropy()(labels, probs) == pytest.approx(want.mean(), rel=1e-5)
    assert losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits) == pytest.approx(want.mean(),
                                                                                                  rel=1e-5)


def test_mse(probs_and_targets):
    _, probs, _, onehot = probs_and_targets
    want = ((probs - onehot) ** 2).mean(axis=1)
    np.testing.assert_allclose(losses.mean_squared_error(onehot, probs), want, rtol=1e-6)
    assert losses.MeanSquaredError()(onehot, probs) == pytest.approx(want.mean(), rel=1e-5)
    assert losses.mse is losses.mean_squared_error


def test_loss_lookup():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get(losses.sparse_categorical_crossentropy), losses.SparseCategoricalCrossentropy)
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    again = losses.deserialize(losses.serialize(loss))
    assert again.from_logits and again.label_smoothing == 0.2
    with pytest.raises(ValueError, match="hinge"):
        losses.get("hinge")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=2)


def test_sparse_label_checks():
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        losses.sparse_labels([0, 4], 4, "loss")
    with pytest.raises(ValueError, match="integer class ids"):
        losses.sparse_labels([0.5, 1], 4, "loss")
    with pytest.raises(ValueError, match="one-hot"):
        losses.sparse_labels(np.eye(4), 4, "loss")
    np.testing.assert_array_equal(losses.sparse_labels(np.array([[1.0], [3.0]]), 4, "loss"), [1, 3])


def test_metric_functions_and_objects(probs_and_targets):
    _, probs, labels, onehot = probs_and_targets
    hits = (probs.argmax(1) == labels).astype(np.float32)
    np.testing.assert_array_equal(metrics.categorical_accuracy(onehot, probs), hits)
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(labels, probs), hits)
    m = metrics.CategoricalAccuracy()
    m.update_state(onehot[:3], probs[:3])
    m.update_state(onehot[3:], probs[3:])
    assert m.result() == pytest.approx(hits.mean())
    m.reset_state()
    assert m.result() == 0.0
    np.testing.assert_allclose(metrics.binary_accuracy([[1.0], [0.0]], [[0.7], [0.6]]), [1.0, 0.0])


def test_accuracy_resolves_like_keras():
    assert isinstance(metrics.resolve("accuracy", losses.get("categorical_crossentropy"), 10),
                      metrics.CategoricalAccuracy)
    assert isinstance(metrics.resolve("acc", losses.get("sparse_categorical_crossentropy"), 10),
                      metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.resolve("accuracy", losses.get("mse"), 1), metrics.BinaryAccuracy)
    assert metrics.resolve("acc", losses.get("mse"), 10).name == "acc"
    with pytest.raises(ValueError, match="f1"):
        metrics.resolve("f1", None, 2)


@pytest.mark.parametrize("name,fn", [("relu", lambda x: np.maximum(x, 0)), ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
                                     ("tanh", np.tanh), ("linear", lambda x: x)])
def test_activation_functions(name, fn, rng):
    x = rng.normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_allclose(activations.get(name)(x), fn(x), rtol=1e-5, atol=1e-6)
    assert activations.serialize(activations.get(name)) == name


def test_softmax_any_rank_and_axis(rng):
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    for axis in (-1, 1):
        want = np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(activations.softmax(x, axis=axis), want, rtol=1e-5)
    assert activations.get(None) is activations.linear
    with pytest.raises(ValueError, match="gelu"):
        activations.get("gelu")
