import os
import subprocess
import sys

import pytest

import cnnlite


def test_default_thread_count_is_positive():
    assert cnnlite.get_num_threads() >= 1


def test_set_num_threads_round_trips():
    old = cnnlite.get_num_threads()
    try:
        cnnlite.set_num_threads(1)
        assert cnnlite.get_num_threads() == 1
        cnnlite.set_num_threads(2)
        # without OpenMP the request is accepted (same checks) and everything runs on one thread, as README says
        assert cnnlite.get_num_threads() == (2 if cnnlite.has_openmp() else 1)
    finally:
        cnnlite.set_num_threads(old)


@pytest.mark.parametrize("bad", [0, -3])
def test_set_num_threads_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        cnnlite.set_num_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_set_num_threads_rejects_non_int(bad):
    with pytest.raises(TypeError, match="n must be an int >= 1"):
        cnnlite.set_num_threads(bad)


def test_extension_links_openmp():
    """CNNLITE_EXPECT_OPENMP=1 (CI's normal build) requires OpenMP, =0 (CI's -DCNNLITE_OPENMP=OFF build) requires its
    absence; unset, a build without OpenMP (a compiler without it) is legitimate and this test says so."""
    expected = os.environ.get("CNNLITE_EXPECT_OPENMP")
    if expected is None and not cnnlite.has_openmp():
        pytest.skip("this build has no OpenMP (set CNNLITE_EXPECT_OPENMP=1 to require it)")
    assert cnnlite.has_openmp() == (expected != "0")
    if not cnnlite.has_openmp():
        from cnnlite import _kernels
        assert _kernels.num_procs() == 1 and cnnlite.get_num_threads() == 1


@pytest.mark.parametrize("n", ["1", "2"])
def test_omp_num_threads_is_honoured(tmp_path, n):
    # cwd outside the source tree, so the installed package (with its extension) is the one imported
    env = dict(os.environ, OMP_NUM_THREADS=n)
    out = subprocess.run([sys.executable, "-c", "import cnnlite; print(cnnlite.get_num_threads())"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (n if cnnlite.has_openmp() else "1")


# ----- one process-wide setting (issue 13) --------------------------------------------------------------------------
import threading  # noqa: E402

import numpy as np  # noqa: E402

from cnnlite import _kernels  # noqa: E402


def _in_thread(fn):
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test thread
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert not t.is_alive(), "thread did not finish"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def restore_threads():
    old = cnnlite.get_num_threads()
    yield
    cnnlite.set_num_threads(old)


def _small_model():
    from cnnlite.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from cnnlite.models import Sequential
    np.random.seed(11)
    model = Sequential([Conv2D(8, (3, 3), activation="relu", input_shape=(12, 12, 1)), MaxPooling2D((2, 2)),
                        Flatten(), Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def _train_digest():
    rng = np.random.default_rng(2)
    x = rng.random((96, 12, 12, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 96)]
    model = _small_model()
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    return b"".join(w.tobytes() for w in model.get_weights()) + model.predict(x, verbose=0).tobytes()


@pytest.mark.skipif(not cnnlite.has_openmp(), reason="no OpenMP")
def test_set_num_threads_in_one_thread_holds_in_every_other(restore_threads):
    cnnlite.set_num_threads(1)
    assert _in_thread(cnnlite.get_num_threads) == 1
    assert _in_thread(_kernels._probe_team_size) == 1  # a parallel region started there has one thread
    # Set from a worker thread: the main thread and a third thread see it, and their kernels use it.
    _in_thread(lambda: cnnlite.set_num_threads(2))
    assert cnnlite.get_num_threads() == 2
    assert _kernels._probe_team_size() == 2
    assert _in_thread(_kernels._probe_team_size) == 2
    # A thread already running when the setting changes follows it at its next kernel call.
    go, done = threading.Event(), threading.Event()
    seen = {}

    def long_lived():
        seen["before"] = (cnnlite.get_num_threads(), _kernels._probe_team_size())
        go.wait(30)
        seen["after"] = (cnnlite.get_num_threads(), _kernels._probe_team_size())
        done.set()

    t = threading.Thread(target=long_lived)
    t.start()
    while "before" not in seen:
        threading.Event().wait(0.01)
    cnnlite.set_num_threads(1)
    go.set()
    t.join(30)
    assert seen == {"before": (2, 2), "after": (1, 1)}


@pytest.mark.skipif(not cnnlite.has_openmp(), reason="no OpenMP")
def test_several_threads_agree_on_the_count_and_train_the_same_bits_at_any_count(restore_threads):
    results = {}
    for n in (1, 2, 3):
        cnnlite.set_num_threads(n)
        counts, digests = [None] * 3, [None] * 3

        def worker(i):
            counts[i] = (cnnlite.get_num_threads(), _kernels._probe_team_size())
            digests[i] = _train_digest()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert counts == [(n, n)] * 3
        assert len(set(digests)) == 1
        results[n] = digests[0]
    assert results[1] == results[2] == results[3]


def test_omp_num_threads_sets_the_default_of_every_thread(tmp_path):
    code = ("import threading, cnnlite; from cnnlite import _kernels as K; r = [];"
            "t = threading.Thread(target=lambda: r.append((cnnlite.get_num_threads(), K._probe_team_size())));"
            "t.start(); t.join(); print(cnnlite.get_num_threads(), K._probe_team_size(), *r[0])")
    for n in ("1", "3"):
        env = dict(os.environ, OMP_NUM_THREADS=n)
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                             check=True)
        expect = [n] * 4 if cnnlite.has_openmp() else ["1"] * 4
        assert out.stdout.split() == expect
