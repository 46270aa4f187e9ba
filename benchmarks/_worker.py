"""One benchmark run in a fresh process: build one of the chapter's models in one framework, train it, print
'RESULT {json}'. Run by bench_e2e.py / bench_memory.py (each framework in its own subprocess, so thread settings and
memory are isolated); usable by hand too:

    python benchmarks/_worker.py --framework torch --model full --threads 2 --epochs 1

Timing: a warm-up fit (--warmup-samples of training data plus a validation pass; builds graphs, allocators, caches) is
not timed; then --epochs train-only epochs, then --epochs epochs with validation on the test set, each epoch timed on
its own (Keras-style callback where the framework has one, so model setup is outside the timed region): wall time
and this process's CPU time (user + system, all threads; on a loaded machine the 1-thread CPU time is the steadier
number).
Thread counts: OMP/MKL/OPENBLAS_NUM_THREADS are set by the caller; here each framework's own switch is set too.
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MODELS, load_data  # noqa: E402


def _rss_mb():
    """(current RSS, peak RSS) of this process in MiB, from /proc (Linux)."""
    cur = peak = float("nan")
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return cur, peak


# ------------------------------------------------------------------------------------ Keras-like (cnnlite, keras)
def build_keras_like(layers, models, spec, input_layer):
    """The same code builds the model in Keras and in cnnlite: the chapter's Sequential style."""
    in_shape = (784,) if spec["input"] == "flat" else (28, 28, 1)
    stack = [input_layer(shape=in_shape)] if input_layer is not None else []
    first = input_layer is None
    for item in spec["layers"]:
        kind = item[0]
        kw = {"input_shape": in_shape} if first else {}
        first = False
        if kind == "dense":
            stack.append(layers.Dense(item[1], activation=item[2], **kw))
        elif kind == "conv":
            stack.append(layers.Conv2D(item[1], kernel_size=(3, 3), padding=item[3], activation=item[2], **kw))
        elif kind == "maxpool":
            stack.append(layers.MaxPooling2D(pool_size=(2, 2), **kw))
        elif kind == "dropout":
            stack.append(layers.Dropout(item[1], **kw))
        elif kind == "flatten":
            stack.append(layers.Flatten(**kw))
        else:
            raise ValueError(kind)
    model = models.Sequential()
    for layer in stack:
        model.add(layer)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


class KerasLikeRunner:
    """fit() with a timing callback; falls back to one fit(epochs=1) call per timed epoch if callbacks are missing."""

    def __init__(self, model, callback_base):
        self.model = model
        self.callback_base = callback_base
        self.timing = "callback" if callback_base is not None else "fit-per-epoch"

    def _timer(self):
        times = []
        cpu = self.cpu = []
        base = self.callback_base

        class EpochTimer(base):
            def on_epoch_begin(self, epoch, logs=None):
                self._t0, self._c0 = time.perf_counter(), time.process_time()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self._t0)
                cpu.append(time.process_time() - self._c0)
                self.last_logs = dict(logs or {})

        return EpochTimer(), times

    def epochs(self, x, y, batch, epochs, val=None):
        if self.callback_base is None:
            times, hist, self.cpu = [], None, []
            for _ in range(epochs):
                t0, c0 = time.perf_counter(), time.process_time()
                hist = self.model.fit(x, y, batch_size=batch, epochs=1, verbose=0, validation_data=val)
                times.append(time.perf_counter() - t0)
                self.cpu.append(time.process_time() - c0)
            logs = {k: float(v[-1]) for k, v in getattr(hist, "history", {}).items()}
            return times, logs
        timer, times = self._timer()
        self.model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, validation_data=val, callbacks=[timer])
        return times, {k: float(v) for k, v in timer.last_logs.items()}


def setup_keras(threads):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    keras.utils.set_random_seed(0)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}

    def make(spec):
        model = build_keras_like(keras.layers, keras.models, spec, keras.Input)
        return KerasLikeRunner(model, keras.callbacks.Callback)
    return make, versions


def setup_cnnlite(threads):
    import cnnlite
    cnnlite.set_num_threads(threads)
    from cnnlite import layers, models
    try:
        from cnnlite.callbacks import Callback
    except ImportError:
        Callback = None
    versions = {"cnnlite": cnnlite.__version__}

    def make(spec):
        return KerasLikeRunner(build_keras_like(layers, models, spec, None), Callback)
    return make, versions


