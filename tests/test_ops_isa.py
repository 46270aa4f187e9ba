"""The portable and the AVX-512 builds of the max-pool (forward, backward), dropout, sigmoid, tanh and fused
ReLU-backward loops give bitwise identical results.

CNNLITE_OPS_ISA=generic (read once per process) forces the portable code, so it runs in a subprocess.
"""
import os
import subprocess
import sys

import numpy as np

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
np.savez(sys.argv[1], **out)
"""


def run_script(path, isa):
    env = dict(os.environ)
    env.pop("CNNLITE_OPS_ISA", None)
    if isa:
        env["CNNLITE_OPS_ISA"] = isa
    # cwd outside the source tree, so the installed package (with its extension) is the one imported
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, cwd=path.parent, check=True)
    return np.load(path)


def test_generic_and_default_isa_agree_bitwise(tmp_path):
    generic = run_script(tmp_path / "generic.npz", "generic")
    default = run_script(tmp_path / "default.npz", None)
    assert sorted(generic.files) == sorted(default.files)
    for name in generic.files:
        assert generic[name].tobytes() == default[name].tobytes(), name
    # and the subprocess computed what this process computes
    x = np.random.default_rng(5).integers(-4, 5, size=(3, 9, 8, 37)).astype(np.float32)
    y, argmax = K.maxpool2d_forward(x, 3, 3, 1, 1, 1, 1, 1, 1)
    assert y.tobytes() == default["y3x3"].tobytes() and argmax.tobytes() == default["a3x3"].tobytes()


def test_the_forced_isa_is_the_one_that_runs(tmp_path):
    """cpu_isa() names the GEMM micro-kernel that runs. Under a forced ISA (CI's portable run sets
    CNNLITE_GEMM_ISA=generic) it must be the forced one; and a child forced to the portable kernels reports it."""
    forced = os.environ.get("CNNLITE_GEMM_ISA")
    if forced:
        assert K.cpu_isa() == forced
    else:
        assert K.cpu_isa() in ("avx512", "avx2", "generic")
    env = dict(os.environ, CNNLITE_GEMM_ISA="generic")
    out = subprocess.run([sys.executable, "-c", "from cnnlite import _kernels as K; print(K.cpu_isa())"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "generic"
