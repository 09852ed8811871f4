"""The Cohort demo's task, replicated in PyTorch for Flower.

Everything that decides the training trajectory follows Cohort's C++ code so
that both systems train the same model on the same shards in the same batch
order:
- the CNN and its seeded initialisation: core/src/models.cpp;
- the pixel normalisation: core/src/models.cpp (to_tensors);
- the IID partition: core/src/partition.cpp (partition_iid) with the
  xoshiro256** generator of core/src/random.cpp;
- the per-task seed and the batch order: coordinator/src/coordinator.cpp
  (announce) and core/src/training.cpp (BatchSchedule, planned_steps).
"""
import gzip
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530
MASK64 = (1 << 64) - 1


def _splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK64


class Rng:
    """cohort::Rng: xoshiro256** seeded through SplitMix64."""

    def __init__(self, seed):
        sm = seed & MASK64
        self.s = []
        for _ in range(4):
            sm, word = _splitmix64(sm)
            self.s.append(word)

    def fork(self, stream):
        h, mixed = _splitmix64(stream & MASK64)
        for word in self.s:
            h, mixed = _splitmix64(mixed ^ word)
        return Rng(mixed)

    def next_u64(self):
        s0, s1, s2, s3 = self.s
        result = (_rotl((s1 * 5) & MASK64, 7) * 9) & MASK64
        t = (s1 << 17) & MASK64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, 45)
        self.s = [s0, s1, s2, s3]
        return result

    def uniform_below(self, bound):
        m = self.next_u64() * bound
        low = m & MASK64
        if low < bound:
            threshold = ((1 << 64) - bound) % bound
            while low < threshold:
                m = self.next_u64() * bound
                low = m & MASK64
        return m >> 64

    def shuffle(self, items):
        for i in range(len(items), 1, -1):
            j = self.uniform_below(i)
            items[i - 1], items[j] = items[j], items[i - 1]


def read_idx(path):
    """An IDX file (raw or gzip) as a numpy array of uint8."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    raise FileNotFoundError(f"{stem}[.gz] not found in {data_dir}")


def load_split(data_dir, split):
    """(images [N,1,28,28] float32 normalised as Cohort does, labels [N] int64)."""
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(data_dir, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(data_dir, f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.copy()).reshape(-1, 1, images.shape[1], images.shape[2])
    x = x.to(torch.float32).div_(255.0).sub_(PIXEL_MEAN).div_(PIXEL_STD)
    return x, torch.from_numpy(labels.astype(np.int64))


def iid_shard(num_samples, num_parts, part, seed):
    """Sorted indices of shard `part` of Cohort's IID partition."""
    order = list(range(num_samples))
    Rng(seed).shuffle(order)
    base, extra = divmod(num_samples, num_parts)
    start = part * base + min(part, extra)
    length = base + (1 if part < extra else 0)
    return sorted(order[start : start + length])


def task_seed(job_seed, round_number, worker_index):
    return Rng(job_seed).fork((round_number << 32) | worker_index).next_u64()


def planned_steps(local_epochs, batch_size, shard_size):
    return max(1, round(local_epochs * math.ceil(shard_size / batch_size)))


def batch_order(seed, shard_size, epoch):
    order = list(range(shard_size))
    Rng(seed).fork(epoch).shuffle(order)
    return order


class Cnn(nn.Module):
    """Cohort's "cnn": conv(1->20,5) relu pool2, conv(20->50,5) relu pool2, fc 800->500 relu, fc 500->10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def make_model(seed):
    """The CNN initialised as Model::create(seed): uniform +-1/sqrt(fan_in) from one seeded generator."""
    model = Cnn()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for child in model.children():
            weight = child.weight
            bound = 1.0 / math.sqrt(weight.numel() / weight.size(0))
            for p in child.parameters(recurse=False):
                p.uniform_(-bound, bound, generator=gen)
    return model


def train_locally(model, images, labels, *, seed, local_epochs, batch_size, lr, momentum):
    """One task as core/src/training.cpp runs it; returns (samples seen, mean loss, seconds)."""
    start = time.perf_counter()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    n = images.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    steps = planned_steps(local_epochs, batch_size, n)
    order, order_epoch = None, -1
    loss_sum, seen = 0.0, 0
    for step in range(steps):
        epoch = step // steps_per_epoch
        if epoch != order_epoch:
            order = torch.tensor(batch_order(seed, n, epoch), dtype=torch.long)
            order_epoch = epoch
        begin = (step % steps_per_epoch) * batch_size
        index = order[begin : begin + batch_size]
        x = images.index_select(0, index)
        y = labels.index_select(0, index)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * index.numel()
        seen += index.numel()
    return seen, loss_sum / max(seen, 1), time.perf_counter() - start


def evaluate(model, images, labels, batch_size=1000):
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            logits = model(images[start : start + batch_size])
            y = labels[start : start + batch_size]
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
    return correct / images.shape[0], loss_sum / images.shape[0]
