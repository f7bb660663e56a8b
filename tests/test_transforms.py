"""transforms: each transform on small hand-made inputs, dtypes, errors, lazy Pillow import."""
import subprocess
import sys

import numpy as np
import pytest

from zerograd.datasets import Dataset
from zerograd.transforms import (AsType, CenterCrop, Compose, Convert, Flatten, Normalize,
                                 RandomHorizontalFlip, Resize, ToArray, ToFloat, ToInt, ToPIL)


@pytest.fixture
def Image():
    """PIL.Image, or skip: Pillow is an optional extra."""
    return pytest.importorskip('PIL.Image')


def _rgb(Image, pixels):
    """A PIL RGB image from a nested list [row][col] = (r, g, b)."""
    return Image.fromarray(np.array(pixels, dtype=np.uint8))


def _gray(Image, rows):
    """A PIL 'L' image from a nested list [row][col] = value."""
    return Image.fromarray(np.array(rows, dtype=np.uint8))


def _pixels(img):
    """A PIL image's pixels as an (H, W[, C]) int array."""
    return np.asarray(img).astype(int)


# -----------------------------------------------------------------------------
# Compose
# -----------------------------------------------------------------------------
def test_compose_applies_in_order():
    assert Compose([lambda x: x + 1, lambda x: x * 10])(1) == 20
    assert Compose([lambda x: x * 10, lambda x: x + 1])(1) == 11


def test_compose_empty_is_identity():
    x = np.arange(3)
    assert Compose()(x) is x
    assert Compose([])(x) is x


def test_compose_of_array_transforms():
    f = Compose([Normalize(mean=1.0, std=2.0), Flatten(), AsType(np.float64)])
    y = f(np.array([[1.0, 3.0], [5.0, 7.0]], dtype=np.float32))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [0.0, 1.0, 2.0, 3.0])


def test_compose_copies_the_list_and_rejects_non_callables():
    steps = [lambda x: x + 1]
    f = Compose(steps)
    steps.append(lambda x: x * 100)  # later edits to the caller's list do not leak in
    assert f(1) == 2
    with pytest.raises(TypeError, match=r'Compose: transforms\[1\] is not callable: 3'):
        Compose([Flatten(), 3])
    with pytest.raises(TypeError, match=r'Compose: transforms must be a list.*\[transform\]'):
        Compose(Flatten())


def test_dataset_applies_composed_transforms_per_item():
    class Tiny(Dataset):
        def prepare(self):
            self.data = np.array([[[1.0, 2.0]], [[3.0, 4.0]]], dtype=np.float32)  # (2, 1, 2)
            self.label = np.array([0.0, 2.0])

    ds = Tiny(transform=Compose([Normalize(mean=1.0, std=0.5), Flatten()]),
              target_transform=ToInt())
    x, t = ds[1]
    np.testing.assert_array_equal(x, [4.0, 6.0])
    assert x.dtype == np.float32 and x.shape == (2,)
    assert t == 2 and t.dtype == np.dtype(int)


# -----------------------------------------------------------------------------
# Convert
# -----------------------------------------------------------------------------
def test_convert_rgb_to_gray(Image):
    img = _rgb(Image, [[(10, 20, 30), (255, 255, 255)]])
    y = Convert('L')(img)
    assert y.mode == 'L' and y.size == (2, 1)
    # ITU-R 601-2 luma: 10*.299 + 20*.587 + 30*.114 = 18.15
    np.testing.assert_array_equal(_pixels(y), [[18, 255]])


def test_convert_gray_to_rgb_is_the_default(Image):
    y = Convert()(_gray(Image, [[7, 200]]))
    assert y.mode == 'RGB'
    np.testing.assert_array_equal(_pixels(y), [[(7, 7, 7), (200, 200, 200)]])


