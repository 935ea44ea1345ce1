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


class NetSpec(ABC):
    """Builds ``encoder: (n, *input_shape) -> (n, rep_dim)`` and the mirrored decoder."""

    input_shape: tuple[int, ...]
    rep_dim: int

    @abstractmethod
    def encoder(self) -> nn.Module: ...

    @abstractmethod
    def decoder(self) -> nn.Module: ...
