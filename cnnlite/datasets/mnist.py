"""MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 uint8, labels 0-9."""
from cnnlite.datasets._loader import Dataset, load

# Where a download comes from, tried in order. A URL ending in .npz is Keras's archive; any other URL is a folder
# holding the four IDX .gz files. $CNNLITE_MNIST_MIRRORS (URLs separated by spaces or commas) replaces this list.
MIRRORS = [
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

# Checksums of the published files (Keras's mnist.npz; the IDX .gz files as torchvision verifies them).
CHECKSUMS = {
    "mnist.npz": ("sha256", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
    "train-images-idx3-ubyte.gz": ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": ("md5", "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": ("md5", "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": ("md5", "ec29112dd5afa0611ce80d1b7f02629c"),
}


def _dataset():
    # Built per call, so that rebinding MIRRORS or editing CHECKSUMS takes effect.
    return Dataset(title="MNIST", folder="mnist", npz_name="mnist.npz", checksums=CHECKSUMS, mirrors=MIRRORS,
                   mirrors_env="CNNLITE_MNIST_MIRRORS")


def load_data(path=None):
    """Load MNIST as `(x_train, y_train), (x_test, y_test)`, exactly the arrays Keras returns.

    x_train: uint8 (60000, 28, 28), y_train: uint8 (60000,), x_test: uint8 (10000, 28, 28), y_test: uint8 (10000,);
    pixels 0-255, labels 0-9.

    Where the data comes from, first match wins:
      1. `path`, if given: a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
         t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each gzip-compressed or not), or a Keras-style
         mnist.npz (the file itself or a folder containing it);
      2. the folder $CNNLITE_DATA_DIR/mnist;
      3. the cache $CNNLITE_HOME/datasets (default ~/.cnnlite/datasets), holding only checksum-verified downloads;
      4. Keras's cache $KERAS_HOME/datasets (default ~/.keras/datasets): its mnist.npz, used only when it matches
         CHECKSUMS (a file that does not is ignored with a RuntimeWarning and left alone);
      5. a download from MIRRORS into cnnlite's cache, each file verified against CHECKSUMS before it is kept.

    Raises ValueError naming the file when a file is truncated, corrupt or has the wrong shape, and
    DatasetUnavailableError (an OSError) listing every place tried when nothing is found and nothing downloads.
    Unlike Keras, whose `path` names a file inside its cache, `path` here is a local file or folder.
    """
    return load(_dataset(), path)