def test_convert_bgr_swaps_red_and_blue(Image):
    img = _rgb(Image, [[(10, 20, 30), (1, 2, 3)]])
    y = Convert('BGR')(img)
    assert y.mode == 'RGB'
    np.testing.assert_array_equal(_pixels(y), [[(30, 20, 10), (3, 2, 1)]])
    # from a gray image: converted to RGB first
    np.testing.assert_array_equal(_pixels(Convert('BGR')(_gray(Image, [[5]]))), [[(5, 5, 5)]])


def test_convert_errors(Image):
    with pytest.raises(TypeError, match="Convert: mode must be a PIL mode string.*3"):
        Convert(3)
    with pytest.raises(TypeError, match=r'Convert: expects a PIL image, got numpy.ndarray '
                                        r'uint8 \(3, 1, 1\).*ToPIL\(\)'):
        Convert()(np.zeros((3, 1, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="Convert: cannot convert a 'RGB' image to mode 'XYZ'"):
        Convert('XYZ')(_rgb(Image, [[(1, 2, 3)]]))


# -----------------------------------------------------------------------------
# Resize
# -----------------------------------------------------------------------------
def test_resize_int_and_pair_sizes(Image):
    img = _gray(Image, [[10, 20], [30, 40]])  # W=2, H=2
    assert Resize(4)(img).size == (4, 4)
    y = Resize((6, 2))(img)  # (W, H): width first, as PIL
    assert y.size == (6, 2)
    assert Resize([3, 5])(img).size == (3, 5)


def test_resize_nearest_replicates_pixels(Image):
    img = _gray(Image, [[10, 20], [30, 40]])
    y = Resize((4, 2), mode=Image.NEAREST)(img)
    np.testing.assert_array_equal(_pixels(y), [[10, 10, 20, 20], [30, 30, 40, 40]])


def test_resize_default_is_bilinear(Image):
    # a uniform image stays uniform under any filter
    np.testing.assert_array_equal(_pixels(Resize(3)(_gray(Image, [[9, 9], [9, 9]]))),
                                  np.full((3, 3), 9))
    ramp = _gray(Image, [[0, 60, 120, 180, 240]])
    y = Resize((9, 1))(ramp)
    np.testing.assert_array_equal(_pixels(y), _pixels(ramp.resize((9, 1), Image.BILINEAR)))
    assert not np.array_equal(_pixels(y), _pixels(ramp.resize((9, 1), Image.NEAREST)))
    assert Resize(2).mode == Image.BILINEAR


def test_resize_errors(Image):
    with pytest.raises(ValueError, match=r'Resize: size must be positive, got -1'):
        Resize(-1)
    with pytest.raises(ValueError, match=r'Resize: size must be positive, got \(4, 0\)'):
        Resize((4, 0))
    # not an int or a pair of ints: a TypeError, as for a conv layer's kernel_size
    with pytest.raises(TypeError, match=r'Resize: size must be an int or a \(W, H\) pair '
                                        r'of ints, got 2.5'):
        Resize(2.5)
    with pytest.raises(TypeError, match=r'Resize: size .* got \(1, 2, 3\)'):
        Resize((1, 2, 3))
    with pytest.raises(TypeError, match=r'CenterCrop: size .* got \(1, 2, 3\)'):
        CenterCrop((1, 2, 3))
    with pytest.raises(ValueError, match=r'Resize: mode must be a PIL resampling filter.*'
                                         r'got 7'):
        Resize(2, mode=7)
    with pytest.raises(TypeError, match=r'Resize: expects a PIL image, got numpy.ndarray'):
        Resize(2)(np.zeros((1, 2, 2)))


# -----------------------------------------------------------------------------
# CenterCrop
# -----------------------------------------------------------------------------
def test_center_crop_pair(Image):
    rows = np.arange(20).reshape(4, 5)  # H=4, W=5, pixel = 5 * row + col
    y = CenterCrop((3, 2))(_gray(Image, rows))  # (W, H)
    assert y.size == (3, 2)
    np.testing.assert_array_equal(_pixels(y), [[6, 7, 8], [11, 12, 13]])


def test_center_crop_int_and_odd_margin(Image):
    rows = np.arange(16).reshape(4, 4)
    # margin 3: 1 pixel cut on the left/top, 2 on the right/bottom (as DeZero)
    np.testing.assert_array_equal(_pixels(CenterCrop(1)(_gray(Image, rows))), [[5]])
    np.testing.assert_array_equal(_pixels(CenterCrop(2)(_gray(Image, rows))),
                                  [[5, 6], [9, 10]])
    img = _rgb(Image, [[(1, 1, 1), (2, 2, 2), (3, 3, 3)]])
    np.testing.assert_array_equal(_pixels(CenterCrop((1, 1))(img)), [[(2, 2, 2)]])
    # the full size is a no-op crop
    np.testing.assert_array_equal(_pixels(CenterCrop((4, 4))(_gray(Image, rows))), rows)


def test_center_crop_errors(Image):
    with pytest.raises(ValueError, match=r'CenterCrop: crop size \(W, H\)=\(5, 2\) is larger '
                                         r'than the image size \(W, H\)=\(4, 3\)'):
        CenterCrop((5, 2))(_gray(Image, np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r'CenterCrop: size must be positive, got 0'):
        CenterCrop(0)
    with pytest.raises(TypeError, match=r'CenterCrop: expects a PIL image, got builtins.list'):
        CenterCrop(1)([[1]])


# -----------------------------------------------------------------------------
# ToArray / ToPIL
# -----------------------------------------------------------------------------
def test_to_array_rgb_is_chw_float32(Image):
    img = _rgb(Image, [[(1, 2, 3), (4, 5, 6), (7, 8, 9)],
                       [(10, 11, 12), (13, 14, 15), (16, 17, 18)]])  # H=2, W=3
    x = ToArray()(img)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], [[1, 4, 7], [10, 13, 16]])   # red
    np.testing.assert_array_equal(x[1], [[2, 5, 8], [11, 14, 17]])   # green
    np.testing.assert_array_equal(x[2], [[3, 6, 9], [12, 15, 18]])   # blue


def test_to_array_gray_gets_one_channel_and_dtype(Image):
    x = ToArray(np.uint8)(_gray(Image, [[1, 2, 3], [4, 5, 6]]))
    assert x.shape == (1, 2, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, [[[1, 2, 3], [4, 5, 6]]])
    x = ToArray(np.float64)(_gray(Image, [[255]]))
    assert x.dtype == np.float64 and x.tolist() == [[[255.0]]]


def test_to_array_passes_arrays_through():
    x = np.arange(6, dtype=np.int16).reshape(1, 2, 3)
    assert ToArray()(x) is x  # unchanged, as DeZero: no cast


def test_to_array_errors():
    with pytest.raises(TypeError, match=r'ToArray: expects a PIL image or an ndarray, '
                                        r'got builtins.list'):
        ToArray()([[1, 2]])
    with pytest.raises(TypeError, match=r"ToArray: dtype must be a NumPy dtype, got 'nope'"):
        ToArray('nope')


def test_to_pil_rgb_and_round_trip(Image):
    x = np.arange(18, dtype=np.uint8).reshape(3, 2, 3)  # (C, H, W)
    img = ToPIL()(x)
    assert isinstance(img, Image.Image) and img.mode == 'RGB' and img.size == (3, 2)
    assert img.getpixel((2, 1)) == (5, 11, 17)  # (x=W index, y=H index): x[:, 1, 2]
    y = ToArray(np.uint8)(img)
    np.testing.assert_array_equal(y, x)


def test_to_pil_one_channel(Image):
    img = ToPIL()(np.array([[[0, 128, 255]]], dtype=np.uint8))
    assert img.mode == 'L' and img.size == (3, 1)
    np.testing.assert_array_equal(_pixels(img), [[0, 128, 255]])
    img = ToPIL()(np.array([[[0.5, -1.0]]], dtype=np.float32))
    assert img.mode == 'F'
    np.testing.assert_array_equal(np.asarray(img), [[0.5, -1.0]])


def test_to_pil_errors(Image):
    with pytest.raises(TypeError, match=r'ToPIL: Pillow has no image mode for 3 channel\(s\) '
                                        r'of float32 .*AsType\(np.uint8\)'):
        ToPIL()(np.zeros((3, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r'ToPIL: expects an array of shape \(C, H, W\), '
                                         r'got shape \(2, 2\)'):
        ToPIL()(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(TypeError, match=r'ToPIL: expects an ndarray, got PIL image.*'
                                        r'ToArray\(\)'):
        ToPIL()(_gray(Image, [[1]]))


# -----------------------------------------------------------------------------
# RandomHorizontalFlip
# -----------------------------------------------------------------------------
# np.random.seed(0); np.random.rand() x 6 gives
# 0.549, 0.715, 0.603, 0.545, 0.424, 0.646: with p=0.5 only the fifth draw flips.
SEED0_FLIPS_AT_HALF = [False, False, False, False, True, False]


def test_random_flip_array_with_seed():
    x = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.float32)  # (C, H, W) = (1, 2, 3)
    flipped = np.array([[[3, 2, 1], [6, 5, 4]]], dtype=np.float32)
    f = RandomHorizontalFlip()
    np.random.seed(0)
    for expect_flip in SEED0_FLIPS_AT_HALF:
        y = f(x)
        np.testing.assert_array_equal(y, flipped if expect_flip else x)
        assert y.dtype == np.float32
    # one draw per call from the global generator: the next draw is the 7th
    np.random.seed(0)
    np.random.rand(6)
    seventh = np.random.rand()
    np.random.seed(0)
    for _ in range(6):
        f(x)
    assert np.random.rand() == seventh


def test_random_flip_array_p0_p1_and_input_untouched():
    x = np.arange(12).reshape(2, 2, 3)
    original = x.copy()
    for _ in range(20):
        assert RandomHorizontalFlip(p=0)(x) is x
        y = RandomHorizontalFlip(p=1)(x)
        np.testing.assert_array_equal(y, original[..., ::-1])
        np.testing.assert_array_equal(x, original)
        assert y.flags.c_contiguous and not np.shares_memory(x, y)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(np.array([1, 2, 3])), [3, 2, 1])


def test_random_flip_boundary_draws(monkeypatch):
    # flip when draw < p: p=0 never flips (even on a draw of 0.0), a draw equal to p does not
    x = np.array([1, 2, 3])
    monkeypatch.setattr(np.random, 'rand', lambda: 0.0)
    assert RandomHorizontalFlip(p=0)(x) is x
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.25)(x), [3, 2, 1])
    monkeypatch.setattr(np.random, 'rand', lambda: 0.25)
    assert RandomHorizontalFlip(p=0.25)(x) is x


