"""Datasets for the MNIST chapter: `mnist.load_data()` and `fashion_mnist.load_data()`, as in Keras."""
from cnnlite.datasets import fashion_mnist, mnist
from cnnlite.datasets._loader import DatasetUnavailableError, cache_dir

__all__ = ["mnist", "fashion_mnist", "DatasetUnavailableError", "cache_dir"]
