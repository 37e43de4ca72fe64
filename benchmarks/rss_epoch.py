"""One MNIST training epoch (60000 images, batch 64, Adam) of the article's network; prints the
process' peak RSS and the epoch time as one JSON line. Run each framework in a fresh process:

    python benchmarks/rss_epoch.py {cnnx|torch} [--threads N]

Both load MNIST with cnnx.datasets.mnist.load_data() and convert it with the same numpy code, so
the difference in peak RSS is the framework (its import, weights, workspaces, autograd graph).
"""

import argparse
import json
import resource
import time

import numpy as np  # noqa: E402

import cnnx  # noqa: E402  (the data loader for both runs)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def cnnx_epoch(x: np.ndarray, labels: np.ndarray, threads: int):
    """Returns a function that trains one epoch with fit() and returns the mean loss."""
    from bench import cnnx_model

    cnnx.set_num_threads(threads)
    cnnx.utils.set_random_seed(0)
    model = cnnx_model(cnnx.optimizers.Adam())
    y = np.eye(10, dtype=np.float32)[labels]
    return lambda: float(model.fit(x, y, batch_size=64, epochs=1, verbose=0).history["loss"][-1])


def torch_epoch(x: np.ndarray, labels: np.ndarray, threads: int):
    """Returns a function that trains one epoch with the usual PyTorch loop and returns the mean loss."""
    import torch
    from bench import to_torch, torch_model, torch_optimizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_model(torch)
    optimizer = torch_optimizer(torch, "adam", model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = to_torch(torch, x), torch.from_numpy(labels)  # views of the numpy arrays

    def epoch() -> float:
        order, total = torch.randperm(len(x)), 0.0
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            optimizer.zero_grad()
            loss = loss_fn(model(tx[idx].contiguous(memory_format=torch.channels_last)), ty[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        return total / len(x)

    return epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("framework", choices=("cnnx", "torch"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    (x_train, y_train), _ = cnnx.datasets.mnist.load_data()
    x = np.multiply(x_train, np.float32(1 / 255), dtype=np.float32)[..., None]  # one float32 copy, no temporary
    labels = y_train.astype(np.int64)
    data_rss = max_rss_mb()
    epoch = (cnnx_epoch if args.framework == "cnnx" else torch_epoch)(x, labels, args.threads)
    start = time.perf_counter()  # the epoch only: imports and model construction are not timed
    loss = epoch()
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "framework": args.framework,
                "threads": args.threads,
                "loss": round(loss, 4),
                "epoch_s": round(elapsed, 2),
                "data_rss_mb": round(data_rss, 1),
                "max_rss_mb": round(max_rss_mb(), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
