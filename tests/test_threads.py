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
