"""Transforms: small callables a ``Dataset`` applies to each example (the book's transforms).

Each transform is a class whose instances are called on one example: ``Resize(32)(img)``.
``Compose`` chains them. Three kinds of input appear:

- PIL images (``Convert``, ``Resize``, ``CenterCrop``, ``ToArray``, ``RandomHorizontalFlip``);
- arrays of shape (C, H, W) or (C, ...) (``ToPIL``, ``Normalize``, ``RandomHorizontalFlip``);
- any array (``Flatten``, ``AsType``/``ToFloat``, ``ToInt``).

Pillow is optional: it is imported only when a transform that needs it is called, so
``import zerograd.transforms`` needs NumPy only.

>>> import numpy as np
>>> f = Compose([Normalize(mean=1.0, std=2.0), Flatten()])
>>> f(np.array([[1.0, 3.0], [5.0, 7.0]], dtype=np.float32))
array([0., 1., 2., 3.], dtype=float32)
"""
from __future__ import annotations

import numbers
import sys
from typing import Any, Callable, Sequence

import numpy as np

from zerograd import cuda
from zerograd.utils import pair

__all__ = ['Compose', 'Convert', 'Resize', 'CenterCrop', 'ToArray', 'ToPIL',
           'RandomHorizontalFlip', 'Normalize', 'Flatten', 'AsType', 'ToFloat', 'ToInt']

# PIL's resampling filters, by value (so a default needs no Pillow import):
# NEAREST=0, LANCZOS=1, BILINEAR=2, BICUBIC=3, BOX=4, HAMMING=5.
_RESAMPLING_FILTERS = {0: 'NEAREST', 1: 'LANCZOS', 2: 'BILINEAR', 3: 'BICUBIC', 4: 'BOX',
                       5: 'HAMMING'}
_BILINEAR = 2  # == PIL.Image.BILINEAR


