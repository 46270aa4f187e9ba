"""Saving: the zip format, its validation on load (no pickle ever runs), atomic writes, and model round trips."""
import io
import json
import os
import pathlib
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from cnnlite import models, optimizers, saving
from cnnlite.saving import archive, cnnlite_format
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential


# --- crafted files (no model needed: every array is checked before a model is built) -----------------------

def base_config(**overrides):
    config = {
        "format": "cnnlite",
        "format_version": saving.FORMAT_VERSION,
        "kind": "model",
        "model": {"class_name": "Sequential", "config": {"name": "sequential", "layers": []}},
        "build_input_shape": None,
        "compile": None,
        "optimizer_state": None,
        "weights": [{"layer": "dense", "shape": [2, 3]}],
    }
    config.update(overrides)
    return config


def npy_bytes(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def crafted(path, config=None, weight=None):
    config = base_config() if config is None else config
    weight = npy_bytes(np.ones((2, 3), np.float32)) if weight is None else weight
    return write_zip(path, {"config.json": json.dumps(config), "weights/00000.npy": weight})


class Payload:
    """Unpickling this creates `marker`: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def load_error(path):
    with pytest.raises(ValueError) as info:
        saving.load_model(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_object_array_with_pickle_payload_raises_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = Payload(marker)
    path = crafted(tmp_path / "evil.keras",
                   config=base_config(weights=[{"layer": "dense", "shape": [1]}]),
                   weight=npy_bytes(evil, allow_pickle=True))
    with pytest.raises(ValueError) as info:
        saving.load_model(path)
    assert "weights/00000.npy" in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()
    # The payload is live: NumPy with pickles allowed would have run it.
    np.lib.format.read_array(io.BytesIO(npy_bytes(evil, allow_pickle=True)), allow_pickle=True)
    assert marker.exists()


def test_raw_pickle_in_place_of_an_array_or_config_raises(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    assert "not a valid float32 .npy" in load_error(crafted(tmp_path / "a.keras", weight=payload))
    path = write_zip(tmp_path / "b.keras", {"config.json": payload})
    assert "config.json' is not valid JSON" in load_error(path)
    assert not marker.exists()


@pytest.mark.parametrize("array, problem", [
    (np.ones((2, 3), np.float64), "dtype float64, expected float32"),
    (np.ones((2, 3), np.int32), "dtype int32, expected float32"),
    (np.ones((3, 2), np.float32), "shape (3, 2), the config says (2, 3)"),
])
def test_array_must_match_dtype_and_shape_in_config(tmp_path, array, problem):
    assert problem in load_error(crafted(tmp_path / "m.keras", weight=npy_bytes(array)))


def test_oversized_member_is_refused_before_reading(tmp_path):
    path = crafted(tmp_path / "m.keras", weight=npy_bytes(np.zeros((1000, 1000), np.float32)))
    assert "more than the" in load_error(path)


@pytest.mark.parametrize("make, problem", [
    (lambda p: p.write_bytes(b"just some text\n"), "not a zip archive"),
    (lambda p: p.write_bytes(b""), "not a zip archive"),
    (lambda p: write_zip(p, {"weights/00000.npy": b""}), "no 'config.json' in the zip archive"),
    (lambda p: write_zip(p, {"config.json": "[1, 2]"}), "does not describe a cnnlite file"),
    (lambda p: write_zip(p, {"config.json": '{"format": "keras"}'}), "does not describe a cnnlite file"),
    (lambda p: write_zip(p, {"metadata.json": "{}", "config.json": '{"class_name": "Sequential"}',
                             "model.weights.h5": b"\x89HDF"}), "model.weights.h5': not a readable HDF5 file"),
    (lambda p: crafted(p, config=base_config(format_version=99)),
     "format version 99 is not supported (this cnnlite reads version 1)"),
    (lambda p: crafted(p, config=base_config(kind="checkpoint")), "unknown file kind 'checkpoint'"),
    (lambda p: crafted(p, config=base_config(weights=[{"shape": [2, -3]}])), "weights[0] has an invalid shape"),
    (lambda p: crafted(p, config=base_config(weights="all")), "'weights' in 'config.json' must be a list"),
    (lambda p: write_zip(p, {"config.json": json.dumps(base_config())}), "the archive has no 'weights/00000.npy'"),
    (lambda p: crafted(p, config=base_config(model={"class_name": "Functional", "config": {}})),
     "unknown model class 'Functional'"),
    (lambda p: crafted(p, config=base_config(kind="weights")), "it holds only weights"),
    (lambda p: crafted(p, config=base_config(optimizer_state={"iterations": -1, "variables": []})),
     "optimizer iterations must be a non-negative integer"),
])
def test_foreign_or_invalid_files_raise_value_error_naming_file_and_problem(tmp_path, make, problem):
    path = tmp_path / "m.keras"
    make(path)
    assert problem in load_error(path)


def test_the_01_reader_names_a_keras_file_it_is_given(tmp_path):
    """load_model sends a Keras 3 zip to the Keras reader (above); cnnlite's 0.1 reader itself still says what it
    is when handed one directly."""
    path = tmp_path / "m.keras"
    write_zip(path, {"metadata.json": "{}", "config.json": '{"class_name": "Sequential"}',
                     "model.weights.h5": b"\x89HDF"})
    with pytest.raises(ValueError, match="it is a Keras .keras file"):
        cnnlite_format.load_model(path)


def test_duplicate_members_are_refused(tmp_path):
    path = tmp_path / "m.keras"
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(path, {"config.json": json.dumps(base_config())})
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("config.json", "{}")
    assert "holds 'config.json' twice" in load_error(path)


def test_truncated_file_raises(tmp_path):
    path = crafted(tmp_path / "m.keras")
    data = path.read_bytes()
    for size in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:size])
        assert "not a zip archive, or truncated/corrupt" in load_error(path)


@pytest.mark.parametrize("target", [b"\x93NUMPY", b'"format"'])
def test_corrupt_member_fails_its_crc_check(tmp_path, target):
    path = crafted(tmp_path / "m.keras")
    data = bytearray(path.read_bytes())
    at = data.index(target) + len(target) + 2
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    message = load_error(path)
    assert "corrupt" in message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        saving.load_model(tmp_path / "absent.keras")
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        saving.load_model(tmp_path)
    with pytest.raises(TypeError, match="filepath must be a str or os.PathLike, got int"):
        saving.load_model(3)


# --- atomic writes -------------------------------------------------------------------------------------------

def temps(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "m.keras"
    archive.atomic_write(str(path), lambda f: f.write(b"one"))
    archive.atomic_write(str(path), lambda f: f.write(b"two"))
    assert path.read_bytes() == b"two"
    assert temps(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_write_keeps_previous_file_and_removes_temp(tmp_path, error):
    path = tmp_path / "m.keras"
    path.write_bytes(b"previous")

    def failing(f):
        f.write(b"half of the new")
        assert temps(tmp_path), "the new content goes to a temporary file first"
        raise error("disk full")

    with pytest.raises(error):
        archive.atomic_write(str(path), failing)
    assert path.read_bytes() == b"previous"
    assert temps(tmp_path) == []


def test_atomic_write_file_gets_normal_permissions(tmp_path):
    path = tmp_path / "m.keras"
    archive.atomic_write(str(path), lambda f: f.write(b"x"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def dead_process_id(tmp_path):
    """A pid no process has: above the kernel's limit where it is known, else that of a finished child."""
    try:
        return int(pathlib.Path("/proc/sys/kernel/pid_max").read_text()) + 1
    except (OSError, ValueError):
        done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True, cwd=tmp_path)
        return int(done.stdout)


