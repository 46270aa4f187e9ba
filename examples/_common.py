"""What the chapter's example scripts share: the command line, the --quick subset, writing the figures."""
import argparse
import os

QUICK_TRAIN = 1000  # --quick: the first 1000 training and 200 test images, one epoch
QUICK_TEST = 200


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(doc, epochs=None):
    """--out DIR for the figures, and for training scripts --epochs (default ``epochs``) and --quick."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--out", default="out", metavar="DIR", help="folder for the figures (default: out)")
    if epochs is not None:
        parser.add_argument("--epochs", type=_positive_int, default=None,
                            help=f"training epochs (default: {epochs}, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: the first {QUICK_TRAIN} training and {QUICK_TEST} test images"
                             + (", one epoch" if epochs is not None else ""))
    args = parser.parse_args()
    if epochs is not None and args.epochs is None:
        args.epochs = 1 if args.quick else epochs
    return args


def subset(args, x_train, y_train, x_test, y_test):
    """The whole data set, or its first images with --quick."""
    if args.quick:
        return x_train[:QUICK_TRAIN], y_train[:QUICK_TRAIN], x_test[:QUICK_TEST], y_test[:QUICK_TEST]
    return x_train, y_train, x_test, y_test


def save(fig, args, name):
    """Write one figure to DIR/name.png, close it, and say where it went."""
    import matplotlib.pyplot as plt
    from cnnlite.plot import save_figure

    path = save_figure(fig, os.path.join(args.out, name + ".png"))
    plt.close(fig)
    print(f"Figure: {path}")