# =============================================================================
# Helpers
# =============================================================================
def _pil_image(who: str) -> Any:
    """Import ``PIL.Image``, or raise a clear error naming the extra to install."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f'zerograd.transforms.{who}: Pillow is not installed; install the '
                          "image extra with `pip install 'zerograd[image]'`") from None
    return Image


def _is_pil_image(x: Any) -> bool:
    # An object can only be a PIL image if PIL.Image was imported by someone: asking never
    # imports Pillow.
    Image = sys.modules.get('PIL.Image')
    return Image is not None and isinstance(x, Image.Image)


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or cuda._is_cupy_array(x)


def _describe(x: Any) -> str:
    """A short description of a value for error messages: type, and shape/dtype or size."""
    if _is_array(x):
        return f'{type(x).__module__}.{type(x).__name__} {x.dtype} {x.shape}'
    if _is_pil_image(x):
        return f'PIL image (mode {x.mode!r}, size {x.size})'
    return f'{type(x).__module__}.{type(x).__name__}'


def _check_pil(who: str, img: Any) -> Any:
    """Import Pillow and check that img is a PIL image; returns ``PIL.Image``."""
    Image = _pil_image(who)
    if not isinstance(img, Image.Image):
        hint = '; convert an array (C, H, W) with ToPIL() first' if _is_array(img) else ''
        raise TypeError(f'{who}: expects a PIL image, got {_describe(img)}{hint}')
    return Image


def _check_array(who: str, x: Any) -> None:
    if not _is_array(x):
        hint = '; convert it with ToArray() first' if _is_pil_image(x) else ''
        raise TypeError(f'{who}: expects an ndarray, got {_describe(x)}{hint}')


def _positive_pair(who: str, name: str, size: Any) -> tuple[int, int]:
    """``size`` as a (W, H) pair of positive ints. Anything but an int or a pair of ints
    is a TypeError (as utils.pair gives every kernel_size), a size <= 0 a ValueError,
    both naming ``who``."""
    try:
        W, H = pair(size)
    except TypeError:  # utils.pair: anything but an int or a pair of ints
        raise TypeError(f'{who}: {name} must be an int or a (W, H) pair of ints, '
                        f'got {size!r}') from None
    if W <= 0 or H <= 0:
        raise ValueError(f'{who}: {name} must be positive, got {size!r}')
    return W, H


def _as_dtype(who: str, dtype: Any) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f'{who}: dtype must be a NumPy dtype, got {dtype!r}') from None


# =============================================================================
# Composition
# =============================================================================
class Compose:
    """Apply transforms one after another, in list order; an empty list is the identity.

    Args:
        transforms: callables, each taking one example and returning the next.

    >>> Compose([lambda x: x + 1, lambda x: x * 10])(1)
    20
    >>> Compose()(5)
    5
    """

    def __init__(self, transforms: Sequence[Callable] = ()) -> None:
        if callable(transforms) or isinstance(transforms, (str, bytes)):
            raise TypeError(f'Compose: transforms must be a list of callables, got '
                            f'{transforms!r}; wrap a single transform as [transform]')
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f'Compose: transforms[{i}] is not callable: {t!r}')
        self.transforms = transforms

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f'Compose({self.transforms!r})'


# =============================================================================
# PIL image transforms
# =============================================================================
class Convert:
    """Convert a PIL image to another mode: ``img.convert(mode)``.

    Args:
        mode: a PIL mode ('RGB', 'L', 'RGBA', ...), or 'BGR': converted to RGB, then the
            red and blue channels swapped (the result is a PIL image of mode 'RGB' whose
            channels hold B, G, R), as DeZero does for models trained on BGR input (VGG16).

    PIL image in, PIL image out.
    """

    def __init__(self, mode: str = 'RGB') -> None:
        if not isinstance(mode, str):
            raise TypeError(f'Convert: mode must be a PIL mode string such as "RGB", '
                            f'got {mode!r}')
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        Image = _check_pil('Convert', img)
        if self.mode == 'BGR':
            r, g, b = img.convert('RGB').split()
            return Image.merge('RGB', (b, g, r))
        try:
            return img.convert(self.mode)
        except ValueError as e:
            raise ValueError(f'Convert: cannot convert a {img.mode!r} image to mode '
                             f'{self.mode!r} ({e})') from None

    def __repr__(self) -> str:
        return f'Convert(mode={self.mode!r})'


class Resize:
    """Resize a PIL image to ``size``: ``img.resize((W, H), mode)``.

    Args:
        size: the output size, an int (square) or a (W, H) pair (PIL's order: width first).
        mode: a PIL resampling filter; None (the default) is ``PIL.Image.BILINEAR``.

    PIL image in, PIL image of size (W, H) out.
    """

    def __init__(self, size: int | tuple[int, int], mode: int | None = None) -> None:
        self.size = _positive_pair('Resize', 'size', size)
        if mode is None:
            mode = _BILINEAR
        if isinstance(mode, bool) or not isinstance(mode, (int, np.integer)) \
                or int(mode) not in _RESAMPLING_FILTERS:
            names = ', '.join(f'{v}={k}' for k, v in _RESAMPLING_FILTERS.items())
            raise ValueError(f'Resize: mode must be a PIL resampling filter ({names}), '
                             f'got {mode!r}')
        self.mode = int(mode)

    def __call__(self, img: Any) -> Any:
        _check_pil('Resize', img)
        return img.resize(self.size, self.mode)

    def __repr__(self) -> str:
        return f'Resize(size={self.size}, mode={_RESAMPLING_FILTERS[self.mode]})'


class CenterCrop:
    """Crop the center ``size`` region of a PIL image.

    Args:
        size: the output size, an int (square) or a (W, H) pair (PIL's order: width first).

    PIL image of size (W, H) in, PIL image of size ``size`` out. When the margin is odd, the
    extra pixel is cut on the right (or bottom): left = (W - OW) // 2.
    """

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = _positive_pair('CenterCrop', 'size', size)

    def __call__(self, img: Any) -> Any:
        _check_pil('CenterCrop', img)
        W, H = img.size
        OW, OH = self.size
        if OW > W or OH > H:
            raise ValueError(f'CenterCrop: crop size (W, H)={self.size} is larger than the '
                             f'image size (W, H)={img.size}')
        left = (W - OW) // 2
        top = (H - OH) // 2
        return img.crop((left, top, left + OW, top + OH))

    def __repr__(self) -> str:
        return f'CenterCrop(size={self.size})'


# =============================================================================
# PIL <-> array
# =============================================================================
class ToArray:
    """A PIL image as a (C, H, W) array of ``dtype``; an array passes through unchanged.

    Args:
        dtype: the output dtype (default float32; the values stay 0..255 for 8-bit images).

    A one-channel image (mode 'L', 'F', ...) gives C=1; 'RGB' gives C=3, 'RGBA' C=4.
    """

    def __init__(self, dtype: Any = np.float32) -> None:
        self.dtype = _as_dtype('ToArray', dtype)

    def __call__(self, img: Any) -> Any:
        if _is_array(img):
            return img
        if not _is_pil_image(img):
            raise TypeError(f'ToArray: expects a PIL image or an ndarray, '
                            f'got {_describe(img)}')
        x = np.asarray(img)
        if x.ndim == 2:  # one-channel modes: (H, W) -> (1, H, W)
            x = x[np.newaxis]
        else:            # (H, W, C) -> (C, H, W)
            x = x.transpose(2, 0, 1)
        return x.astype(self.dtype)

    def __repr__(self) -> str:
        return f'ToArray(dtype={self.dtype.name})'


class ToPIL:
    """A (C, H, W) array as a PIL image.

    C=1 gives a one-channel image (uint8: mode 'L'; float32: mode 'F'), C=3 with uint8 'RGB',
    C=4 with uint8 'RGBA'. Multi-channel images must be uint8: convert a float array holding
    0..255 with ``AsType(np.uint8)`` first.
    """

    def __call__(self, x: Any) -> Any:
        Image = _pil_image('ToPIL')
        _check_array('ToPIL', x)
        if x.ndim != 3:
            raise ValueError(f'ToPIL: expects an array of shape (C, H, W), got shape '
                             f'{x.shape}')
        x = cuda.as_numpy(x)
        data = x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)
        data = np.ascontiguousarray(data)
        try:
            return Image.fromarray(data)
        except (TypeError, KeyError, ValueError):
            raise TypeError(f'ToPIL: Pillow has no image mode for {x.shape[0]} channel(s) of '
                            f'{x.dtype} (shape {x.shape}); use uint8 with C in (1, 3, 4), '
                            f'e.g. AsType(np.uint8) first') from None

    def __repr__(self) -> str:
        return 'ToPIL()'


# =============================================================================
# Augmentation
# =============================================================================
class RandomHorizontalFlip:
    """Flip an image left-right with probability ``p``.

    Args:
        p: the flip probability, in [0, 1].

    Works on a PIL image (``FLIP_LEFT_RIGHT``) and on an array of shape (..., W), e.g.
    (C, H, W): the last axis is reversed (a new array; an unflipped input is returned
    as it is). Each call draws ``np.random.rand()`` from NumPy's global generator and flips
    when the draw is below ``p``, so ``np.random.seed`` makes the flips reproducible.
    """

    def __init__(self, p: float = 0.5) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f'RandomHorizontalFlip: p must be a probability in [0, 1], '
                             f'got {p!r}')
        self.p = float(p)

    def __call__(self, img: Any) -> Any:
        is_array = _is_array(img)
        if is_array:
            if img.ndim < 1:
                raise ValueError('RandomHorizontalFlip: expects an array of shape '
                                 '(..., W), got a 0-d array')
        elif not _is_pil_image(img):
            raise TypeError(f'RandomHorizontalFlip: expects a PIL image or an ndarray '
                            f'(..., W), got {_describe(img)}')
        if not np.random.rand() < self.p:
            return img
        if is_array:
            return img[..., ::-1].copy()
        Image = _pil_image('RandomHorizontalFlip')
        return img.transpose(getattr(Image, 'Transpose', Image).FLIP_LEFT_RIGHT)

    def __repr__(self) -> str:
        return f'RandomHorizontalFlip(p={self.p})'


# =============================================================================
# Array transforms
# =============================================================================
def _check_stat(name: str, value: Any) -> np.ndarray:
    """mean or std as a float64 array: a scalar (0-d) or per-channel (1-D)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f'Normalize: {name} must be a number or a sequence of numbers, '
                        f'got {value!r}')
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f'Normalize: {name} must be a number or a sequence of numbers, '
                        f'got {value!r}') from None
    if a.ndim > 1 or a.size == 0:
        raise ValueError(f'Normalize: {name} must be a number or a non-empty 1-D sequence '
                         f'(one value per channel), got {value!r}')
    if not np.all(np.isfinite(a)):
        raise ValueError(f'Normalize: {name} must be finite, got {value!r}')
    return a


