"""The paper's MNIST CNN (docs/method.md §2): conv5x5(1->32) pool conv5x5(32->64) pool
fc(3136->400)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

HIDDEN = 400


class ConvEncoder(nn.Module):
    """``[B, 1, 28, 28] -> h: [B, 400]``, ReLU after every layer; ``bias=False`` drops every
    bias term (Deep SVDD's network)."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.init_args = {"bias": bias}
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2, bias=bias)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2, bias=bias)
        self.fc = nn.Linear(64 * 7 * 7, HIDDEN, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def encode(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``h`` and the max-pooling switches ``(idx1: [B,32,14,14], idx2: [B,64,7,7])``."""
        x, idx1 = F.max_pool2d(F.relu(self.conv1(x)), 2, return_indices=True)
        x, idx2 = F.max_pool2d(F.relu(self.conv2(x)), 2, return_indices=True)
        return F.relu(self.fc(x.flatten(1))), (idx1, idx2)


class ConvClassifier(nn.Module):
    """``ConvEncoder`` + linear head ``400 -> num_outputs`` (logits).

    ``num_outputs = 10`` is the plain CNN (1,310,906 parameters); ``100`` is COOL with
    omega = 10 (1,346,996).
    """

    def __init__(self, num_outputs: int = 10) -> None:
        super().__init__()
        self.init_args = {"num_outputs": num_outputs}
        self.num_outputs = num_outputs
        self.encoder = ConvEncoder()
        self.head = nn.Linear(HIDDEN, num_outputs)

    def hidden(self, x: Tensor) -> Tensor:
        """The 400-d hidden layer ``[B, 400]`` that the head reads."""
        return self.encoder(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.hidden(x))
