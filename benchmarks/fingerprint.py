"""Bitwise fingerprints of training the chapter's networks: one SHA-256 per model over its final weights, its
History and its predictions, for a fixed seed and thread count.

    python benchmarks/fingerprint.py --threads 1 --out fp1.json
    python benchmarks/fingerprint.py --threads 2 --out fp2.json

Two builds (before and after a restructuring) or two thread counts must print the same digests: that is the proof
that a change kept every bit. Needs MNIST (CNNLITE_DATA_DIR or the default loader path).
"""
import argparse
import hashlib
import json

import numpy as np

import cnnlite
from cnnlite.datasets import mnist
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D, AveragePooling2D
from cnnlite.models import Sequential
from cnnlite.utils import np_utils


def _mlp(activation):
    return [Dense(16, activation=activation, input_shape=(784,)), Dense(10, activation="softmax")]


def _cnn8():
    return [Conv2D(8, (3, 3), padding="same", activation="relu", input_shape=(28, 28, 1)), Flatten(),
            Dense(10, activation="softmax")]


def _full():
    return [Conv2D(16, (3, 3), input_shape=(28, 28, 1), activation="relu"), Conv2D(32, (3, 3), activation="relu"),
            MaxPooling2D(pool_size=(2, 2)), Conv2D(64, (3, 3), activation="relu"), MaxPooling2D(pool_size=(2, 2)),
            Dropout(0.25), Flatten(), Dense(128, activation="relu"), Dropout(0.25), Dense(10, activation="softmax")]


def _variants():
    """A layer mix beyond the chapter: same padding, stride, average pooling, GEMM-path convolutions."""
    return [Conv2D(6, (5, 5), strides=(2, 2), padding="same", activation="relu", input_shape=(28, 28, 1)),
            Conv2D(12, (3, 3), padding="same", activation="tanh"), AveragePooling2D((2, 2), padding="same"),
            Conv2D(20, (3, 3), activation="relu"), MaxPooling2D((3, 3), strides=(2, 2), padding="same"),
            Flatten(), Dense(32, activation="sigmoid"), Dense(10, activation="softmax")]


MODELS = {
    "mlp_sigmoid": (_mlp, ("sigmoid",), "flat", "adam"),
    "mlp_relu": (_mlp, ("relu",), "flat", "sgd"),
    "cnn_8": (_cnn8, (), "image", "adam"),
    "full_cnn": (_full, (), "image", "adam"),
    "variants": (_variants, (), "image", "rmsprop"),
}


def fingerprint(name, data, epochs, batch_size):
    build, args, kind, optimizer = MODELS[name]
    (x, y), (xt, yt) = data[kind]
    np.random.seed(1)
    model = Sequential(build(*args))
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, validation_data=(xt, yt))
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    digest.update(json.dumps(history.history, sort_keys=True).encode())
    digest.update(model.predict(xt, batch_size=97, verbose=0).tobytes())
    digest.update(np.float64(model.evaluate(xt, yt, verbose=0)).tobytes())
    return digest.hexdigest(), history.history["val_accuracy"][-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default=None, help="also write the digests to this JSON file")
    args = parser.parse_args()
    if args.threads:
        cnnlite.set_num_threads(args.threads)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, x_test = x_train[:args.n_train].astype("float32") / 255, x_test[:args.n_test].astype("float32") / 255
    y_train = np_utils.to_categorical(y_train[:args.n_train], 10)
    y_test = np_utils.to_categorical(y_test[:args.n_test], 10)
    data = {"flat": ((x_train.reshape(-1, 784), y_train), (x_test.reshape(-1, 784), y_test)),
            "image": ((x_train.reshape(-1, 28, 28, 1), y_train), (x_test.reshape(-1, 28, 28, 1), y_test))}
    result = {"threads": cnnlite.get_num_threads(), "n_train": args.n_train, "epochs": args.epochs,
              "batch_size": args.batch_size, "models": {}}
    for name in args.models.split(","):
        digest, acc = fingerprint(name, data, args.epochs, args.batch_size)
        result["models"][name] = digest
        print(f"{name:12s} {digest}  val_accuracy={acc:.4f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