class Normalize:
    """``(x - mean) / std`` on an array of shape (C, ...).

    Args:
        mean: a number, or one value per channel (length C, or 1).
        std: a number, or one value per channel (length C, or 1); no zero.

    Per-channel values are broadcast over the channel axis (axis 0): channel c uses
    ``mean[c]`` and ``std[c]``. A float array keeps its dtype (float32 stays float32); an
    integer or bool array (e.g. uint8 pixels) gives float32.

    >>> Normalize(mean=[1, 2], std=[1, 10])(np.array([[1, 3], [12, 22]], dtype=np.float32))
    array([[0., 2.],
           [1., 2.]], dtype=float32)
    """

    def __init__(self, mean: float | Sequence[float] = 0,
                 std: float | Sequence[float] = 1) -> None:
        self.mean = mean
        self.std = std
        self._mean = _check_stat('mean', mean)
        self._std = _check_stat('std', std)
        if np.any(self._std == 0):
            raise ValueError(f'Normalize: std must not be zero (division by zero), '
                             f'got std={std!r}')

    def _per_channel(self, name: str, a: np.ndarray, x: Any, xp: Any) -> Any:
        """a (0-d or 1-D) shaped to broadcast over x's axis 0, in x's dtype."""
        if a.ndim == 1:
            if x.ndim == 0:
                raise ValueError(f'Normalize: per-channel {name} needs an array of shape '
                                 f'(C, ...), got a 0-d array')
            C = x.shape[0]
            if a.size not in (1, C):
                raise ValueError(f'Normalize: {name} has {a.size} values but the input has '
                                 f'{C} channels (shape {x.shape}); give 1 or {C} values')
            a = a.reshape((a.size,) + (1,) * (x.ndim - 1))
        return xp.asarray(a, dtype=x.dtype)

    def __call__(self, x: Any) -> Any:
        _check_array('Normalize', x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        xp = cuda.get_array_module(x)
        # mean and std in x's dtype, so NumPy's promotion cannot turn float32 into float64.
        mean = self._per_channel('mean', self._mean, x, xp)
        std = self._per_channel('std', self._std, x, xp)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f'Normalize(mean={self.mean!r}, std={self.std!r})'


class Flatten:
    """An array as 1-D: ``x.flatten()`` (a copy). Shape (d0, d1, ...) -> (d0 * d1 * ...,)."""

    def __call__(self, x: Any) -> Any:
        _check_array('Flatten', x)
        return x.flatten()

    def __repr__(self) -> str:
        return 'Flatten()'


class AsType:
    """An array (or a NumPy/Python scalar) cast to ``dtype``: ``x.astype(dtype)``.

    Args:
        dtype: the output dtype (default float32).

    Shape is kept. ``ToFloat`` is the same class (the book's alias).
    """

    _who = 'AsType'

    def __init__(self, dtype: Any = np.float32) -> None:
        self.dtype = _as_dtype(self._who, dtype)

    def __call__(self, x: Any) -> Any:
        if _is_array(x) or isinstance(x, np.generic):
            return x.astype(self.dtype)
        if isinstance(x, (bool, numbers.Number)):  # a Python label such as 3
            return np.asarray(x).astype(self.dtype)
        hint = '; convert it with ToArray() first' if _is_pil_image(x) else ''
        raise TypeError(f'{self._who}: expects an ndarray or a scalar, got '
                        f'{_describe(x)}{hint}')

    def __repr__(self) -> str:
        return f'{type(self).__name__}(dtype={self.dtype.name})'


ToFloat = AsType


class ToInt(AsType):
    """An array (or scalar) cast to an integer ``dtype`` (default ``int``: int64 on most
    platforms). Shape is kept; floats are truncated toward zero, as ``astype`` does."""

    _who = 'ToInt'

    def __init__(self, dtype: Any = int) -> None:
        super().__init__(dtype)
        if not np.issubdtype(self.dtype, np.integer):
            raise TypeError(f'ToInt: dtype must be an integer dtype, got {self.dtype}; '
                            f'use AsType for other dtypes')
