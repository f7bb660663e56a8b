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
    optimizer/<key>                the optimizer's state_dict(): every slot of every
                                   parameter ('m/l0/W', 'v/l0/W', ...) and scalars ('t')
    extra/<name>                   0-d arrays: the extras passed to save (epoch=3)
    random/<field>                 NumPy's global generator state (random_state=True only)

``load`` checks every one of these before it changes anything (see its docstring): a
tampered or damaged file is a ValueError that names the entry, never a crash later.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from zerograd.layers import _atomic_savez, npz_path_to_read, read_npz
from zerograd.optimizers import Optimizer

FORMAT_VERSION = 1
_EXTRA_TYPES = (bool, int, float, str, np.bool_, np.integer, np.floating, np.str_)


def save(path: str, model: Any, optimizer: Optimizer | None = None, *,
         random_state: bool = False, **extra: Any) -> None:
    """Write ``model``'s weights, ``optimizer``'s state and hyper-parameters (if given) and
    the ``extra`` numbers (int, float, bool or str, e.g. ``epoch=5``; ``epoch`` is an
    integer >= 0, what ``load`` accepts) to one ``.npz`` file.
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
    epoch = extra.get('epoch')
    if epoch is not None and (arrays['extra/epoch'].dtype.kind not in 'iu' or epoch < 0):
        raise ValueError(f'checkpoints.save: extra \'epoch\' must be an integer >= 0, got '
                         f'{epoch!r}')
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
    changes, and a difference raises ValueError naming it: the file (corrupt, not a
    checkpoint, array headers that do not match their data), every weight key, shape,
    dtype and value (finite, fits the model's dtype), the optimizer class and its
    hyper-parameters (each in its range), every state slot of every parameter (present,
    no others, shape, dtype, finite), the extras (scalars; ``epoch`` an integer >= 0) and
    the random state (every field in the range NumPy's generator may be given).
    """
    path = npz_path_to_read(path)  # save appends .npz; either name is accepted
    where = f'checkpoints.load({path!r})'

    def check_headers(headers: dict[str, Any]) -> None:
        """What can be known before any data is read: a checkpoint, of this model."""
        if 'zerograd_checkpoint' not in headers:
            raise ValueError(f'checkpoints.load: {path!r} is not a checkpoint written by '
                             'zerograd.checkpoints.save (a weights file from save_weights is '
                             'read with model.load_weights)')
        model._check_weight_layout(_group(headers, 'model'), where)

    arrays = read_npz(path, 'checkpoints.load', check_headers=check_headers)
    version = arrays['zerograd_checkpoint']
    if version.shape != () or version.dtype.kind not in 'iu' or int(version) != FORMAT_VERSION:
        raise ValueError(f'checkpoints.load: {path!r} has checkpoint format {version!r}; this '
                         f'zerograd reads format {FORMAT_VERSION}')

    # -- check everything first --------------------------------------------------------
    model_arrays = model._check_weights(_group(arrays, 'model'), where)
    extras = _check_extras(_group(arrays, 'extra'), path)
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
        for name, value in _group(arrays, 'optimizer_hyperparams').items():
            if value.shape != () or value.dtype.kind not in 'iuf':
                raise ValueError(f'checkpoints.load: hyper-parameter {name!r} in {path!r} is '
                                 f'not a number: {value!r}')
            hyperparams[name] = float(value)
        if set(hyperparams) != set(optimizer.hyperparams()):
            raise ValueError(f'checkpoints.load: {path!r} holds hyper-parameters '
                             f'{sorted(hyperparams)}, {saved_class} has '
                             f'{sorted(optimizer.hyperparams())}')
        # The class's own checks (finite, in range), with its messages.
        type(optimizer)(**hyperparams)
        set_up_here = optimizer.target is None
        if set_up_here:
            optimizer.setup(model)
        try:  # the state against the weights as they will be once loaded
            optimizer._check_state_dict(_group(arrays, 'optimizer'), params=model_arrays)
        except ValueError:
            if set_up_here:
                optimizer.target = None
            raise

    saved_random = _group(arrays, 'random')
    if random_state:
        rng_state = _check_random_state(saved_random, path)

    # -- then change things --------------------------------------------------------------
    model._set_weights(model_arrays)
    if optimizer is not None:
        for name, value in hyperparams.items():
            setattr(optimizer, name, value)
        optimizer.load_state_dict(_group(arrays, 'optimizer'))
    if random_state:
        np.random.set_state(rng_state)
    return extras


