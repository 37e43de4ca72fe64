"""The article's network, end to end: 28x28x1 pixels scaled by /255, three 3x3 convolution banks
of 32, 64 and 128 filters with ReLU, each followed by 2x2 max-pooling (28 -> 14 -> 7 -> 3), a
dense layer of 100, a softmax over 10 digits, one-hot labels, Adam.

    python examples/mnist_cnn.py [--epochs 3] [--batch-size 64] [--threads N] [--seed 1] [--save PATH]

--save writes the trained model (a .cnnx file) for native programs: examples/native/classify
runs it on the MNIST test images (with --divide 255, since this script scales pixels by 1/255
outside the model).
"""

import argparse
import time

import cnnx
from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D


class TestAccuracyClock(cnnx.callbacks.Callback):
    """After each epoch, measures test accuracy (outside the training clock) and remembers how
    much training time it took to first reach `target`."""

    def __init__(self, x, y, target=0.99):
        super().__init__()
        self.x, self.y, self.target = x, y, target
        self.train_seconds = 0.0
        self.reached = None

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self.start
        _, acc = self.model.evaluate(self.x, self.y, batch_size=256, verbose=0)
        print(f"  epoch {epoch + 1}: test accuracy {acc:.2%} after {self.train_seconds:.1f} s of training")
        if self.reached is None and acc >= self.target:
            self.reached = (epoch + 1, self.train_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--save", metavar="PATH", default=None, help="write the trained model to PATH (.cnnx)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam's step size in the first epoch")
    parser.add_argument(
        "--lr-decay",
        type=float,
        default=0.25,
        help="multiply Adam's learning rate by this after each epoch (1 = constant)",
    )
    args = parser.parse_args()

    if args.threads:
        cnnx.set_num_threads(args.threads)
    cnnx.utils.set_random_seed(args.seed)

    (x_train, y_train), (x_test, y_test) = cnnx.datasets.mnist.load_data()
    x_train = x_train[..., None].astype("float32") / 255
    x_test = x_test[..., None].astype("float32") / 255
    y_train = cnnx.utils.to_categorical(y_train, 10)
    y_test = cnnx.utils.to_categorical(y_test, 10)

    model = Sequential(
        [
            Input((28, 28, 1)),
            Conv2D(32, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(64, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(128, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(100, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.summary()

    start = time.perf_counter()
    # A larger first step, then a quarter of it each epoch, lets the later epochs settle into the
    # minimum instead of bouncing around it. Measured here (seeds 1-3): a constant 1e-3 gives
    # 98.7-99.0% after 3 epochs; this schedule gives 99.1-99.3% after 2 (the exact figure moves
    # with the last bits of the kernels' sums, e.g. 99.07% vs 99.20% for seed 1 across versions).
    schedule = cnnx.callbacks.LearningRateScheduler(lambda epoch, lr: args.learning_rate * args.lr_decay**epoch)
    clock = TestAccuracyClock(x_test, y_test)
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_split=0.1,
        verbose=args.verbose,
        callbacks=[schedule, clock],
    )
    train_seconds = time.perf_counter() - start

    if args.save:
        model.class_names = [str(digit) for digit in range(10)]  # saved with it, printed by classify
        model.save(args.save)
        print(f"saved the model to {args.save}")

    loss, acc = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    probs = model.predict(x_test[:5])
    print(f"predict(x_test[:5]) -> {probs.shape}, row sums {probs.sum(axis=1).round(4).tolist()}")
    print(f"threads: {cnnx.get_num_threads()}, kernels: {cnnx._core.get_isa()}")
    print(
        f"training time: {train_seconds:.1f} s for {args.epochs} epochs "
        f"({train_seconds / max(args.epochs, 1):.1f} s per epoch, including validation)"
    )
    print(f"test loss: {loss:.4f}")
    print(f"test accuracy: {acc * 100:.2f}%")
    if clock.reached:
        epoch, seconds = clock.reached
        print(f"reached {clock.target:.0%} test accuracy after epoch {epoch}, {seconds:.1f} s of training")
    else:
        print(f"did not reach {clock.target:.0%} test accuracy")


if __name__ == "__main__":
    main()
