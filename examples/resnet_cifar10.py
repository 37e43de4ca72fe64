"""A small ResNet (He et al. 2016) on real CIFAR-10 photos, built with the functional API.

    python examples/resnet_cifar10.py [--data ../shared/data/cifar10/cifar10-jpg-40k.tar]
                                      [--blocks 1] [--epochs 10] [--batch-size 64]

Residual blocks of two 3x3 convolutions with batch normalisation, added to an identity shortcut
or, where the block halves the image or widens the channels, to a 1x1 projection. Three stages
of 16, 32 and 64 filters (--blocks blocks each: 1 gives ResNet-8, 3 the paper's ResNet-20), global
average pooling, softmax. Augmentation (random flips and shifts) runs inside the model while
training; the learning rate follows a cosine decay.

The data: the JPEG class folders of ../shared/data/cifar10/ (40,000 photos, 4,000 per class
numbered 1000-4999), read in place from the tar. Numbers 1000-3999 train (10% of them held out
for validation), 4000-4999 are the test set, never seen in training. Needs Pillow.
Prints the time per epoch, the planned activation memory beside the measured peak RSS, and
ends with `test_accuracy=0.xxxx`.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import tarfile
import time

import numpy as np

import cnnx
from cnnx import layers as L

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TAR = os.path.join(HERE, "..", "..", "shared", "data", "cifar10", "cifar10-jpg-40k.tar")


def load_cifar10_tar(path: str) -> tuple:
    """(x_train, y_train, x_test, y_test, class_names): uint8 images (n, 32, 32, 3) and int labels,
    split by file number (1000-3999 train, 4000-4999 test)."""
    from PIL import Image

    images: dict[str, list] = {"train": [], "test": []}
    labels: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")]
        class_names = sorted({m.name.split("/")[-2] for m in members})
        for m in sorted(members, key=lambda m: m.name):
            number = int(os.path.splitext(os.path.basename(m.name))[0])
            part = "train" if number < 4000 else "test"
            with Image.open(io.BytesIO(tar.extractfile(m).read())) as img:
                images[part].append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            labels[part].append(class_names.index(m.name.split("/")[-2]))
    return (
        np.stack(images["train"]),
        np.array(labels["train"]),
        np.stack(images["test"]),
        np.array(labels["test"]),
        class_names,
    )


def residual_block(x, filters: int, strides: int):
    """conv-BN-ReLU, conv-BN, + shortcut (identity, or a 1x1 projection when the shape changes), ReLU."""
    y = L.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    y = L.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = L.BatchNormalization()(y)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = L.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = L.BatchNormalization()(shortcut)
    return L.ReLU()(L.Add()([y, shortcut]))


def build_resnet(blocks: int, classes: int = 10) -> cnnx.Model:
    inputs = cnnx.Input((32, 32, 3))
    x = L.RandomFlip("horizontal")(inputs)
    x = L.RandomTranslation(0.1, 0.1)(x)
    x = L.Rescaling(1 / 255)(x)
    x = L.Conv2D(16, 3, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(blocks):
            x = residual_block(x, filters, strides=2 if stage > 0 and block == 0 else 1)
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(classes, activation="softmax")(x)
    return cnnx.Model(inputs, outputs, name=f"resnet{6 * blocks + 2}")


def current_rss_mib() -> float:
    """Resident memory now (Linux /proc; the peak so far elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


class EpochTimer(cnnx.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(
            f"epoch {epoch + 1}: {time.perf_counter() - self.start:.1f} s, loss {logs.get('loss', float('nan')):.4f}, "
            f"accuracy {logs.get('accuracy', float('nan')):.4f}, val_accuracy {logs.get('val_accuracy', float('nan')):.4f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_TAR, help="the cifar10-jpg-40k.tar")
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks per stage (1: ResNet-8, 3: ResNet-20)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--limit", type=int, default=0, help="use only this many training images (smoke tests)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    cnnx.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    x_train, y_train, x_test, y_test, class_names = load_cifar10_tar(args.data)
    print(f"read {len(x_train)} training and {len(x_test)} test photos in {time.perf_counter() - start:.1f} s")
    order = np.random.default_rng(args.seed).permutation(len(x_train))
    if args.limit:
        order = order[: args.limit]
    x_train, y_train = x_train[order].astype(np.float32), y_train[order]
    x_test = x_test.astype(np.float32)
    split = len(x_train) // 10
    x_val, y_val, x_fit, y_fit = x_train[:split], y_train[:split], x_train[split:], y_train[split:]

    model = build_resnet(args.blocks)
    steps = args.epochs * -(-len(x_fit) // args.batch_size)
    schedule = cnnx.optimizers.schedules.CosineDecay(args.learning_rate, steps, alpha=0.01)
    model.compile(
        optimizer=cnnx.optimizers.Adam(learning_rate=schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.summary()
    rss_before_fit = current_rss_mib()
    model.fit(
        x_fit,
        y_fit,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        callbacks=[EpochTimer()],
        verbose=0,
    )
    memory = model._core.memory_plan(args.batch_size)
    planned = (memory["training_activation_floats"] + memory["training_gradient_floats"]) * 4 / 2**20
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(
        f"planned activations + gradients at batch {args.batch_size}: {planned:.1f} MiB "
        f"(inference: {memory['inference_activation_floats'] * 4 / 2**20:.1f} MiB); RSS before fit "
        f"(the photos as arrays): {rss_before_fit:.0f} MiB, peak RSS: {peak_rss:.0f} MiB, so fit added at most "
        f"{peak_rss - rss_before_fit:.0f} MiB (activations, gradients, workspaces, weights, optimizer, batches)"
    )
    _, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    print(f"test_accuracy={accuracy:.4f}")


if __name__ == "__main__":
    main()
