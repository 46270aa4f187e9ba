# The CNN-8's per-layer profile (one epoch, batch 1000, 2 threads, Adam), dense_algo=gemm then auto, same process.
import sys
import numpy as np
import cnnlite
from cnnlite import config, layers
from cnnlite.datasets import mnist
cnnlite.set_num_threads(2)
(x, y), _ = mnist.load_data()
x = x.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
y = np.eye(10, dtype=np.float32)[y]
for algo in ("gemm", "auto"):
    with config.override(dense_algo=algo):
        m = cnnlite.Sequential([layers.Conv2D(8, (3, 3), padding="same", activation="relu", input_shape=(28, 28, 1)),
                                layers.Flatten(), layers.Dense(10, activation="softmax")])
        m.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        m.fit(x[:10000], y[:10000], batch_size=1000, epochs=1, verbose=0)
        h = m.fit(x, y, batch_size=1000, epochs=1, verbose=0, profile=True)
    print(f"dense_algo={algo}")
    print(h.profile)
