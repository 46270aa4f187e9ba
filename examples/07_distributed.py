"""The chapter's full network (step 6), trained data-parallel over MPI: the same script on every process.

    mpiexec -n 2 python examples/07_distributed.py --out out     (needs pip install '.[distributed]')
    python examples/07_distributed.py --out out                  (one process: the same weights, bit for bit)

Each batch of 1000 is split across the processes and their gradients are combined in a fixed order, so any number
of processes up to cnnlite.config's gradient_shards (12) ends with the weights one process ends with: the last line
prints their SHA-256, which every rank checked it shares. Only rank 0 prints and writes the figures.
"""
import hashlib
import time

import numpy as np

import cnnlite.distributed as dist
from _common import parse_args, save, subset
from cnnlite import plot
from cnnlite.datasets import mnist
from cnnlite.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnlite.models import Sequential
from cnnlite.optimizers import Adam
from cnnlite.utils import np_utils


def main():
    args = parse_args(__doc__, epochs=20)
    dist.init()  # one process without mpiexec: nothing changes
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

    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    digests = dist.allgather(digest)
    predictions = model.predict(x_test, verbose=0)  # every rank takes part; each gets all the predictions
    if dist.is_primary():
        save(plot.plot_history(history), args, "07_distributed_history")
        save(plot.plot_predictions(x_test, predictions, y_test), args, "07_distributed_predictions")
        print('Test loss:', score[0])
        print('Test accuracy:', score[1])
        print("Computation time:{0:.3f} sec".format(calculation_time))
        agree = "all agree" if len(set(digests)) == 1 else f"DIFFER: {digests}"
        print(f"Processes: {dist.size()}; weights SHA-256 on every rank ({agree}): {digest}")
    if len(set(digests)) != 1:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
