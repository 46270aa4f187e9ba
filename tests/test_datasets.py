"""mnist / fashion_mnist loaders on local files: canonical bytes, every accepted layout, and every kind of bad file."""
import gzip
import hashlib
import os
import pathlib
import shutil
import socket
import time

import numpy as np
import pytest

import needs

from cnnlite.datasets import DatasetUnavailableError, fashion_mnist, mnist
from cnnlite.datasets._idx import read_idx, read_npz
from mnist_files import CANONICAL_SHA256, IDX_NAMES, SHARED_MNIST

TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
DEBIAN_FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")


def _idx_bytes(array, type_byte=8, ndim=None):
    ndim = array.ndim if ndim is None else ndim
    header = bytes([0, 0, type_byte, ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _assert_canonical(data):
    (x_train, y_train), (x_test, y_test) = data
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for role, array in arrays.items():
        assert array.dtype == np.uint8, role
        assert hashlib.sha256(_idx_bytes(array)).hexdigest() == CANONICAL_SHA256[role], role


@pytest.fixture(autouse=True)
def no_network_no_home(tmp_path, monkeypatch):
    """Whatever a test does, it cannot touch ~/.cnnlite, ~/.keras or the internet."""
    monkeypatch.setenv("CNNLITE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv("CNNLITE_MNIST_MIRRORS", raising=False)
    monkeypatch.delenv("CNNLITE_FASHION_MNIST_MIRRORS", raising=False)
    monkeypatch.setattr(mnist, "MIRRORS", [])
    monkeypatch.setattr(fashion_mnist, "MIRRORS", [])
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def closed_port_url_for_datasets():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def data_dir(monkeypatch):
    if SHARED_MNIST is None:
        needs.missing("shared MNIST IDX files not found")
    monkeypatch.setenv("CNNLITE_DATA_DIR", str(SHARED_MNIST.parent))
    return SHARED_MNIST


@pytest.fixture(scope="module")
def canonical():
    if SHARED_MNIST is None:
        needs.missing("shared MNIST IDX files not found")
    return mnist.load_data(path=SHARED_MNIST)


# ---------------------------------------------------------------- the canonical data

def test_mnist_from_data_dir_is_canonical_and_fast(data_dir):
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    elapsed = time.perf_counter() - start
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    _assert_canonical(((x_train, y_train), (x_test, y_test)))
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_LABEL_COUNTS
    assert np.bincount(y_test, minlength=10).sum() == 10000
    assert x_train.mean() == pytest.approx(33.318421, abs=1e-5)
    assert x_train.std() == pytest.approx(78.567490, abs=1e-5)
    assert x_train.min() == 0 and x_train.max() == 255
    assert all(a.flags.writeable and a.flags.c_contiguous for a in (x_train, y_train, x_test, y_test))
    assert elapsed < 10, f"loading MNIST from local .gz files took {elapsed:.2f} s"
    assert not (pathlib.Path(os.environ["CNNLITE_HOME"])).exists()   # nothing was cached or downloaded


def test_each_call_returns_fresh_arrays(data_dir):
    (a, _), _ = mnist.load_data()
    a[0, 0, 0] = 77
    (b, _), _ = mnist.load_data()
    assert b[0, 0, 0] == 0


def test_path_overrides_data_dir(canonical, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLITE_DATA_DIR", str(tmp_path / "bad"))
    (tmp_path / "bad" / "mnist").mkdir(parents=True)
    (tmp_path / "bad" / "mnist" / "mnist.npz").write_bytes(b"not an archive")
    _assert_canonical(mnist.load_data(path=SHARED_MNIST))
    _assert_canonical(mnist.load_data(path=str(SHARED_MNIST.parent)))   # a folder holding mnist/


def test_uncompressed_and_dotted_idx_names(canonical, tmp_path):
    names = {"train-images-idx3-ubyte.gz": "train-images-idx3-ubyte",
             "train-labels-idx1-ubyte.gz": "train-labels.idx1-ubyte",      # the Windows-unpacked spelling
             "t10k-images-idx3-ubyte.gz": "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte.gz": "t10k-labels-idx1-ubyte.gz"}    # mixed: this one stays gzipped
    for src, dst in names.items():
        if dst.endswith(".gz"):
            shutil.copyfile(SHARED_MNIST / src, tmp_path / dst)
        else:
            with gzip.open(SHARED_MNIST / src, "rb") as fin, open(tmp_path / dst, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    _assert_canonical(mnist.load_data(path=tmp_path))


def test_keras_npz_as_file_and_folder(canonical, tmp_path, monkeypatch):
    (x_train, y_train), (x_test, y_test) = canonical
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    _assert_canonical(mnist.load_data(path=tmp_path / "mnist.npz"))
    _assert_canonical(mnist.load_data(path=str(tmp_path)))
    monkeypatch.setenv("CNNLITE_DATA_DIR", str(tmp_path.parent))
    (tmp_path.parent / "mnist").mkdir(exist_ok=True)
    os.replace(tmp_path / "mnist.npz", tmp_path.parent / "mnist" / "mnist.npz")
    _assert_canonical(mnist.load_data())


def test_bad_path_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mnist.load_data(path=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no IDX files"):
        mnist.load_data(path=tmp_path)
    (tmp_path / "labels.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01"))
    with pytest.raises(ValueError, match="labels.gz: not an .npz archive; path= takes a folder"):
        mnist.load_data(path=tmp_path / "labels.gz")
    with pytest.raises(TypeError, match="path must be a folder or .npz file name"):
        mnist.load_data(path=3)


def test_rebinding_mirrors_takes_effect(monkeypatch, closed_port_url_for_datasets):
    monkeypatch.delenv("CNNLITE_DATA_DIR", raising=False)
    monkeypatch.setattr(mnist, "MIRRORS", [closed_port_url_for_datasets + "/only-this/"])
    with pytest.raises(DatasetUnavailableError, match="only-this/train-images-idx3-ubyte.gz: connection refused"):
        mnist.load_data()
    monkeypatch.setenv("CNNLITE_MNIST_MIRRORS", closed_port_url_for_datasets + "/env-a/ "
                       + closed_port_url_for_datasets + "/env-b.npz")
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data()
    assert "/env-a/train-images" in str(info.value) and "/env-b.npz: skipped" not in str(info.value)
    assert "/env-b.npz: connection refused" in str(info.value) and "only-this" not in str(info.value)


def test_corrupt_file_in_data_dir_is_an_error_not_a_download(data_dir, tmp_path, monkeypatch):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in IDX_NAMES:
        os.symlink(SHARED_MNIST / name, folder / name)
    os.unlink(folder / "t10k-images-idx3-ubyte.gz")
    raw = (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    monkeypatch.setenv("CNNLITE_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        mnist.load_data()


# ---------------------------------------------------------------- whole-set consistency checks

def _folder_with(tmp_path, replacements):
    """A folder linking the shared MNIST files, with some of them replaced by given bytes."""
    folder = tmp_path / "set"
    folder.mkdir()
    for name in IDX_NAMES:
        if name in replacements:
            (folder / name).write_bytes(gzip.compress(replacements[name], compresslevel=1))
        else:
            os.symlink(SHARED_MNIST / name, folder / name)
    return folder


@pytest.mark.parametrize("labels, message", [
    (np.zeros(59999, np.uint8), "60000 training images but 59999 training labels"),
    (np.full(60000, 10, np.uint8), r"training labels contain 10, expected values in \[0, 10\)"),
])
def test_label_file_mismatches(canonical, tmp_path, labels, message):
    folder = _folder_with(tmp_path, {"train-labels-idx1-ubyte.gz": _idx_bytes(labels)})
    with pytest.raises(ValueError, match=message):
        mnist.load_data(path=folder)


def test_consistent_but_short_split_is_rejected(canonical, tmp_path):
    (_, _), (x_test, y_test) = canonical
    folder = _folder_with(tmp_path, {"t10k-images-idx3-ubyte.gz": _idx_bytes(x_test[:9000]),
                                     "t10k-labels-idx1-ubyte.gz": _idx_bytes(y_test[:9000])})
    with pytest.raises(ValueError, match="9000 test examples, expected 10000"):
        mnist.load_data(path=folder)


def test_wrong_image_size_is_rejected(canonical, tmp_path):
    folder = _folder_with(tmp_path, {"t10k-images-idx3-ubyte.gz": _idx_bytes(np.zeros((10000, 32, 32), np.uint8))})
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: IDX items have shape 32 x 32, expected 28 x 28"):
        mnist.load_data(path=folder)


@pytest.mark.parametrize("mutate, message", [
    (lambda a: dict(x_train=a["x_train"][:10].astype(np.float32)), "training images have dtype float32, expected uint8"),
    (lambda a: dict(y_test=a["y_test"].astype(np.int64)), "test labels have dtype int64, expected uint8"),
    (lambda a: dict(x_test=a["x_test"].reshape(10000, 784)), r"test images have shape \(10000, 784\)"),
    (lambda a: dict(y_train=a["y_train"][:100]), "60000 training images but 100 training labels"),
    (lambda a: dict(y_train=None), "lacks y_train"),
])
def test_bad_npz_contents(canonical, tmp_path, mutate, message):
    (x_train, y_train), (x_test, y_test) = canonical
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    arrays.update(mutate(arrays))
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(ValueError, match=message) as info:
        mnist.load_data(path=tmp_path / "mnist.npz")
    assert str(tmp_path / "mnist.npz") in str(info.value)


# ---------------------------------------------------------------- the IDX and npz readers on small files

LABELS = np.arange(7, dtype=np.uint8) % 10
IMAGES = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    for array, item_shape in ((LABELS, ()), (IMAGES, (28, 28))):
        data = _idx_bytes(array)
        path = tmp_path / "f"
        path.write_bytes(gzip.compress(data) if compress else data)
        out = read_idx(path, item_shape)
        assert out.dtype == np.uint8 and out.flags.writeable
        np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("data, item_shape, message", [
    (b"", (), "0 bytes where a 4-byte header"),
    (b"\x00\x00", (), "2 bytes where a 4-byte header"),
    (b"\x1f\x00\x08\x01" + b"\x00" * 10, (), "magic number starts with 0x1f00"),
    (_idx_bytes(LABELS, type_byte=0x0C), (), r"element type 0x0c \(int32\), expected 0x08"),
    (_idx_bytes(LABELS, ndim=3), (), "has 3 dimensions, expected 1"),
    (_idx_bytes(IMAGES)[:10], (28, 28), "truncated IDX header: 10 bytes, expected 16"),
    (_idx_bytes(IMAGES)[:-1], (28, 28), "truncated IDX data: header promises 2352 bytes"),
    (_idx_bytes(LABELS) + b"\x00", (), "trailing bytes after the 7 bytes"),
    (_idx_bytes(IMAGES), (28, 27), "IDX items have shape 28 x 28, expected 28 x 27"),
    (b"\x00\x00\x08\x01\xff\xff\xff\xff" + b"\x01" * 20, (), "header promises 4294967295 bytes"),
])
def test_read_idx_rejects(tmp_path, compress, data, item_shape, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path, item_shape)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("damage, message", [
    (lambda z: z[: len(z) // 2], "corrupt or truncated gzip"),
    (lambda z: z[:-4], "corrupt or truncated gzip"),                     # trailer (length) cut off
    (lambda z: z[:-2000] + bytes(b ^ 0xFF for b in z[-2000:-1980]) + z[-1980:], "corrupt or truncated gzip"),
    (lambda z: z[:-8] + b"\x00\x00\x00\x00" + z[-4:], "corrupt or truncated gzip"),   # CRC wrong
])
def test_read_idx_rejects_damaged_gzip(tmp_path, damage, message):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    path = tmp_path / "images.gz"
    path.write_bytes(damage(gzip.compress(_idx_bytes(images))))
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path, (28, 28))
    assert str(path) in str(info.value)


def test_read_npz_refuses_pickles_and_junk(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x_train=np.array([{"a": 1}], dtype=object), y_train=LABELS, x_test=IMAGES, y_test=LABELS)
    with pytest.raises(ValueError, match="pickled.npz: unreadable .npz archive.*pickle"):
        read_npz(pickled)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 but not really a zip file")
    with pytest.raises(ValueError, match="junk.npz"):
        read_npz(junk)
    single = tmp_path / "single.npy"
    np.save(single, LABELS)
    with pytest.raises(ValueError, match="not an .npz archive"):
        read_npz(single)
    good = tmp_path / "good.npz"
    np.savez(good, x_train=IMAGES, y_train=LABELS, x_test=IMAGES, y_test=LABELS)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) - 200])
    with pytest.raises(ValueError, match="truncated.npz"):
        read_npz(truncated)


# ---------------------------------------------------------------- Fashion-MNIST (Debian's dataset-fashion-mnist)

# SHA-256 of the uncompressed Fashion-MNIST IDX files. Debian's .gz files differ from the published ones only in
# the gzip header (file name dropped, time stamp changed): restoring the name and the 2017-08-31 time stamp gives
# back exactly the files whose SHA-256 Keras verifies, so these are Keras's arrays.
FASHION_SHA256 = {
    "x_train": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "y_train": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "x_test": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "y_test": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def test_fashion_mnist_from_debian_package(monkeypatch):
    if not DEBIAN_FASHION.is_dir():   # apt-get install dataset-fashion-mnist (.ci/run does)
        needs.missing(f"Debian package dataset-fashion-mnist not installed (no {DEBIAN_FASHION})")
    monkeypatch.setenv("CNNLITE_DATA_DIR", str(DEBIAN_FASHION.parent))
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for role, array in arrays.items():
        assert hashlib.sha256(_idx_bytes(array)).hexdigest() == FASHION_SHA256[role], role
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert x_train.mean() / 255 == pytest.approx(0.2860, abs=1e-4)
    assert len(fashion_mnist.CLASS_NAMES) == 10


def test_fashion_mnist_does_not_pick_up_mnist(data_dir):
    """$CNNLITE_DATA_DIR/mnist holds MNIST; Fashion-MNIST must look only in fashion-mnist/."""
    if (SHARED_MNIST.parent / "fashion-mnist").is_dir():
        pytest.skip("the shared data folder also holds fashion-mnist")
    with pytest.raises(DatasetUnavailableError, match="fashion-mnist: no such folder"):
        fashion_mnist.load_data()


# ---------------------------------------------------------------- Keras's cache

def _sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def test_mnist_npz_in_keras_cache_is_used_when_its_checksum_matches(canonical, tmp_path, monkeypatch):
    """A user who ran Keras has ~/.keras/datasets/mnist.npz ($KERAS_HOME/datasets here): it is read, nothing is
    downloaded and cnnlite's own cache stays empty."""
    monkeypatch.delenv("CNNLITE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    folder = tmp_path / "keras-home" / "datasets"
    folder.mkdir(parents=True)
    (x_train, y_train), (x_test, y_test) = canonical
    np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    monkeypatch.setitem(mnist.CHECKSUMS, "mnist.npz", ("sha256", _sha256(folder / "mnist.npz")))
    _assert_canonical(mnist.load_data())
    assert not (tmp_path / "home").exists()


def test_keras_home_defaults_to_dot_keras_under_home(canonical, tmp_path, monkeypatch):
    monkeypatch.delenv("CNNLITE_DATA_DIR", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    folder = tmp_path / "user" / ".keras" / "datasets"
    folder.mkdir(parents=True)
    (x_train, y_train), (x_test, y_test) = canonical
    np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    monkeypatch.setitem(mnist.CHECKSUMS, "mnist.npz", ("sha256", _sha256(folder / "mnist.npz")))
    _assert_canonical(mnist.load_data())


def test_fashion_mnist_files_in_keras_cache_are_used_when_their_checksums_match(tmp_path, monkeypatch):
    """Keras keeps Fashion-MNIST as datasets/fashion-mnist/<IDX stem>.gz; the shared MNIST files stand in for them
    (with their own checksums), so the test needs no download."""
    if SHARED_MNIST is None:
        pytest.skip("shared MNIST IDX files not found")
    monkeypatch.delenv("CNNLITE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    folder = tmp_path / "keras-home" / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (folder / name).symlink_to(SHARED_MNIST / name)
        monkeypatch.setitem(fashion_mnist.CHECKSUMS, name, ("sha256", _sha256(SHARED_MNIST / name)))
    _assert_canonical(fashion_mnist.load_data())
    assert not (tmp_path / "home").exists()


def test_wrong_checksum_in_keras_cache_is_ignored_with_a_clear_message(tmp_path, monkeypatch):
    """A mnist.npz in Keras's cache that does not match the published SHA-256 is not read (a RuntimeWarning names
    it), is left as it was, and the error lists Keras's cache among the places looked in."""
    monkeypatch.delenv("CNNLITE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    folder = tmp_path / "keras-home" / "datasets"
    folder.mkdir(parents=True)
    np.savez(folder / "mnist.npz", x_train=np.zeros((60000, 28, 28), np.uint8), y_train=np.zeros(60000, np.uint8),
             x_test=np.zeros((10000, 28, 28), np.uint8), y_test=np.zeros(10000, np.uint8))
    before = (folder / "mnist.npz").read_bytes()
    with pytest.warns(RuntimeWarning, match=r"ignoring .*mnist.npz in Keras's cache: its SHA256 does not match"):
        with pytest.raises(DatasetUnavailableError, match=r"Keras's cache .*keras-home.*datasets"):
            mnist.load_data()
    assert (folder / "mnist.npz").read_bytes() == before
    assert not (tmp_path / "home" / "datasets" / "mnist.npz").exists()
