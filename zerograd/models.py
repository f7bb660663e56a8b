"""Models: Layers with a picture of their graph, and ready-made networks."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import zerograd.functions as F
import zerograd.layers as L
from zerograd import utils
from zerograd.core import Variable
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

    def _repr_items(self) -> list[tuple[str, Any]]:
        # The items in order: layers by their attribute ('l0'), plain callables by
        # position ('1'); then anything registered besides them.
        items = [(f'l{i}' if isinstance(obj, Layer) else str(i), obj)
                 for i, obj in enumerate(self.layers)]
        shown = {key for key, _ in items}
        return items + [item for item in super()._repr_items() if item[0] not in shown]


class MLP(Model):
    """Fully connected layers ``l0, l1, ...`` with ``activation`` between them (not after
    the last). fc_output_sizes: the output size of each layer, e.g. (10, 3)."""

    def __init__(self, fc_output_sizes: Sequence[int], activation: Callable = F.sigmoid) -> None:
        super().__init__()
        try:
            if isinstance(fc_output_sizes, (str, bytes)):
                raise TypeError
            fc_output_sizes = tuple(fc_output_sizes)
        except TypeError:
            raise TypeError(f'MLP: fc_output_sizes must be a sequence of layer sizes, e.g. '
                            f'(10, 3), got {fc_output_sizes!r} ({type(fc_output_sizes).__name__})'
                            ) from None
        if len(fc_output_sizes) == 0:
            raise ValueError(f'MLP: fc_output_sizes must be non-empty (one size per layer, '
                             f'e.g. (10, 3)), got {fc_output_sizes!r}')
        if not callable(activation):
            raise TypeError(f'MLP: activation must be callable, got {activation!r}')
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(fc_output_sizes):
            L._check_size('MLP', f'fc_output_sizes[{i}]', out_size)
            layer = L.Linear(out_size)
            setattr(self, f'l{i}', layer)
            self.layers.append(layer)

    def forward(self, x: Any) -> Any:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


# =============================================================================
# Helpers shared by the image models
# =============================================================================
def _check_images(owner: str, x: Any) -> None:
    """x must be a batch of 3-channel images (N, 3, H, W)."""
    if not hasattr(x, 'ndim') or not hasattr(x, 'shape'):
        raise TypeError(f'{owner}: x must be an ndarray or a Variable of shape (N, 3, H, W), '
                        f'got {type(x).__name__}')
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f'{owner}: x must be a batch of RGB/BGR images (N, 3, H, W), got '
                         f'shape {x.shape}')


def _max_pooling_ceil(x: Any, kernel_size: int, stride: int) -> Variable:
    """Max pooling that keeps the last, partial window: OH = ceil((H - K) / S) + 1.

    This is Caffe's pooling (Chainer's ``cover_all=True``, torch's ``ceil_mode=True``),
    the one the published ResNet and SqueezeNet weights were trained with: ``F.pooling``'s
    ``ceil_mode``, whose missing rows and columns never win the max, so the result is exact
    for any x. One op (not a concatenated -inf block of x's batch size), so it exports to
    ONNX as MaxPool with ceil_mode=1. x: (N, C, H, W) float -> (N, C, OH, OW).
    """
    return F.pooling(x, kernel_size, stride=stride, ceil_mode=True)


def _global_average_pooling(x: Any) -> Variable:
    """The mean of each channel over the image: x (N, C, H, W) -> (N, C)."""
    return F.average(x, axis=(2, 3))


def _download_and_load(model: Layer, url: str) -> None:
    """Fetch ``url`` once into the cache of ``utils.get_file`` and load it into model.

    The model's parameters are still lazy (None), so they take the file's arrays as they
    are; floating arrays are then made float32, the models' dtype (what loading into
    created float32 parameters would do), so a float64 file cannot make the model float64.
    """
    path = utils.get_file(url)
    model.load_weights(path)
    for param in model.params():
        if param.data.dtype.kind == 'f' and param.data.dtype != np.float32:
            param.data = param.data.astype(np.float32)


# =============================================================================
# VGG16
# =============================================================================
class VGG16(Model):
    """VGG-16 (Simonyan and Zisserman, 2014), named and ordered as the book's DeZero, so
    its published weight file (``vgg16.npz``: keys ``conv1_1/W``, ``conv1_1/b``, ...,
    ``fc8/b``, converted from Caffe's model) loads with ``load_weights``.

    Thirteen 3 x 3 convolutions with pad 1 and ReLU (``conv1_1``-``conv1_2`` 64 channels,
    ``conv2_*`` 128, ``conv3_*`` 256, ``conv4_*`` and ``conv5_*`` 512), 2 x 2 max pooling
    with stride 2 after each of the five blocks, then ``fc6`` and ``fc7`` (4096, ReLU and
    dropout) and ``fc8`` (1000 class scores, no softmax).
    x: (N, 3, 224, 224) float32, BGR images made by ``VGG16.preprocess`` -> (N, 1000).

    Layers create their weights on the first call (as DeZero's), so ``pretrained=True``
    draws nothing: it downloads ``WEIGHTS_PATH`` once into the cache of
    ``utils.get_file`` (``$ZEROGRAD_DATA``, else ``~/.zerograd``) and loads it.
    Use ``with zerograd.test_mode():`` for inference (dropout off).
    """

    WEIGHTS_PATH = 'https://github.com/koki0702/dezero-models/releases/download/v0.1/vgg16.npz'
    MEAN_BGR = (103.939, 116.779, 123.68)  # Caffe's ImageNet means, blue green red

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        self.conv1_1 = L.Conv2d(64, kernel_size=3, stride=1, pad=1)
        self.conv1_2 = L.Conv2d(64, kernel_size=3, stride=1, pad=1)
        self.conv2_1 = L.Conv2d(128, kernel_size=3, stride=1, pad=1)
        self.conv2_2 = L.Conv2d(128, kernel_size=3, stride=1, pad=1)
        self.conv3_1 = L.Conv2d(256, kernel_size=3, stride=1, pad=1)
        self.conv3_2 = L.Conv2d(256, kernel_size=3, stride=1, pad=1)
        self.conv3_3 = L.Conv2d(256, kernel_size=3, stride=1, pad=1)
        self.conv4_1 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv4_2 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv4_3 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv5_1 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv5_2 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.conv5_3 = L.Conv2d(512, kernel_size=3, stride=1, pad=1)
        self.fc6 = L.Linear(4096)
        self.fc7 = L.Linear(4096)
        self.fc8 = L.Linear(1000)
        if pretrained:
            _download_and_load(self, self.WEIGHTS_PATH)

    def forward(self, x: Any) -> Variable:
        _check_images('VGG16', x)
        self._check_size(x)
        blocks = [('conv1_1', 'conv1_2'), ('conv2_1', 'conv2_2'),
                  ('conv3_1', 'conv3_2', 'conv3_3'), ('conv4_1', 'conv4_2', 'conv4_3'),
                  ('conv5_1', 'conv5_2', 'conv5_3')]
        for block in blocks:
            for name in block:
                x = F.relu(getattr(self, name)(x))
            x = F.pooling(x, 2, stride=2)
        x = F.reshape(x, (x.shape[0], -1))
        x = F.dropout(F.relu(self.fc6(x)))
        x = F.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)

    def _check_size(self, x: Any) -> None:
        # Five 2 x 2 poolings floor the size five times; fc6 needs 512 x 7 x 7 features.
        # (A subclass for small images, in tests, overrides this check.)
        H, W = x.shape[2:]
        if H // 32 != 7 or W // 32 != 7:
            raise ValueError(f'VGG16: x must be (N, 3, 224, 224) (fc6 takes the 512 x 7 x 7 '
                             f'features of a 224 x 224 image), got shape {x.shape}')

    @staticmethod
    def preprocess(image: Any, size: tuple[int, int] | None = (224, 224),
                   dtype: Any = np.float32) -> np.ndarray:
        """A PIL image as VGG16's input: converted to RGB, resized to ``size`` ((width,
        height), as PIL's ``resize``; None keeps the size), turned from RGB to BGR, the
        Caffe means ``MEAN_BGR`` subtracted per channel, HWC -> CHW, in ``dtype``.
        Returns (3, height, width); stack several with ``np.stack`` for a batch.
        Only the image's own methods are used: nothing is imported."""
        if not hasattr(image, 'convert') or not hasattr(image, 'resize'):
            raise TypeError(f'VGG16.preprocess: image must be a PIL image, got '
                            f'{type(image).__name__}')
        image = image.convert('RGB')
        if size:
            image = image.resize(tuple(size))
        array = np.asarray(image, dtype=dtype)[:, :, ::-1]  # (H, W, 3) in BGR order
        array = array - np.array(VGG16.MEAN_BGR, dtype=dtype)
        return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=dtype)


