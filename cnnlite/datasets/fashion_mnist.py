"""Fashion-MNIST (Zalando): 60,000 training and 10,000 test images of clothing, 28x28 uint8, labels 0-9.

Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot.
"""
from cnnlite.datasets._loader import Dataset, load

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# Folders holding the four IDX .gz files, tried in order (Keras's bucket, then Zalando's own).
# $CNNLITE_FASHION_MNIST_MIRRORS (URLs separated by spaces or commas) replaces this list.
MIRRORS = [
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]

# SHA-256 of the published .gz files, as Keras verifies them (both mirrors serve the same bytes).
CHECKSUMS = {
    "train-images-idx3-ubyte.gz": ("sha256", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    "train-labels-idx1-ubyte.gz": ("sha256", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    "t10k-images-idx3-ubyte.gz": ("sha256", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    "t10k-labels-idx1-ubyte.gz": ("sha256", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
}


def _dataset():
    # Built per call, so that rebinding MIRRORS or editing CHECKSUMS takes effect.
    return Dataset(title="Fashion-MNIST", folder="fashion-mnist", npz_name="fashion-mnist.npz", checksums=CHECKSUMS, mirrors=MIRRORS,
                   mirrors_env="CNNLITE_FASHION_MNIST_MIRRORS")


def load_data(path=None):
    """Load Fashion-MNIST as `(x_train, y_train), (x_test, y_test)`, exactly the arrays Keras returns.

    Same shapes, dtypes and search order as `cnnlite.datasets.mnist.load_data`, with the folder name
    `fashion-mnist`: `path` (a folder with the four IDX files or a fashion-mnist.npz), then
    $CNNLITE_DATA_DIR/fashion-mnist (CNNLITE_DATA_DIR=/usr/share/datasets finds Debian's dataset-fashion-mnist),
    then the cache $CNNLITE_HOME/datasets/fashion-mnist, then Keras's cache $KERAS_HOME/datasets/fashion-mnist
    (default ~/.keras/datasets/fashion-mnist; only files matching CHECKSUMS), then a checksum-verified download
    from MIRRORS.
    """
    return load(_dataset(), path)
