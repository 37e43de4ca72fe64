"""The article's network (examples/mnist_cnn.py) trained on several processes: the one change
to the training script is ``fit(..., distribute=cnnx.distribute.DataParallel())``.

    pip install "cnnx[mpi]"
    mpirun -np 2 python examples/mnist_distributed.py [--epochs 3] [--batch-size 128]
    python examples/mnist_distributed.py            # one process: the same weights, bit for bit

(as root, add --allow-run-as-root after mpirun; on several machines see the README's section
"Training on several processes or machines"). Every process runs this whole script; fit
broadcasts rank 0's weights, gives each process its share of every batch of --batch-size
images and sums the gradients, so the weights stay identical everywhere. Rank 0 alone prints
progress, writes the checkpoint and reports the test accuracy of the evaluation all the processes
share; the last line is ``test_accuracy=0.xxxx``.

--checkpoint PATH saves the model (with the optimizer's state) after every epoch and, when PATH
exists, resumes from it, with any number of processes: for example 2 epochs with -np 2, then
the third with one process.
"""

import argparse
import os
import time

import numpy as np

import cnnx
import cnnx.distribute  # imports no MPI yet: DataParallel() does
from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

VALIDATION_SPLIT = 0.1  # the last 10% of the training images, as in examples/mnist_cnn.py


def build_model(learning_rate):
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
    model.compile(optimizer=cnnx.optimizers.Adam(learning_rate), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def threads_per_process(comm):
    """This machine's cores shared among the processes mpirun started on it. Open MPI binds
    each process to one core when there are at most 2 processes (then OpenMP's default is 1
    thread), but not with --bind-to none, more processes or other launchers (then every
    process would start one thread per core, and the machine would run processes x cores
    threads). Counting the processes on this host (MPI's shared-memory split) gives the same
    answer whatever the binding, never more threads than cores."""
    from mpi4py import MPI

    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    per_host = local.Get_size()
    local.Free()
    cores = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):  # a process bound to fewer cores (taskset, a batch system)
        cores = min(cores, len(os.sched_getaffinity(0)) * per_host)
    return max(1, cores // per_host)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch, shared by all processes")
    parser.add_argument(
        "--micro-batches",
        type=int,
        default=4,
        help="pieces of each batch; the weights are the same on 1 to this many processes",
    )
    parser.add_argument("--checkpoint", metavar="PATH", default=None, help="save here each epoch; resume if it exists")
    parser.add_argument("--threads", type=int, default=None, help="per process (default: cores / processes)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam's step size in the first epoch")
    parser.add_argument("--lr-decay", type=float, default=0.25, help="multiply the learning rate by this each epoch")
    parser.add_argument("--limit", type=int, default=0, help="train on only this many images (smoke tests)")
    args = parser.parse_args()

    dp = cnnx.distribute.DataParallel(micro_batches=args.micro_batches, seed=args.seed)
    cnnx.set_num_threads(args.threads or threads_per_process(dp.comm))
    cnnx.utils.set_random_seed(args.seed)

    # Every process reads the whole data set: fit takes each process's rows of every batch.
    (x_train, y_train), (x_test, y_test) = cnnx.datasets.mnist.load_data()
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    x_train = x_train[..., None].astype("float32") / 255
    x_test = x_test[..., None].astype("float32") / 255
    y_train = cnnx.utils.to_categorical(y_train, 10)
    y_test = cnnx.utils.to_categorical(y_test, 10)

    # Only rank 0 reads the checkpoint: fit sends rank 0's weights and optimizer state (its
    # step count included) to the others, so the file need not be on every machine. The epoch
    # to start from must be the same everywhere, hence the broadcast.
    model = build_model(args.learning_rate)
    initial_epoch = 0
    if dp.is_primary and args.checkpoint and os.path.exists(args.checkpoint):
        model = cnnx.models.load_model(args.checkpoint)
        steps_per_epoch = -(-int(len(x_train) * (1.0 - VALIDATION_SPLIT)) // args.batch_size)  # as fit splits
        initial_epoch = int(model.optimizer.iterations) // steps_per_epoch
    initial_epoch = dp.comm.bcast(initial_epoch, root=0)
    if dp.is_primary:
        print(f"{dp}, {cnnx.get_num_threads()} threads per process, kernels: {cnnx._core.get_isa()}")
        if initial_epoch:
            print(f"resuming from {args.checkpoint} after epoch {initial_epoch}")
        else:
            model.summary()

    # The schedule of examples/mnist_cnn.py (a larger first step, a quarter of it each epoch);
    # it depends on the epoch alone, so a resumed run continues it.
    callbacks = [cnnx.callbacks.LearningRateScheduler(lambda epoch, lr: args.learning_rate * args.lr_decay**epoch)]
    if args.checkpoint:
        callbacks.append(cnnx.callbacks.ModelCheckpoint(args.checkpoint))  # fit runs it on rank 0 only

    start = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        initial_epoch=initial_epoch,
        validation_split=VALIDATION_SPLIT,
        verbose=args.verbose,
        callbacks=callbacks,
        distribute=dp,  # the one line that differs from a one-process script
    )
    train_seconds = time.perf_counter() - start

    # Every process evaluates its share of the test set; every one gets the logs of all of it.
    loss, acc = model.evaluate(x_test, y_test, batch_size=256, verbose=0, distribute=dp)
    if dp.is_primary:
        checksum = float(np.sum([np.sum(w, dtype=np.float64) for w in model.get_weights()]))
        epochs_run = max(args.epochs - initial_epoch, 0)
        processes = f"{dp.num_processes} process" + ("es" if dp.num_processes > 1 else "")
        print(f"training time: {train_seconds:.1f} s for {epochs_run} epochs on {processes}")
        print(f"sum of the weights: {checksum!r} (the same for any number of processes)")
        print(f"test loss: {loss:.4f}")
        print(f"test_accuracy={acc:.4f}")


if __name__ == "__main__":
    main()