def test_random_flip_pil_with_seed(Image):
    img = _rgb(Image, [[(1, 1, 1), (2, 2, 2), (3, 3, 3)]])
    flipped = [[(3, 3, 3), (2, 2, 2), (1, 1, 1)]]
    f = RandomHorizontalFlip(p=0.5)
    np.random.seed(0)
    for expect_flip in SEED0_FLIPS_AT_HALF:
        y = f(img)
        assert isinstance(y, Image.Image) and y.mode == 'RGB'
        np.testing.assert_array_equal(_pixels(y), flipped if expect_flip else _pixels(img))
    np.testing.assert_array_equal(_pixels(RandomHorizontalFlip(p=1)(img)), flipped)
    assert RandomHorizontalFlip(p=0)(img) is img


def test_random_flip_errors():
    for p in (-0.1, 1.5, float('nan'), '0.5', True):
        with pytest.raises(ValueError, match=r'RandomHorizontalFlip: p must be a probability '
                                             r'in \[0, 1\], got'):
            RandomHorizontalFlip(p)
    with pytest.raises(ValueError, match=r'got 1.5'):
        RandomHorizontalFlip(1.5)
    with pytest.raises(TypeError, match=r'RandomHorizontalFlip: expects a PIL image or an '
                                        r'ndarray \(..., W\), got builtins.list'):
        RandomHorizontalFlip()([1, 2])


