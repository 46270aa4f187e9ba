"""Step 2 of the MNIST chapter: a two-layer network, 16 sigmoid hidden units, trained with Adam.

    python examples/02_mlp_sigmoid.py --out out        (10 epochs, batch 1000; the chapter reaches about 0.89)
"""
import time

import numpy as np

from _common import parse_args, save, subset
from cnnlite import plot
from cnnlite.datasets import mnist
from cnnlite.layers import Dense
from cnnlite.models import Sequential
from cnnlite.optimizers import Adam
from cnnlite.utils import np_utils


def main():
    args = parse_args(__doc__, epochs=10)
    np.random.seed(1)

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    x_train, y_train, x_test, y_test = subset(args, x_train, y_train, x_test, y_test)
    x_train = x_train.reshape(len(x_train), 784).astype('float32') / 255
    x_test = x_test.reshape(len(x_test), 784).astype('float32') / 255
    num_classes = 10
    y_train = np_utils.to_categorical(y_train, num_classes)
    y_test = np_utils.to_categorical(y_test, num_classes)

    model = Sequential()
    model.add(Dense(16, input_dim=784, activation='sigmoid'))
    model.add(Dense(10, activation='softmax'))
    model.compile(loss='categorical_crossentropy', optimizer=Adam(), metrics=['accuracy'])

    startTime = time.time()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=1000, verbose=1,
                        validation_data=(x_test, y_test))
    score = model.evaluate(x_test, y_test, verbose=0)
    calculation_time = time.time() - startTime

    save(plot.plot_history(history), args, "02_mlp_sigmoid_history")
    save(plot.plot_predictions(x_test, model.predict(x_test, verbose=0), y_test), args, "02_mlp_sigmoid_predictions")
    print('Test loss:', score[0])
    print('Test accuracy:', score[1])
    print("Computation time:{0:.3f} sec".format(calculation_time))


if __name__ == "__main__":
    main()
