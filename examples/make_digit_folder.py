"""Writes MNIST test digits as PNG files into DIR/<digit>/, one folder per class: a small image
set in the layout `cnnx.utils.image_dataset_from_directory` (and examples/image_folder_cnn.py)
reads, made offline from the local MNIST files (cnnx.datasets.mnist.load_data). Needs Pillow.

    python examples/make_digit_folder.py digits --count 1000
    python examples/image_folder_cnn.py digits --size 28 28 --color-mode grayscale
"""

import argparse
import os

import numpy as np

import cnnx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="output directory; DIR/0 ... DIR/9 are created")
    parser.add_argument("--count", type=int, default=1000, help="number of digits to write (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="which test digits are picked")
    args = parser.parse_args()
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit("make_digit_folder.py needs Pillow: pip install pillow") from None

    _, (x_test, y_test) = cnnx.datasets.mnist.load_data()
    count = max(0, min(args.count, len(x_test)))
    picked = np.random.default_rng(args.seed).permutation(len(x_test))[:count]
    for digit in range(10):
        os.makedirs(os.path.join(args.dir, str(digit)), exist_ok=True)
    for i in picked:
        Image.fromarray(x_test[i]).save(os.path.join(args.dir, str(y_test[i]), f"{i:05d}.png"))
    per_class = np.bincount(y_test[picked], minlength=10)
    print(f"wrote {count} digits into {args.dir}/<digit>/ (per class: {per_class.tolist()})")


if __name__ == "__main__":
    main()
