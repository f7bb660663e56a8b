"""Ready-made image models: VGG16, ResNet50/101/152, SqueezeNet.

Architecture (output shapes and dtypes, parameter counts against torchvision's, weight-file
key names as DeZero's published files), the ``pretrained=True`` path on weight files the
tests write themselves (no network: ``ZEROGRAD_OFFLINE=1`` and a temporary cache, or a
patched ``utils.get_file``), ``VGG16.preprocess``, and SqueezeNet training.

VGG16's fully connected layers fix its input at 224 x 224, so its tests run real forward
passes of one 224 x 224 image (marked slow: drawing its 138 million weights takes a few
seconds); ResNet and SqueezeNet run on small images (global pooling makes any size work,
through the same code).
"""
import time

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import models, optimizers, utils
from zerograd.models import (VGG16, BottleneckA, BottleneckB, BuildingBlock, ResNet, ResNet50,
                             ResNet101, ResNet152, SqueezeNet, MLP)

try:  # the PyTorch comparisons are skipped where it is missing (the NumPy 1.x CI run)
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason='PyTorch is not installed')

# torchvision's parameter counts (vgg16, resnet50, squeezenet1_1).
VGG16_PARAMS = 138_357_544
RESNET50_PARAMS_TORCHVISION = 25_557_032
SQUEEZENET11_PARAMS = 1_235_496


def trainable_size(model):
    """Elements of the trained parameters (W, b, gamma, beta): BatchNorm's running
    statistics (avg_mean, avg_var) are saved with the weights but not trained."""
    return sum(p.data.size for key, p in model.named_params().items()
               if not key.endswith(('/avg_mean', '/avg_var')))


def offline_cache(monkeypatch, folder):
    """Make ``folder`` the download cache and forbid any download."""
    monkeypatch.setenv('ZEROGRAD_DATA', str(folder))
    monkeypatch.setenv('ZEROGRAD_OFFLINE', '1')


def save_uncompressed(monkeypatch, model, path):
    """``model.save_weights(path)`` with np.savez in place of np.savez_compressed: the
    same keys and arrays, the format of DeZero's (and the published) weight files. zlib
    would spend tens of seconds on hundreds of MB of random floats."""
    with monkeypatch.context() as patch:
        patch.setattr(np, 'savez_compressed', np.savez)
        model.save_weights(str(path))


