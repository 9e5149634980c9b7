"""I3D (Inflated Inception-V1): DeepMind's Kinetics-400 video network, in PyTorch, read from its ``.npz``.

It reproduces the original's conventions: inputs RGB in [-1, 1] laid out (batch, 3, time, height, width),
TensorFlow "SAME" padding for convolutions and max-pools, and batch norm with eps 1e-3, a bias and no scale.
The network is only ever run frozen, so each batch norm is folded into its convolution at load time.
``features`` gives the 1024 channels of ``Mixed_5c``, what the tool's ``scene_video`` stream reads;
``forward`` adds the Kinetics-400 logits (used to check the port).

Example:
    >>> net = load_i3d("i3d_kinetics400_rgb.npz")  # doctest: +SKIP
    >>> net.features(torch.zeros(1, 3, 16, 224, 224)).shape  # doctest: +SKIP
    torch.Size([1, 1024, 2, 7, 7])
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from behavior.errors import InputError

BN_EPS = 1e-3
FEATURE_DIM = 1024  # channels of Mixed_5c
NUM_CLASSES = 400
# Inception modules: name and output channels (branch 0; branch 1 in, out; branch 2 in, out; branch 3), in order.
INCEPTION = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)
# Max-pools (kernel = stride, except where given) inserted before these modules: (kernel, stride).
POOL_BEFORE = {"Mixed_3b": ((1, 3, 3), (1, 2, 2)), "Mixed_4b": ((3, 3, 3), (2, 2, 2)),
               "Mixed_5b": ((2, 2, 2), (2, 2, 2))}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of one dimension: (before, after), the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int],
             value: float = 0.0) -> torch.Tensor:
    """Pad a (B, C, T, H, W) tensor as TensorFlow's "SAME" does before a conv or pool."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        pads.extend(same_padding(size, k, s))
    return F.pad(x, pads, value=value) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d (batch norm folded in) + ReLU, with "SAME" padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(pad_same(x, self.kernel, self.stride)))


def max_pool_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """TensorFlow's "SAME" max-pool: padded cells never win."""
    return F.max_pool3d(pad_same(x, kernel, stride, value=float("-inf")), kernel, stride)


class Inception(nn.Module):
    """One Inception module: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1, concatenated."""

    def __init__(self, in_channels: int, out: tuple[int, ...]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a, self.b1b = Unit3D(in_channels, out[1]), Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(in_channels, out[3]), Unit3D(out[3], out[4], (3, 3, 3))
        self.b3 = Unit3D(in_channels, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3(pooled)], dim=1)

    @staticmethod
    def out_channels(out: tuple[int, ...]) -> int:
        return out[0] + out[2] + out[4] + out[5]


class I3D(nn.Module):
    """Inflated Inception-V1 up to ``Mixed_5c``, plus the Kinetics-400 logits."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = nn.ModuleDict({
            "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
        })
        self.mixed = nn.ModuleDict()
        channels = 192
        for name, out in INCEPTION:
            self.mixed[name] = Inception(channels, out)
            channels = Inception.out_channels(out)
        self.logits = nn.Conv3d(channels, num_classes, 1, bias=True)

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """``Mixed_5c`` of (B, 3, T, H, W) clips in [-1, 1]: (B, 1024, ceil(T/8), ceil(H/32), ceil(W/32))."""
        x = self.stem["Conv3d_1a_7x7"](clips)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.stem["Conv3d_2c_3x3"](self.stem["Conv3d_2b_1x1"](x))
        for name, module in self.mixed.items():
            if name in POOL_BEFORE:
                x = max_pool_same(x, *POOL_BEFORE[name])
            x = module(x)
        return x

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Kinetics-400 logits, averaged over time (the original's (2, 7, 7) average pool at 224x224)."""
        x = self.features(clips)
        x = F.avg_pool3d(x, (min(2, x.shape[2]), x.shape[3], x.shape[4]), stride=1)
        return self.logits(x).mean(dim=(2, 3, 4))


# --- Loading the .npz ---------------------------------------------------------------------------------------------

_BRANCHES = {"b0": "Branch_0/Conv3d_0a_1x1", "b1a": "Branch_1/Conv3d_0a_1x1", "b1b": "Branch_1/Conv3d_0b_3x3",
             "b2a": "Branch_2/Conv3d_0a_1x1", "b2b": "Branch_2/Conv3d_0b_3x3", "b3": "Branch_3/Conv3d_0b_1x1"}


def _units(net: I3D) -> list[tuple[str, Unit3D]]:
    """Every conv unit with its block name in the checkpoint."""
    units: list[tuple[str, Unit3D]] = list(net.stem.items())
    for name, module in net.mixed.items():
        units += [(f"{name}/{branch}", getattr(module, attr)) for attr, branch in _BRANCHES.items()]
    return units


def _folded(arrays: dict[str, np.ndarray], block: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A unit's conv weight (torch layout) and bias with its batch norm folded in."""
    kernel = arrays[f"params/{block}/Conv_0/kernel"]  # kT, kH, kW, in, out
    beta, mean, var = (arrays[f"{kind}/{block}/BatchNorm_0/{name}"].reshape(-1)  # saved as (1, 1, 1, 1, C)
                       for kind, name in (("params", "bias"), ("batch_stats", "mean"), ("batch_stats", "var")))
    scale = 1.0 / np.sqrt(var.astype(np.float64) + BN_EPS)
    weight = kernel.transpose(4, 3, 0, 1, 2) * scale.reshape(-1, 1, 1, 1, 1)
    bias = beta - mean * scale
    return torch.from_numpy(weight.astype(np.float32)), torch.from_numpy(bias.astype(np.float32))


def load_i3d(path: str | os.PathLike) -> I3D:
    """An I3D in eval mode, frozen, from DeepMind's Kinetics-400 weights saved as ``.npz`` (no pickle allowed).

    Raises:
        InputError: one line when the file cannot be read or is not these weights.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read I3D weights {path}: {exc}") from None
    net = I3D()
    try:
        with torch.no_grad():
            for block, unit in _units(net):
                weight, bias = _folded(arrays, block)
                unit.conv.weight.copy_(weight)
                unit.conv.bias.copy_(bias)
            logits = arrays["params/Logits/Conv3d_0c_1x1/Conv_0/kernel"]
            net.logits.weight.copy_(torch.from_numpy(logits.transpose(4, 3, 0, 1, 2).astype(np.float32)))
            net.logits.bias.copy_(torch.from_numpy(arrays["params/Logits/Conv3d_0c_1x1/Conv_0/bias"]))
    except (KeyError, RuntimeError, ValueError) as exc:
        raise InputError(f"{path} is not DeepMind's Kinetics-400 I3D weights: {str(exc).splitlines()[0]}") from None
    net.eval()
    for param in net.parameters():
        param.requires_grad_(False)
    return net


def to_clip(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB frames -> a (3, T, H, W) float clip in [-1, 1], as I3D was trained."""
    clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float()
    return clip.div_(127.5).sub_(1.0)
