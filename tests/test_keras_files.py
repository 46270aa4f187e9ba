"""Keras's files: the chapter's three networks as Keras 3 saved them (tests/keras_files, made by make_fixtures.py)
load with Keras's predictions and train on; cnnlite writes .keras/.h5/.weights.h5 that it reads back exactly; and
files cnnlite writes load in Keras with cnnlite's predictions (where Keras is importable: .ci/run's Keras step, whose
CNNLITE_REQUIRE_KERAS=1 makes a missing Keras a failure; Keras is never a dependency of cnnlite)."""
import io
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

import needs

from cnnlite import callbacks, models, optimizers, saving
from cnnlite.saving import keras_files
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D

HERE = pathlib.Path(__file__).resolve().parent / "keras_files"
NETWORKS = ["mlp", "cnn8", "full"]
KERAS_LR = float(np.float32(1e-3))  # Keras keeps the learning rate as a float32 variable


def reference(name):
    with np.load(HERE / f"{name}.predictions.npz") as f:
        return f["x"], f["y"]


def train_sample(name):
    with np.load(HERE / "train_sample.npz") as f:
        x = f["x"].astype(np.float32) / 255.0
        y = np.eye(10, dtype=np.float32)[f["y"]]
    return (x.reshape(-1, 784) if name == "mlp" else x[..., None]), y


def weights_file(name, tmp_path):
    """The network's .weights.h5, as Keras's save_weights wrote it."""
    return HERE / f"{name}.weights.h5"


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", NETWORKS)
def test_keras_saved_model_predicts_as_keras_and_trains_on(name, suffix):
    x, expected = reference(name)
    model = models.load_model(HERE / f"{name}{suffix}")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=0, atol=1e-5)
    assert model.optimizer is not None and model.loss == "categorical_crossentropy"
    assert model.compiled_metrics == ["accuracy"]
    before = model.get_weights()
    history = model.fit(*train_sample(name), batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("name", NETWORKS)
def test_keras_weights_file_loads_into_a_cnnlite_model(name, tmp_path):
    x, expected = reference(name)
    model = models.load_model(HERE / f"{name}.keras")
    fresh = models.Sequential.from_config(model.get_config())
    fresh.compile(optimizer="adam", loss="categorical_crossentropy")
    fresh.load_weights(weights_file(name, tmp_path))
    np.testing.assert_allclose(fresh.predict(x, verbose=0), expected, rtol=0, atol=1e-5)


def test_keras_optimizer_state_resumes_from_each_file():
    """The MLP's files hold Adam after 4 steps: each file resumes with the same slots, so one more step gives the
    same bits whichever file it came from, and differs from a fresh optimizer's step."""
    x, y = train_sample("mlp")
    results = []
    for path in ("mlp.keras", "mlp.h5"):
        model = models.load_model(HERE / path)
        assert model.optimizer.iterations == 4 and model.optimizer.built
        model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
        results.append(model.get_weights())
    model = models.load_model(HERE / "mlp.keras", compile=False)
    model.compile(optimizer=optimizers.Adam(KERAS_LR), loss="categorical_crossentropy")
    model.load_weights(HERE / "mlp.weights.h5")
    assert model.optimizer.iterations == 4
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    results.append(model.get_weights())
    fresh = models.load_model(HERE / "mlp.keras", compile=False)
    fresh.compile(optimizer=optimizers.Adam(KERAS_LR), loss="categorical_crossentropy")
    fresh.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], other))
    assert not all(np.array_equal(a, b) for a, b in zip(results[0], fresh.get_weights()))


