"""LeNet-style conv encoder/decoder of Deep SAD (Ruff et al. 2020) for 28×28 and 32×32 images.

Layer for layer as Deep-SAD-PyTorch's ``MNIST_LeNet``/``MNIST_LeNet_Decoder`` and
``CIFAR10_LeNet``/``CIFAR10_LeNet_Decoder``: 5×5 convolutions without bias,
BatchNorm without affine parameters (eps 1e-4), leaky ReLU (slope 0.01), 2×2 max
pooling, a bias-free linear map to the code; the decoder reshapes the code to
``(rep_dim/16, 4, 4)`` and upsamples (nearest) between transposed convolutions,
ending in a sigmoid. No bias anywhere, so Deep SAD cannot collapse to a constant. ``width``
multiplies every channel count (1, the default, is the reference's net).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from semiad_cli.errors import ConfigError, check_positive_int
from semiad_cli.models.nets.base import NetSpec

VARIANTS = {"mnist": ((1, 28, 28), 32), "cifar10": ((3, 32, 32), 128)}
_EPS = 1e-4


def _bn(channels: int, affine: bool = False) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_EPS, affine=affine)


class MNISTLeNetEncoder(nn.Module):
    """``(n, 1, 28, 28) -> (n, rep_dim)``: conv 8 → pool → conv 4 → pool → linear (channels × width)."""

    def __init__(self, rep_dim: int = 32, in_channels: int = 1, width: int = 1, affine: bool = False) -> None:
        super().__init__()
        self.rep_dim = rep_dim
        c1, c2 = 8 * width, 4 * width
        self.pool = nn.MaxPool2d(2, 2)
        self.conv1 = nn.Conv2d(in_channels, c1, 5, bias=False, padding=2)
        self.bn1 = _bn(c1, affine)
        self.conv2 = nn.Conv2d(c1, c2, 5, bias=False, padding=2)
        self.bn2 = _bn(c2, affine)
        self.fc1 = nn.Linear(c2 * 7 * 7, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.leaky_relu(self.bn1(self.conv1(x))))
        x = self.pool(F.leaky_relu(self.bn2(self.conv2(x))))
        return self.fc1(x.flatten(1))


class MNISTLeNetDecoder(nn.Module):
    """``(n, rep_dim) -> (n, 1, 28, 28)``: 4×4 → 8×8 → 14×14 → 28×28, sigmoid output."""

    def __init__(self, rep_dim: int = 32, out_channels: int = 1, width: int = 1, affine: bool = False) -> None:
        super().__init__()
        self.rep_dim = rep_dim
        c1, c2 = 4 * width, 8 * width
        self.deconv1 = nn.ConvTranspose2d(rep_dim // 16, c1, 5, bias=False, padding=2)
        self.bn3 = _bn(c1, affine)
        self.deconv2 = nn.ConvTranspose2d(c1, c2, 5, bias=False, padding=3)
        self.bn4 = _bn(c2, affine)
        self.deconv3 = nn.ConvTranspose2d(c2, out_channels, 5, bias=False, padding=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.view(z.size(0), self.rep_dim // 16, 4, 4)
        x = F.interpolate(F.leaky_relu(x), scale_factor=2)
        x = F.interpolate(F.leaky_relu(self.bn3(self.deconv1(x))), scale_factor=2)
        x = F.interpolate(F.leaky_relu(self.bn4(self.deconv2(x))), scale_factor=2)
        return torch.sigmoid(self.deconv3(x))


class CIFAR10LeNetEncoder(nn.Module):
    """``(n, 3, 32, 32) -> (n, rep_dim)``: conv 32 → 64 → 128 (× width), each followed by pooling."""

    def __init__(self, rep_dim: int = 128, in_channels: int = 3, width: int = 1, affine: bool = False) -> None:
        super().__init__()
        self.rep_dim = rep_dim
        c1, c2, c3 = 32 * width, 64 * width, 128 * width
        self.pool = nn.MaxPool2d(2, 2)
        self.conv1 = nn.Conv2d(in_channels, c1, 5, bias=False, padding=2)
        self.bn1 = _bn(c1, affine)
        self.conv2 = nn.Conv2d(c1, c2, 5, bias=False, padding=2)
        self.bn2 = _bn(c2, affine)
        self.conv3 = nn.Conv2d(c2, c3, 5, bias=False, padding=2)
        self.bn3 = _bn(c3, affine)
        self.fc1 = nn.Linear(c3 * 4 * 4, rep_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.leaky_relu(self.bn1(self.conv1(x))))
        x = self.pool(F.leaky_relu(self.bn2(self.conv2(x))))
        x = self.pool(F.leaky_relu(self.bn3(self.conv3(x))))
        return self.fc1(x.flatten(1))


class CIFAR10LeNetDecoder(nn.Module):
    """``(n, rep_dim) -> (n, 3, 32, 32)``: 4×4 → 8 → 16 → 32, sigmoid output.

    Transposed convolutions get Xavier-uniform init with the leaky-ReLU gain, as in
    the reference decoder.
    """

    def __init__(self, rep_dim: int = 128, out_channels: int = 3, width: int = 1, affine: bool = False) -> None:
        super().__init__()
        self.rep_dim = rep_dim
        c1, c2, c3 = 128 * width, 64 * width, 32 * width
        self.deconv1 = nn.ConvTranspose2d(rep_dim // 16, c1, 5, bias=False, padding=2)
        self.bn4 = _bn(c1, affine)
        self.deconv2 = nn.ConvTranspose2d(c1, c2, 5, bias=False, padding=2)
        self.bn5 = _bn(c2, affine)
        self.deconv3 = nn.ConvTranspose2d(c2, c3, 5, bias=False, padding=2)
        self.bn6 = _bn(c3, affine)
        self.deconv4 = nn.ConvTranspose2d(c3, out_channels, 5, bias=False, padding=2)
        gain = nn.init.calculate_gain("leaky_relu")
        for layer in (self.deconv1, self.deconv2, self.deconv3, self.deconv4):
            nn.init.xavier_uniform_(layer.weight, gain=gain)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(z.view(z.size(0), self.rep_dim // 16, 4, 4))
        x = F.interpolate(F.leaky_relu(self.bn4(self.deconv1(x))), scale_factor=2)
        x = F.interpolate(F.leaky_relu(self.bn5(self.deconv2(x))), scale_factor=2)
        x = F.interpolate(F.leaky_relu(self.bn6(self.deconv3(x))), scale_factor=2)
        return torch.sigmoid(self.deconv4(x))


class LeNetSpec(NetSpec):
    """Deep SAD's LeNet encoder/decoder pair for one image shape.

    Args:
        input_shape: ``(C, H, W)`` filled from data: ``(C, 28, 28)`` or ``(C, 32, 32)``.
        variant: ``mnist`` (28×28, 8/4 channels, code 32) or ``cifar10`` (32×32,
            32/64/128 channels, code 128); ``None`` infers it from ``input_shape``.
        rep_dim: code size; default 32 (mnist) / 128 (cifar10). Must be a multiple of 16
            (the decoder reshapes the code to ``rep_dim/16 × 4 × 4``).
        channels_last: keep conv weights in NHWC order, so that every convolution (and the
            transposed ones of the decoder) runs oneDNN's channels-last kernels on the CPU: a LeNet
            training step is 1.1–1.5× faster than in the default NCHW order (benchmarks/throughput.py).
            The arithmetic is the same up to float rounding (other summation order), not bit for bit.
        width: multiplies every convolution's channel count (1: Deep SAD's nets exactly). A knob for
            reconstruction models, whose capacity the protocol's LeNets fix at a few channels.
        batchnorm_affine: give every BatchNorm a learned scale and shift (Deep SAD's nets have none,
            so that its hypersphere model cannot learn a constant map).
    """

    def __init__(
        self, *, input_shape: Sequence[int], variant: str | None = None, rep_dim: int | None = None,
        channels_last: bool = True, width: int = 1, batchnorm_affine: bool = False,
    ) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        if len(self.input_shape) != 3:
            raise ConfigError(f"net: LeNetSpec needs an image input_shape (C, H, W), got {self.input_shape}")
        hw = self.input_shape[1:]
        if variant is None:
            variant = {(28, 28): "mnist", (32, 32): "cifar10"}.get(hw)
            if variant is None:
                raise ConfigError(
                    f"net: LeNetSpec supports 28×28 (mnist) and 32×32 (cifar10) images, got {hw}"
                )
        if variant not in VARIANTS:
            raise ConfigError(f"net.variant={variant!r}; choose one of {sorted(VARIANTS)}")
        if VARIANTS[variant][0][1:] != hw:
            raise ConfigError(
                f"net.variant={variant} expects {VARIANTS[variant][0][1:]} images, data are {hw}"
            )
        self.variant = variant
        self.rep_dim = int(rep_dim) if rep_dim is not None else VARIANTS[variant][1]
        if self.rep_dim < 16 or self.rep_dim % 16:
            raise ConfigError(f"net.rep_dim={self.rep_dim} must be a positive multiple of 16")
        self.channels_last = bool(channels_last)
        self.width = check_positive_int("net.width", width, "Deep SAD's LeNet")
        self.batchnorm_affine = bool(batchnorm_affine)

    def widened(self, factor: int) -> LeNetSpec:
        return LeNetSpec(input_shape=self.input_shape, variant=self.variant, rep_dim=self.rep_dim,
                         channels_last=self.channels_last, width=self.width * factor,
                         batchnorm_affine=self.batchnorm_affine)

    def _layout(self, module: nn.Module) -> nn.Module:
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def encoder(self) -> nn.Module:
        cls = MNISTLeNetEncoder if self.variant == "mnist" else CIFAR10LeNetEncoder
        return self._layout(cls(self.rep_dim, in_channels=self.input_shape[0], width=self.width,
                                affine=self.batchnorm_affine))

    def decoder(self) -> nn.Module:
        cls = MNISTLeNetDecoder if self.variant == "mnist" else CIFAR10LeNetDecoder
        return self._layout(cls(self.rep_dim, out_channels=self.input_shape[0], width=self.width,
                                affine=self.batchnorm_affine))
