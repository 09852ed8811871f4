"""Writes the TorchScript archives the tests train and refuse (build time).

    python make_torchscript_fixtures.py OUT_DIR

small.pt          a conv net with BatchNorm, elementwise activations and
                  dropout: [B,1,28,28] -> [B,10];
                  its BatchNorm keeps a cumulative average (momentum=None),
                  so num_batches_tracked changes what training computes
five_classes.pt   the same with 5 outputs (too few for Fashion-MNIST's labels)
log_probs.pt      the same ending in log_softmax, for [training] loss = "nll"
wrong_input.pt    expects 3-channel images: the forward fails on 1 channel
wrong_shape.pt    returns [B,10,2]: not logits
frozen.pt         every parameter has requires_grad = False
float64.pt        float64 parameters

Each is scripted (torch.jit.script) from a seeded initialisation, so the
bytes are the same on every build with the same torch.
"""
import sys
import warnings
from pathlib import Path

import torch
from torch import nn


class Small(nn.Module):
    def __init__(self, in_channels: int = 1, classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 8, 5, stride=2)
        self.norm = nn.BatchNorm2d(8, momentum=None)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(8 * 12 * 12, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        # A chain of elementwise ops: the graph executor's optimiser would
        # differentiate it symbolically from the third call on (other bits
        # than autograd's), which Cohort must keep it from doing.
        x = x * torch.sigmoid(x) + torch.tanh(x) * x * 0.5
        return self.fc(self.drop(x.flatten(1)))


class LogProbs(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Small()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.inner(x), dim=1)


class WrongShape(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Small()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x)
        return torch.stack([y, y], dim=2)


def save(module: nn.Module, path: Path) -> None:
    torch.jit.script(module).save(str(path))


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit.script is deprecated upstream
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    save(Small(), out / "small.pt")
    save(Small(classes=5), out / "five_classes.pt")
    save(LogProbs(), out / "log_probs.pt")
    save(Small(in_channels=3), out / "wrong_input.pt")
    save(WrongShape(), out / "wrong_shape.pt")
    frozen = Small()
    for p in frozen.parameters():
        p.requires_grad_(False)
    save(frozen, out / "frozen.pt")
    save(Small().double(), out / "float64.pt")


if __name__ == "__main__":
    main()
