"""The portable and the AVX-512 builds of the max-pool (forward, backward), dropout, sigmoid, tanh and fused
ReLU-backward loops give bitwise identical results, and the one ISA switch (set_isa, or CNNLITE_ISA at import)
really selects the builds every kernel runs.

The environment variable is applied when cnnlite is imported, so those runs are subprocesses.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnlite import _kernels as K

SCRIPT = r"""
import sys
import numpy as np
from cnnlite import _kernels as K
rng = np.random.default_rng(5)
x = rng.integers(-4, 5, size=(3, 9, 8, 37)).astype(np.float32)   # ties, and 37 = 2*16 + 4 + 1 channels
out = {}
for name, args in {"2x2": (2, 2, 2, 2, 0, 1, 0, 0), "3x3": (3, 3, 1, 1, 1, 1, 1, 1)}.items():
    out["y" + name], out["a" + name] = K.maxpool2d_forward(x, *args)
    dy = rng.standard_normal(out["y" + name].shape).astype(np.float32)
    out["dx" + name] = K.maxpool2d_backward(dy, out["a" + name], 9, 8, window=args)
    out["dxrelu" + name] = K.maxpool2d_backward(dy, out["a" + name], 9, 8, window=args, y=out["y" + name])
out["drop"] = K.dropout_forward(rng.standard_normal(50001).astype(np.float32), 0.3, 11, 4)
z = np.concatenate([np.linspace(-100, 100, 40001), [0.0, -0.0, 1e-30, -1e-30, np.inf, -np.inf, np.nan]])
out["sigmoid"] = K.sigmoid_forward(z.astype(np.float32))
out["tanh"] = K.tanh_forward(z.astype(np.float32))
# ReLU backward fused with the bias sum (37 columns: vector body and tail), through the dense kernel
xd = rng.standard_normal((300, 20)).astype(np.float32)
wd = rng.standard_normal((20, 37)).astype(np.float32)
yd = K.dense_forward(xd, wd, None, relu=True)
out["relu_dx"], out["relu_dw"], out["relu_db"] = K.dense_backward(rng.standard_normal(yd.shape).astype(np.float32),
                                                                 xd, wd, y=yd)
out["isa"] = np.array(K.get_isa())
np.savez(sys.argv[1], **out)
"""


# Outputs of the dense kernel's GEMMs (relu_db is the fused mask-and-sum loop's).
_GEMM_OUTPUTS = {"relu_dx", "relu_dw"}


def run_script(path, isa, var="CNNLITE_ISA"):
    env = {k: v for k, v in os.environ.items() if k not in ("CNNLITE_ISA", "CNNLITE_GEMM_ISA", "CNNLITE_OPS_ISA")}
    if isa:
        env[var] = isa
    # cwd outside the source tree, so the installed package (with its extension) is the one imported
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, cwd=path.parent, check=True)
    return np.load(path)


@pytest.mark.parametrize("isa,var", [("generic", "CNNLITE_ISA"), ("avx2", "CNNLITE_ISA"),
                                     ("generic", "CNNLITE_OPS_ISA")])
def test_lower_and_default_isa_agree_bitwise(tmp_path, isa, var):
    if isa not in K.available_isas():
        pytest.skip(f"this CPU lacks {isa} (levels: {K.available_isas()})")
    lower = run_script(tmp_path / "lower.npz", isa, var)
    default = run_script(tmp_path / "default.npz", None)
    assert str(lower["isa"]) == isa and str(default["isa"]) == K.available_isas()[0]  # which builds ran
    assert sorted(lower.files) == sorted(default.files)
    for name in lower.files:
        if name in _GEMM_OUTPUTS:  # the switch also moves the GEMM to another micro-kernel: equal to rounding
            np.testing.assert_allclose(lower[name], default[name], rtol=1e-5, atol=1e-5)
        elif name != "isa":
            assert lower[name].tobytes() == default[name].tobytes(), name
    # and the subprocess computed what this process computes
    x = np.random.default_rng(5).integers(-4, 5, size=(3, 9, 8, 37)).astype(np.float32)
    y, argmax = K.maxpool2d_forward(x, 3, 3, 1, 1, 1, 1, 1, 1)
    assert y.tobytes() == default["y3x3"].tobytes() and argmax.tobytes() == default["a3x3"].tobytes()


def test_the_forced_isa_is_the_one_that_runs(tmp_path):
    """get_isa() names the instruction set every kernel is capped at. Under a forced ISA (CI's portable run sets
    CNNLITE_ISA=generic) it must be the forced one; and a child forced to the portable kernels reports it."""
    forced = os.environ.get("CNNLITE_ISA")
    if forced:
        assert K.get_isa() == forced
    else:
        assert K.get_isa() in K.available_isas()
    env = dict(os.environ, CNNLITE_ISA="generic")
    out = subprocess.run([sys.executable, "-c", "from cnnlite import _kernels as K; import cnnlite; print(K.get_isa())"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "generic"


@pytest.mark.skipif("avx512" not in K.available_isas(), reason="needs an AVX-512 CPU")
def test_the_switch_selects_the_convolution_loop_builds():
    # The direct convolution's AVX-512F build contracts multiply-adds into FMAs, its AVX2 and generic builds cannot:
    # the same call gives different last bits per level, so this fails if the level were ignored; each level matches
    # the float64 reference.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 12, 12, 1)).astype(np.float32)
    k = rng.standard_normal((3, 3, 1, 16)).astype(np.float32)
    ref = sum(np.einsum("nhwc,co->nhwo", x[:, i:i + 10, j:j + 10].astype(np.float64), k[i, j].astype(np.float64))
              for i in range(3) for j in range(3))
    results = {}
    previous = K.get_isa()
    try:
        for level in K.available_isas():
            K.set_isa(level)
            assert K.get_isa() == level
            results[level] = K.conv2d_forward(x, k, None, 1, 1, 0, 0, 0, 0, algo="direct")
            np.testing.assert_allclose(results[level], ref, rtol=1e-5, atol=1e-5)
    finally:
        K.set_isa(previous)
    assert results["avx512"].tobytes() != results["generic"].tobytes()
    assert results["avx2"].tobytes() == results["generic"].tobytes()  # neither has FMA: the same operations
