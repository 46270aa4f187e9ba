# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
# distutils: language = c++
"""cnnlite._kernels: thin bindings to the C++ kernels in cpp/.

Each binding checks dtype, rank, shape agreement and contiguity, allocates outputs, releases the GIL and calls one
kernel. No maths here. See src/README.md for the list of bindings and their signatures.
"""
include "common.pxi"
include "threads.pxi"
include "dispatch.pxi"
include "gemm.pxi"
include "gemm_bf16.pxi"
include "dense.pxi"
include "conv2d_algo.pxi"
include "conv2d.pxi"
include "pool2d.pxi"
include "activations.pxi"
include "loss.pxi"
include "dropout.pxi"
include "optim.pxi"
include "gather.pxi"
include "reduce.pxi"
include "metrics.pxi"