def full_network(seed=3):
    model = models.Sequential([
        Conv2D(16, (3, 3), activation="relu", input_shape=(28, 28, 1)), Conv2D(32, (3, 3), activation="relu"),
        MaxPooling2D(), Conv2D(64, (3, 3), activation="relu"), MaxPooling2D(), Dropout(0.25), Flatten(),
        Dense(128, activation="relu"), Dropout(0.25), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def small_network():
    model = models.Sequential([Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 1)), MaxPooling2D(),
                               Dropout(0.3), Flatten(), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def small_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]


@pytest.mark.parametrize("writer, reader", [
    ("save_keras", "load_model"), ("save_h5", "load_model"), ("save_weights_h5", "load_weights")])
def test_cnnlite_written_files_resume_bitwise_exactly(tmp_path, writer, reader):
    x, y = small_data()
    model = small_network()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / {"save_keras": "m.keras", "save_h5": "m.h5", "save_weights_h5": "m.weights.h5"}[writer]
    getattr(keras_files, writer)(model, path)
    if reader == "load_model":
        loaded = keras_files.load_model(path)
    else:
        loaded = small_network()
        loaded.load_weights(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_keras_tables_match_the_real_constructors():
    """cnnlite/saving/convert.py names the layers and optimizers a Keras file may hold without importing them (the
    saving package knows no layer or optimizer module); their keyword arguments must be the constructors' own."""
    import inspect

    from cnnlite import layers
    from cnnlite.saving import convert

    def accepted(cls):
        params = inspect.signature(cls.__init__).parameters
        return sorted(n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                      and n != "self")
    for name, kwargs in convert.LAYER_KWARGS.items():
        assert sorted(kwargs) == accepted(getattr(layers, name)), name
    for name, kwargs in convert.OPTIMIZER_KWARGS.items():
        assert sorted(kwargs) == accepted(getattr(optimizers, name)), name
    assert set(convert.OPTIMIZER_KWARGS) == set(optimizers.REGISTRY.names("classes"))


def test_every_keras_name_writes_keras_formats(tmp_path):
    """model.save, saving.save_model and ModelCheckpoint write Keras 3 archives for `.keras` and legacy HDF5 for
    `.h5`; save_weights('.weights.h5') Keras 3's weights store, '.weights.npz' cnnlite's own zip."""
    x, y = small_data()
    model = small_network()
    model.save(tmp_path / "a.keras")
    saving.save_model(model, tmp_path / "b.keras")
    saving.save_model(model, tmp_path / "c.h5")
    model.save_weights(tmp_path / "d.weights.h5")
    model.save_weights(tmp_path / "e.weights.npz")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[
        callbacks.ModelCheckpoint(str(tmp_path / "f.keras")), callbacks.ModelCheckpoint(str(tmp_path / "g.h5")),
        callbacks.ModelCheckpoint(str(tmp_path / "h.weights.h5"), save_weights_only=True)])
    kinds = {name: keras_files.sniff(tmp_path / name) for name in
             ("a.keras", "b.keras", "c.h5", "d.weights.h5", "e.weights.npz", "f.keras", "g.h5", "h.weights.h5")}
    assert kinds == {"a.keras": "keras", "b.keras": "keras", "c.h5": "legacy_h5", "d.weights.h5": "weights_h5",
                     "e.weights.npz": "cnnlite", "f.keras": "keras", "g.h5": "legacy_h5", "h.weights.h5": "weights_h5"}
    for name in ("f.keras", "g.h5"):
        for a, b in zip(models.load_model(tmp_path / name).get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_keras_writes_are_atomic(tmp_path, monkeypatch):
    """A save that fails mid-write leaves the previous file as it was and no temporary file (archive.atomic_write)."""
    model = small_network()
    for name in ("m.keras", "m.h5", "m.weights.h5"):
        path = tmp_path / name
        (model.save_weights if name.endswith(".weights.h5") else model.save)(path)
        before = path.read_bytes()
        monkeypatch.setattr(keras_files, "_atomic_write_bytes", lambda p, data: keras_files.atomic_write(
            p, lambda f: (f.write(data[:100]), (_ for _ in ()).throw(OSError("disk full")))))
        with pytest.raises(OSError, match="disk full"):
            (model.save_weights if name.endswith(".weights.h5") else model.save)(path)
        monkeypatch.undo()
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m.keras", "m.weights.h5"]


def test_h5_files_never_unpickle_object_datasets(tmp_path):
    """An object (vlen) dataset where a weight should be is refused with the file's name; nothing is unpickled."""
    import h5py

    path = tmp_path / "w.weights.h5"
    small_network().save_weights(path)
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset("0", data=np.array([b"x"], dtype=object),
                                              dtype=h5py.special_dtype(vlen=bytes))
    with pytest.raises(ValueError, match=r"w.weights.h5.*expected float"):
        small_network().load_weights(path)


def test_written_datasets_carry_fletcher32_and_corruption_is_detected(tmp_path):
    import h5py

    model = small_network()
    model.fit(*small_data(), batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "m.weights.h5"
    keras_files.save_weights_h5(model, path)
    with h5py.File(path, "r") as f:
        kernel = f["layers/dense/vars/0"]
        assert kernel.fletcher32
        offset = kernel.id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    for i in range(offset + 100, offset + 108):   # inside the dense kernel's only chunk
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="m.weights.h5"):
        keras_files.load_weights(small_network(), path)


def copy_keras_with_config(tmp_path, name, edit):
    with zipfile.ZipFile(HERE / f"{name}.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config)
    path = tmp_path / f"edited-{name}.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return path


def _set_layer(index, **changes):
    def edit(config):
        layer = config["config"]["layers"][index]
        layer["config"].update(changes.pop("config", {}))
        layer.update(changes)
    return edit


@pytest.mark.parametrize("edit, problem", [
    (_set_layer(1, class_name="BatchNormalization"), "layer class 'BatchNormalization' is not supported"),
    (_set_layer(1, class_name="Lambda", config={"function": {"class_name": "__lambda__"}}),
     "layer class 'Lambda' is not supported"),
    (_set_layer(1, config={"data_format": "channels_first"}), "data_format='channels_first' is not supported"),
    (_set_layer(1, config={"activation": "gelu"}), "activation 'gelu' is not supported"),
    (_set_layer(1, config={"kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}}),
     "`kernel_regularizer` is not supported by cnnlite"),
    (_set_layer(1, module="my_package", registered_name="Custom>Conv"), "custom layer"),
    (_set_layer(1, config={"dtype": "float16"}), "dtype 'float16'"),
    (lambda c: c["compile_config"].update(loss="huber"), "loss 'huber' is not supported"),
    (lambda c: c.update(class_name="Functional"), "cnnlite loads Sequential models only"),
])
def test_unsupported_parts_of_a_keras_file_are_clear_errors(tmp_path, edit, problem):
    path = copy_keras_with_config(tmp_path, "cnn8", edit)
    with pytest.raises(ValueError) as info:
        models.load_model(path)
    assert problem in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("name", ["mlp.keras", "mlp.h5", "mlp.weights.h5"])
def test_truncated_keras_files_are_value_errors_naming_the_file(tmp_path, name):
    data = (HERE / name).read_bytes()
    for cut in (len(data) // 2, len(data) - 5000, 100):
        path = tmp_path / f"cut{cut}-{name}"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError) as info:
            if name.endswith(".weights.h5"):
                models.load_model(HERE / "mlp.keras").load_weights(path)
            else:
                models.load_model(path)
        assert str(path) in str(info.value)


def test_declared_sizes_are_checked_before_reading(tmp_path):
    """A zip member claiming more bytes than the file holds is refused before anything is read."""
    path = tmp_path / "big.keras"
    data = bytearray((HERE / "mlp.keras").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("model.weights.h5")
    # patch the central directory's uncompressed size of model.weights.h5
    central = data.rfind(b"model.weights.h5") - 46
    assert data[central:central + 4] == b"PK\x01\x02"
    data[central + 24:central + 28] = (info.file_size * 1000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"'model.weights.h5' is \d+ bytes, more than the \d+ expected"):
        models.load_model(path)


def _keras():
    """Keras with the TensorFlow backend, or the reason it cannot be imported."""
    try:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras as keras_module  # noqa: F401
        return keras_module, None
    except Exception as err:  # noqa: BLE001 - any import failure means: no Keras here
        return None, f"{type(err).__name__}: {err}"


@pytest.fixture(scope="module")
def keras():
    module, error = _keras()
    if module is None:
        needs.outside_the_suite(f"Keras is not importable ({error})", "CNNLITE_REQUIRE_KERAS",
                                "these tests run in .ci/run's Keras step (.venv-keras, with TensorFlow)")
    return module


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".weights.h5"])
@pytest.mark.parametrize("make", ["mlp", "cnn8", "full"])
def test_keras_loads_what_cnnlite_saves_with_cnnlite_predictions(tmp_path, suffix, make, keras):
    """Keras's load_model opens cnnlite's .keras and .h5, and Keras's load_weights cnnlite's .weights.h5 (into the
    network Keras built from the fixture), with cnnlite's predictions; then Keras trains on."""
    k = keras
    model = models.load_model(HERE / f"{make}.keras")
    model.fit(*train_sample(make), batch_size=16, epochs=1, verbose=0)
    path = tmp_path / f"cnnlite-{make}{suffix}"
    {".keras": keras_files.save_keras, ".h5": keras_files.save_h5, ".weights.h5": keras_files.save_weights_h5}[
        suffix](model, path)
    x, _ = reference(make)
    if suffix == ".weights.h5":
        # The fixture's architecture with a fresh Adam, built: Keras loads optimizer state only into a built optimizer
        # (into an unbuilt one it warns "Skipping variable loading for optimizer" and starts afresh).
        theirs = k.models.load_model(HERE / f"{make}.keras", compile=False)
        theirs.compile(optimizer=k.optimizers.Adam(KERAS_LR), loss="categorical_crossentropy")
        theirs.optimizer.build(theirs.trainable_variables)
        theirs.load_weights(path)
    else:
        theirs = k.models.load_model(path)
    difference = np.abs(np.asarray(theirs.predict(x, verbose=0)) - model.predict(x, verbose=0)).max()
    print(f"{make}{suffix}: Keras {k.__version__} predicts cnnlite's file within {difference:.3g}")
    assert difference <= 1e-5
    if suffix != ".h5":  # the .h5 optimizer state is kept for cnnlite only (see cnnlite/saving/legacy_h5.py)
        assert int(theirs.optimizer.iterations.numpy()) == model.optimizer.iterations
        slots = [np.asarray(v) for v in theirs.optimizer.variables[2:]]
        assert len(slots) == len(model.optimizer.variables())
        assert all(np.array_equal(a, b) for a, b in zip(slots, model.optimizer.variables()))
    theirs.fit(*train_sample(make), batch_size=16, epochs=1, verbose=0)


def test_a_damaged_hdf5_structure_is_a_value_error_naming_the_file(tmp_path):
    # Zeroed HDF5 metadata makes h5py raise RuntimeError ("Unable to synchronously check link existence (...)") from
    # the HDF5 library; a loader says "damaged" with the file's name instead, and the model is left as it was.
    model = models.Sequential([Dense(4, activation="relu", input_shape=(6,)), Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    data = bytearray(path.read_bytes())
    data[600:1400] = bytes(800)
    damaged = tmp_path / "damaged.weights.h5"
    damaged.write_bytes(bytes(data))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises((ValueError, OSError)) as err:
        model.load_weights(damaged)
    assert "damaged.weights.h5" in str(err.value)
    for a, b in zip(before, model.get_weights()):
        assert a.tobytes() == b.tobytes()
