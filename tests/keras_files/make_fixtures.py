"""Make the Keras-written fixtures of tests/test_keras_files.py with real Keras 3 (never run by the tests).

    python -m venv /tmp/kerasenv && /tmp/kerasenv/bin/pip install tensorflow-cpu keras h5py
    CNNLITE_DATA_DIR=/path/to/datasets /tmp/kerasenv/bin/python tests/keras_files/make_fixtures.py

Trains the chapter's three networks briefly on the first MNIST training images (read from the IDX files, so no
download) and saves each as `.keras`, legacy `.h5` and `.weights.h5`, plus `<name>.predictions.npz` with the inputs
used and Keras's predictions for them (and the versions that made them). Sizes are kept small: the optimizer state is
kept only for the MLP, whose three files a test resumes training from; CNN-8 and the full network are compiled
again after training (a fresh, unbuilt Adam: compile settings, no slots) before their `.keras` and `.h5` are saved;
their `.weights.h5` (saved before that) hold the trained weights. Keras writes `save_weights` files with exactly the
structure of the `model.weights.h5` member of a `.keras` archive (checked below).
"""
import gzip
import os
import pathlib
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
from keras import layers  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def mnist(count):
    folder = pathlib.Path(os.environ.get("CNNLITE_DATA_DIR", "/work/shared/datasets")) / "mnist"
    with gzip.open(folder / "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:count]
    with gzip.open(folder / "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:count]
    return x.astype("float32") / 255.0, keras.utils.to_categorical(y, 10)


def mlp():
    return keras.Sequential([keras.Input((784,)), layers.Dense(16, activation="relu"),
                             layers.Dense(10, activation="softmax")], name="mlp")


def cnn8():
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, (3, 3), padding="same", activation="relu"),
                             layers.Flatten(), layers.Dense(10, activation="softmax")], name="cnn8")


def full():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(16, (3, 3), activation="relu"), layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)), layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.25), layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.25),
        layers.Dense(10, activation="softmax")], name="full")


def check_same_structure(weights_path, keras_path, with_optimizer):
    """The .weights.h5 file and the archive's model.weights.h5 hold the same layer datasets with equal values."""
    import io
    import zipfile

    import h5py

    def datasets(f, skip_optimizer):
        found = {}
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return {k: v for k, v in found.items() if not (skip_optimizer and k.startswith("optimizer"))}

    with zipfile.ZipFile(keras_path) as zf, h5py.File(weights_path, "r") as a, \
            h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as b:
        da, db = datasets(a, not with_optimizer), datasets(b, not with_optimizer)
        assert sorted(da) == sorted(db), (sorted(da), sorted(db))
        assert all(np.array_equal(da[k], db[k]) for k in da)


def main():
    keras.utils.set_random_seed(1)
    x, y = mnist(512)
    np.savez(HERE / "train_sample.npz", x=np.round(x[:32] * 255).astype(np.uint8), y=np.argmax(y[:32], 1))
    for name, make, flat, keep_optimizer in (("mlp", mlp, True, True), ("cnn8", cnn8, False, False),
                                             ("full", full, False, False)):
        model = make()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
        inputs = x.reshape(-1, 784) if flat else x[..., None]
        model.fit(inputs, y, batch_size=128, epochs=1, verbose=0)   # 4 Adam steps
        model.save_weights(HERE / f"{name}.weights.h5")
        if not keep_optimizer:
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                          metrics=["accuracy"])
        model.save(HERE / f"{name}.keras")
        model.save(HERE / f"{name}.h5")
        check_same_structure(HERE / f"{name}.weights.h5", HERE / f"{name}.keras", keep_optimizer)
        probe = inputs[500:504]
        np.savez(HERE / f"{name}.predictions.npz", x=probe, y=keras.ops.convert_to_numpy(model(probe)),
                 keras_version=keras.__version__, backend=keras.backend.backend(), python=sys.version.split()[0])
    for path in sorted(HERE.iterdir()):
        print(f"{path.name:28s} {path.stat().st_size:>9d}")


if __name__ == "__main__":
    main()
