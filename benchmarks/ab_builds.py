"""Two builds of cnnlite side by side: the full network's training epoch time, alternating fresh processes.

    python benchmarks/ab_builds.py --a /path/to/old/checkout --b /path/to/new/checkout --rounds 5 [--model cnn8]

Each round trains the chapter's full network (or `--model`: cnn8 = Conv2D(8, 'same', relu) -> Flatten ->
Dense(10, softmax); mlp_relu / mlp_sigmoid = Flatten -> Dense(16) -> Dense(10, softmax)) (batch 1000, Adam, 2
threads) for one epoch on the first `--n-train`
MNIST images, once with each build (in a fresh process, `PYTHONPATH` set to that build's in-place tree, alternating
which goes first), after one warm-up batch. Prints each time, the medians and the ratio b/a; `--out` writes them as
JSON. A loaded machine slows both builds alike on average: quote the ratio of medians, not the times.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
import cnnlite
from cnnlite.datasets import mnist
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential
from cnnlite.utils import np_utils
cnnlite.set_num_threads(int(sys.argv[2]))
n = int(sys.argv[1])
(x, y), _ = mnist.load_data()
x = x[:n].reshape(-1, 28, 28, 1).astype("float32") / 255
y = np_utils.to_categorical(y[:n], 10)
np.random.seed(1)
which = sys.argv[3]
if which == "full":
    model = Sequential([Conv2D(16, (3, 3), input_shape=(28, 28, 1), activation="relu"),
                        Conv2D(32, (3, 3), activation="relu"), MaxPooling2D((2, 2)),
                        Conv2D(64, (3, 3), activation="relu"), MaxPooling2D((2, 2)), Dropout(0.25), Flatten(),
                        Dense(128, activation="relu"), Dropout(0.25), Dense(10, activation="softmax")])
elif which == "cnn8":
    model = Sequential([Conv2D(8, (3, 3), padding="same", activation="relu", input_shape=(28, 28, 1)), Flatten(),
                        Dense(10, activation="softmax")])
else:
    model = Sequential([Flatten(input_shape=(28, 28, 1)), Dense(16, activation=which.split("_")[1]),
                        Dense(10, activation="softmax")])
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.train_on_batch(x[:1000], y[:1000])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
start, cpu0 = time.perf_counter(), cpu()
model.fit(x, y, batch_size=1000, epochs=1, verbose=0)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": cpu() - cpu0}))
"""


MODELS = ("full", "cnn8", "mlp_relu", "mlp_sigmoid")


def run(tree, n_train, threads, model="full"):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run([sys.executable, "-c", CHILD, str(n_train), str(threads), model], env=env, check=True,
                         capture_output=True, text=True, cwd=os.path.abspath(tree)).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="checkout with an in-place build (the reference)")
    parser.add_argument("--b", required=True, help="checkout with an in-place build (the candidate)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", choices=MODELS, default="full")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    times, cpu = {"a": [], "b": []}, {"a": [], "b": []}
    for r in range(args.rounds):
        order = ("a", "b") if r % 2 == 0 else ("b", "a")
        for key in order:
            result = run(getattr(args, key), args.n_train, args.threads, args.model)
            times[key].append(result["seconds"])
            cpu[key].append(result["cpu_seconds"])
            print(f"round {r + 1} {key}: {result['seconds']:.3f} s wall, {result['cpu_seconds']:.3f} s CPU",
                  flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ratio, ratio_cpu = med["b"] / med["a"], med_cpu["b"] / med_cpu["a"]
    print(f"median wall a {med['a']:.3f} s, b {med['b']:.3f} s, b/a {ratio:.3f}; "
          f"median CPU a {med_cpu['a']:.3f} s, b {med_cpu['b']:.3f} s, b/a {ratio_cpu:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": " ".join(sys.argv), "a": args.a, "b": args.b, "wall_seconds": times,
                       "cpu_seconds": cpu, "medians": med, "cpu_medians": med_cpu, "ratio_b_over_a": ratio,
                       "cpu_ratio_b_over_a": ratio_cpu, "n_train": args.n_train, "threads": args.threads,
                       "model": args.model,
                       "loadavg": os.getloadavg()}, f, indent=1)


if __name__ == "__main__":
    main()