# =============================================================================
# ResNet
# =============================================================================
class BottleneckA(Layer):
    """The first bottleneck of a stage, with a projection shortcut.

    Main path: ``conv1`` 1 x 1 (mid_channels, stride ``stride``) + ``bn1`` + ReLU,
    ``conv2`` 3 x 3 pad 1 (mid_channels) + ``bn2`` + ReLU, ``conv3`` 1 x 1 (out_channels)
    + ``bn3``; shortcut ``conv4`` 1 x 1 (out_channels, stride ``stride``) + ``bn4``; the sum
    through ReLU. The stride sits on the first 1 x 1 convolution, as in the original
    ResNet (MSRA's Caffe model, Chainer, DeZero); ``downsample_fb=True`` puts it on the
    3 x 3 one instead (Facebook's variant, torchvision's). Convolutions have no bias.
    x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).
    ``in_channels`` (optional) is checked against x; the layers take theirs from x.
    """

    def __init__(self, in_channels: int | None, mid_channels: int, out_channels: int,
                 stride: int = 2, downsample_fb: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        stride_1x1, stride_3x3 = (1, stride) if downsample_fb else (stride, 1)
        self.conv1 = L.Conv2d(mid_channels, 1, stride_1x1, 0, nobias=True)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, stride_3x3, 1, nobias=True)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(out_channels, 1, 1, 0, nobias=True)
        self.bn3 = L.BatchNorm()
        self.conv4 = L.Conv2d(out_channels, 1, stride, 0, nobias=True)
        self.bn4 = L.BatchNorm()

    def forward(self, x: Any) -> Variable:
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise ValueError(f'BottleneckA: x has {x.shape[1]} channels, expected '
                             f'{self.in_channels} (x.shape={x.shape})')
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        shortcut = self.bn4(self.conv4(x))
        return F.relu(h + shortcut)


