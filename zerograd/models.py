"""Models: Layers with a picture of their graph, and ready-made networks."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import zerograd.functions as F
import zerograd.layers as L
from zerograd import utils
from zerograd.layers import Layer


class Model(Layer):
    """A Layer that can draw the computational graph of one forward pass."""

    def plot(self, *inputs: Any, to_file: str = 'model.png') -> str:
        """Run ``forward(*inputs)`` and write its graph to ``to_file`` (.png/.svg/.pdf)."""
        y = self.forward(*inputs)
        return utils.plot_dot_graph(y, verbose=True, to_file=to_file)


class Sequential(Model):
    """Apply layers (or plain callables such as ``F.relu``) one after another.

    Layers are registered as ``l0, l1, ...`` by position, so weight files name them so.
    """

    def __init__(self, *layers: Callable) -> None:
        super().__init__()
        self.layers = []
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f'Sequential: item {i} is not callable: {layer!r}')
            self.layers.append(layer)
            if isinstance(layer, Layer):
                setattr(self, f'l{i}', layer)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x


class MLP(Model):
    """Fully connected layers ``l0, l1, ...`` with ``activation`` between them (not after
    the last). fc_output_sizes: the output size of each layer, e.g. (10, 3)."""

    def __init__(self, fc_output_sizes: Sequence[int], activation: Callable = F.sigmoid) -> None:
        super().__init__()
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(fc_output_sizes):
            layer = L.Linear(out_size)
            setattr(self, f'l{i}', layer)
            self.layers.append(layer)

    def forward(self, x: Any) -> Any:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)
