"""Hostile dataset files (issue 13): seeded mutations of valid IDX, IDX.gz and .npz files (byte flips,
truncations, zeroed ranges, inserted, deleted, swapped and duplicated chunks, huge header numbers) each end in a
ValueError/OSError naming the file, or in data the format vouches for: exactly the original where it has a checksum
(.gz: CRC-32 and length; .npz: zip CRC-32), well-formed arrays of the declared shape for raw IDX (which has none).

Hundreds of mutations per format here (a few seconds); CNNLITE_MUTATION_ROUNDS=N for a long hunt."""
import gzip
import io
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from cnnlite.datasets._idx import NPZ_KEYS, read_idx, read_npz
from mutation import rounds_from_env, run_mutations

ROUNDS = rounds_from_env(300)


def _images(n=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _labels(n=20, seed=0):
    return np.random.default_rng(seed).integers(0, 10, n, dtype=np.uint8)


def idx_bytes(array):
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def npz_bytes(arrays, compressed=True):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _same(expected):
    return lambda got: got.dtype == expected.dtype and got.shape == expected.shape and np.array_equal(got, expected)


def _well_formed(shape):
    # Raw IDX has no checksum: a flipped pixel is undetectable; what it must never do is give another shape.
    return lambda got: got.dtype == np.uint8 and got.shape == shape and got.flags.writeable


def _assert_clean(failures):
    assert not failures, f"{len(failures)} bad outcomes, first ones:\n" + "\n".join(failures[:15])


@pytest.mark.parametrize("what", ["images", "labels"])
def test_raw_idx_mutations_end_in_a_clean_error_or_well_formed_data(what):
    array = _images() if what == "images" else _labels()
    item = array.shape[1:]
    failures = run_mutations(idx_bytes(array), lambda p: read_idx(p, item), _well_formed(array.shape),
                             suffix="-idx3-ubyte", rounds=ROUNDS, seed=1, hotspots=range(0, 16, 4))
    _assert_clean(failures)


@pytest.mark.parametrize("what", ["images", "labels"])
def test_gzip_idx_mutations_end_in_a_clean_error_or_the_original_data(what):
    array = _images() if what == "images" else _labels()
    item = array.shape[1:]
    data = gzip.compress(idx_bytes(array), mtime=0)
    failures = run_mutations(data, lambda p: read_idx(p, item), _same(array), suffix="-idx3-ubyte.gz",
                             rounds=ROUNDS, seed=2, hotspots=(0, 3, 4, 8, 10, len(data) - 8, len(data) - 4))
    _assert_clean(failures)


@pytest.mark.parametrize("compressed", [True, False], ids=["deflated", "stored"])
def test_npz_mutations_end_in_a_clean_error_or_the_original_data(compressed):
    arrays = {"x_train": _images(12, 1), "y_train": _labels(12, 1), "x_test": _images(4, 2), "y_test": _labels(4, 2)}
    data = npz_bytes(arrays, compressed)
    expected = tuple(arrays[k] for k in NPZ_KEYS)

    def accept(got):
        return all(_same(e)(g) for e, g in zip(expected, got))

    # Hotspots: the local headers, the .npy headers and the central directory.
    hot = [i for i in range(len(data) - 4) if data[i:i + 4] in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06")]
    hot += [i for i in range(len(data) - 6) if data[i:i + 6] == b"\x93NUMPY"]
    failures = run_mutations(data, read_npz, accept, suffix=".npz", rounds=ROUNDS, seed=3, hotspots=hot)
    _assert_clean(failures)


def _npz_claiming(elements, path):
    """A valid zip (CRCs right) whose x_train.npy header claims `elements` float32 items over 16 bytes of data."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (elements,)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    members = {"x_train.npy": buf.getvalue() + bytes(16)}
    for key in NPZ_KEYS[1:]:
        member = io.BytesIO()
        np.lib.format.write_array(member, np.zeros(3, np.uint8))
        members[key + ".npy"] = member.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)


@pytest.mark.parametrize("elements", [2 ** 40, 2 ** 28], ids=["2**40", "2**28-fits-in-virtual-memory"])
def test_npz_member_claiming_huge_array_fails_fast_without_allocating(elements, tmp_path):
    path = str(tmp_path / "huge.npz")
    _npz_claiming(elements, path)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError, match="header declares shape") as err:
            read_npz(path)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path in str(err.value)
    assert elapsed < 0.5 and peak < 8 << 20, (elapsed, peak)


def test_gzip_idx_claiming_more_than_it_holds_allocates_only_what_arrives(tmp_path):
    # Header: 2**20 images of 28x28 (822 MB) over a tiny deflate stream that passes the 1100:1 bound check.
    body = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2 ** 20, 28, 28) + bytes(10 ** 6)
    path = str(tmp_path / "lying-idx3-ubyte.gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(body, mtime=0))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="truncated IDX data") as err:
            read_idx(path, (28, 28))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path in str(err.value) and peak < 16 << 20, peak


def test_mutation_harness_reports_an_unclean_loader(tmp_path):
    def sloppy(path):
        with open(path, "rb") as f:
            data = f.read()
        return data[10]  # IndexError on a short file, and accepts any change silently

    failures = run_mutations(bytes(range(64)), sloppy, lambda r: r == 10, suffix=".bin", rounds=50, seed=0)
    assert any("IndexError" in f for f in failures) and any("not acceptable" in f for f in failures)
