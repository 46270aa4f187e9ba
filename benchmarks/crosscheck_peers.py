"""Numerics cross-check against Keras (TensorFlow backend): the same inputs and weights through cnnlite and Keras
layers, forward outputs and gradients compared within a tolerance (default 1e-5 of max(1, max |Keras|): absolute for
small values, normwise for large ones); and a few Adam steps of a small CNN. It catches padding/stride convention
mistakes ('same' with odd and even sizes, strides 1 and 2, even kernels), pooling edge handling, optimizer details.

Two processes, so cnnlite never has to be installed next to TensorFlow: this script (run by the interpreter that
has cnnlite) draws the cases, saves them to an .npz, runs itself under --keras-python with `--role keras` to compute
Keras's answers, then runs cnnlite and compares.

    PYTHONPATH=$PWD python3 benchmarks/crosscheck_peers.py          # peer venv from BENCHMARKS.md
    python3 benchmarks/crosscheck_peers.py --keras-python /path/to/python/with/tensorflow
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import default_peer_python  # noqa: E402


# ------------------------------------------------------------------------------------------------ the cases
def layer_cases():
    """(name, config, input shape): every layer alone, with a bias where it has one, activation linear."""
    cases = []
    for size in [(7, 7), (8, 8), (9, 6), (28, 28)]:
        for k in [(3, 3), (2, 2), (4, 3), (1, 1)]:
            for s in [(1, 1), (2, 2), (2, 1)]:
                for padding in ["same", "valid"]:
                    if padding == "valid" and (size[0] < k[0] or size[1] < k[1]):
                        continue
                    if size == (28, 28) and (k != (3, 3) or padding == "valid"):
                        continue
                    cases.append((f"conv{k[0]}x{k[1]} s{s[0]}{s[1]} {padding} {size[0]}x{size[1]}",
                                  {"layer": "Conv2D", "filters": 4, "kernel_size": k, "strides": s,
                                   "padding": padding}, (3,) + size + (3,)))
    # Winograd's geometry (3x3, stride 1, enough channels: the full network's conv2/conv3 run it in every pass)
    for size in [(12, 12), (26, 26)]:
        for padding in ["same", "valid"]:
            cases.append((f"conv3x3 s11 {padding} {size[0]}x{size[1]}x16 (winograd)",
                          {"layer": "Conv2D", "filters": 32, "kernel_size": (3, 3), "strides": (1, 1),
                           "padding": padding}, (3,) + size + (16,)))
    for size in [(7, 7), (8, 8), (9, 6), (5, 5)]:
        for pool, s in [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 2), (1, 1)), ((3, 3), (1, 1)), ((3, 2), (2, 3))]:
            for padding in ["same", "valid"]:
                for layer in ["MaxPooling2D", "AveragePooling2D"]:
                    cases.append((f"{layer} {pool[0]}x{pool[1]} s{s[0]}{s[1]} {padding} {size[0]}x{size[1]}",
                                  {"layer": layer, "pool_size": pool, "strides": s, "padding": padding},
                                  (2,) + size + (3,)))
    for units, n_in in [(10, 784), (16, 7), (1, 3)]:
        cases.append((f"Dense {n_in}->{units}", {"layer": "Dense", "units": units}, (5, n_in)))
    return cases


def weight_shapes(cfg, in_shape):
    if cfg["layer"] == "Conv2D":
        return [tuple(cfg["kernel_size"]) + (in_shape[-1], cfg["filters"]), (cfg["filters"],)]
    if cfg["layer"] == "Dense":
        return [(in_shape[-1], cfg["units"]), (cfg["units"],)]
    return []


# The small model for the optimizer check: strided 'same' conv, pooling, dense; no dropout (different RNGs).
ADAM_MODEL = [
    {"layer": "Conv2D", "filters": 4, "kernel_size": (3, 3), "strides": (2, 2), "padding": "same",
     "activation": "relu"},
    {"layer": "MaxPooling2D", "pool_size": (2, 2), "strides": (2, 2), "padding": "same"},
    {"layer": "Flatten"},
    {"layer": "Dense", "units": 5, "activation": "softmax"},
]
ADAM_INPUT = (9, 9, 1)
ADAM_BATCH = 6
ADAM_STEPS = 3


def make_cases(path, seed=0):
    rng = np.random.default_rng(seed)
    arrays, meta = {}, []
    for i, (name, cfg, shape) in enumerate(layer_cases()):
        arrays[f"{i}_x"] = rng.standard_normal(shape).astype(np.float32)
        for j, ws in enumerate(weight_shapes(cfg, shape)):
            arrays[f"{i}_w{j}"] = (0.5 * rng.standard_normal(ws)).astype(np.float32)
        meta.append({"name": name, "cfg": cfg, "n_weights": len(weight_shapes(cfg, shape))})
    arrays["adam_x"] = rng.random((ADAM_STEPS, ADAM_BATCH) + ADAM_INPUT).astype(np.float32)
    arrays["adam_y"] = np.eye(5, dtype=np.float32)[rng.integers(0, 5, (ADAM_STEPS, ADAM_BATCH))]
    shape = (ADAM_BATCH,) + ADAM_INPUT
    for li, cfg in enumerate(ADAM_MODEL):
        for j, ws in enumerate(weight_shapes(cfg, shape)):
            arrays[f"adam_l{li}_w{j}"] = (0.3 * rng.standard_normal(ws)).astype(np.float32)
        shape = _out_shape(cfg, shape)
    np.savez(path, meta=json.dumps(meta), **arrays)


def _out_shape(cfg, shape):
    if cfg["layer"] == "Flatten":
        return (shape[0], int(np.prod(shape[1:])))
    if cfg["layer"] == "Dense":
        return (shape[0], cfg["units"])
    win = cfg.get("kernel_size", cfg.get("pool_size"))
    s = cfg["strides"]
    if cfg["padding"] == "same":
        oh, ow = -(-shape[1] // s[0]), -(-shape[2] // s[1])
    else:
        oh, ow = (shape[1] - win[0]) // s[0] + 1, (shape[2] - win[1]) // s[1] + 1
    return (shape[0], oh, ow, cfg.get("filters", shape[3]))


def _make_layer(layers_mod, cfg, **extra):
    kw = {k: v for k, v in cfg.items() if k != "layer"}
    kw.update(extra)
    if cfg["layer"] in ("Conv2D", "Dense"):
        kw.setdefault("activation", None)
    return getattr(layers_mod, cfg["layer"])(**kw)


def upstream_gradient(y_shape, i):
    """The cotangent both sides use: fixed, deterministic, not all ones (so positions matter)."""
    n = int(np.prod(y_shape))
    return (np.sin(np.arange(n, dtype=np.float64) * 0.37 + i) + 0.1).astype(np.float32).reshape(y_shape)


# ------------------------------------------------------------------------------------------------ Keras side
def keras_role(cases_path, out_path):
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    data = np.load(cases_path)
    meta = json.loads(str(data["meta"]))
    out = {}
    for i, case in enumerate(meta):
        x = data[f"{i}_x"]
        layer = _make_layer(keras.layers, case["cfg"])
        layer.build(x.shape)
        if case["n_weights"]:
            layer.set_weights([data[f"{i}_w{j}"] for j in range(case["n_weights"])])
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
            g = tf.constant(upstream_gradient(tuple(y.shape), i))
            s = tf.reduce_sum(y * g)
        grads = tape.gradient(s, [xt] + list(layer.trainable_weights))
        out[f"{i}_y"] = y.numpy()
        for j, gr in enumerate(grads):
            out[f"{i}_g{j}"] = gr.numpy()
    # Adam: ADAM_STEPS train_on_batch calls, weights after each
    model = keras.Sequential([keras.Input(ADAM_INPUT)] + [_make_layer(keras.layers, c) for c in ADAM_MODEL])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.set_weights(_adam_weights(data))
    for step in range(ADAM_STEPS):
        out[f"adam_loss{step}"] = np.float32(model.train_on_batch(data["adam_x"][step], data["adam_y"][step]))
        for j, w in enumerate(model.get_weights()):
            out[f"adam_step{step}_w{j}"] = w
    out["versions"] = json.dumps({"tensorflow": tf.__version__, "keras": keras.__version__})
    np.savez(out_path, **out)


def _adam_weights(data):
    return [data[k] for k in sorted((k for k in data.files if k.startswith("adam_l")),
                                    key=lambda k: (int(k.split("_")[1][1:]), k))]


# ------------------------------------------------------------------------------------------------ cnnlite side
def cnnlite_outputs(data, meta):
    from cnnlite import layers, models
    from cnnlite.engine.plan import build_plan
    out = {}
    for i, case in enumerate(meta):
        x = data[f"{i}_x"]
        layer = _make_layer(layers, case["cfg"], input_shape=x.shape[1:])
        model = models.Sequential([layer])
        if case["n_weights"]:
            layer.set_weights([data[f"{i}_w{j}"] for j in range(case["n_weights"])])
        out[f"{i}_y_predict"] = model.predict(x, batch_size=len(x), verbose=0)
        plan = build_plan("crosscheck", [layer], (None,) + x.shape[1:], input_grad=True)
        y, tape = plan.forward(np.ascontiguousarray(x), training=True)
        out[f"{i}_y"] = y
        dx, (grads,) = plan.backward(upstream_gradient(y.shape, i), tape)
        out[f"{i}_g0"] = dx
        for j, gr in enumerate(grads):
            out[f"{i}_g{j + 1}"] = gr
    model = models.Sequential([_make_layer(layers, c, **({"input_shape": ADAM_INPUT} if k == 0 else {}))
                               for k, c in enumerate(ADAM_MODEL)])
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.set_weights(_adam_weights(data))
    for step in range(ADAM_STEPS):
        loss = model.train_on_batch(data["adam_x"][step], data["adam_y"][step])
        out[f"adam_loss{step}"] = np.float32(loss[0] if isinstance(loss, (list, tuple)) else loss)
        for j, w in enumerate(model.get_weights()):
            out[f"adam_step{step}_w{j}"] = w
    return out


def compare(ref, mine, tol):
    """[(name, error, ok, note)] for every array Keras produced; error = max |diff| / max(1, max |ref|), normwise:
    float32 sums of thousands of terms (a kernel gradient over 3x28x28 positions) differ from Keras's by their
    summation order at ~1e-5 of the element, far below what a wrong pad or stride produces (order 1)."""
    rows = []
    for key in ref.files:
        if key == "versions":
            continue
        r = ref[key].astype(np.float64)
        if key not in mine:
            rows.append((key, float("inf"), False, "missing"))
            continue
        m = np.asarray(mine[key], dtype=np.float64)
        if m.shape != r.shape:
            rows.append((key, float("inf"), False, f"shape {m.shape} vs Keras {r.shape}"))
            continue
        err = float(np.max(np.abs(m - r)) / max(1.0, float(np.max(np.abs(r))))) if r.size else 0.0
        rows.append((key, err, err <= tol, ""))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--role", choices=["main", "keras"], default="main")
    p.add_argument("--cases")
    p.add_argument("--out")
    p.add_argument("--keras-python", default=default_peer_python())
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--adam-tol", type=float, default=1e-5)
    p.add_argument("--verbose", action="store_true", help="print every comparison, not only failures")
    args = p.parse_args(argv)
    if args.role == "keras":
        keras_role(args.cases, args.out)
        sys.stdout.flush()
        os._exit(0)  # skip TensorFlow's interpreter teardown, which has crashed here ("free(): invalid size")
    with tempfile.TemporaryDirectory() as tmp:
        cases, ref_path = pathlib.Path(tmp) / "cases.npz", pathlib.Path(tmp) / "keras.npz"
        make_cases(cases)
        # TensorFlow 2.21 here sometimes dies of heap corruption ("malloc(): invalid next size") in this short
        # script; a crashed Keras side is retried (its answers are deterministic), and the retries are reported.
        for attempt in range(1, 4):
            r = subprocess.run([args.keras_python, os.path.abspath(__file__), "--role", "keras", "--cases",
                                str(cases), "--out", str(ref_path)], capture_output=True, text=True)
            if r.returncode >= 0 and r.returncode != 134:
                break
            print(f"# the Keras side crashed (exit {r.returncode}), attempt {attempt} of 3", file=sys.stderr)
        if r.returncode != 0:
            print(r.stderr[-3000:], file=sys.stderr)
            print(f"the Keras side failed under {args.keras_python}", file=sys.stderr)
            return 2
        data, ref = np.load(cases), np.load(ref_path)
        meta = json.loads(str(data["meta"]))
        mine = cnnlite_outputs(data, meta)
        for i in range(len(meta)):  # predict() must agree with forward()
            mine_pred = mine.pop(f"{i}_y_predict")
            if not np.allclose(mine_pred, mine[f"{i}_y"], atol=1e-6, rtol=1e-6):
                mine[f"{i}_y"] = mine_pred  # let the comparison below report predict's answer
        rows = compare(ref, mine, args.tol)
        versions = json.loads(str(ref["versions"]))
    names = {str(i): m["name"] for i, m in enumerate(meta)}
    kinds = {"y": "forward", "g0": "d input", "g1": "d kernel", "g2": "d bias"}
    failures = 0
    worst = {}
    for key, err, ok, note in rows:
        if key.startswith("adam"):
            label = ("Adam loss " if "loss" in key else "Adam weights ") + key
            ok = err <= args.adam_tol
        else:
            idx, what = key.split("_", 1)
            label = f"{names[idx]}: {kinds.get(what, what)}"
        group = " ".join(label.split(" ")[:2]) if key.startswith("adam") else label.split(" ")[0]
        worst[group] = max(worst.get(group, 0.0), err)
        if not ok or args.verbose:
            print(f"{'ok  ' if ok else 'FAIL'} {label}: error {err:.2e} {note}")
        failures += not ok
    print(f"\ncnnlite vs Keras {versions['keras']} / TensorFlow {versions['tensorflow']}: {len(rows)} arrays "
          f"compared over {len(meta)} layer cases + {ADAM_STEPS} Adam steps, tolerance {args.tol:g}")
    for group, err in sorted(worst.items()):
        print(f"  worst {group}: {err:.2e}")
    print(f"{len(rows) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
