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
        if cnnlite.has_openmp():
            cnnlite.set_num_threads(2)
            assert cnnlite.get_num_threads() == 2
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
    assert cnnlite.has_openmp()


def test_omp_num_threads_is_honoured(tmp_path):
    # cwd outside the source tree, so the installed package (with its extension) is the one imported
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", "import cnnlite; print(cnnlite.get_num_threads())"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
