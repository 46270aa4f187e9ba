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

from cnnlite import saving


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
    saving._atomic_write(str(path), lambda f: f.write(b"one"))
    saving._atomic_write(str(path), lambda f: f.write(b"two"))
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
        saving._atomic_write(str(path), failing)
    assert path.read_bytes() == b"previous"
    assert temps(tmp_path) == []


def test_atomic_write_file_gets_normal_permissions(tmp_path):
    path = tmp_path / "m.keras"
    saving._atomic_write(str(path), lambda f: f.write(b"x"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_next_save_removes_temps_of_dead_writers_only(tmp_path):
    path = tmp_path / "m.keras"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True, cwd=tmp_path)
    dead_pid = int(dead.stdout)
    live_pid = os.getppid()  # our parent is alive while we run
    stale = tmp_path / f".m.keras.cnnlite-{dead_pid}-abc.tmp"
    busy = tmp_path / f".m.keras.cnnlite-{live_pid}-def.tmp"
    other = tmp_path / f".other.keras.cnnlite-{dead_pid}-abc.tmp"
    for p in (stale, busy, other):
        p.write_bytes(b"partial")
    saving._atomic_write(str(path), lambda f: f.write(b"new"))
    assert temps(tmp_path) == sorted([busy.name, other.name])


def test_atomic_write_refuses_directory_and_missing_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is an existing directory"):
        saving._atomic_write(str(tmp_path), lambda f: None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        saving._atomic_write(str(tmp_path / "no" / "m.keras"), lambda f: None)


@pytest.mark.parametrize("name, match", [
    ("m.h5", r"HDF5 files \('.*m.h5'\) are not supported; cnnlite saves only its own zip format"),
    ("m.hdf5", "HDF5 files"),
    ("m.zip", r"the filepath must end in '.keras'"),
])
def test_save_model_extension(tmp_path, name, match):
    with pytest.raises(ValueError, match=match):
        saving.save_model(object(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, match", [
    ("w.h5", "HDF5 files"), ("w.weights.h5", "HDF5 files"), ("w.keras", r"must end in '.weights.npz'"),
])
def test_save_weights_extension(tmp_path, name, match):
    with pytest.raises(ValueError, match=match):
        saving.save_weights(object(), tmp_path / name)