# -----------------------------------------------------------------------------
# Normalize
# -----------------------------------------------------------------------------
def test_normalize_scalar_defaults_and_values():
    x = np.array([[2.0, 4.0]], dtype=np.float32)
    np.testing.assert_array_equal(Normalize()(x), x)
    y = Normalize(mean=2, std=4)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[0.0, 0.5]])


def test_normalize_per_channel():
    x = np.array([[[1, 3], [5, 7]],
                  [[10, 20], [30, 40]],
                  [[0, 0], [-3, 3]]], dtype=np.float32)  # (C, H, W) = (3, 2, 2)
    y = Normalize(mean=[1, 10, 0], std=[2, 10, 3])(x)
    expected = np.array([[[0, 1], [2, 3]],
                         [[0, 1], [2, 3]],
                         [[0, 0], [-1, 1]]], dtype=np.float32)
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.float32 and y.shape == (3, 2, 2)
    # tuple and ndarray statistics, and a one-value sequence broadcast to every channel
    np.testing.assert_array_equal(Normalize(mean=(1, 10, 0), std=np.array([2, 10, 3]))(x),
                                  expected)
    np.testing.assert_array_equal(Normalize(mean=[1], std=[2])(x), (x - 1) / 2)
    # per-channel on (C,) and (C, L) arrays
    np.testing.assert_array_equal(Normalize(mean=[1, 2], std=[1, 2])(np.array([3.0, 6.0])),
                                  [2.0, 2.0])