def _group(arrays: dict[str, Any], group: str) -> dict[str, Any]:
    """The entries named '<group>/<key>', by key."""
    prefix = group + '/'
    return {name[len(prefix):]: value for name, value in arrays.items()
            if name.startswith(prefix) and len(name) > len(prefix)}


def _check_extras(saved: dict[str, np.ndarray], path: str) -> dict[str, Any]:
    """The extras as Python scalars: each a 0-d bool, int, float or str array (what save
    writes), and ``epoch``, which training loops resume from, an integer >= 0."""
    extras = {}
    for name, value in saved.items():
        if value.shape != () or value.dtype.kind not in 'biufU':
            raise ValueError(f'checkpoints.load: extra {name!r} in {path!r} must be a bool, '
                             f'int, float or str scalar, got {value.dtype} of shape '
                             f'{value.shape}')
        extras[name] = value.item()
    epoch = extras.get('epoch')
    if epoch is not None and (saved['epoch'].dtype.kind not in 'iu' or epoch < 0):
        raise ValueError(f'checkpoints.load: extra \'epoch\' in {path!r} must be an integer '
                         f'>= 0, got {epoch!r}')
    return extras


# NumPy's legacy generator (np.random.seed/rand/...) is MT19937: 624 32-bit words and a
# position in them. set_state checks only the word count; a position past 624 (or below
# 0) reads outside the words, a crash (SIGSEGV) or silently wrong numbers, so every
# field is checked here before NumPy sees it.
_MT_WORDS = 624


def _check_random_state(saved: dict[str, np.ndarray], path: str) -> tuple:
    """The state tuple for ``np.random.set_state``, every field checked: kind 'MT19937',
    keys 624 integers in [0, 2**32) (not all zero: that generator gives only zeros), pos
    in [0, 624] (624: the words are regenerated at the next draw), has_gauss 0 or 1 and
    cached_gaussian a finite float."""
    if sorted(saved) != ['cached_gaussian', 'has_gauss', 'keys', 'kind', 'pos']:
        raise ValueError(f'checkpoints.load: {path!r} holds no random state (save it with '
                         'random_state=True)')

    def broken(field: str, expected: str) -> ValueError:
        value = saved[field]
        shown = value if value.size <= 4 else f'{value.dtype} array of shape {value.shape}'
        return ValueError(f'checkpoints.load: {path!r} holds a broken random state: '
                          f'random/{field} must be {expected}, got {shown!r}')

    def integer(field: str, low: int, high: int) -> int:
        value = saved[field]
        if value.shape != () or value.dtype.kind not in 'iub' or not low <= int(value) <= high:
            raise broken(field, f'an integer in [{low}, {high}]')
        return int(value)

    kind = saved['kind']
    if kind.shape != () or kind.dtype.kind != 'U' or str(kind) != 'MT19937':
        raise broken('kind', "'MT19937'")
    keys = saved['keys']
    if (keys.shape != (_MT_WORDS,) or keys.dtype.kind not in 'iu'
            or keys.min() < 0 or keys.max() > 2**32 - 1 or not keys.any()):
        raise broken('keys', f'{_MT_WORDS} integers in [0, 2**32), not all zero')
    pos = integer('pos', 0, _MT_WORDS)
    has_gauss = integer('has_gauss', 0, 1)
    cached = saved['cached_gaussian']
    if cached.shape != () or cached.dtype.kind not in 'iuf' or not np.isfinite(cached):
        raise broken('cached_gaussian', 'a finite float')
    return 'MT19937', keys.astype(np.uint32), pos, has_gauss, float(cached)
