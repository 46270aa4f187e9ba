"""Step 6 of the MNIST chapter, the full network: convolutions, max pooling and dropout.

    python examples/06_full_cnn.py --out out      (20 epochs, batch 1000; the chapter reaches about 0.992)
"""
import time

import numpy as np

from _common import parse_args, save, subset
from cnnlite import plot
from cnnlite.datasets import mnist
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential
from cnnlite.optimizers import Adam
from cnnlite.utils import np_utils


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
    model.add(Conv2D(16, (3, 3), input_shape=(28, 28, 1), activation='relu'))
    model.add(Conv2D(32, (3, 3), activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(MaxPooling2D(pool_size=(2, 2)))
    model.add(Dropout(0.25))
    model.add(Flatten())
    model.add(Dense(128, activation='relu'))
    model.add(Dropout(0.25))
    model.add(Dense(num_classes, activation='softmax'))
    model.compile(loss='categorical_crossentropy', optimizer=Adam(), metrics=['accuracy'])

    startTime = time.time()
    history = model.fit(x_train, y_train, batch_size=1000, epochs=args.epochs, verbose=1,
                        validation_data=(x_test, y_test))
    score = model.evaluate(x_test, y_test, verbose=0)
    calculation_time = time.time() - startTime

    save(plot.plot_history(history), args, "06_full_cnn_history")
    save(plot.plot_predictions(x_test, model.predict(x_test, verbose=0), y_test), args, "06_full_cnn_predictions")
    print('Test loss:', score[0])
    print('Test accuracy:', score[1])
    print("Computation time:{0:.3f} sec".format(calculation_time))


if __name__ == "__main__":
    main()
