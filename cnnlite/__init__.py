"""cnnlite: Keras-like deep learning on CPUs, with C++/OpenMP kernels wrapped by Cython."""
from cnnlite._kernels import get_num_threads, set_num_threads, has_openmp

__version__ = "0.1.0"

__all__ = ["get_num_threads", "set_num_threads", "has_openmp", "__version__"]
