"""Network specs: a config-instantiable recipe that builds fresh encoder/decoder modules.

Models receive a spec (not a module) so that EDE can build two encoders, Deep SAD
an encoder plus a pre-training decoder, and all of them the same shapes for a
dataset. Dataset configs carry the spec (``dataset.net``) because sizes follow
the data (METHODS.md §3); ``input_shape`` is ``???`` there and is filled from
the loaded data just before instantiation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn

from semiad_cli.errors import ConfigError


class NetSpec(ABC):
    """Builds ``encoder: (n, *input_shape) -> (n, rep_dim)`` and the mirrored decoder."""

    input_shape: tuple[int, ...]
    rep_dim: int

    @abstractmethod
    def encoder(self) -> nn.Module: ...

    @abstractmethod
    def decoder(self) -> nn.Module: ...

    def widened(self, factor: int) -> NetSpec:
        """A copy whose hidden layers are ``factor`` times as wide; input and code sizes unchanged.

        Lets a model ask for more capacity than the data's protocol net (``model.net_width``)
        without a second net config per dataset.
        """
        raise ConfigError(f"{type(self).__name__} cannot be widened: set the net's sizes in dataset.net instead")