def test_normalize_keeps_float_dtypes():
    for dtype in (np.float16, np.float32, np.float64):
        x = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=dtype)
        # float64 statistics (np.float64 scalars, float64 arrays) must not promote x
        y = Normalize(mean=np.float64(0.5), std=np.array([0.5, 2.0]))(x)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, np.array([[-1.0, 1.0], [0.75, 1.25]], dtype=dtype))


def test_normalize_integer_input_gives_float32():
    x = np.array([[0, 128, 255]], dtype=np.uint8)
    y = Normalize(mean=0.5, std=0.5)(x)  # DeZero cast 0.5 to uint8 (0): ours keeps it
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[-1.0, 255.0, 509.0]])


def test_normalize_errors():
    with pytest.raises(ValueError, match=r'Normalize: std must not be zero .*got std=0'):
        Normalize(std=0)
    with pytest.raises(ValueError, match=r'Normalize: std must not be zero .*\[1, 0.0, 2\]'):
        Normalize(std=[1, 0.0, 2])
    with pytest.raises(ValueError, match=r'Normalize: mean has 2 values but the input has 3 '
                                         r'channels \(shape \(3, 1, 1\)\); give 1 or 3'):
        Normalize(mean=[0, 1])(np.zeros((3, 1, 1)))
    with pytest.raises(ValueError, match=r'Normalize: std has 4 values but the input has 3'):
        Normalize(std=[1, 2, 3, 4])(np.zeros((3, 1, 1)))
    with pytest.raises(TypeError, match=r"Normalize: mean must be a number or a sequence of "
                                        r"numbers, got 'a'"):
        Normalize(mean='a')
    with pytest.raises(ValueError, match=r'Normalize: mean must be a number or a non-empty '
                                         r'1-D sequence'):
        Normalize(mean=[[1, 2]])
    with pytest.raises(ValueError, match=r'Normalize: std must be finite, got inf'):
        Normalize(std=float('inf'))
    with pytest.raises(TypeError, match=r'Normalize: expects an ndarray, got builtins.list'):
        Normalize()([1.0, 2.0])


# -----------------------------------------------------------------------------
# Flatten, AsType / ToFloat, ToInt
# -----------------------------------------------------------------------------
def test_flatten():
    x = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    y = Flatten()(x)
    assert y.shape == (6,) and y.dtype == np.uint8
    np.testing.assert_array_equal(y, [0, 1, 2, 3, 4, 5])
    y[0] = 99  # a copy
    assert x[0, 0, 0] == 0
    with pytest.raises(TypeError, match=r'Flatten: expects an ndarray, got builtins.int'):
        Flatten()(3)


