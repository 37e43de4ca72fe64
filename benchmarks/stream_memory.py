"""Streaming an image folder keeps memory bounded: writes N RGB PNGs (default 20,000 at 64x64,
4 classes) into a temporary folder, iterates image_dataset_from_directory over it (and optionally
trains a tiny model on it with fit), and prints the RSS growth against the size of the decoded set.

    python benchmarks/stream_memory.py [--images 20000] [--size 64] [--epochs 2] [--fit] [--keep DIR]

The decoded set is images * size * size * 3 * 4 bytes (938 MiB for the defaults); the dataset holds
only the file list and two batches, so RSS should grow by a few MiB (the target is < 200 MB).
"""

import argparse
import json
import pathlib
import tempfile
import time

import numpy as np
from PIL import Image

import cnnx


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def write_folder(root: pathlib.Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), np.uint8)
    for c in range(4):
        (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = root / f"class_{i % 4}" / f"{i:06d}.png"
        if not path.exists():
            Image.fromarray(np.roll(base, i, axis=1)).save(path, compress_level=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--fit", action="store_true", help="train a tiny CNN with fit() instead of only iterating")
    parser.add_argument("--keep", type=pathlib.Path, help="write the images here and keep them (reused next time)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or pathlib.Path(tmp)
        t = time.perf_counter()
        write_folder(root, args.images, args.size)
        write_s = time.perf_counter() - t

        start_rss = rss_mb()
        t = time.perf_counter()
        ds = cnnx.utils.image_dataset_from_directory(
            root, image_size=(args.size, args.size), batch_size=args.batch_size, seed=0, verbose=False
        )
        index_s = time.perf_counter() - t
        after_index = rss_mb()
        peak = after_index
        t = time.perf_counter()
        if args.fit:
            from cnnx.layers import Conv2D, Dense, GlobalAveragePooling2D, Input, Rescaling

            model = cnnx.Sequential(
                [
                    Input((args.size, args.size, 3)),
                    Rescaling(1 / 255),
                    Conv2D(8, 3, strides=2, activation="relu"),
                    GlobalAveragePooling2D(),
                    Dense(4, activation="softmax"),
                ]
            )
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

            class Peak(cnnx.callbacks.Callback):
                def on_train_batch_end(self, batch, logs=None):
                    nonlocal peak
                    peak = max(peak, rss_mb())

            model.fit(ds, epochs=args.epochs, verbose=0, callbacks=[Peak()])
        else:
            for _ in range(args.epochs):
                for _x, _y in ds:
                    peak = max(peak, rss_mb())
        stream_s = time.perf_counter() - t

    decoded_mb = args.images * args.size * args.size * 3 * 4 / 2**20
    print(
        json.dumps(
            {
                "images": args.images,
                "size": args.size,
                "epochs": args.epochs,
                "fit": args.fit,
                "decoded_set_mb": round(decoded_mb, 1),
                "rss_start_mb": round(start_rss, 1),
                "rss_growth_index_mb": round(after_index - start_rss, 1),
                "rss_growth_peak_mb": round(peak - start_rss, 1),
                "write_s": round(write_s, 1),
                "index_s": round(index_s, 2),
                "images_per_s": round(args.images * args.epochs / stream_s),
            }
        )
    )


if __name__ == "__main__":
    main()
