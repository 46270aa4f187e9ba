"""Shared pieces of the benchmark scripts: the chapter's four models, MNIST (or same-shaped random) data, machine
facts and small statistics helpers. Imported by the orchestrators and by `_worker.py`, which may run under another
interpreter (the peer venv), so this module needs only the standard library and NumPy."""
import gzip
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent

# The chapter's models as framework-neutral layer lists. Every Conv2D is 3x3, stride 1; the CNN-8 pads 'same', the
# full network 'valid' (Keras's default), as the chapter writes them.
# ("dense", units, activation) | ("conv", filters, activation, padding) | ("maxpool",) 2x2 stride 2 | ("dropout", rate)
# | ("flatten",). The last Dense is the softmax output (frameworks fuse it with the cross-entropy where idiomatic).
MODELS = {
    "mlp_sigmoid": {"input": "flat", "layers": [("dense", 16, "sigmoid"), ("dense", 10, "softmax")]},
    "mlp_relu": {"input": "flat", "layers": [("dense", 16, "relu"), ("dense", 10, "softmax")]},
    "cnn8": {"input": "image", "layers": [("conv", 8, "relu", "same"), ("flatten",), ("dense", 10, "softmax")]},
    "full": {"input": "image", "layers": [
        ("conv", 16, "relu", "valid"), ("conv", 32, "relu", "valid"), ("maxpool",), ("conv", 64, "relu", "valid"), ("maxpool",),
        ("dropout", 0.25), ("flatten",), ("dense", 128, "relu"), ("dropout", 0.25), ("dense", 10, "softmax")]},
}
MODEL_NAMES = list(MODELS)
FRAMEWORKS = ["cnnlite", "torch", "keras"]
PEER_VENV_PYTHON = pathlib.Path("/work/peers/venv/bin/python")


def default_peer_python():
    """The interpreter that runs PyTorch and Keras: $CNNLITE_PEER_PYTHON, else /work/peers/venv, else this one."""
    env = os.environ.get("CNNLITE_PEER_PYTHON")
    if env:
        return env
    return str(PEER_VENV_PYTHON) if PEER_VENV_PYTHON.exists() else sys.executable


# ---------------------------------------------------------------------------------------------------- data
def _mnist_dir():
    base = os.environ.get("CNNLITE_DATA_DIR")
    candidates = [pathlib.Path(base) / "mnist"] if base else []
    candidates.append(HERE.parent.parent / "shared" / "datasets" / "mnist")
    candidates.append(pathlib.Path("/work/shared/datasets/mnist"))
    for c in candidates:
        if (c / "train-images-idx3-ubyte.gz").exists() or (c / "train-images-idx3-ubyte").exists():
            return c
    return None


def _read_idx(path):
    import numpy as np
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _idx_file(folder, stem):
    p = folder / (stem + ".gz")
    return p if p.exists() else folder / stem


def load_data(kind, n_train, n_test, image, seed=0):
    """(x_train, y_train_onehot, x_test, y_test_onehot, source). x float32 in [0, 1]: (n, 784) for MLPs, (n, 28, 28, 1)
    for CNNs; y one-hot float32 (n, 10). kind 'mnist' reads the IDX files (CNNLITE_DATA_DIR/mnist), 'random' draws
    same-shaped data; 'auto' is mnist when the files exist. The timing does not depend on the values."""
    import numpy as np
    folder = _mnist_dir() if kind in ("mnist", "auto") else None
    if kind == "mnist" and folder is None:
        raise FileNotFoundError("MNIST IDX files not found; set CNNLITE_DATA_DIR=DIR with DIR/mnist/*.gz")
    if folder is not None:
        xtr = _read_idx(_idx_file(folder, "train-images-idx3-ubyte"))[:n_train]
        ytr = _read_idx(_idx_file(folder, "train-labels-idx1-ubyte"))[:n_train]
        xte = _read_idx(_idx_file(folder, "t10k-images-idx3-ubyte"))[:n_test]
        yte = _read_idx(_idx_file(folder, "t10k-labels-idx1-ubyte"))[:n_test]
        source = f"mnist ({folder})"
    else:
        rng = np.random.default_rng(seed)
        xtr = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
        ytr = rng.integers(0, 10, n_train).astype(np.uint8)
        xte = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
        yte = rng.integers(0, 10, n_test).astype(np.uint8)
        source = "random"
    shape = (28, 28, 1) if image else (784,)

    def prep(x):
        out = np.empty((x.shape[0],) + shape, dtype=np.float32)
        np.multiply(x.reshape(out.shape), np.float32(1 / 255), out=out, casting="unsafe")
        return out

    eye = np.eye(10, dtype=np.float32)
    return prep(xtr), eye[ytr], prep(xte), eye[yte], source


# ---------------------------------------------------------------------------------------------------- machine
def machine_info():
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = fields.get("Model name", "?")
        info["cpus"] = fields.get("CPU(s)", "?")
        flags = fields.get("Flags", "").split()
        info["simd"] = " ".join(f for f in flags if f.startswith(("avx", "fma", "sse4")))
        info["l2"] = fields.get("L2 cache", "?")
        info["l3"] = fields.get("L3 cache", "?")
    except (OSError, subprocess.SubprocessError, ValueError):
        info["cpu"] = platform.processor()
    return info


# ---------------------------------------------------------------------------------------------------- stats
def median(values):
    return statistics.median(values) if values else float("nan")


def parse_result(stdout):
    """The worker prints exactly one line 'RESULT {json}'."""
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return None


def fmt_seconds(x):
    return "—" if x is None or x != x else f"{x:.3f}"


def fmt_ratio(x):
    return "—" if x is None or x != x else f"{x:.2f}"


def training_flops(name, winograd=False):
    """Floating-point operations (2 per multiply-add) of one training sample of model `name`: every layer's forward,
    weight gradient and input gradient (none for the first layer, which has no input to pass a gradient to), counted
    as direct arithmetic (the convolutions as their 9 taps per output and input channel). With winograd=True the
    3x3 convolutions with more than one input channel count 2.25x fewer multiply-adds (F(2x2, 3x3): 16 products per
    2x2 output tile instead of 36), the arithmetic of the algorithm cnnlite runs them with; the Winograd transforms
    and the element-wise passes count nothing. Only the products are counted: bias, activations, pooling, the loss
    and the optimizer are left out (under 1 % of the full network's)."""
    spec = MODELS[name]
    h, w, c = (28, 28, 1) if spec["input"] == "image" else (1, 1, 784)
    macs = []  # per layer with weights: multiply-adds of its forward pass
    for layer in spec["layers"]:
        kind = layer[0]
        if kind == "conv":
            filters, padding = layer[1], layer[3]
            if padding == "valid":
                h, w = h - 2, w - 2
            factor = 2.25 if winograd and c > 1 else 1.0
            macs.append(h * w * filters * 9 * c / factor)
            c = filters
        elif kind == "maxpool":
            h, w = h // 2, w // 2
        elif kind == "flatten":
            h, w, c = 1, 1, h * w * c
        elif kind == "dense":
            macs.append(c * layer[1])
            h, w, c = 1, 1, layer[1]
    # forward + weight gradient for every layer, input gradient for all but the first: each the forward's MACs
    return 2 * (3 * sum(macs) - macs[0])
