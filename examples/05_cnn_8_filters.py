"""Step 5 of the MNIST chapter: a small CNN, 8 learned 3x3 filters then one softmax layer.

    python examples/05_cnn_8_filters.py --out out      (20 epochs, batch 1000; the chapter reaches about 0.98)
"""
import time

import numpy as np

from _common import parse_args, save, subset
from cnnlite import _kernels, plot
from cnnlite.datasets import mnist
from cnnlite.layers import Conv2D, Dense, Flatten
from cnnlite.models import Sequential
from cnnlite.optimizers import Adam
from cnnlite.utils import np_utils


def filter_outputs(x_img, w):
    """Each learned filter applied to one image (no bias, no ReLU, as the chapter draws them), 'same' padding."""
    x = np.ascontiguousarray(x_img[None, :, :, None], dtype=np.float32)  # (1, 28, 28, 1)
    y = _kernels.conv2d_forward(x, np.ascontiguousarray(w, dtype=np.float32), None, 1, 1, 1, 1, 1, 1)
    return y[0]  # (28, 28, 8)


def main():
    args = parse_args(__doc__, epochs=20)
    np.random.seed(1)

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, y_train, x_test, y_test = subset(args, x_train, y_train, x_test, y_test)
    x_train = x_train.reshape(len(x_train), 28, 28, 1).astype('float32') / 255
    x_test = x_test.reshape(len(x_test), 28, 28, 1).astype('float32') / 255
    num_classes = 10
    y_train = np_utils.to_categorical(y_train, num_classes)
    y_test = np_utils.to_categorical(y_test, num_classes)

    model = Sequential()
    model.add(Conv2D(8, (3, 3), padding='same', input_shape=(28, 28, 1), activation='relu'))
    model.add(Flatten())
    model.add(Dense(10, activation='softmax'))
    model.compile(loss='categorical_crossentropy', optimizer=Adam(), metrics=['accuracy'])

    startTime = time.time()
    history = model.fit(x_train, y_train, batch_size=1000, epochs=args.epochs, verbose=1,
                        validation_data=(x_test, y_test))
    score = model.evaluate(x_test, y_test, verbose=0)
    calculation_time = time.time() - startTime

    save(plot.plot_history(history), args, "05_cnn_8_filters_history")
    save(plot.plot_predictions(x_test, model.predict(x_test, verbose=0), y_test), args, "05_cnn_8_filters_predictions")
    id_img = 12
    x_img = x_test[id_img, :, :, 0]
    w = model.layers[0].get_weights()[0]  # (3, 3, 1, 8)
    save(plot.plot_conv_filters(w, x_img, filter_outputs(x_img, w)), args, "05_cnn_8_filters_filters")
    print('Test loss:', score[0])
    print('Test accuracy:', score[1])
    print("Computation time:{0:.3f} sec".format(calculation_time))


if __name__ == "__main__":
    main()
