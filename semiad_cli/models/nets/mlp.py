"""MLP encoder/decoder as in Deep-SAD-PyTorch's ODDS nets (bias-free, BatchNorm without affine).

``batchnorm_affine=true`` with ``activation=relu`` gives the Julia ESAD reference's MLP template
instead (bias-free dense layers, affine BatchNorm, ReLU; METHODS.md §1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from semiad_cli.errors import ConfigError
from semiad_cli.models.nets.base import NetSpec

ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}


def _block(d_in: int, d_out: int, bias: bool, batchnorm: bool, affine: bool, activation: str) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(d_in, d_out, bias=bias)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(d_out, eps=1e-4, affine=affine))
    layers.append(ACTIVATIONS[activation]())
    return layers


class MLPSpec(NetSpec):
    """``d → hidden… → rep_dim`` and back; input of any shape is flattened.

    Args:
        input_shape: sample shape (filled from data), e.g. ``[64]``.
        hidden: hidden widths, e.g. ``[32, 16]`` (METHODS §3 sizes per dataset).
        rep_dim: code size.
        bias: bias terms; Deep SAD needs ``False`` to avoid a trivial constant map.
        batchnorm: BatchNorm1d after each hidden linear layer.
        batchnorm_affine: give that BatchNorm a learned scale and shift (Deep SAD's nets have none).
        activation: ``leaky_relu`` | ``relu`` | ``tanh`` | ``elu``.
        output_activation: ``sigmoid`` (data in [0,1]) or ``none`` for the decoder.
    """

    def __init__(self, *, input_shape: Sequence[int], hidden: Sequence[int] = (32, 16), rep_dim: int = 8,
                 bias: bool = False, batchnorm: bool = True, batchnorm_affine: bool = False,
                 activation: str = "leaky_relu", output_activation: str = "sigmoid") -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.hidden = [int(h) for h in hidden]
        self.rep_dim = int(rep_dim)
        if activation not in ACTIVATIONS:
            raise ConfigError(f"net.activation={activation!r} is unknown; choose one of {list(ACTIVATIONS)}")
        if output_activation not in ("sigmoid", "none"):
            raise ConfigError(f"net.output_activation={output_activation!r}: choose 'sigmoid' or 'none'")
        if self.rep_dim < 1 or any(h < 1 for h in self.hidden):
            raise ConfigError(f"net sizes must be positive (hidden={self.hidden}, rep_dim={self.rep_dim})")
        self.bias, self.batchnorm, self.activation = bias, batchnorm, activation
        self.batchnorm_affine = batchnorm_affine
        self.output_activation = output_activation
        self.in_dim = math.prod(self.input_shape)

    def widened(self, factor: int) -> MLPSpec:
        return MLPSpec(input_shape=self.input_shape, hidden=[h * factor for h in self.hidden],
                       rep_dim=self.rep_dim, bias=self.bias, batchnorm=self.batchnorm,
                       batchnorm_affine=self.batchnorm_affine, activation=self.activation,
                       output_activation=self.output_activation)

    def encoder(self) -> nn.Module:
        dims = [self.in_dim, *self.hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += _block(a, b, self.bias, self.batchnorm, self.batchnorm_affine, self.activation)
        layers.append(nn.Linear(dims[-1], self.rep_dim, bias=self.bias))
        return nn.Sequential(*layers)

    def decoder(self) -> nn.Module:
        dims = [self.rep_dim, *reversed(self.hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += _block(a, b, self.bias, self.batchnorm, self.batchnorm_affine, self.activation)
        layers.append(nn.Linear(dims[-1], self.in_dim, bias=self.bias))
        if self.output_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        layers.append(nn.Unflatten(1, self.input_shape))
        return nn.Sequential(*layers)