class BottleneckB(Layer):
    """A bottleneck with an identity shortcut: ``conv1`` 1 x 1 (mid_channels) + ``bn1``
    + ReLU, ``conv2`` 3 x 3 pad 1 + ``bn2`` + ReLU, ``conv3`` 1 x 1 (in_channels) + ``bn3``,
    plus x, through ReLU. x: (N, in_channels, H, W) -> the same shape."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__()
        self.conv1 = L.Conv2d(mid_channels, 1, 1, 0, nobias=True)
        self.bn1 = L.BatchNorm()
        self.conv2 = L.Conv2d(mid_channels, 3, 1, 1, nobias=True)
        self.bn2 = L.BatchNorm()
        self.conv3 = L.Conv2d(in_channels, 1, 1, 0, nobias=True)
        self.bn3 = L.BatchNorm()

    def forward(self, x: Any) -> Variable:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + x)


class BuildingBlock(Layer):
    """One ResNet stage: ``a`` (a BottleneckA, which changes the channels and applies the
    stride), then ``b1``, ``b2``, ... (n_layers - 1 BottleneckBs). Weight-file keys read
    ``res3/a/conv1/W``, ``res3/b1/bn2/gamma``, ... as Chainer's and DeZero's.
    x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))."""

    def __init__(self, n_layers: int, in_channels: int | None, mid_channels: int,
                 out_channels: int, stride: int, downsample_fb: bool = False) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f'BuildingBlock: n_layers must be at least 1, got {n_layers}')
        self.a = BottleneckA(in_channels, mid_channels, out_channels, stride, downsample_fb)
        self._forward = ['a']
        for i in range(1, n_layers):
            name = f'b{i}'
            setattr(self, name, BottleneckB(out_channels, mid_channels))
            self._forward.append(name)

    def forward(self, x: Any) -> Variable:
        for name in self._forward:
            x = getattr(self, name)(x)
        return x


class ResNet(Model):
    """The bottleneck ResNet (He et al., 2015) with 50, 101 or 152 layers, as Chainer's
    and DeZero's ``ResNet``, so their published weight files (``resnet50.npz``, ...: keys
    ``conv1/W``, ``conv1/b``, ``bn1/avg_mean``, ..., ``res2/a/conv1/W``,
    ``res2/a/bn1/gamma``, ..., ``res5/b2/bn3/beta``, ``fc6/W``, ``fc6/b``) load.

    ``conv1`` 7 x 7 stride 2 pad 3 (64 channels, with bias) + ``bn1`` + ReLU, 3 x 3 max
    pooling with stride 2 (Caffe's rounding up, as the weights were trained), the stages
    ``res2``-``res5`` (BuildingBlocks of [3, 4, 6, 3], [3, 4, 23, 3] or [3, 8, 36, 3]
    bottlenecks, 256, 512, 1024, 2048 channels), global average pooling, ``fc6`` (1000
    class scores). x: (N, 3, H, W) float32, BGR minus the Caffe means (use
    ``VGG16.preprocess``), any H, W >= 3 (224 for the published weights) -> (N, 1000).

    ``pretrained=True`` downloads ``resnet{n_layers}.npz`` once into the cache of
    ``utils.get_file`` and loads it. Use ``with zerograd.test_mode():`` for inference
    (batch norm then uses the running statistics).
    """

    WEIGHTS_PATH = ('https://github.com/koki0702/dezero-models/releases/download/v0.1/'
                    'resnet{}.npz')
    BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

    def __init__(self, n_layers: int = 152, pretrained: bool = False) -> None:
        super().__init__()
        if isinstance(n_layers, bool) or n_layers not in self.BLOCKS:
            raise ValueError(f'ResNet: n_layers must be 50, 101 or 152, got {n_layers!r}')
        self.n_layers = n_layers
        block = self.BLOCKS[n_layers]
        self.conv1 = L.Conv2d(64, 7, 2, 3)
        self.bn1 = L.BatchNorm()
        self.res2 = BuildingBlock(block[0], 64, 64, 256, 1)
        self.res3 = BuildingBlock(block[1], 256, 128, 512, 2)
        self.res4 = BuildingBlock(block[2], 512, 256, 1024, 2)
        self.res5 = BuildingBlock(block[3], 1024, 512, 2048, 2)
        self.fc6 = L.Linear(1000)
        if pretrained:
            _download_and_load(self, self.WEIGHTS_PATH.format(n_layers))

    def forward(self, x: Any) -> Variable:
        _check_images(type(self).__name__, x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = _max_pooling_ceil(x, 3, 2)
        x = self.res2(x)
        x = self.res3(x)
        x = self.res4(x)
        x = self.res5(x)
        x = _global_average_pooling(x)
        return self.fc6(x)


class ResNet50(ResNet):
    """ResNet with 50 layers (stages of 3, 4, 6, 3 bottlenecks); see ``ResNet``."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(50, pretrained)


class ResNet101(ResNet):
    """ResNet with 101 layers (stages of 3, 4, 23, 3 bottlenecks); see ``ResNet``."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(101, pretrained)


class ResNet152(ResNet):
    """ResNet with 152 layers (stages of 3, 8, 36, 3 bottlenecks); see ``ResNet``."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__(152, pretrained)


# =============================================================================
# SqueezeNet
# =============================================================================
class Fire(Layer):
    """SqueezeNet's fire module: ``squeeze1x1`` (1 x 1, squeeze_channels) + ReLU, then
    ``expand1x1`` (1 x 1) and ``expand3x3`` (3 x 3 pad 1), each + ReLU, joined on the
    channel axis. x: (N, C, H, W) -> (N, expand1x1_channels + expand3x3_channels, H, W)."""

    def __init__(self, squeeze_channels: int, expand1x1_channels: int,
                 expand3x3_channels: int) -> None:
        super().__init__()
        self.squeeze1x1 = L.Conv2d(squeeze_channels, 1)
        self.expand1x1 = L.Conv2d(expand1x1_channels, 1)
        self.expand3x3 = L.Conv2d(expand3x3_channels, 3, pad=1)

    def forward(self, x: Any) -> Variable:
        s = F.relu(self.squeeze1x1(x))
        return F.concat([F.relu(self.expand1x1(s)), F.relu(self.expand3x3(s))], axis=1)


class SqueezeNet(Model):
    """SqueezeNet v1.1 (Iandola et al., 2016): AlexNet-level accuracy with 1.2 million
    parameters (1,235,496, as torchvision's ``squeezenet1_1``).

    ``conv1`` 3 x 3 stride 2 (64) + ReLU, 3 x 3 max pooling stride 2 (rounding up, as
    Caffe), ``fire2`` (16, 64, 64), ``fire3`` (16, 64, 64), pooling, ``fire4`` (32, 128,
    128), ``fire5`` (32, 128, 128), pooling, ``fire6`` (48, 192, 192), ``fire7`` (48, 192,
    192), ``fire8`` (64, 256, 256), ``fire9`` (64, 256, 256), dropout 0.5, ``conv10`` 1 x 1
    (n_classes) + ReLU, global average pooling.
    x: (N, 3, H, W) float32, H, W >= 17 (224 is the usual size) -> (N, n_classes).

    There are no published SqueezeNet weights in zerograd's (DeZero's) key naming, so
    ``pretrained=True`` raises; train it yourself or load your own ``save_weights`` file.
    """

    def __init__(self, pretrained: bool = False, n_classes: int = 1000) -> None:
        super().__init__()
        if pretrained:
            raise ValueError('SqueezeNet: pretrained=True is not available: no published '
                             'SqueezeNet weights in zerograd/DeZero key naming are known. '
                             'Train the model, or load_weights() a file you saved.')
        self.conv1 = L.Conv2d(64, 3, stride=2)
        self.fire2 = Fire(16, 64, 64)
        self.fire3 = Fire(16, 64, 64)
        self.fire4 = Fire(32, 128, 128)
        self.fire5 = Fire(32, 128, 128)
        self.fire6 = Fire(48, 192, 192)
        self.fire7 = Fire(48, 192, 192)
        self.fire8 = Fire(64, 256, 256)
        self.fire9 = Fire(64, 256, 256)
        self.conv10 = L.Conv2d(n_classes, 1)

    def forward(self, x: Any) -> Variable:
        _check_images('SqueezeNet', x)
        x = F.relu(self.conv1(x))
        x = _max_pooling_ceil(x, 3, 2)
        x = self.fire3(self.fire2(x))
        x = _max_pooling_ceil(x, 3, 2)
        x = self.fire5(self.fire4(x))
        x = _max_pooling_ceil(x, 3, 2)
        x = self.fire9(self.fire8(self.fire7(self.fire6(x))))
        x = F.relu(self.conv10(F.dropout(x, 0.5)))
        return _global_average_pooling(x)
