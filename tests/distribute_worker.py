"""One process of the MPI tests in test_distribute.py, launched by mpirun (never collected by
pytest). Trains a small network with BatchNormalization and Dropout on fixed random data with
fit(distribute=DataParallel(...)) and writes, per rank, the SHA-256 of the weights after every
step to <out>/rank<r>.json. Modes make one process fail at step 5 (kill, raise, hang), train
from a dataset instead of arrays, or save / resume checkpoints."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import time

import numpy as np

import cnnx
from cnnx import layers
from cnnx.distribute import DataParallel


def weights_digest(model) -> str:
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def make_model(seed: int = 7, channels: int = 2):
    cnnx.utils.set_random_seed(seed)
    model = cnnx.Sequential(
        [
            layers.Input((10, 10, channels)),
            layers.Conv2D(6, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.25),
            layers.Dense(5, activation="softmax"),
        ]
    )
    # A metric computed in Python too: the processes gather the outputs for it (allgather).
    metrics = ["accuracy", cnnx.metrics.SparseCategoricalCrossentropy()]
    model.compile(optimizer=cnnx.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=metrics)
    return model


def make_data(n: int = 223):  # 200 training samples after validation_split=0.1: 25 steps of 8
    rng = np.random.default_rng(3)
    x = rng.random((n, 10, 10, 2), dtype=np.float32)
    y = (x[:, :5, :5, 0].mean(axis=(1, 2)) * 12).astype(np.int64) % 5
    return x, y


class Record(cnnx.callbacks.Callback):
    def __init__(self, rank: int, mode: str):
        super().__init__()
        self.rank, self.mode, self.digests, self.steps = rank, mode, [], 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.digests.append(weights_digest(self.model))
        if self.steps == 5 and self.rank == 1:
            if self.mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.mode == "raise":
                raise ValueError("deliberate failure on process 1")
            if self.mode == "hang":
                time.sleep(600)


class Batches(cnnx.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", default="train")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--initial-epoch", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--micro-batches", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--load", default=None)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--images", default=None, help="an image folder: train from it (mode images)")
    ap.add_argument("--image-seed", type=int, default=5)
    ap.add_argument("--seed-per-rank", action="store_true", help="a different split on each process (refused)")
    args = ap.parse_args()
    cnnx.set_num_threads(1)
    dp = DataParallel(micro_batches=args.micro_batches, timeout=args.timeout, seed=11)
    x, y = make_data()
    model = cnnx.models.load_model(args.load) if args.load else make_model()
    record = Record(dp.rank, args.mode)
    callbacks = [record]
    if args.checkpoint:
        callbacks.append(cnnx.callbacks.ModelCheckpoint(args.checkpoint))
    if args.mode == "images":
        train, val = cnnx.utils.image_dataset_from_directory(
            args.images,
            image_size=(10, 10),
            batch_size=4,
            seed=args.image_seed + (dp.rank if args.seed_per_rank else 0),
            validation_split=0.25,
            subset="both",
        )
        model = make_model(channels=3)
        history = model.fit(
            train, validation_data=val, epochs=args.epochs, verbose=0, callbacks=callbacks, distribute=dp
        )
    elif args.mode == "dataset":  # shuffled without a seed: fit gives every process rank 0's
        if args.seed_per_rank:
            np.random.seed(100 + dp.rank)
        data = cnnx.data.Dataset.from_tensor_slices((x, y)).shuffle(64).batch(args.batch_size)
        history = model.fit(data, epochs=args.epochs, verbose=0, callbacks=callbacks, distribute=dp)
    elif args.mode == "pydataset":  # each process fetches only its batches
        history = model.fit(
            Batches(x, y, args.batch_size), epochs=args.epochs, verbose=0, callbacks=callbacks, distribute=dp
        )
    elif args.mode == "generator":  # with --seed-per-rank, another order on each process: refused
        order = np.random.default_rng(dp.rank if args.seed_per_rank else 0).permutation(len(x))

        def batches():
            for start in range(0, len(x), args.batch_size):
                rows = order[start : start + args.batch_size]
                yield x[rows], y[rows]

        history = model.fit(batches(), epochs=1, verbose=0, callbacks=callbacks, distribute=dp)
    else:
        history = model.fit(
            x,
            y,
            batch_size=args.batch_size,
            epochs=args.epochs,
            initial_epoch=args.initial_epoch,
            validation_split=0.1,
            verbose=0,
            callbacks=callbacks,
            distribute=dp,
        )
    evaluation = predictions = None
    if args.mode == "train":  # every process evaluates / predicts its share; all get all of it
        evaluation = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True, distribute=dp)
        predictions = model.predict(x[:61], batch_size=16, verbose=0, distribute=dp).tolist()
    result = {
        "evaluation": evaluation,
        "predictions": predictions,
        "rank": dp.rank,
        "processes": dp.num_processes,
        "digests": record.digests,
        "final": weights_digest(model),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    with open(os.path.join(args.out, f"rank{dp.rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
