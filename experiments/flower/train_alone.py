"""Training alone: the Flower side's training loop (task.train_locally) in one
process with one thread, on what tests/benchmarks/training_bench trains
(Cohort's "cnn", the first 6400 Fashion-MNIST training images, batch 32,
SGD lr 0.01 momentum 0.9, one epoch = 200 steps), so its samples per second
compare with `training_bench --benchmark_filter=BM_TrainLocally/threads:1`.

    python experiments/flower/train_alone.py [--epochs 3]
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "flower_app"))
from cohort_flower import task  # noqa: E402

SAMPLES, BATCH, LR, MOMENTUM = 6400, 32, 0.01, 0.9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs, after one warm-up epoch")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    torch.set_num_threads(1)
    images, labels = task.load_split(args.data_dir, "train")
    images, labels = images[:SAMPLES].contiguous(), labels[:SAMPLES].contiguous()
    model = task.make_model(7)
    rates = []
    for epoch in range(args.epochs + 1):
        seen, _, seconds = task.train_locally(model, images, labels, seed=epoch, local_epochs=1,
                                              batch_size=BATCH, lr=LR, momentum=MOMENTUM)
        if epoch > 0:  # the first epoch warms PyTorch up
            rates.append(seen / seconds)
    rates.sort()
    print(f"python training loop, 1 thread: median {rates[len(rates) // 2]:.0f} samples/s "
          f"(epochs: {', '.join(f'{r:.0f}' for r in rates)})")


if __name__ == "__main__":
    main()
