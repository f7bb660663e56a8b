"""Checkpoints: a model's weights, its optimizer's state and a few numbers in one file, so
that training stops and resumes exactly where it was (bit for bit).

>>> import os, tempfile
>>> import numpy as np
>>> from zerograd import checkpoints
>>> from zerograd.models import MLP
>>> from zerograd.optimizers import Adam
>>> model = MLP((4, 2)); _ = model(np.zeros((1, 3), dtype=np.float32))
>>> optimizer = Adam().setup(model)
>>> path = os.path.join(tempfile.mkdtemp(), 'ckpt.npz')
>>> checkpoints.save(path, model, optimizer, epoch=3)
>>> model2 = MLP((4, 2)); optimizer2 = Adam().setup(model2)
>>> checkpoints.load(path, model2, optimizer2)
{'epoch': 3}

The file is one compressed ``.npz`` of plain arrays (no pickle; read with
``allow_pickle=False``), written under a temporary name and renamed::

    zerograd_checkpoint            0-d int: the format version (1)
    model/<key>                    the weights, keys as in save_weights ('l0/W', ...)
    optimizer_class                0-d unicode array: the optimizer's class name ('Adam')
    optimizer_hyperparams/<name>   0-d float: each hyper-parameter ('alpha', 'beta1', ...)
    optimizer/<key>                the optimizer's state_dict() ('m/l0/W', 't', ...)
    extra/<name>                   0-d arrays: the extras passed to save (epoch=3)
    random/<field>                 NumPy's global generator state (random_state=True only)
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from zerograd import cuda
from zerograd.layers import _atomic_savez, read_npz
from zerograd.optimizers import Optimizer

FORMAT_VERSION = 1
_EXTRA_TYPES = (bool, int, float, str, np.bool_, np.integer, np.floating, np.str_)


def save(path: str, model: Any, optimizer: Optimizer | None = None, *,
         random_state: bool = False, **extra: Any) -> None:
    """Write ``model``'s weights, ``optimizer``'s state and hyper-parameters (if given) and
    the ``extra`` numbers (int, float, bool or str, e.g. ``epoch=5``) to one ``.npz`` file.
    With ``random_state=True`` the state of NumPy's global generator is saved too (shuffling
    and dropout draw from it), so ``load(..., random_state=True)`` resumes bit for bit.

    ``.npz`` is appended to ``path`` when missing. The file is written under a temporary
    name in the same folder and renamed, so a crash never leaves a broken checkpoint.
    """
    arrays: dict[str, np.ndarray] = {'zerograd_checkpoint': np.array(FORMAT_VERSION)}
    for key, value in model.weight_arrays('checkpoints.save', name_model=True).items():
        arrays[f'model/{key}'] = value
    if optimizer is not None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f'checkpoints.save: optimizer must be a zerograd Optimizer, got '
                            f'{type(optimizer).__name__}')
        arrays['optimizer_class'] = np.array(type(optimizer).__name__)
        for name, value in optimizer.hyperparams().items():
            arrays[f'optimizer_hyperparams/{name}'] = np.array(value, dtype=np.float64)
        for key, value in optimizer.state_dict().items():
            arrays[f'optimizer/{key}'] = value
    if random_state:
        kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
        arrays['random/kind'] = np.array(kind)
        arrays['random/keys'] = keys
        arrays['random/pos'] = np.array(pos)
        arrays['random/has_gauss'] = np.array(has_gauss)
        arrays['random/cached_gaussian'] = np.array(cached_gaussian)
    for name, value in extra.items():
        if not isinstance(value, _EXTRA_TYPES):
            raise TypeError(f'checkpoints.save: extra {name!r} must be an int, float, bool or '
                            f'str, got {type(value).__name__}')
        arrays[f'extra/{name}'] = np.array(value)
    _atomic_savez(path, arrays)


def load(path: str, model: Any, optimizer: Optimizer | None = None, *,
         random_state: bool = False) -> dict[str, Any]:
    """Restore a checkpoint written by ``save`` into ``model`` (and ``optimizer``); return
    the extras as a dict of Python scalars (``{'epoch': 5}``). With ``random_state=True``
    NumPy's global generator is set back to the state saved with the checkpoint (an error
    if none was saved); without it the caller's generator is left alone.

    ``model`` and ``optimizer`` are new or used objects of the same architecture and
    optimizer class as those saved; lazily created weights need no forward pass first. An
    optimizer not yet set up is set up on ``model``. Everything is checked before anything
    changes: the file (corrupt, not a checkpoint), every weight key and shape, the optimizer
    class, its state names and shapes; a difference raises ValueError naming it.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and not path.endswith('.npz') and os.path.exists(path + '.npz'):
        path += '.npz'  # save appended it
    arrays = read_npz(path, 'checkpoints.load')
    if 'zerograd_checkpoint' not in arrays:
        raise ValueError(f'checkpoints.load: {path!r} is not a checkpoint written by '
                         'zerograd.checkpoints.save (a weights file from save_weights is read '
                         'with model.load_weights)')
    version = arrays['zerograd_checkpoint']
    if version.shape != () or version.dtype.kind not in 'iu' or int(version) != FORMAT_VERSION:
        raise ValueError(f'checkpoints.load: {path!r} has checkpoint format {version!r}; this '
                         f'zerograd reads format {FORMAT_VERSION}')
    groups: dict[str, dict[str, np.ndarray]] = {'model': {}, 'optimizer': {},
                                                'optimizer_hyperparams': {}, 'extra': {},
                                                'random': {}}
    for name, value in arrays.items():
        group, _, key = name.partition('/')
        if group in groups and key:
            groups[group][key] = value

    # -- check everything first --------------------------------------------------------
    model_arrays = groups['model']
    model._check_weights(model_arrays, f'checkpoints.load({path!r})')
    extras = {}
    for name, value in groups['extra'].items():
        if value.shape != ():
            raise ValueError(f'checkpoints.load: extra {name!r} in {path!r} is not a scalar '
                             f'(shape {value.shape})')
        extras[name] = value.item()
    hyperparams: dict[str, float] = {}
    if optimizer is not None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f'checkpoints.load: optimizer must be a zerograd Optimizer, got '
                            f'{type(optimizer).__name__}')
        if 'optimizer_class' not in arrays:
            raise ValueError(f'checkpoints.load: {path!r} holds no optimizer state (it was '
                             'saved without an optimizer)')
        saved_class = str(arrays['optimizer_class'])
        if saved_class != type(optimizer).__name__:
            raise ValueError(f'checkpoints.load: {path!r} holds the state of a {saved_class} '
                             f'optimizer, not of {type(optimizer).__name__}; build a '
                             f'{saved_class} to resume')
        for name, value in groups['optimizer_hyperparams'].items():
            if value.shape != () or value.dtype.kind not in 'iuf':
                raise ValueError(f'checkpoints.load: hyper-parameter {name!r} in {path!r} is '
                                 f'not a number: {value!r}')
            hyperparams[name] = float(value)
        if set(hyperparams) != set(optimizer.hyperparams()):
            raise ValueError(f'checkpoints.load: {path!r} holds hyper-parameters '
                             f'{sorted(hyperparams)}, {saved_class} has '
                             f'{sorted(optimizer.hyperparams())}')
        type(optimizer)(**hyperparams)  # validates the values, with the class's messages
        set_up_here = optimizer.target is None
        if set_up_here:
            optimizer.setup(model)
        try:
            optimizer._check_state_dict(groups['optimizer'], shapes={
                key: value.shape for key, value in model_arrays.items()})
        except ValueError:
            if set_up_here:
                optimizer.target = None
            raise

    saved_random = groups['random']
    if random_state:
        if sorted(saved_random) != ['cached_gaussian', 'has_gauss', 'keys', 'kind', 'pos']:
            raise ValueError(f'checkpoints.load: {path!r} holds no random state (save it with '
                             'random_state=True)')
        rng_state = (str(saved_random['kind']), saved_random['keys'].astype(np.uint32),
                     int(saved_random['pos']), int(saved_random['has_gauss']),
                     float(saved_random['cached_gaussian']))
        try:
            np.random.RandomState().set_state(rng_state)  # checks the state before use
        except (ValueError, IndexError, TypeError) as error:
            raise ValueError(f'checkpoints.load: {path!r} holds a broken random state: '
                             f'{error}') from None

    # -- then change things --------------------------------------------------------------
    model._set_weights(model_arrays)
    if optimizer is not None:
        for name, value in hyperparams.items():
            setattr(optimizer, name, value)
        optimizer.load_state_dict(groups['optimizer'])
    if random_state:
        np.random.set_state(rng_state)
    return extras


