"""Run by tests/test_distributed.py, under `mpiexec -n N` or alone: trains one of the fingerprint models
(benchmarks/fingerprint.py) on the first MNIST images with a fixed seed, and writes what it ended with to
OUT/rank<r>.json: SHA-256 digests of the weights, the History, predict and evaluate, plus what it printed.

    python tests/distributed_worker.py MODEL OUT [--n 1200] [--batch 300] [--epochs 2] [--optimizer adam]
"""
import argparse
import hashlib
import json
import os
import signal
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--optimizer", default=None)
    parser.add_argument("--fail-on-rank", type=int, default=None, help="raise ValueError on this rank mid-fit")
    parser.add_argument("--kill-rank", type=int, default=None, help="SIGKILL this rank mid-fit")
    parser.add_argument("--perturb-rank", type=int, default=None, help="give this rank other training data")
    parser.add_argument("--save", default=None, help="a ModelCheckpoint file path (every epoch)")
    parser.add_argument("--resume", default=None, help="load this model file first, then train on")
    parser.add_argument("--initial-epoch", type=int, default=0)
    parser.add_argument("--on-batch", action="store_true", help="train with train_on_batch instead of fit")
    parser.add_argument("--policy", default=None, help="a cnnlite.mixed_precision global policy")
    args = parser.parse_args()

    import cnnlite
    import cnnlite.mixed_precision
    import cnnlite.distributed as dist
    from cnnlite.datasets import mnist
    from cnnlite.callbacks import Callback, ModelCheckpoint
    from cnnlite.models import Sequential, load_model
    from cnnlite.utils import np_utils
    import fingerprint

    dist.init()
    if args.policy:
        cnnlite.mixed_precision.set_global_policy(args.policy)
    build, build_args, kind, optimizer = fingerprint.MODELS[args.model]
    (x, y), (xt, yt) = mnist.load_data()
    x, xt = x[:args.n].astype("float32") / 255, xt[:300].astype("float32") / 255
    y, yt = np_utils.to_categorical(y[:args.n], 10), np_utils.to_categorical(yt[:300], 10)
    shape = (-1, 784) if kind == "flat" else (-1, 28, 28, 1)
    x, xt = x.reshape(shape), xt.reshape(shape)
    if args.perturb_rank is not None and dist.rank() == args.perturb_rank:
        x[0] += 1.0

    callbacks = []
    if args.fail_on_rank is not None:
        class FailOnRank(Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 1 and dist.rank() == args.fail_on_rank:
                    raise ValueError(f"a failure on rank {dist.rank()}")
        callbacks.append(FailOnRank())
    if args.kill_rank is not None:
        class KillRank(Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 1 and dist.rank() == args.kill_rank:
                    os.kill(os.getpid(), signal.SIGKILL)
        callbacks.append(KillRank())
    if args.save:
        callbacks.append(ModelCheckpoint(args.save, verbose=1))
    if args.resume:
        model = load_model(args.resume)
    else:
        np.random.seed(1)
        model = Sequential(build(*build_args))
        model.compile(loss="categorical_crossentropy", optimizer=args.optimizer or optimizer, metrics=["accuracy"])
    if args.on_batch:
        losses = [model.train_on_batch(x[i:i + args.batch], y[i:i + args.batch])
                  for _ in range(args.epochs) for i in range(0, len(x), args.batch)]
        history = type("History", (), {"history": {"train_on_batch": losses,
                                                  "test_on_batch": model.test_on_batch(xt, yt)}})()
    else:
        history = model.fit(x, y, batch_size=args.batch, epochs=args.epochs, verbose=2, validation_data=(xt, yt),
                            callbacks=callbacks, initial_epoch=args.initial_epoch)

    def digest(*arrays):
        h = hashlib.sha256()
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    result = {"rank": dist.rank(), "size": dist.size(), "threads": cnnlite.get_num_threads(),
              "weights": digest(*model.get_weights()),
              "history": history.history,
              "predict": digest(model.predict(xt, batch_size=97, verbose=0)),
              "evaluate": [float(v) for v in model.evaluate(xt, yt, verbose=0)]}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"rank{dist.rank()}.json"), "w") as f:
        json.dump(result, f, sort_keys=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
