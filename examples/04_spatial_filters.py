"""Step 4 of the MNIST chapter: two hand-written 3x3 edge filters applied to training image 2.

The filtering runs on cnnlite's own convolution kernel (the one Conv2D uses) and is checked against the chapter's
explicit loop over the image.

    python examples/04_spatial_filters.py --out out
"""
import sys
import time

import numpy as np

from _common import parse_args, save, subset
from cnnlite import _kernels, plot
from cnnlite.datasets import mnist

myfil1 = np.array([[1, 1, 1],
                   [1, 1, 1],
                   [-2, -2, -2]], dtype=float)  # horizontal edges: bright above, dark below
myfil2 = np.array([[-2, 1, 1],
                   [-2, 1, 1],
                   [-2, 1, 1]], dtype=float)  # vertical edges: dark on the left, bright on the right


def filter_with_loop(x_img, myfil):
    """The chapter's loop: each 3x3 window dotted with the filter; the one-pixel border stays 0."""
    img_h, img_w = x_img.shape
    out_img = np.zeros_like(x_img)
    for ih in range(img_h - 3 + 1):
        for iw in range(img_w - 3 + 1):
            img_part = x_img[ih:ih + 3, iw:iw + 3]
            out_img[ih + 1, iw + 1] = np.dot(img_part.reshape(-1), myfil.reshape(-1))
    return out_img


def filter_with_kernel(x_img, filters):
    """All filters at once with cnnlite's conv2d kernel (stride 1, valid padding), framed like the loop's output."""
    x = np.ascontiguousarray(x_img[None, :, :, None], dtype=np.float32)  # (n, h, w, cin)
    w = np.ascontiguousarray(np.stack(filters, axis=-1)[:, :, None, :], dtype=np.float32)  # (kh, kw, cin, cout)
    y = _kernels.conv2d_forward(x, w, None, 1, 1, 0, 0, 0, 0)  # (1, h-2, w-2, cout)
    out = np.zeros(x_img.shape + (len(filters),), dtype=np.float32)
    out[1:-1, 1:-1, :] = y[0]
    return [out[:, :, k] for k in range(len(filters))]


def main():
    args = parse_args(__doc__)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, y_train, x_test, y_test = subset(args, x_train, y_train, x_test, y_test)
    x_train = x_train.reshape(len(x_train), 28, 28, 1).astype('float32') / 255

    id_img = 2
    x_img = x_train[id_img, :, :, 0]

    startTime = time.time()
    out_img1, out_img2 = filter_with_kernel(x_img, [myfil1, myfil2])
    calculation_time = time.time() - startTime

    loop1, loop2 = filter_with_loop(x_img, myfil1), filter_with_loop(x_img, myfil2)
    diff = max(np.abs(out_img1 - loop1).max(), np.abs(out_img2 - loop2).max())
    print(f"training image {id_img} (label {y_train[id_img]}): cnnlite conv2d_forward vs the explicit loop, "
          f"max |difference| = {diff:.3g}")
    if not diff <= 1e-5:
        sys.exit(f"error: the convolution kernel disagrees with the explicit loop by {diff}")
    save(plot.plot_edge_filters(x_img, [myfil1, myfil2], [out_img1, out_img2]), args, "04_edge_filters")
    print("Computation time:{0:.3f} sec".format(calculation_time))


if __name__ == "__main__":
    main()
