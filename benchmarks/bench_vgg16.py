"""VGG16 inference: forward of one 1x3x224x224 float32 image (no_grad, test_mode),
milliseconds per forward, zerograd's ``models.VGG16`` against the same network built from
``torch.nn`` layers (torchvision is not needed) in the same run.

Both sides hold the same weights (drawn here with He scaling, so the activations keep their
size through the 16 layers, and copied into both models) and see the same image; the
script first checks that the two outputs agree to float32 tolerance.

    python benchmarks/bench_vgg16.py [--profile]
"""
import harness  # noqa: F401  (sets the thread limits first)

import os  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

import zerograd  # noqa: E402
from zerograd.models import VGG16  # noqa: E402

rng = np.random.default_rng(0)
X = rng.standard_normal((1, 3, 224, 224), dtype=np.float32)

# (name, in, out) of the convolutions and the fully connected layers, as VGG16's.
CONVS = [('conv1_1', 3, 64), ('conv1_2', 64, 64), ('conv2_1', 64, 128),
         ('conv2_2', 128, 128), ('conv3_1', 128, 256), ('conv3_2', 256, 256),
         ('conv3_3', 256, 256), ('conv4_1', 256, 512), ('conv4_2', 512, 512),
         ('conv4_3', 512, 512), ('conv5_1', 512, 512), ('conv5_2', 512, 512),
         ('conv5_3', 512, 512)]
FCS = [('fc6', 512 * 7 * 7, 4096), ('fc7', 4096, 4096), ('fc8', 4096, 1000)]
POOL_AFTER = {'conv1_2', 'conv2_2', 'conv3_3', 'conv4_3', 'conv5_3'}


def _weights() -> dict:
    """The weights of both sides, keyed as VGG16's weight file; Linear W is (in, out)."""
    weights = {}
    for name, C, OC in CONVS:
        scale = np.float32(np.sqrt(2.0 / (C * 9)))
        weights[f'{name}/W'] = rng.standard_normal((OC, C, 3, 3), dtype=np.float32) * scale
        weights[f'{name}/b'] = rng.standard_normal(OC, dtype=np.float32) * np.float32(0.01)
    for name, I, O in FCS:
        scale = np.float32(np.sqrt(2.0 / I))
        weights[f'{name}/W'] = rng.standard_normal((I, O), dtype=np.float32) * scale
        weights[f'{name}/b'] = rng.standard_normal(O, dtype=np.float32) * np.float32(0.01)
    return weights


WEIGHTS = _weights()


def zerograd_model() -> VGG16:
    model = VGG16()
    params = model.named_params()
    assert set(params) == set(WEIGHTS), sorted(set(params) ^ set(WEIGHTS))
    for key, param in params.items():  # what load_weights does to the lazy parameters
        param.data = WEIGHTS[key]
    return model


def torch_model(torch):
    """VGG16 on torch.nn layers (as torchvision's vgg16) holding WEIGHTS."""
    nn = torch.nn
    features = []
    for name, C, OC in CONVS:
        conv = nn.Conv2d(C, OC, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(WEIGHTS[f'{name}/W']))
            conv.bias.copy_(torch.from_numpy(WEIGHTS[f'{name}/b']))
        features += [conv, nn.ReLU(inplace=True)]
        if name in POOL_AFTER:
            features.append(nn.MaxPool2d(2, 2))
    classifier = []
    for name, I, O in FCS:
        linear = nn.Linear(I, O)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(WEIGHTS[f'{name}/W'].T)))
            linear.bias.copy_(torch.from_numpy(WEIGHTS[f'{name}/b']))
        classifier.append(linear)
        if name != 'fc8':
            classifier += [nn.ReLU(inplace=True), nn.Dropout(0.5)]
    model = nn.Sequential(*features, nn.Flatten(), *classifier)
    return model.eval()


def make_zerograd(model: VGG16):
    def run():
        with zerograd.no_grad(), zerograd.test_mode():
            y = model(X)
        assert y.shape == (1, 1000) and y.dtype == np.float32
        return y.data
    return run


def make_torch(torch, model):
    x = torch.from_numpy(X)

    def run():
        with torch.inference_mode():
            return model(x).numpy()
    return run


def main():
    model = zerograd_model()
    if '--profile' in sys.argv:
        import cProfile
        import pstats
        run = make_zerograd(model)
        run()
        cProfile.runctx('run()', globals(), {'run': run}, '/tmp/bench_vgg16.prof')
        pstats.Stats('/tmp/bench_vgg16.prof').sort_stats('tottime').print_stats(15)
        return
    print(harness.machine())
    print(f'load average at start: {os.getloadavg()[0]:.2f}')
    sides = {'zerograd': make_zerograd(model)}
    torch = harness.import_torch()
    if torch is not None:
        sides['torch'] = make_torch(torch, torch_model(torch))
        y_zerograd, y_torch = sides['zerograd'](), sides['torch']()
        scale = np.abs(y_torch).max()
        np.testing.assert_allclose(y_zerograd, y_torch, rtol=1e-4, atol=1e-4 * scale)
        print(f'outputs agree: max |difference| {np.abs(y_zerograd - y_torch).max():.3g} '
              f'(max |y| {scale:.3g})')
    times = harness.compare(sides, repeats=11, warmup=1)
    harness.report('VGG16 forward, one 1x3x224x224 float32 image (no_grad, test_mode), '
                   'ms per forward', times, scale=1 / 1000, unit='ms')
    print(f'load average at end: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
