"""What the dataset tests share: the shared MNIST files, where they are, and their canonical checksums."""
import os
import pathlib

IDX_NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
CANONICAL_SHA256 = {  # of the uncompressed IDX files, from shared/datasets/README.md
    "x_train": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "y_train": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "x_test": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "y_test": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def _shared_mnist_dir():
    env = os.environ.get("CNNLITE_DATA_DIR")
    candidates = [pathlib.Path(env) / "mnist"] if env else []
    here = pathlib.Path(__file__).resolve()
    candidates += [parent / "shared" / "datasets" / "mnist" for parent in here.parents]
    for candidate in candidates:
        if all((candidate / name).is_file() for name in IDX_NAMES):
            return candidate
    return None


SHARED_MNIST = _shared_mnist_dir()