def test_as_type_and_to_float_alias():
    assert ToFloat is AsType
    x = np.array([[1, 2]], dtype=np.uint8)
    y = AsType()(x)
    assert y.dtype == np.float32 and y.shape == (1, 2)
    np.testing.assert_array_equal(y, [[1.0, 2.0]])
    assert ToFloat(np.float64)(x).dtype == np.float64
    assert AsType(np.int8)(np.array([1.9, -1.9])).tolist() == [1, -1]
    # labels are often NumPy or Python scalars
    t = AsType()(np.int64(3))
    assert t == 3.0 and t.dtype == np.float32
    t = AsType()(3)
    assert t == 3.0 and t.dtype == np.float32


def test_to_int():
    y = ToInt()(np.array([1.7, -1.7, 2.0], dtype=np.float32))
    assert y.dtype == np.dtype(int)
    assert y.tolist() == [1, -1, 2]  # truncation toward zero, as astype
    assert ToInt(np.uint8)(np.array([3.0])).dtype == np.uint8
    t = ToInt()(np.float64(4.0))
    assert t == 4 and t.dtype == np.dtype(int)


def test_as_type_errors():
    with pytest.raises(TypeError, match=r"AsType: dtype must be a NumPy dtype, got 'nope'"):
        AsType('nope')
    with pytest.raises(TypeError, match=r'AsType: expects an ndarray or a scalar, got '
                                        r'builtins.str'):
        AsType()('1')
    with pytest.raises(TypeError, match=r'ToInt: dtype must be an integer dtype, got '
                                        r'float32'):
        ToInt(np.float32)
    with pytest.raises(TypeError, match=r'ToInt: expects an ndarray or a scalar'):
        ToInt()(None)


def test_reprs():
    assert repr(Normalize(mean=[1, 2], std=3)) == 'Normalize(mean=[1, 2], std=3)'
    assert repr(AsType()) == 'AsType(dtype=float32)'
    assert repr(ToInt(np.int32)) == 'ToInt(dtype=int32)'
    assert repr(RandomHorizontalFlip()) == 'RandomHorizontalFlip(p=0.5)'
    assert repr(Resize(3)) == 'Resize(size=(3, 3), mode=BILINEAR)'
    assert repr(Compose([Flatten()])) == 'Compose([Flatten()])'


# -----------------------------------------------------------------------------
# Pillow: imported lazily
# -----------------------------------------------------------------------------
def _run(code):
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)


def test_import_does_not_import_pillow():
    r = _run("import zerograd.transforms, sys; assert 'PIL' not in sys.modules")
    assert r.returncode == 0, r.stderr


def test_array_transforms_never_import_pillow():
    code = '\n'.join([
        'import sys, numpy as np',
        'from zerograd.transforms import *',
        'x = np.ones((3, 2, 2), dtype=np.float32)',
        'f = Compose([ToArray(), RandomHorizontalFlip(p=1), Normalize([0, 1, 2], 2),',
        '             Flatten(), AsType(np.float64), ToInt()])',
        'assert f(x).shape == (12,)',
        "assert 'PIL' not in sys.modules, 'PIL was imported'",
    ])
    r = _run(code)
    assert r.returncode == 0, r.stderr


def test_missing_pillow_names_the_extra(monkeypatch):
    # None in sys.modules makes `from PIL import Image` raise ImportError, as if not installed
    monkeypatch.setitem(sys.modules, 'PIL', None)
    monkeypatch.setitem(sys.modules, 'PIL.Image', None)
    for transform, arg in [(Convert(), None), (Resize(2), None), (CenterCrop(1), None),
                           (ToPIL(), np.zeros((1, 1, 1), dtype=np.uint8))]:
        name = type(transform).__name__
        with pytest.raises(ImportError, match=rf"zerograd.transforms.{name}: Pillow is not "
                                              rf"installed.*pip install 'zerograd\[image\]'"):
            transform(arg)
    # arrays still flip without Pillow
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1)(np.array([1, 2])), [2, 1])
