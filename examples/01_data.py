"""Step 1 of the MNIST chapter: load the data and look at the first training digits.

    python examples/01_data.py --out out
"""
import time

import numpy as np

from _common import parse_args, save, subset
from cnnlite import plot
from cnnlite.datasets import mnist


def main():
    args = parse_args(__doc__)
    startTime = time.time()
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, y_train, x_test, y_test = subset(args, x_train, y_train, x_test, y_test)
    calculation_time = time.time() - startTime

    print("x_train:", x_train.shape, x_train.dtype, " y_train:", y_train.shape, y_train.dtype)
    print("x_test: ", x_test.shape, x_test.dtype, " y_test: ", y_test.shape, y_test.dtype)
    print("first training labels:", y_train[:10])
    print("digits in the training set:", np.bincount(y_train, minlength=10))
    save(plot.plot_digits(x_train, y_train, n=3), args, "01_digits")
    print("Computation time:{0:.3f} sec".format(calculation_time))


if __name__ == "__main__":
    main()