def test_next_save_removes_temps_of_dead_writers_only(tmp_path):
    path = tmp_path / "m.keras"
    dead_pid = dead_process_id(tmp_path)
    live_pid = os.getppid()  # our parent is alive while we run
    stale = tmp_path / f".m.keras.cnnlite-{dead_pid}-abc.tmp"
    busy = tmp_path / f".m.keras.cnnlite-{live_pid}-def.tmp"
    other = tmp_path / f".other.keras.cnnlite-{dead_pid}-abc.tmp"
    for p in (stale, busy, other):
        p.write_bytes(b"partial")
    archive.atomic_write(str(path), lambda f: f.write(b"new"))
    assert temps(tmp_path) == sorted([busy.name, other.name])


def test_atomic_write_refuses_directory_and_missing_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is an existing directory"):
        archive.atomic_write(str(tmp_path), lambda f: None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        archive.atomic_write(str(tmp_path / "no" / "m.keras"), lambda f: None)


@pytest.mark.parametrize("save, name, match", [
    (cnnlite_format.save_model, "m.h5",
     r"HDF5 files \('.*m.h5'\) are not supported; cnnlite saves only its own zip format"),
    (cnnlite_format.save_model, "m.hdf5", "HDF5 files"),
    (cnnlite_format.save_model, "m.zip", r"the filepath must end in '.keras'"),
    (saving.save_model, "m.zip", r"the filepath must end in '.keras' \(Keras 3\) or '.h5'"),
    (saving.save_model, "m.weights.h5", "is a weights file name; use save_weights"),
])
def test_save_model_extension(tmp_path, save, name, match):
    with pytest.raises(ValueError, match=match):
        save(object(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("save, name, match", [
    (cnnlite_format.save_weights, "w.h5", "HDF5 files"), (cnnlite_format.save_weights, "w.weights.h5", "HDF5 files"),
    (cnnlite_format.save_weights, "w.keras", r"must end in '.weights.npz'"),
    (saving.save_weights, "w.h5", r"must end in '.weights.h5' \(Keras 3 weights\) or '.weights.npz'"),
    (saving.save_weights, "w.keras", r"must end in '.weights.h5' .* or '.weights.npz'"),
])
def test_save_weights_extension(tmp_path, save, name, match):
    with pytest.raises(ValueError, match=match):
        save(object(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


# --- real models ---------------------------------------------------------------------------------------------

def mlp(optimizer="adam", metrics=("accuracy",)):
    model = Sequential([Dense(16, activation="relu", input_shape=(8,)), Dropout(0.25, seed=7),
                        Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=list(metrics))
    return model


def cnn():
    model = Sequential([Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 1)), MaxPooling2D((2, 2)),
                        Dropout(0.25, seed=3), Flatten(), Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.RMSprop(learning_rate=0.01), loss="categorical_crossentropy",
                  metrics=["acc"])
    return model


def data(shape=(8,), n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + shape).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return x, y


def assert_arrays_equal(a, b):
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        assert wa.dtype == wb.dtype and wa.shape == wb.shape
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("make, shape", [(mlp, (8,)), (cnn, (8, 8, 1))])
def test_round_trip_keeps_architecture_weights_compile_and_optimizer_state(tmp_path, make, shape):
    x, y = data(shape)
    model = make()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = models.load_model(path)
    assert type(loaded) is Sequential
    assert loaded.get_config() == model.get_config()
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert_arrays_equal(loaded.get_weights(), model.get_weights())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.compiled_loss_name == model.compiled_loss_name
    assert list(loaded.compiled_metrics) == list(model.compiled_metrics)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    assert_arrays_equal(loaded.optimizer.variables(), model.optimizer.variables())
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_model_with_an_input_layer_round_trips(tmp_path):
    from cnnlite import Input

    model = Sequential([Input((6,)), Dense(4, activation="relu"), Dense(2)])
    model.save(tmp_path / "m.keras")
    loaded = models.load_model(tmp_path / "m.keras")
    assert loaded.get_config() == model.get_config() and loaded.input_shape == (None, 6)
    assert_arrays_equal(loaded.get_weights(), model.get_weights())


def test_files_are_deterministic(tmp_path):
    model = mlp()
    cnnlite_format.save_model(model, tmp_path / "a.keras")  # cnnlite's own 0.1 format
    cnnlite_format.save_model(model, str(tmp_path / "b.keras"))
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.keras") as zf:
        names = zf.namelist()
    assert names[0] == "config.json" and all(n.endswith(".npy") for n in names[1:])
    model.save(tmp_path / "c.keras")  # Keras 3's format
    model.save(str(tmp_path / "d.keras"))
    assert (tmp_path / "c.keras").read_bytes() == (tmp_path / "d.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "c.keras") as zf:
        assert zf.namelist() == ["metadata.json", "config.json", "model.weights.h5", "cnnlite.json"]


SAVERS = {"keras": lambda m, p: m.save(p),  # Keras 3 .keras (cnnlite.json extras member)
          "h5": lambda m, p: m.save(p.with_suffix(".h5")),  # legacy Keras HDF5 (cnnlite_extras attribute)
          "0.1": cnnlite_format.save_model}  # cnnlite's own 0.1 zip


def saved_as(fmt, path):
    return path.with_suffix(".h5") if fmt == "h5" else path


@pytest.mark.parametrize("fmt", sorted(SAVERS))
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", optimizers.SGD(learning_rate=0.05, momentum=0.9)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_resumed_training_is_identical_to_uninterrupted_training(tmp_path, optimizer, shuffle, fmt):
    x, y = data(n=40)
    straight = Sequential([Dense(16, activation="relu", input_shape=(8,)), Dropout(0.25),
                           Dense(3, activation="softmax")])
    straight.compile(optimizer=optimizers.get(optimizers.serialize(optimizers.get(optimizer))),
                     loss="categorical_crossentropy", metrics=["accuracy"])
    SAVERS[fmt](straight, tmp_path / "start.keras")  # a twin with the same weights, seeds and random generators
    resumed = models.load_model(saved_as(fmt, tmp_path / "start.keras"))

    straight.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=shuffle)
    resumed.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=shuffle)
    SAVERS[fmt](resumed, tmp_path / "m.keras")
    del resumed
    loaded = models.load_model(saved_as(fmt, tmp_path / "m.keras"))
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=shuffle)
    assert loaded.optimizer.iterations == straight.optimizer.iterations == 10
    assert_arrays_equal(loaded.get_weights(), straight.get_weights())
    assert_arrays_equal(loaded.optimizer.variables(), straight.optimizer.variables())


def test_frozen_layer_round_trip_and_resume(tmp_path):
    x, y = data(n=24)
    straight = Sequential([Dense(16, activation="relu", input_shape=(8,), trainable=False),
                           Dense(3, activation="softmax")])
    straight.compile(optimizer="adam", loss="categorical_crossentropy")
    straight.save(tmp_path / "start.keras")
    resumed = models.load_model(tmp_path / "start.keras")
    assert resumed.layers[0].trainable is False
    straight.fit(x, y, batch_size=8, epochs=2, verbose=0)
    resumed.fit(x, y, batch_size=8, epochs=1, verbose=0)
    resumed.save(tmp_path / "m.keras")
    loaded = models.load_model(tmp_path / "m.keras")
    assert len(loaded.optimizer.variables()) == 4  # m and v for the trainable kernel and bias only
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert_arrays_equal(loaded.get_weights(), straight.get_weights())


def test_without_the_saved_state_training_would_diverge(tmp_path):
    """The resume test above is not vacuous: a twin whose dropout steps restart at 0 ends elsewhere."""
    x, y = data(n=40)
    straight = mlp()
    straight.save(tmp_path / "start.keras")
    twin = models.load_model(tmp_path / "start.keras")
    straight.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    twin.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    twin.layers[1].set_rng_state(dict(twin.layers[1].get_rng_state(), step=0))
    twin.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert not np.array_equal(twin.get_weights()[0], straight.get_weights()[0])


def test_resume_with_weights_file_restores_optimizer_state(tmp_path):
    x, y = data(n=40)
    straight = mlp()
    straight.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    straight.save_weights(tmp_path / "w.weights.npz")
    other = mlp()
    other.load_weights(tmp_path / "w.weights.npz")
    assert other.optimizer.iterations == 5
    assert_arrays_equal(other.optimizer.variables(), straight.optimizer.variables())
    straight.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    other.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert_arrays_equal(other.get_weights(), straight.get_weights())


def test_weights_file_with_another_optimizer_loads_weights_and_warns(tmp_path):
    x, y = data()
    model = mlp()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.weights.npz")
    other = mlp(optimizer="sgd")
    with pytest.warns(UserWarning, match="holds state for a Adam optimizer but the model uses SGD; the weights are "
                                         "loaded, the optimizer state is not"):
        other.load_weights(tmp_path / "w.weights.npz")
    assert_arrays_equal(other.get_weights(), model.get_weights())
    assert other.optimizer.iterations == 0


def test_weights_file_with_other_optimizer_slots_loads_weights_and_warns(tmp_path):
    x, y = data()
    model = mlp(optimizer=optimizers.SGD(momentum=0.9))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.weights.npz")
    other = mlp(optimizer="sgd")
    with pytest.warns(UserWarning, match=r"the model's optimizer keeps 0 state arrays .* the file has 4"):
        other.load_weights(tmp_path / "w.weights.npz")
    assert_arrays_equal(other.get_weights(), model.get_weights())


def test_model_file_whose_optimizer_state_contradicts_its_config(tmp_path):
    x, y = data()
    path = tmp_path / "m.keras"
    model = mlp(optimizer=optimizers.SGD(momentum=0.9))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    cnnlite_format.save_model(model, path)  # the 0.1 format's own checks
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    config["compile"]["optimizer"]["config"]["momentum"] = 0.0
    members["config.json"] = json.dumps(config)
    write_zip(path, members)
    assert "the optimizer state does not fit the model" in load_error(path)


def test_uncompiled_and_unbuilt_models_round_trip(tmp_path):
    unbuilt = Sequential([Dense(4, activation="relu"), Dense(2)])
    unbuilt.save(tmp_path / "unbuilt.keras")
    loaded = models.load_model(tmp_path / "unbuilt.keras")
    assert not loaded.built and len(loaded.layers) == 2 and getattr(loaded, "optimizer", None) is None
    loaded.build((None, 5))
    assert [w.shape for w in loaded.get_weights()] == [(5, 4), (4,), (4, 2), (2,)]

    built = Sequential([Dense(4, input_shape=(5,))])
    built.save(tmp_path / "built.keras")
    loaded = models.load_model(tmp_path / "built.keras")
    assert loaded.built and getattr(loaded, "optimizer", None) is None
    assert_arrays_equal(loaded.get_weights(), built.get_weights())


def test_load_without_compile(tmp_path):
    model = mlp()
    model.save(tmp_path / "m.keras")
    loaded = models.load_model(tmp_path / "m.keras", compile=False)
    assert getattr(loaded, "optimizer", None) is None
    assert_arrays_equal(loaded.get_weights(), model.get_weights())


def test_save_weights_load_weights_round_trip_and_from_a_model_file(tmp_path):
    model = cnn()
    x, _ = data((8, 8, 1))
    model.save_weights(pathlib.Path(tmp_path) / "w.weights.npz")
    model.save(tmp_path / "m.keras")
    for name in ("w.weights.npz", "m.keras"):
        other = cnn()
        other.load_weights(str(tmp_path / name))
        assert_arrays_equal(other.get_weights(), model.get_weights())
        np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_weights_checks_count_and_shapes_before_changing_anything(tmp_path):
    mlp().save_weights(tmp_path / "w.weights.npz")
    deeper = Sequential([Dense(16, input_shape=(8,)), Dense(16), Dense(3)])
    before = deeper.get_weights()
    with pytest.raises(ValueError, match=r"the file holds 4 weight arrays but the model has 6"):
        deeper.load_weights(tmp_path / "w.weights.npz")
    wider = Sequential([Dense(32, input_shape=(8,)), Dense(3)])
    with pytest.raises(ValueError, match=r"w.weights.npz.*weight shapes for layer '.*' do not match: "
                                         r"the model has \[\(8, 32\), \(32,\)\], the file has \[\(8, 16\), \(16,\)\]"):
        wider.load_weights(tmp_path / "w.weights.npz")
    assert_arrays_equal(deeper.get_weights(), before)
    with pytest.raises(ValueError, match="the model must be built before loading"):
        Sequential([Dense(16), Dense(3)]).load_weights(tmp_path / "w.weights.npz")


def test_overwrite_false_refuses_existing_files(tmp_path):
    model = mlp()
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        saving.save_model(model, tmp_path / "m.keras", overwrite=False)


def test_unknown_layer_class_is_a_clear_error(tmp_path):
    path = tmp_path / "m.keras"
    cnnlite_format.save_model(mlp(), path)  # the 0.1 format's own checks
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    config["model"]["config"]["layers"][1]["class_name"] = "Lambda"
    members["config.json"] = json.dumps(config)
    write_zip(path, members)
    message = load_error(path)
    assert "invalid model config" in message and "Lambda" in message


def test_h5_path_through_the_model_method(tmp_path):
    """`.h5` through the model's method is Keras's legacy HDF5 format (tests/test_keras_files.py); cnnlite's
    0.1 writer, `cnnlite_format.save_model`, still writes only its zip."""
    model = mlp()
    model.save(tmp_path / "m.h5")
    assert (tmp_path / "m.h5").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert_arrays_equal(models.load_model(tmp_path / "m.h5").get_weights(), model.get_weights())
    with pytest.raises(ValueError, match="HDF5 files .* are not supported"):
        cnnlite_format.save_model(model, tmp_path / "m2.h5")


def test_models_load_model_and_keras_keywords(tmp_path):
    model = mlp()
    model.save(tmp_path / "m.keras")
    loaded = models.load_model(tmp_path / "m.keras", safe_mode=False)
    assert_arrays_equal(loaded.get_weights(), model.get_weights())
    with pytest.raises(ValueError, match="custom_objects are not supported"):
        models.load_model(tmp_path / "m.keras", custom_objects={"Dense": Dense})


def test_training_state_names_a_layer_that_is_not_dropout(tmp_path):
    path = tmp_path / "m.keras"
    cnnlite_format.save_model(mlp(), path)  # the 0.1 format's own checks
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    config["training_state"]["layers"] = {"0": {"seed": 1, "step": 2}}
    members["config.json"] = json.dumps(config)
    write_zip(path, members)
    assert "names layer '0', which is not a dropout layer" in load_error(path)