# ------------------------------------------------------------------------------------ PyTorch
def setup_torch(threads, layout):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    versions = {"torch": torch.__version__}
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    memory_format = torch.channels_last if layout == "nhwc" else torch.contiguous_format

    def build(spec):
        mods = []
        if spec["input"] == "flat":
            shape = (784,)
        else:
            shape = (1, 28, 28)
        for item in spec["layers"]:
            kind = item[0]
            if kind == "dense":
                mods.append(nn.Linear(shape[0], item[1]))
                shape = (item[1],)
                if item[2] != "softmax":  # softmax is fused into the loss (F.cross_entropy on logits)
                    mods.append(acts[item[2]]())
            elif kind == "conv":
                mods += [nn.Conv2d(shape[0], item[1], 3, padding=item[3]), acts[item[2]]()]
                shrink = 0 if item[3] == "same" else 2
                shape = (item[1], shape[1] - shrink, shape[2] - shrink)
            elif kind == "maxpool":
                mods.append(nn.MaxPool2d(2))
                shape = (shape[0], shape[1] // 2, shape[2] // 2)
            elif kind == "dropout":
                mods.append(nn.Dropout(item[1]))
            elif kind == "flatten":
                mods.append(nn.Flatten())
                shape = (shape[0] * shape[1] * shape[2],)
        model = nn.Sequential(*mods)
        if spec["input"] == "image":
            model = model.to(memory_format=memory_format)
        return TorchRunner(model, torch, spec["input"] == "image", memory_format)

    return build, versions


class TorchRunner:
    """The loop Keras's fit runs: shuffle, batches, Adam (Keras defaults: lr 1e-3, eps 1e-7), running loss and
    accuracy; validation in eval mode without gradients, same batch size."""
    timing = "manual-loop"

    def __init__(self, model, torch, image, memory_format):
        self.model, self.torch, self.image, self.memory_format = model, torch, image, memory_format
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        self.gen = torch.Generator().manual_seed(0)
        self._cache = {}

    def _tensors(self, x, y):
        key = (id(x), id(y))
        if key not in self._cache:
            t = self.torch
            xt = t.from_numpy(x)
            if self.image:  # NHWC buffer viewed as NCHW (C = 1: the same memory either way; no copy)
                xt = xt.permute(0, 3, 1, 2)
                if self.memory_format is t.contiguous_format:
                    xt = xt.contiguous()
            self._cache[key] = (xt, t.from_numpy(y.argmax(1)))
        return self._cache[key]

    def _one_epoch(self, xt, yt, batch):
        t, F = self.torch, self.torch.nn.functional
        self.model.train()
        n = xt.shape[0]
        perm = t.randperm(n, generator=self.gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb, yb = xt[idx], yt[idx]
            if self.image:
                xb = xb.contiguous(memory_format=self.memory_format)
            self.opt.zero_grad(set_to_none=True)
            out = self.model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            self.opt.step()
            loss_sum += loss.item() * len(idx)
            correct += int((out.argmax(1) == yb).sum())
        return {"loss": loss_sum / n, "accuracy": correct / n}

    def _evaluate(self, xt, yt, batch):
        t, F = self.torch, self.torch.nn.functional
        self.model.eval()
        n = xt.shape[0]
        loss_sum, correct = 0.0, 0
        with t.no_grad():
            for i in range(0, n, batch):
                xb, yb = xt[i:i + batch], yt[i:i + batch]
                if self.image:
                    xb = xb.contiguous(memory_format=self.memory_format)
                out = self.model(xb)
                loss_sum += float(F.cross_entropy(out, yb, reduction="sum"))
                correct += int((out.argmax(1) == yb).sum())
        return {"val_loss": loss_sum / n, "val_accuracy": correct / n}

    def epochs(self, x, y, batch, epochs, val=None):
        xt, yt = self._tensors(x, y)
        vt = self._tensors(*val) if val is not None else None
        times, logs, self.cpu = [], {}, []
        for _ in range(epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            logs = self._one_epoch(xt, yt, batch)
            if vt is not None:
                logs.update(self._evaluate(*vt, batch))
            times.append(time.perf_counter() - t0)
            self.cpu.append(time.process_time() - c0)
        return times, logs


# ------------------------------------------------------------------------------------ main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--framework", choices=["cnnlite", "torch", "keras"], required=True)
    p.add_argument("--model", choices=list(MODELS), required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per mode (train-only, then with validation)")
    p.add_argument("--mode", choices=["e2e", "memory"], default="e2e",
                   help="e2e: warm-up + timed epochs; memory: just fit --epochs epochs with validation, no warm-up")
    p.add_argument("--no-validation", action="store_true", help="e2e: skip the epochs with validation")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--warmup-samples", type=int, default=10000)
    p.add_argument("--data", choices=["auto", "mnist", "random"], default="auto")
    p.add_argument("--torch-layout", choices=["nchw", "nhwc"], default="nchw")
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    spec = MODELS[args.model]
    if args.framework == "keras":
        make, versions = setup_keras(args.threads)
    elif args.framework == "torch":
        make, versions = setup_torch(args.threads, args.torch_layout)
    else:
        make, versions = setup_cnnlite(args.threads)
    rss_import, _ = _rss_mb()
    xtr, ytr, xte, yte, source = load_data(args.data, args.n_train, args.n_test, spec["input"] == "image")
    rss_data, _ = _rss_mb()
    runner = make(spec)
    result = {"framework": args.framework, "model": args.model, "threads": args.threads, "mode": args.mode,
              "versions": versions, "data": source, "n_train": len(xtr), "n_test": len(xte), "batch": args.batch,
              "timing": runner.timing}
    if args.framework == "torch":
        result["layout"] = args.torch_layout
    val = (xte, yte)
    if args.mode == "e2e":
        w = min(args.warmup_samples, len(xtr))
        t0 = time.perf_counter()
        runner.epochs(xtr[:w], ytr[:w], args.batch, 1, val=(xte[:args.batch], yte[:args.batch]))
        result["warmup_s"] = time.perf_counter() - t0
        result["train_epoch_s"], logs = runner.epochs(xtr, ytr, args.batch, args.epochs)
        result["train_epoch_cpu_s"] = runner.cpu
        if not args.no_validation:
            result["val_epoch_s"], logs = runner.epochs(xtr, ytr, args.batch, args.epochs, val=val)
            result["val_epoch_cpu_s"] = runner.cpu
    else:
        result["epoch_s"], logs = runner.epochs(xtr, ytr, args.batch, args.epochs, val=val)
    result["final_logs"] = logs
    _, peak = _rss_mb()
    result["rss_after_import_mb"] = rss_import
    result["rss_after_data_mb"] = rss_data
    result["peak_rss_mb"] = peak
    result["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["wall_s"] = time.perf_counter() - t_start
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: TensorFlow's has crashed here ("free(): invalid size") after the work
