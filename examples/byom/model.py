"""Bring your own model: a small residual network for Fashion-MNIST, with
BatchNorm and dropout, exported as a TorchScript archive that every Cohort
worker trains natively from C++ (docs/MODELS.md).

    ~/.cache/cohort/venv/bin/python examples/byom/model.py runs/byom/model.pt
    build/cohort simulate --config examples/byom/job.toml      # or: coordinator + workers

The archive starts from the weights it is saved with: seed them here if two
exports should be the same file. Script it (torch.jit.script), do not trace
it: tracing freezes the train/eval branches, so dropout and BatchNorm would
behave in training as they did in the one example call.
"""
import sys
import warnings
from pathlib import Path

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm, added to the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(x + self.norm2(self.conv2(y)))


class SmallResNet(nn.Module):
    """[B, 1, 28, 28] images (Cohort normalises them) -> [B, 10] logits."""

    def __init__(self, channels: int = 16, classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        self.block1 = ResidualBlock(channels)
        self.block2 = ResidualBlock(channels)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(channels * 7 * 7, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm(self.stem(x)))
        x = torch.max_pool2d(self.block1(x), 2)  # 14x14
        x = torch.max_pool2d(self.block2(x), 2)  # 7x7
        return self.head(self.drop(x.flatten(1)))


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/byom/model.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = SmallResNet()
    # Check it before exporting: one batch in each mode, the shapes Cohort needs.
    for training in (True, False):
        model.train(training)
        assert model(torch.zeros(8, 1, 28, 28)).shape == (8, 10)
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream (docs/MODELS.md)
        torch.jit.script(model).save(str(out))
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: SmallResNet, {params} parameters")


if __name__ == "__main__":
    main()