def image(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def infer(model, x):
    with zerograd.test_mode(), zerograd.no_grad():
        return model(x)


# =============================================================================
# VGG16
# =============================================================================
VGG16_FIRST_KEYS = ['conv1_1/W', 'conv1_1/b', 'conv1_2/W', 'conv1_2/b', 'conv2_1/W']
VGG16_LAST_KEYS = ['conv5_3/W', 'conv5_3/b', 'fc6/W', 'fc6/b', 'fc7/W', 'fc7/b',
                   'fc8/W', 'fc8/b']


@pytest.fixture(scope='module')
def vgg16():
    """A VGG16 after one real forward of a 224 x 224 image: (model, x, y, seconds)."""
    np.random.seed(0)
    model = VGG16()
    x = image((1, 3, 224, 224))
    start = time.perf_counter()
    y = infer(model, x)  # the first call also draws the weights
    seconds = time.perf_counter() - start
    return model, x, y, seconds


def test_vgg16_names_exist_before_the_first_call():
    model = VGG16()  # lazy: nothing drawn yet, but every key is there
    keys = list(model.named_params())
    assert len(keys) == 32
    assert keys[:5] == VGG16_FIRST_KEYS and keys[-8:] == VGG16_LAST_KEYS
    assert model.conv1_1.W.data is None and model.fc6.W.data is None


@pytest.mark.slow
def test_vgg16_forward_of_one_224_image(vgg16):
    model, x, y, seconds = vgg16
    assert y.shape == (1, 1000) and y.dtype == np.float32
    assert np.all(np.isfinite(y.data))
    second = time.perf_counter()
    y2 = infer(model, x)
    second = time.perf_counter() - second
    np.testing.assert_array_equal(y2.data, y.data)  # test mode: no dropout, deterministic
    print(f'VGG16: first forward (weights drawn) {seconds:.2f} s, then {second:.2f} s')


@pytest.mark.slow
def test_vgg16_architecture(vgg16):
    model = vgg16[0]
    params = model.named_params()
    assert sum(p.data.size for p in params.values()) == VGG16_PARAMS
    assert all(p.data.dtype == np.float32 for p in params.values())
    keys = list(params)
    assert keys[:5] == VGG16_FIRST_KEYS and keys[-8:] == VGG16_LAST_KEYS
    channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    conv_keys = [k for k in keys if k.startswith('conv') and k.endswith('/W')]
    assert [params[k].shape for k in conv_keys] == \
        [(oc, c, 3, 3) for c, oc in zip([3] + channels[:-1], channels)]
    assert params['fc6/W'].shape == (512 * 7 * 7, 4096)
    assert params['fc7/W'].shape == (4096, 4096)
    assert params['fc8/W'].shape == (4096, 1000)


@pytest.mark.slow
def test_vgg16_dropout_in_training_only(vgg16):
    model, x, y, _ = vgg16
    np.random.seed(1)
    with zerograd.no_grad():
        y_train = model(x)
    assert y_train.shape == (1, 1000)
    assert not np.array_equal(y_train.data, y.data)  # fc6 and fc7 dropped out


@pytest.mark.slow
def test_vgg16_pretrained_loads_the_cached_file(vgg16, tmp_path, monkeypatch):
    model, x, y, _ = vgg16
    offline_cache(monkeypatch, tmp_path)
    save_uncompressed(monkeypatch, model, tmp_path / 'vgg16.npz')
    loaded = VGG16(pretrained=True)  # found in the cache: no download
    for key, param in loaded.named_params().items():
        assert param.data.dtype == np.float32, key
    np.testing.assert_array_equal(infer(loaded, x).data, y.data)


def test_vgg16_pretrained_asks_get_file_for_the_published_file(tmp_path, monkeypatch):
    """The published URL goes to get_file; its file then goes to load_weights (here a
    file with a wrong key, so the check fails before 553 MB would be needed)."""
    asked = []
    path = tmp_path / 'weights.npz'
    np.savez(path, **{'conv1_1/Wrong': np.zeros(1, np.float32)})

    def fake_get_file(url, *args, **kwargs):
        asked.append((url, args, kwargs))
        return str(path)

    monkeypatch.setattr(utils, 'get_file', fake_get_file)
    with pytest.raises(ValueError, match="conv1_1/Wrong") as error:
        VGG16(pretrained=True)
    assert "'conv1_1/W'" in str(error.value)  # missing from the file
    assert asked == [('https://github.com/koki0702/dezero-models/releases/download/v0.1/'
                      'vgg16.npz', (), {})]


def test_vgg16_pretrained_offline_without_the_file_is_a_download_error(tmp_path,
                                                                        monkeypatch):
    offline_cache(monkeypatch, tmp_path)
    with pytest.raises(utils.DownloadError, match='vgg16.npz') as error:
        VGG16(pretrained=True)
    assert error.value.offline


def test_vgg16_rejects_other_sizes():
    model = VGG16()
    with pytest.raises(ValueError, match=r'VGG16: x must be \(N, 3, 224, 224\)'):
        model(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match='VGG16: x must be a batch of'):
        model(np.zeros((1, 1, 224, 224), np.float32))
    with pytest.raises(TypeError, match='VGG16'):
        model([[1.0]])
    assert model.conv1_1.W.data is None  # rejected before any layer ran


# =============================================================================
# VGG16.preprocess
# =============================================================================
def test_preprocess_resizes_turns_to_bgr_and_subtracts_the_caffe_means():
    Image = pytest.importorskip('PIL.Image')
    picture = Image.new('RGB', (10, 6), (200, 100, 50))
    array = VGG16.preprocess(picture)
    assert array.shape == (3, 224, 224) and array.dtype == np.float32
    assert array.flags.c_contiguous
    # A one-colour picture stays one colour through any resampling.
    # The subtraction happens in float32: float32(50) - float32(103.939), and so on.
    expected = np.array([50, 100, 200], np.float32) - np.array(VGG16.MEAN_BGR, np.float32)
    np.testing.assert_array_equal(array[:, 100, 37], expected)
    assert array[0, 100, 37] == np.float32(50) - np.float32(103.939)  # blue first


def test_preprocess_maps_every_pixel_without_resizing():
    Image = pytest.importorskip('PIL.Image')
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    array = VGG16.preprocess(Image.fromarray(rgb), size=None, dtype=np.float64)
    assert array.shape == (3, 5, 7) and array.dtype == np.float64
    mean = np.array([103.939, 116.779, 123.68])
    expected = rgb[:, :, ::-1].astype(np.float64) - mean  # BGR, (5, 7, 3)
    np.testing.assert_array_equal(array, expected.transpose(2, 0, 1))
    # size is (width, height), as PIL's resize
    assert VGG16.preprocess(Image.fromarray(rgb), size=(8, 4)).shape == (3, 4, 8)


def test_preprocess_converts_grey_and_rgba_pictures():
    Image = pytest.importorskip('PIL.Image')
    grey = VGG16.preprocess(Image.new('L', (4, 4), 90), size=None)
    np.testing.assert_array_equal(grey[:, 0, 0],
                                  np.float32(90) - np.array(VGG16.MEAN_BGR, np.float32))
    rgba = VGG16.preprocess(Image.new('RGBA', (4, 4), (1, 2, 3, 4)), size=(224, 224))
    assert rgba.shape == (3, 224, 224)


def test_preprocess_needs_a_pil_image():
    with pytest.raises(TypeError, match='VGG16.preprocess: image must be a PIL image'):
        VGG16.preprocess(np.zeros((224, 224, 3), np.uint8))


# =============================================================================
# ResNet
# =============================================================================
RESNET50_FIRST_KEYS = ['conv1/W', 'conv1/b', 'bn1/avg_mean', 'bn1/avg_var', 'bn1/gamma',
                       'bn1/beta', 'res2/a/conv1/W', 'res2/a/bn1/avg_mean',
                       'res2/a/bn1/avg_var', 'res2/a/bn1/gamma', 'res2/a/bn1/beta',
                       'res2/a/conv2/W']
RESNET50_LAST_KEYS = ['res5/b2/conv3/W', 'res5/b2/bn3/avg_mean', 'res5/b2/bn3/avg_var',
                      'res5/b2/bn3/gamma', 'res5/b2/bn3/beta', 'fc6/W', 'fc6/b']


@pytest.fixture(scope='module')
def resnet50():
    """A ResNet50 after one forward of a 64 x 64 image in test mode: (model, x, y)."""
    np.random.seed(0)
    model = ResNet50()
    x = image((1, 3, 64, 64))
    return model, x, infer(model, x)


def test_resnet50_forward_on_a_small_image(resnet50):
    model, x, y = resnet50
    assert y.shape == (1, 1000) and y.dtype == np.float32
    assert np.all(np.isfinite(y.data))
    assert all(p.data.dtype == np.float32 for p in model.params())


def test_resnet50_has_the_standard_parameter_count(resnet50):
    """torchvision's resnet50 has 25,557,032 parameters; the MSRA/Chainer/DeZero model
    adds the 64 biases of conv1 (Caffe's conv1 has a bias term, torchvision's has none)."""
    model = resnet50[0]
    assert model.conv1.b.shape == (64,)
    assert trainable_size(model) == RESNET50_PARAMS_TORCHVISION + 64
    bn_stats = sum(p.data.size for key, p in model.named_params().items()
                   if key.endswith(('/avg_mean', '/avg_var')))
    assert bn_stats == 2 * 26_560  # two statistics per channel of the 53 BatchNorms


def test_resnet50_key_names_and_shapes(resnet50):
    params = resnet50[0].named_params()
    keys = list(params)
    assert keys[:12] == RESNET50_FIRST_KEYS and keys[-7:] == RESNET50_LAST_KEYS
    # conv1 (W, b), bn1 (4), 4 bottlenecks A (4 convs, 4 BatchNorms of 4 arrays each),
    # 12 bottlenecks B (3 convs, 3 BatchNorms), fc6 (W, b)
    assert len(keys) == 2 + 4 + 4 * (4 + 4 * 4) + 12 * (3 + 3 * 4) + 2
    convs = [k for k in keys if k.endswith('/W') and k != 'fc6/W']
    assert len(convs) == 1 + 3 * 16 + 4  # conv1, three per bottleneck, four projections
    bns = [k for k in keys if k.endswith('/gamma')]
    assert len(bns) == len(convs)  # every convolution has its BatchNorm
    for stage, n, out in [('res2', 3, 256), ('res3', 4, 512), ('res4', 6, 1024),
                          ('res5', 3, 2048)]:
        assert f'{stage}/b{n - 1}/conv1/W' in params and f'{stage}/b{n}/conv1/W' not in params
        assert params[f'{stage}/a/conv4/W'].shape[0] == out
        assert params[f'{stage}/b1/conv3/W'].shape == (out, out // 4, 1, 1)
        assert f'{stage}/a/conv1/b' not in params  # bottleneck convolutions have no bias
    assert params['conv1/W'].shape == (64, 3, 7, 7)
    assert params['res2/a/conv1/W'].shape == (64, 64, 1, 1)
    assert params['res2/a/conv2/W'].shape == (64, 64, 3, 3)
    assert params['res3/a/conv1/W'].shape == (128, 256, 1, 1)
    assert params['res5/a/conv4/W'].shape == (2048, 1024, 1, 1)
    assert params['fc6/W'].shape == (2048, 1000)


@pytest.mark.parametrize('cls, n_layers, blocks', [
    (ResNet50, 50, (3, 4, 6, 3)), (ResNet101, 101, (3, 4, 23, 3)),
    (ResNet152, 152, (3, 8, 36, 3))])
def test_resnet_depths(cls, n_layers, blocks):
    for model in (cls(), ResNet(n_layers)):
        keys = model.named_params()
        for stage, n in zip(('res2', 'res3', 'res4', 'res5'), blocks):
            assert f'{stage}/b{n - 1}/bn3/beta' in keys
            assert f'{stage}/b{n}/bn3/beta' not in keys
        convs = [k for k in keys if k.endswith('/W') and k != 'fc6/W']
        assert 3 * sum(blocks) + 2 == n_layers  # the name: bottleneck convs, conv1, fc6
        assert len(convs) == 3 * sum(blocks) + 4 + 1
    assert ResNet().n_layers == 152  # the default, as DeZero's


@pytest.mark.parametrize('n_layers', [34, 18, 0, True, '50'])
def test_resnet_other_depths_are_a_value_error(n_layers):
    with pytest.raises(ValueError, match='ResNet: n_layers must be 50, 101 or 152'):
        ResNet(n_layers=n_layers)


def test_resnet50_spatial_sizes_follow_caffe():
    """224 -> conv1 112 -> max pool (rounding up) 56 -> 56, 28, 14, 7, as the MSRA model
    (torchvision gets 56 by padding instead)."""
    pooled = models._max_pooling_ceil(np.zeros((1, 1, 112, 112), np.float32), 3, 2)
    assert pooled.shape == (1, 1, 56, 56)
    block = BuildingBlock(2, 64, 16, 32, 2)
    assert block(image((1, 64, 56, 56))).shape == (1, 32, 28, 28)
    assert block(image((1, 64, 7, 7))).shape == (1, 32, 4, 4)


def test_resnet50_train_mode_backward():
    model = ResNet50()
    x = image((2, 3, 32, 32))
    y = model(x)
    loss = F.softmax_cross_entropy(y, np.array([1, 2]))
    model.cleargrads()
    loss.backward()
    for key, param in model.named_params().items():
        if key.endswith(('/avg_mean', '/avg_var')):
            assert param.grad is None, key
        else:
            assert param.grad is not None and param.grad.shape == param.shape, key
    assert np.any(model.bn1.avg_mean.data != 0)  # the running statistics moved


def test_resnet50_pretrained_loads_its_file(resnet50, tmp_path, monkeypatch):
    model, x, y = resnet50
    path = tmp_path / 'saved.npz'
    save_uncompressed(monkeypatch, model, path)
    asked = []

    def fake_get_file(url, *args, **kwargs):
        asked.append(url)
        return str(path)

    monkeypatch.setattr(utils, 'get_file', fake_get_file)
    loaded = ResNet50(pretrained=True)
    assert asked == ['https://github.com/koki0702/dezero-models/releases/download/v0.1/'
                     'resnet50.npz']
    np.testing.assert_array_equal(infer(loaded, x).data, y.data)
    np.testing.assert_array_equal(loaded.res3.b2.bn2.avg_var.data,
                                  model.res3.b2.bn2.avg_var.data)
    ResNet(101, pretrained=False)  # nothing asked without pretrained
    assert len(asked) == 1
    with pytest.raises(ValueError, match='load_weights'):
        ResNet(101, pretrained=True)  # resnet101's keys are not in resnet50's file
    assert asked[-1].endswith('/resnet101.npz')


def test_resnet50_pretrained_file_with_a_wrong_key(resnet50, tmp_path, monkeypatch):
    """A cached file (ZEROGRAD_DATA, offline) with one key misspelt: load_weights's error
    names both keys, and nothing is loaded."""
    arrays = {key: p.data for key, p in resnet50[0].named_params().items()}
    arrays['res2/a/bn1/gama'] = arrays.pop('res2/a/bn1/gamma')
    np.savez(tmp_path / 'resnet50.npz', **arrays)
    offline_cache(monkeypatch, tmp_path)
    with pytest.raises(ValueError) as error:
        ResNet50(pretrained=True)
    message = str(error.value)
    assert 'ResNet50.load_weights' in message
    assert "missing from the file: ['res2/a/bn1/gamma']" in message
    assert "not in the model: ['res2/a/bn1/gama']" in message


def test_pretrained_float64_file_gives_float32_weights(resnet50, tmp_path, monkeypatch):
    model, x, y = resnet50
    arrays = {key: p.data.astype(np.float64) for key, p in model.named_params().items()}
    np.savez(tmp_path / 'resnet50.npz', **arrays)
    offline_cache(monkeypatch, tmp_path)
    loaded = ResNet50(pretrained=True)
    assert all(p.data.dtype == np.float32 for p in loaded.params())
    np.testing.assert_array_equal(infer(loaded, x).data, y.data)


def test_resnet_rejects_non_images():
    with pytest.raises(ValueError, match=r'ResNet50: x must be a batch of RGB/BGR images'):
        ResNet50()(np.zeros((1, 4, 32, 32), np.float32))


def test_bottlenecks():
    x = image((2, 8, 6, 6))
    a = BottleneckA(8, 4, 16, stride=2)
    assert a(x).shape == (2, 16, 3, 3)
    assert a.conv1.stride == 2 and a.conv2.stride == 1  # the original ResNet
    fb = BottleneckA(8, 4, 16, stride=2, downsample_fb=True)
    assert fb(x).shape == (2, 16, 3, 3)
    assert fb.conv1.stride == 1 and fb.conv2.stride == 2
    b = BottleneckB(16, 4)
    y = b(a(x))
    assert y.shape == (2, 16, 3, 3) and np.all(y.data >= 0)
    with pytest.raises(ValueError, match='BottleneckA: x has 5 channels, expected 8'):
        a(image((1, 5, 6, 6)))
    with pytest.raises(ValueError, match='n_layers must be at least 1'):
        BuildingBlock(0, 8, 4, 16, 1)


# =============================================================================
# Caffe-style max pooling (rounding up), as torch's ceil_mode
# =============================================================================
@needs_torch
@pytest.mark.parametrize('H, W', [(7, 7), (8, 8), (8, 9), (112, 112), (5, 4)])
def test_max_pooling_ceil_matches_torch(H, W):
    x_np = image((2, 3, H, W), seed=H * W)  # negative values too: padding never wins
    x = zerograd.Variable(x_np)
    y = models._max_pooling_ceil(x, 3, 2)
    F.sum(y * image(y.shape, seed=1)).backward()
    xt = torch.tensor(x_np, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, 3, 2, ceil_mode=True)
    yt.backward(torch.tensor(image(y.shape, seed=1)))
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


# =============================================================================
# SqueezeNet
# =============================================================================
def test_squeezenet_forward_shape_and_parameter_count():
    np.random.seed(0)
    model = SqueezeNet()
    y = model(image((1, 3, 64, 64)))
    assert y.shape == (1, 1000) and y.dtype == np.float32
    assert sum(p.data.size for p in model.params()) == SQUEEZENET11_PARAMS
    keys = list(model.named_params())
    assert keys[:6] == ['conv1/W', 'conv1/b', 'fire2/squeeze1x1/W', 'fire2/squeeze1x1/b',
                        'fire2/expand1x1/W', 'fire2/expand1x1/b']
    assert keys[-2:] == ['conv10/W', 'conv10/b']
    assert model.fire9.expand3x3.W.shape == (256, 64, 3, 3)
    assert model.conv10.W.shape == (1000, 512, 1, 1)
    assert model(image((2, 3, 224, 224))).shape == (2, 1000)
    assert SqueezeNet(n_classes=10)(image((1, 3, 17, 17))).shape == (1, 10)


def test_squeezenet_backward_and_one_sgd_step_lowers_the_loss():
    np.random.seed(0)
    model = SqueezeNet(n_classes=10)
    x = image((4, 3, 32, 32), seed=3)
    t = np.array([0, 3, 5, 9])
    optimizer = optimizers.SGD(lr=0.05).setup(model)
    with zerograd.test_mode():  # dropout off: the same function before and after the step
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        for key, param in model.named_params().items():
            assert param.grad is not None and param.grad.dtype == np.float32, key
        assert np.abs(model.conv1.W.grad.data).sum() > 0
        optimizer.update()
        after = F.softmax_cross_entropy(model(x), t)
    assert float(after.data) < float(loss.data)


def test_squeezenet_fire_module_concatenates_the_expansions():
    fire = models.Fire(2, 3, 5)
    y = fire(image((1, 4, 6, 6)))
    assert y.shape == (1, 8, 6, 6)
    s = F.relu(fire.squeeze1x1(image((1, 4, 6, 6))))
    np.testing.assert_array_equal(y.data[:, :3], F.relu(fire.expand1x1(s)).data)
    np.testing.assert_array_equal(y.data[:, 3:], F.relu(fire.expand3x3(s)).data)


def test_squeezenet_has_no_pretrained_weights():
    with pytest.raises(ValueError, match='no published SqueezeNet weights'):
        SqueezeNet(pretrained=True)


# -----------------------------------------------------------------------------
# MLP's sizes are checked at construction
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('sizes, error, message', [
    ((), ValueError, r'MLP: fc_output_sizes must be non-empty .*got \(\)'),
    ([], ValueError, r'MLP: fc_output_sizes must be non-empty'),
    (5, TypeError, r'MLP: fc_output_sizes must be a sequence of layer sizes, .*got 5 \(int\)'),
    ('10', TypeError, r'MLP: fc_output_sizes must be a sequence'),
    ((10, 0), ValueError, r'MLP: fc_output_sizes\[1\] must be a positive int, got 0'),
    ((10, 2.5), TypeError, r'MLP: fc_output_sizes\[1\] must be a positive int, got 2.5'),
])
def test_mlp_checks_its_sizes_at_construction(sizes, error, message):
    with pytest.raises(error, match=message):
        MLP(sizes)


def test_mlp_accepts_any_sequence_of_sizes():
    model = MLP(np.array([4, 2]))
    assert model(np.ones((3, 5), dtype=np.float32)).shape == (3, 2)
    assert MLP(range(1, 3))(np.ones((1, 2), dtype=np.float32)).shape == (1, 2)
