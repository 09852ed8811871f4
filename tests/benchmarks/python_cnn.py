"""The built-in "cnn" in PyTorch, for training_bench's comparisons
(docs/PERFORMANCE.md, section 1):

    python python_cnn.py export runs/bench/cnn.pt   # the archive BM_TorchScriptPaired trains
    python python_cnn.py train --threads 1 --epochs 3  # the plain PyTorch loop, samples/s as JSON

Same architecture as core/src/builtin_models.cpp (conv 1->20 5x5, pool,
conv 20->50 5x5, pool, fc 800->500->10), same data (the first 6400
Fashion-MNIST training images, scaled and normalised as Cohort does), batch
size 32, SGD with lr 0.01 and momentum 0.9, one warm-up of 20 steps, one
epoch = 200 steps. It measures; it asserts nothing.
"""
import argparse
import gzip
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

DATA = Path("/usr/share/datasets/fashion-mnist")
SAMPLES, BATCH, LR, MOMENTUM, WARMUP = 6400, 32, 0.01, 0.9, 20
MEAN, STD = 0.2860, 0.3530


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def load_shard():
    with gzip.open(DATA / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:SAMPLES]
    with gzip.open(DATA / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:SAMPLES]
    x = (torch.from_numpy(images.astype(np.float32)) / 255.0 - MEAN) / STD
    return x, torch.from_numpy(labels.astype(np.int64))


def run(model, optimizer, x, y, steps=None):
    order = torch.randperm(len(y))
    seen = 0
    for step, begin in enumerate(range(0, len(y), BATCH)):
        if steps is not None and step == steps:
            break
        index = order[begin:begin + BATCH]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x[index]), y[index])
        loss.backward()
        optimizer.step()
        seen += len(index)
    return seen


def train(threads: int, epochs: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(7)
    x, y = load_shard()
    model = Cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    run(model, optimizer, x, y, WARMUP)
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        seen = run(model, optimizer, x, y)
        rates.append(seen / (time.perf_counter() - start))
    print(json.dumps({"threads": threads, "samples_per_s": rates, "torch": torch.__version__}))


def export(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(Cnn()).save(str(path))
    print(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export")
    exp.add_argument("path", type=Path)
    tr = sub.add_parser("train")
    tr.add_argument("--threads", type=int, default=1)
    tr.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if args.command == "export":
        export(args.path)
    else:
        train(args.threads, args.epochs)


if __name__ == "__main__":
    main()
