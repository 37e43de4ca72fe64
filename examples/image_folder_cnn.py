"""Trains a small CNN on your own images, one sub-folder per class (DIR/cats/*.jpg, DIR/dogs/*.jpg,
...), then shows what it learned: a classification report on the held-out 20%, and plots of the
training history, the confusion matrix, the misclassified images, the first convolution's
filters, the feature maps of one image and how the second convolution combines its input maps.

    python examples/image_folder_cnn.py DIR [--size H W] [--epochs N] [--batch-size B] [--out OUTDIR]

No images at hand? examples/make_digit_folder.py writes MNIST digits in that layout:

    python examples/make_digit_folder.py digits --count 2000
    python examples/image_folder_cnn.py digits --size 28 28 --color-mode grayscale --out digits-run

Needs Pillow (to read the images) and matplotlib (for the plots): pip install pillow matplotlib.
"""

import argparse
import os
import time

import numpy as np

import cnnx
import cnnx.visualize as viz
from cnnx import Sequential
from cnnx import layers as L


def augmentation(flip: bool) -> list:
    """Random flips / rotations / zooms / shifts while training (they pass images through
    unchanged at inference). A horizontal flip only with --flip: right for photos of things,
    wrong for digits and letters."""
    out = [L.RandomFlip("horizontal")] if flip else []
    return out + [L.RandomRotation(0.05), L.RandomZoom(0.1), L.RandomTranslation(0.1, 0.1)]


def build_model(height: int, width: int, channels: int, classes: int, flip: bool) -> Sequential:
    """Three (four for large images) 3x3 conv + 2x2 max-pool blocks doubling the filters from 32,
    then a dense classifier on small maps or global average pooling on large ones."""
    blocks = 4 if min(height, width) >= 96 else 3
    model = Sequential([L.Input((height, width, channels)), *augmentation(flip), L.Rescaling(1 / 255)])
    h, w = height, width
    for b in range(blocks):
        model.add(L.Conv2D(32 * 2**b, 3, padding="same", activation="relu"))
        if min(h, w) >= 2:
            model.add(L.MaxPooling2D(2))
            h, w = h // 2, w // 2
    if h * w <= 16:
        model.add(L.Flatten())
        model.add(L.Dropout(0.3))
        model.add(L.Dense(128, activation="relu"))
    else:
        model.add(L.GlobalAveragePooling2D())
        model.add(L.Dropout(0.3))
    model.add(L.Dense(classes, activation="softmax"))
    return model


def as_arrays(dataset) -> tuple:
    """All (x, y) batches of a dataset, joined into two arrays."""
    xs, ys = zip(*[(np.asarray(b[0]), np.asarray(b[1])) for b in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def classification_report(matrix: np.ndarray, class_names: list) -> str:
    """Per-class precision, recall, F1 and support from a confusion matrix (rows = true class),
    with the macro and support-weighted averages, as sklearn.metrics.classification_report."""
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    pr = precision + recall
    f1 = np.divide(2 * precision * recall, pr, out=np.zeros_like(tp), where=pr > 0)
    width = max(12, *(len(n) for n in class_names))
    lines = [f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}", ""]
    for i, name in enumerate(class_names):
        lines.append(f"{name:>{width}} {precision[i]:9.3f} {recall[i]:9.3f} {f1[i]:9.3f} {support[i]:9d}")
    total = int(support.sum())
    lines += ["", f"{'accuracy':>{width}} {'':9} {'':9} {tp.sum() / max(total, 1):9.3f} {total:9d}"]
    weights = support / max(total, 1)
    lines.append(f"{'macro avg':>{width}} {precision.mean():9.3f} {recall.mean():9.3f} {f1.mean():9.3f} {total:9d}")
    lines.append(
        f"{'weighted avg':>{width}} {precision @ weights:9.3f} {recall @ weights:9.3f} {f1 @ weights:9.3f} {total:9d}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="one sub-folder of images per class")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(64, 64),
        metavar=("H", "W"),
        help="images are resized to H x W (default 64 64)",
    )
    parser.add_argument("--color-mode", default="rgb", choices=["rgb", "grayscale", "rgba"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--flip", action="store_true", help="also flip images horizontally while training")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="image_folder_run", help="output directory (default image_folder_run)")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()

    cnnx.utils.set_random_seed(args.seed)
    height, width = args.size
    train_ds, val_ds = cnnx.utils.image_dataset_from_directory(
        args.dir,
        labels="inferred",
        label_mode="int",
        color_mode=args.color_mode,
        batch_size=args.batch_size,
        image_size=(height, width),
        shuffle=True,
        seed=args.seed,
        validation_split=0.2,
        subset="both",
    )
    class_names = list(train_ds.class_names)
    channels = {"rgb": 3, "grayscale": 1, "rgba": 4}[args.color_mode]

    model = build_model(height, width, channels, len(class_names), args.flip)
    model.compile(
        optimizer=cnnx.optimizers.Adam(args.learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.summary()
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, verbose=args.verbose)
    print(f"training: {time.perf_counter() - start:.1f} s for {args.epochs} epochs")

    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, "model.cnnx"))

    x_val, y_val = as_arrays(val_ds)  # pixels 0..255, as the model takes them
    _, matrix = viz.confusion_matrix(
        model, x_val, y_val, class_names=class_names, path=os.path.join(args.out, "confusion_matrix.png")
    )
    print(f"\nvalidation set ({len(x_val)} images):\n")
    print(classification_report(matrix, class_names))

    out = lambda name: os.path.join(args.out, name)  # noqa: E731
    viz.plot_history(history, path=out("history.png"))
    viz.misclassified(model, x_val, y_val, class_names=class_names, path=out("misclassified.png"), max_images=25)
    convs = [layer for layer in model.layers if isinstance(layer, L.Conv2D)]
    viz.filters(model, convs[0], path=out("filters.png"))
    viz.feature_maps(model, x_val[0], convs[0], path=out("feature_maps.png"))
    # The second convolution's most active output map for that image, taken apart by input map.
    _, maps = viz.feature_maps(model, x_val[0], convs[1])
    strongest = int(maps.mean(axis=(0, 1)).argmax())
    viz.channel_contributions(model, x_val[0], convs[1], strongest, path=out("contributions.png"))
    print(
        f"\nsaved model.cnnx and history, confusion_matrix, misclassified, filters, feature_maps and "
        f"contributions PNGs in {args.out}/"
    )


if __name__ == "__main__":
    main()
