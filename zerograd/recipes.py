"""The book's experiments as recipes for ``zerograd train RECIPE`` (and ``zerograd demo``).

A recipe is a function of an ``Options`` that builds the data, the model and the
optimizer, trains with ``training.fit`` and writes its pictures into ``options.out``.
The recipes with a test set keep the weights of their best epoch (test accuracy) in
``best.npz`` beside the last ones (``weights.npz``), and stop early with ``early_stop``;
every recipe logs for TensorBoard with ``tensorboard`` (callbacks of ``training.fit``).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import zerograd.functions as F
import zerograd.layers as L
from zerograd import cuda, datasets, optimizers, training, transforms, utils
from zerograd.core import no_grad
from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.models import MLP, Model


@dataclass
class Options:
    """What a recipe may be told; None means the recipe's own default."""
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    out: str = 'zerograd-out'
    data: str | None = None  # a text file, for char-lstm
    resume: bool = False
    quiet: bool = False
    gpu: bool = False  # train on the GPU (model, loaders and pictures' inputs)
    checkpoint_every: float = 180.0  # seconds of training between checkpoints, at most
    # Stop when the test loss has not improved for that many epochs (recipes with a test
    # set); None: train every epoch.
    early_stop: int | None = None
    tensorboard: str | None = None  # a folder for TensorBoard's event files
    log: Callable[[str], None] = print
    # zerograd.distributed's communicator: data-parallel on comm.size processes (mnist-mlp
    # and demo), batch_size per process; rank 0 alone prints and writes.
    comm: Any = None


# The recipes that train data-parallel when given a communicator of more than one process.
PARALLEL_RECIPES = ('mnist-mlp', 'demo')


def _parallel(options: Options) -> Any:
    comm = options.comm
    return comm if comm is not None and comm.size > 1 else None


def _is_root(options: Options) -> bool:
    return _parallel(options) is None or options.comm.rank == 0


@dataclass
class Recipe:
    """A registered recipe: its function, its defaults, and whether it has a test set (then
    it keeps its best weights and may stop early)."""
    name: str
    help: str
    run: Callable[[Options], dict]
    epochs: int
    batch_size: int
    lr: float
    test_set: bool = False


RECIPES: dict[str, Recipe] = {}


def recipe(name: str, help: str, epochs: int, batch_size: int, lr: float,
           test_set: bool = False) -> Callable:
    """Register a recipe function under ``name`` with its default hyper-parameters."""
    def register(run: Callable[[Options], dict]) -> Callable[[Options], dict]:
        RECIPES[name] = Recipe(name, help, run, epochs, batch_size, lr, test_set)
        return run
    return register


BEST_WEIGHTS = 'best.npz'  # the weights of the best epoch, beside weights.npz (the last)
BEST_MONITOR = 'test_accuracy'


def _callback_plan(options: Options, chosen: Recipe) -> list[str]:
    """The classes of the callbacks ``_callbacks`` gives, in order (known before any work,
    to check a resume against its checkpoint)."""
    plan = ['ModelCheckpoint'] if chosen.test_set else []
    if options.early_stop is not None:
        plan.append('EarlyStopping')
    if options.tensorboard is not None:
        plan.append('TensorBoardLogger')
    return plan


def _callbacks(options: Options, chosen: Recipe, loader: DataLoader | None = None) -> list:
    """fit's callbacks for the options, in ``_callback_plan``'s order: the best weights
    kept (recipes with a test set), early stopping on the test loss, TensorBoard logging
    (with the model's graph drawn on ``loader``'s first example, when one is given)."""
    from zerograd.callbacks import EarlyStopping, ModelCheckpoint

    def tensorboard() -> Any:
        from zerograd.tensorboard import TensorBoardLogger  # an optional extra: only if asked
        example = None
        if loader is not None:
            example = np.stack([cuda.as_numpy(loader.dataset[0][0])])
            if options.gpu:
                example = cuda.as_cupy(example)
        return TensorBoardLogger(options.tensorboard, example_input=example)

    make = {'ModelCheckpoint': lambda: ModelCheckpoint(os.path.join(options.out, BEST_WEIGHTS),
                                                       monitor=BEST_MONITOR),
            'EarlyStopping': lambda: EarlyStopping('test_loss', patience=options.early_stop),
            'TensorBoardLogger': tensorboard}
    return [make[name]() for name in _callback_plan(options, chosen)]


def run(name: str, options: Options) -> dict:
    """Run the recipe ``name``; returns its results (final metrics, files written)."""
    if name not in RECIPES:
        raise KeyError(f'unknown recipe {name!r}; the recipes are: {", ".join(sorted(RECIPES))}')
    chosen = RECIPES[name]
    if _parallel(options) is not None and name not in PARALLEL_RECIPES:
        raise ValueError(f'{name}: runs on one process; the recipes that train data-parallel '
                         f'(mpiexec -n N) are: {", ".join(PARALLEL_RECIPES)}')
    return _run_in_folder(options, name, chosen, lambda: chosen.run(options))


def _run_in_folder(options: Options, name: str, chosen: Recipe, train: Callable[[], dict]
                   ) -> dict:
    """Check everything that can be checked, then train; a run that fails leaves no
    empty folder behind (the ones it made and did not fill are removed)."""
    created = _prepare(options, name, chosen)
    try:
        return train()
    except BaseException:
        for folder in reversed(created):  # the deepest first
            try:
                os.rmdir(folder)  # only when empty
            except OSError:
                break
        raise


def _fill_defaults(options: Options, chosen: Recipe) -> None:
    for field in ('epochs', 'batch_size', 'lr'):
        if getattr(options, field) is None:
            setattr(options, field, getattr(chosen, field))


def _prepare(options: Options, name: str, chosen: Recipe) -> list[str]:
    """Check the options, the data file and the output folder before any work; make the
    folder (returns the folders made) and seed NumPy's global generator."""
    out = options.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f'{name}: --out {out} is not a folder')
    info = None
    if options.resume:  # FileNotFoundError 'no checkpoint to resume from' when none
        info = training.checkpoint_info(out)
        if options.batch_size is None:  # the saved run's, not the recipe's
            options.batch_size = info['batch_size']
    _fill_defaults(options, chosen)
    if options.epochs < 1 or options.batch_size < 1 or not math.isfinite(options.lr) \
            or not options.lr > 0:
        raise ValueError(f'{name}: epochs and batch size must be >= 1 and lr a finite number '
                         f'> 0, got epochs={options.epochs}, batch_size={options.batch_size}, '
                         f'lr={options.lr}')
    if not options.checkpoint_every >= 0:
        raise ValueError(f'{name}: --checkpoint-every must be a number of seconds >= 0, got '
                         f'{options.checkpoint_every}')
    if options.data is not None:
        _check_data(options.data, name)
    if options.early_stop is not None:
        if isinstance(options.early_stop, bool) or not isinstance(options.early_stop, int) \
                or options.early_stop < 0:
            raise ValueError(f'{name}: --early-stop must be a number of epochs >= 0, got '
                             f'{options.early_stop!r}')
        if not chosen.test_set:
            with_test = ', '.join(sorted(r.name for r in RECIPES.values() if r.test_set))
            raise ValueError(f'{name}: --early-stop watches the test loss, and {name} has no '
                             f'test set; the recipes with one are: {with_test}')
    if options.tensorboard is not None:
        _check_tensorboard(options.tensorboard, name)
    if info is not None:
        if options.epochs <= info['epoch']:
            raise ValueError(f'{name}: nothing to train: the checkpoint in {out} is at epoch '
                             f'{info["epoch"]} and --epochs {options.epochs} asks for no more '
                             f'(give --epochs above {info["epoch"]} to continue it)')
        if info['batch_size'] is not None and options.batch_size != info['batch_size']:
            raise ValueError(f'{name}: --batch-size {options.batch_size} differs from the '
                             f'checkpoint\'s {info["batch_size"]} in {out}; a resume continues '
                             'the saved run (leave --batch-size out, or start a new run with '
                             'another --out)')
        saved = (info['state'] or {}).get('callbacks')
        planned = _callback_plan(options, chosen)
        if saved is not None and [entry.get('class') for entry in saved] != planned:
            given = [entry.get('class') for entry in saved]
            raise ValueError(f'{name}: the checkpoint in {out} was saved with the callbacks '
                             f'{given}, these options give {planned}; a resume continues the '
                             'saved run: give --early-stop and --tensorboard as when it started '
                             '(or start a new run with another --out)')
    elif os.path.exists(training.checkpoint_path(out)):
        raise ValueError(f'{name}: {out} already holds a checkpoint of an earlier run: add '
                         '--resume to continue it, or remove the folder (or give another '
                         '--out) to start over')
    if options.gpu:
        cuda.require_gpu(f'{name} --gpu')  # before any work: one line saying why not
    # With several processes rank 0 alone makes and writes the folder.
    created = _make_folder(out, name) if _is_root(options) else []
    np.random.seed(options.seed)
    if options.gpu:
        cuda._cupy().random.seed(options.seed)  # weights drawn on the GPU are seeded too
    return created


def _check_tensorboard(folder: str, name: str) -> None:
    """--tensorboard: a folder (or none yet), and the extra that writes the events."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f'{name}: --tensorboard {folder} is not a folder')
    import importlib.util
    if importlib.util.find_spec('tensorboardX') is None:
        raise ImportError(f"{name}: --tensorboard needs tensorboardX; install it with "
                          "pip install 'zerograd[tensorboard]'")


def _check_data(path: str, name: str) -> None:
    if not os.path.exists(path):
        raise ValueError(f'{name}: --data {path}: no such file')
    if os.path.isdir(path):
        raise ValueError(f'{name}: --data {path} is a folder, not a text file')
    if not os.access(path, os.R_OK):
        raise ValueError(f'{name}: --data {path} cannot be read (permission denied)')


def _make_folder(out: str, name: str) -> list[str]:
    """Make ``out`` and check that files can be written there (now, not after an epoch);
    returns the folders made, outermost first."""
    created, folder = [], os.path.abspath(out)
    while not os.path.exists(folder):
        created.insert(0, folder)
        folder = os.path.dirname(folder)
    try:
        os.makedirs(out, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix='.write-test-', dir=out)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        for made in reversed(created):
            try:
                os.rmdir(made)
            except OSError:
                break
        raise ValueError(f'{name}: --out {out} is not a writable folder: '
                         f'{error.strerror or error}') from None
    return created


def _to_device(options: Options, model: Model, *loaders: DataLoader) -> None:
    """With ``--gpu``, move the model and the loaders to the GPU: from then on every
    batch, parameter, gradient and optimizer state lives there."""
    if options.gpu:
        model.to_gpu()
        for loader in loaders:
            loader.to_gpu()


def _pictures_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _run_line(options: Options, name: str) -> str:
    """The run, as the command that makes it and its folder: the last line of every
    picture's title (``zerograd train spiral --epochs 300, in zerograd-spiral/``). Options
    at the recipe's default are left out, except the epochs."""
    chosen = RECIPES['mnist-mlp' if name == 'demo' else name]
    words = ['zerograd demo' if name == 'demo' else f'zerograd train {name}',
             f'--epochs {options.epochs}']
    if name != 'demo' and options.batch_size != chosen.batch_size:
        words.append(f'--batch-size {options.batch_size}')
    if options.seed != 0:
        words.append(f'--seed {options.seed}')
    if name != 'demo' and options.data is not None:
        words.append(f'--data {options.data}')
    if options.early_stop is not None:
        words.append(f'--early-stop {options.early_stop}')
    return f'{" ".join(words)}, in {options.out.rstrip(os.sep)}/'


def _finish(options: Options, model, history: training.History, files: list[str],
            name: str, data: str, model_config: dict | None = None,
            callbacks: list | None = None) -> dict:
    """Save the weights, the run's description (``run.json``: the recipe and what its
    model's sizes depend on, ``model_config``) and the curves (titled with ``data``, the
    data set and its splits, and the run); report what was written (rank 0 alone writes),
    and the best epoch ``ModelCheckpoint`` kept (``best``: epoch, metric, value, path)."""
    best = None
    for callback in callbacks or []:
        if type(callback).__name__ == 'ModelCheckpoint' and callback.last_path is not None:
            best = {'epoch': callback.best_epoch, 'monitor': callback.monitor,
                    'value': callback.best, 'path': callback.last_path}
    if not _is_root(options):
        return {'history': history, 'final': history.records[-1] if len(history) else {},
                'files': [], 'best': best}
    weights = os.path.join(options.out, 'weights.npz')
    model.save_weights(weights)
    # After the weights: a run.json in a folder means its weights.npz is complete.
    _write_run_file(options.out, name, model_config or {})
    files.insert(0, weights)
    if best is not None and os.path.exists(best['path']):
        files.insert(1, best['path'])
    if _pictures_available():
        metrics = 'loss and accuracy' if history['train_accuracy'] else 'loss'
        title = f'{name}: {metrics} per epoch on {data}\n{_run_line(options, name)}'
        files.append(training.plot_history(history, os.path.join(options.out, 'curves.png'),
                                           title=title))
    elif not options.quiet:
        options.log("no pictures: matplotlib is not installed (pip install 'zerograd[plot]')")
    return {'history': history, 'final': history.records[-1] if len(history) else {},
            'files': files, 'best': best}


# =============================================================================
# spiral (steps 48-50)
# =============================================================================
@recipe('spiral', "the book's steps 48-50: an MLP classifies the spiral dataset",
        epochs=300, batch_size=30, lr=1.0, test_set=True)
def spiral(options: Options) -> dict:
    """MLP (10, 3), SGD, batch 30 on Spiral; pictures: curves, decision boundary."""
    train_set, test_set = datasets.Spiral(train=True), datasets.Spiral(train=False)
    train_loader = DataLoader(train_set, options.batch_size)
    test_loader = DataLoader(test_set, options.batch_size, shuffle=False)
    model = EXPORTED['spiral'].build({})
    _to_device(options, model, train_loader, test_loader)
    optimizer = optimizers.SGD(options.lr).setup(model)
    callbacks = _callbacks(options, RECIPES['spiral'], train_loader)
    history = training.fit(model, optimizer, train_loader, options.epochs,
                           test_loader=test_loader, out=options.out, resume=options.resume,
                           quiet=options.quiet, log=options.log, log_every=50,
                           checkpoint_every=options.checkpoint_every, callbacks=callbacks)
    files = []
    if _pictures_available():
        title = (f'spiral: the classes the model predicts, over the Spiral training set '
                 f'({len(train_set)} points)\n{_run_line(options, "spiral")}')
        files.append(training.plot_decision_boundary(
            model, train_set.data, train_set.label,
            os.path.join(options.out, 'decision_boundary.png'), title=title))
    return _finish(options, model, history, files, 'spiral',
                   f'Spiral ({len(train_set)} training and {len(test_set)} test points)',
                   callbacks=callbacks)


# =============================================================================
# mnist-mlp (step 51) and the demo
# =============================================================================
def mnist_datasets(log: Callable[[str], None] = print, quiet: bool = False,
                   transform: Callable | None = None) -> tuple:
    """Full MNIST when it is cached or can be downloaded; otherwise the 5,000 digits that
    ship with zerograd, with a one-line message saying so and where full MNIST goes (said
    even with ``quiet``: other data is never used silently). Returns (train, test, name).
    ``transform`` replaces the default one (flatten, float32, / 255)."""
    kwargs = {} if transform is None else {'transform': transform}
    try:
        # A short timeout: with the embedded digits to fall back on, waiting long for an
        # unreachable mirror is worse than training on fewer digits.
        return (datasets.MNIST(train=True, timeout=5.0, **kwargs),
                datasets.MNIST(train=False, **kwargs), 'MNIST')
    except (OSError, ValueError) as error:  # not cached and not downloadable, or corrupt
        # Said even with quiet=True: training on other data must never go unnoticed.
        log(f'full MNIST is not available ({type(error).__name__}); using the 5,000 digits '
            'that ship with zerograd (MNIST5k: 4,000 train, 1,000 test); full MNIST goes in '
            f'{os.path.join(utils.data_dir(), "mnist")}')
        return (datasets.MNIST5k(train=True, **kwargs), datasets.MNIST5k(train=False, **kwargs),
                'MNIST5k')


def _train_mnist(options: Options, hidden: tuple, graph: bool, command: str) -> dict:
    comm = _parallel(options)
    log = options.log if _is_root(options) else (lambda line: None)
    train_set, test_set, name = mnist_datasets(log, options.quiet)
    if not options.quiet:
        log(f'{name}: {len(train_set):,} training and {len(test_set):,} test digits')
    train_shard, test_shard = train_set, test_set
    if comm is not None:
        from zerograd.distributed import scatter_dataset
        # Each process trains on its shard; the batch size is per process (ChainerMN's
        # rule): the gradient averaged over the processes is that of the global batch.
        train_shard = scatter_dataset(train_set, comm)
        test_shard = scatter_dataset(test_set, comm, equal_length=False)  # exact figures
        if not options.quiet:
            log(f'data-parallel on {comm.size} processes, batch {options.batch_size} per '
                f'process ({options.batch_size * comm.size} global), {len(train_shard):,} '
                'training digits each')
    train_loader = DataLoader(train_shard, options.batch_size)
    test_loader = DataLoader(test_shard, options.batch_size, shuffle=False)
    model = EXPORTED['mnist-mlp'].build({'hidden': list(hidden)})
    _to_device(options, model, train_loader, test_loader)
    optimizer = optimizers.Adam(alpha=options.lr).setup(model)
    optimizer.add_hook(optimizers.WeightDecay(1e-4))
    callbacks = _callbacks(options, RECIPES['mnist-mlp'], train_loader)
    history = training.fit(model, optimizer, train_loader, options.epochs,
                           test_loader=test_loader, out=options.out, resume=options.resume,
                           quiet=options.quiet, log=log,
                           checkpoint_every=options.checkpoint_every, comm=comm,
                           callbacks=callbacks)
    if not _is_root(options):
        return _finish(options, model, history, [], command, name, callbacks=callbacks)
    files = _digits_picture(model, test_set, options)
    if graph:
        files.append(_plot_graph(model, test_set[np.arange(1)][0], options))
    result = _finish(options, model, history, files, command,
                     f'{name} ({len(train_set):,} training and {len(test_set):,} test digits)',
                     model_config={'hidden': list(hidden)}, callbacks=callbacks)
    result['dataset'] = name
    return result


def _digits_picture(model, test_set, options: Options) -> list[str]:
    """50 test digits spread over the whole set (the embedded one is ordered by class),
    titled with the model's predictions."""
    if not _pictures_available():
        return []
    index = np.linspace(0, len(test_set) - 1, min(50, len(test_set))).astype(int)
    x, t = test_set[index]
    xp = training.model_array_module(model)
    with no_grad():
        predicted = cuda.as_numpy(model(xp.asarray(x)).data.argmax(axis=1))
    images = test_set.data[index].reshape(len(x), 28, 28)
    title = (f'{type(test_set).__name__} test set: {len(x)} of {len(test_set):,} digits, '
             f'predicted by the run in {options.out}/')
    return [training.plot_digits(images, t, predicted, os.path.join(options.out, 'digits.png'),
                                 title=title)]


def _plot_graph(model, x, options: Options) -> str:
    """The model's graph as a PNG with Graphviz, or as a .dot file when it is missing."""
    from zerograd import utils
    x = training.model_array_module(model).asarray(x)
    path = os.path.join(options.out, 'graph.png')
    try:
        return model.plot(x, to_file=path)
    except RuntimeError as error:  # Graphviz's dot is not installed
        dot_path = os.path.join(options.out, 'graph.dot')
        with open(dot_path, 'w') as file:
            file.write(utils.get_dot_graph(model(x)))
        if not options.quiet:
            options.log(f'the graph is in {dot_path}; no picture: {error}')
        return dot_path


@recipe('mnist-mlp', "the book's step 51: MLP 1000-1000-10, ReLU, Adam, weight decay 1e-4",
        epochs=5, batch_size=100, lr=0.001, test_set=True)
def mnist_mlp(options: Options) -> dict:
    """MLP 1000-1000-10 with ReLU, Adam and weight decay 1e-4 on MNIST; pictures: curves,
    test digits with their predicted labels."""
    return _train_mnist(options, (1000, 1000), graph=False, command='mnist-mlp')


def demo(options: Options) -> dict:
    """``zerograd demo``: the mnist-mlp recipe on real digits, with the model's graph too."""
    return _run_in_folder(options, 'demo', RECIPES['mnist-mlp'],
                          lambda: _train_mnist(options, (1000, 1000), graph=True,
                                               command='demo'))


# =============================================================================
# sin-regression (steps 43-46)
# =============================================================================
@recipe('sin-regression', "the book's steps 43-46: an MLP fits a noisy sine (full batch)",
        epochs=10000, batch_size=100, lr=0.2)
def sin_regression(options: Options) -> dict:
    """MLP (10, 1) with sigmoid, SGD on 100 noisy sine points; pictures: curves, the fit."""
    x = np.random.rand(100, 1)
    y = np.sin(2 * np.pi * x) + np.random.rand(100, 1)
    data = _ArrayDataset(x, y)
    loader = DataLoader(data, options.batch_size, shuffle=options.batch_size < len(x))
    model = EXPORTED['sin-regression'].build({})
    _to_device(options, model, loader)
    optimizer = optimizers.SGD(options.lr).setup(model)
    history = training.fit(model, optimizer, loader, options.epochs,
                           loss_fn=F.mean_squared_error, metric=None, out=options.out,
                           resume=options.resume, quiet=options.quiet, log=options.log,
                           log_every=1000, checkpoint_every=options.checkpoint_every,
                           callbacks=_callbacks(options, RECIPES['sin-regression']))
    files = []
    if _pictures_available():
        grid = np.linspace(0, 1, 200)[:, None]
        xp = training.model_array_module(model)
        with no_grad():
            prediction = cuda.as_numpy(model(xp.asarray(grid)).data)
        title = (f'sin-regression: the fit to its {len(x)} training points '
                 f'(sin(2 pi x) + uniform noise)\n{_run_line(options, "sin-regression")}')
        files.append(training.plot_curves(
            grid, {'prediction': prediction, 'sin(2 pi x) + 0.5': np.sin(2 * np.pi * grid) + 0.5},
            os.path.join(options.out, 'fit.png'), points=(x, y), title=title))
    return _finish(options, model, history, files, 'sin-regression',
                   f'{len(x)} noisy sine points (training only, no test set)')


class _ArrayDataset(datasets.Dataset):
    """A Dataset over arrays held in memory."""

    def __init__(self, data: np.ndarray, label: np.ndarray) -> None:
        self._arrays = (data, label)
        super().__init__()

    def prepare(self) -> None:
        self.data, self.label = self._arrays


# =============================================================================
# mnist-cnn (steps 55-57)
# =============================================================================
class MnistCNN(Model):
    """Two 3x3 convolutions (32 and 64 channels, ReLU, 2x2 max pooling), then a hidden
    layer of 128 and the 10 classes. x: (N, 1, 28, 28) -> (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = L.Conv2d(32, 3, pad=1)
        self.conv2 = L.Conv2d(64, 3, pad=1)
        self.fc1 = L.Linear(128)
        self.fc2 = L.Linear(10)

    def forward(self, x):
        x = F.pooling(F.relu(self.conv1(x)), 2, 2)
        x = F.pooling(F.relu(self.conv2(x)), 2, 2)
        x = F.relu(self.fc1(F.flatten(x)))
        return self.fc2(x)


@recipe('mnist-cnn', 'a small CNN on MNIST (two 3x3 convolutions, max pooling), Adam',
        epochs=1, batch_size=100, lr=0.001, test_set=True)
def mnist_cnn(options: Options) -> dict:
    """MnistCNN with Adam on MNIST images kept as (1, 28, 28); pictures: curves, digits."""
    image = transforms.Compose([transforms.ToFloat(), transforms.Normalize(0.0, 255.0)])
    train_set, test_set, name = mnist_datasets(options.log, options.quiet, transform=image)
    if not options.quiet:
        options.log(f'{name}: {len(train_set):,} training and {len(test_set):,} test digits')
    train_loader = DataLoader(train_set, options.batch_size)
    test_loader = DataLoader(test_set, options.batch_size, shuffle=False)
    model = EXPORTED['mnist-cnn'].build({})
    _to_device(options, model, train_loader, test_loader)
    optimizer = optimizers.Adam(alpha=options.lr).setup(model)
    callbacks = _callbacks(options, RECIPES['mnist-cnn'], train_loader)
    history = training.fit(model, optimizer, train_loader, options.epochs,
                           test_loader=test_loader, out=options.out, resume=options.resume,
                           quiet=options.quiet, log=options.log,
                           checkpoint_every=options.checkpoint_every, callbacks=callbacks)
    files = _digits_picture(model, test_set, options)
    result = _finish(options, model, history, files, 'mnist-cnn',
                     f'{name} ({len(train_set):,} training and {len(test_set):,} test digits)',
                     callbacks=callbacks)
    result['dataset'] = name
    return result


# =============================================================================
# sin-rnn and sin-lstm (steps 59-60)
# =============================================================================
class SimpleRNN(Model):
    """The book's step 59 model: an RNN layer and a Linear read-out. x: (N, 1) -> (N, 1)."""

    def __init__(self, hidden_size: int, out_size: int) -> None:
        super().__init__()
        self.rnn = L.RNN(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self) -> None:
        """Forget the hidden state (a new sequence starts)."""
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


class BetterRNN(SimpleRNN):
    """The book's step 60 model: an LSTM layer and a Linear read-out."""

    def __init__(self, hidden_size: int, out_size: int) -> None:
        Model.__init__(self)
        self.rnn = L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)


def _sin_sequence(options: Options, model: Model, name: str) -> dict:
    train_set = datasets.SinCurve(train=True)
    loader = SeqDataLoader(train_set, batch_size=options.batch_size)
    _to_device(options, model, loader)
    optimizer = optimizers.Adam(alpha=options.lr).setup(model)
    history = training.fit_bptt(model, optimizer, loader, options.epochs, bptt_length=30,
                                out=options.out, resume=options.resume, quiet=options.quiet,
                                log=options.log, log_every=10,
                                checkpoint_every=options.checkpoint_every,
                                callbacks=_callbacks(options, RECIPES[name]))
    files = []
    if _pictures_available():
        # The book's check: feed cos, which the model never saw, one point at a time.
        xs = np.cos(np.linspace(0, 4 * np.pi, 1000))
        model.reset_state()
        predicted = []
        xp = training.model_array_module(model)
        with no_grad():
            for x in xs:
                predicted.append(model(xp.asarray([[x]])).data.item())
        title = (f'{name}: cos(x), never seen in training (SinCurve training set), '
                 f'predicted one point at a time\n{_run_line(options, name)}')
        files.append(training.plot_curves(np.arange(len(xs)), {'y = cos(x)': xs,
                                                               'predicted': predicted},
                                          os.path.join(options.out, 'prediction.png'),
                                          title=title))
    return _finish(options, model, history, files, name,
                   f'SinCurve ({len(train_set):,} training points, no test set)')


@recipe('sin-rnn', "the book's step 59: an RNN learns a noisy sine (hidden 100, BPTT 30)",
        epochs=100, batch_size=1, lr=0.001)
def sin_rnn(options: Options) -> dict:
    """SimpleRNN(100, 1), Adam, truncated BPTT of 30 steps over SinCurve."""
    return _sin_sequence(options, EXPORTED['sin-rnn'].build({}), 'sin-rnn')


@recipe('sin-lstm', "the book's step 60: an LSTM learns a noisy sine (batch 30, BPTT 30)",
        epochs=100, batch_size=30, lr=0.001)
def sin_lstm(options: Options) -> dict:
    """BetterRNN(100, 1) (LSTM), Adam, SeqDataLoader of 30 streams, BPTT of 30 steps."""
    return _sin_sequence(options, EXPORTED['sin-lstm'].build({}), 'sin-lstm')


# =============================================================================
# char-lstm
# =============================================================================
class CharLSTM(Model):
    """Characters in, next-character scores out: EmbedID -> LSTM -> Linear.
    x: (N,) int ids -> (N, vocab_size)."""

    def __init__(self, vocab_size: int, embed_size: int = 32, hidden_size: int = 128) -> None:
        super().__init__()
        self.embed = L.EmbedID(vocab_size, embed_size)
        self.lstm = L.LSTM(hidden_size)
        self.fc = L.Linear(vocab_size)

    def reset_state(self) -> None:
        """Forget the LSTM's state (a new text starts)."""
        self.lstm.reset_state()

    def forward(self, x):
        return self.fc(self.lstm(self.embed(x)))


def sample_text(model: CharLSTM, dataset: datasets.CharText, start: str, length: int = 200,
                rng: np.random.Generator | None = None) -> str:
    """``length`` characters generated after ``start``, drawing each from the model's
    softmax. Uses a private generator and leaves the model's LSTM state as it was."""
    rng = rng or np.random.default_rng(0)
    saved = (model.lstm.h, model.lstm.c)
    model.reset_state()
    text = start
    xp = training.model_array_module(model)  # the ids go where the model is
    with no_grad():
        y = None
        for char in start:
            y = model(xp.asarray([dataset.char_to_id[char]]))
        for _ in range(length):
            p = cuda.as_numpy(F.softmax(y).data[0]).astype(np.float64)
            next_id = int(rng.choice(len(p), p=p / p.sum()))
            text += dataset.id_to_char[next_id]
            y = model(xp.asarray([next_id]))
    model.lstm.h, model.lstm.c = saved
    return text


# The public-domain Shakespeare text of the project's shared data folder (the same length
# as tiny-shakespeare, other plays): what char-lstm reads when the download is impossible.
LOCAL_SHAKESPEARE = os.path.join('shakespeare', 'shakespeare_1mb.txt')


def _shakespeare(options: Options) -> datasets.CharText:
    """The tiny-shakespeare download; offline (or when it fails), the data folder's
    ``shakespeare/shakespeare_1mb.txt`` if there is one, said in the log."""
    try:
        return datasets.Shakespear()
    except utils.DownloadError as error:
        local = os.path.join(utils.data_dir(), LOCAL_SHAKESPEARE)
        if not os.path.isfile(local):
            raise ValueError(f'{error} (char-lstm trains on any text file given with --data '
                             f'FILE, or reads {local} when there is one)') from None
        # Said even with --quiet: training on other data must never go unnoticed.
        options.log(f'tiny-shakespeare cannot be downloaded: reading {local} instead')
        return datasets.CharText(local)


@recipe('char-lstm', 'a character-level LSTM on Shakespeare (or --data FILE), printing samples',
        epochs=1, batch_size=64, lr=0.003)
def char_lstm(options: Options) -> dict:
    """CharLSTM, Adam, SeqDataLoader of ``batch_size`` streams, BPTT of 35 characters; a
    generated sample is printed every 100 updates (every epoch, if that is sooner) and at
    the end."""
    if options.data is not None:
        text = datasets.CharText(options.data)
    else:
        text = _shakespeare(options)
    if not options.quiet:
        options.log(f'{len(text):,} characters, {len(text.char_to_id)} distinct')
    loader = SeqDataLoader(text, batch_size=options.batch_size)
    model = EXPORTED['char-lstm'].build({'vocab_size': len(text.char_to_id)})
    _to_device(options, model, loader)
    optimizer = optimizers.Adam(alpha=options.lr).setup(model)
    optimizer.add_hook(optimizers.ClipGrad(5.0))
    start = text.id_to_char[int(text.data[0])]
    # A sample every 100 updates, or every epoch when an epoch has fewer updates.
    every = min(100, math.ceil(len(loader) / 35))

    def show_sample(updates: int) -> None:
        if updates % every == 0 and not options.quiet:
            options.log(f'--- sample after {updates} updates ---\n'
                        f'{sample_text(model, text, start)}')

    history = training.fit_bptt(model, optimizer, loader, options.epochs, bptt_length=35,
                                loss_fn=F.softmax_cross_entropy, out=options.out,
                                resume=options.resume, quiet=options.quiet, log=options.log,
                                on_update=show_sample,
                                checkpoint_every=options.checkpoint_every,
                                callbacks=_callbacks(options, RECIPES['char-lstm']))
    sample = sample_text(model, text, start, length=300)
    if not options.quiet:
        options.log(f'--- sample at the end ---\n{sample}')
    vocabulary = ''.join(text.id_to_char[i] for i in range(len(text.id_to_char)))
    result = _finish(options, model, history, [], 'char-lstm',
                     f'{os.path.basename(text.path)} ({len(text):,} characters, training only)',
                     model_config={'vocab_size': len(vocabulary), 'vocabulary': vocabulary})
    result['sample'] = sample
    return result


# =============================================================================
# export: a run's model as an ONNX file (``zerograd export RUN_DIR``)
# =============================================================================
RUN_FILE = 'run.json'
RUN_FORMAT = 1


def _write_run_file(out: str, name: str, model_config: dict) -> None:
    """``run.json``: which recipe made the folder (``demo`` or a recipe's name) and what
    its model's sizes depend on beyond the recipe (char-lstm's vocabulary), so that
    ``zerograd export`` can rebuild the model."""
    record = {'zerograd_run': RUN_FORMAT, 'recipe': name, 'model': model_config}
    training._atomic_write_text(os.path.join(out, RUN_FILE), json.dumps(record, indent=1) + '\n')


class RecurrentStep(Model):
    """One time step of a recipe's recurrent model, its state given and returned:
    ``(x, h) -> (y, h_next)`` for an RNN, ``(x, h, c) -> (y, h_next, c_next)`` for an LSTM;
    h and c are (N, hidden_size), zeros at the start of a sequence. The parameters are the
    model's own, under the same paths (``rnn/x2h/W``); calling it leaves the recurrent
    layer's state as it found it."""

    def __init__(self, model: Model, layer: str) -> None:
        super().__init__()
        for name in model._params:  # the model's layers, so parameter paths stay the same
            setattr(self, name, model.__dict__[name])
        self.__dict__['_model'] = model  # not registered: its layers already are
        self.__dict__['_layer'] = getattr(model, layer)
        self.__dict__['cell'] = isinstance(self._layer, L.LSTM)

    def forward(self, x, h, c=None):
        layer = self._layer
        saved = (layer.h, getattr(layer, 'c', None))
        try:
            layer.h = h
            if self.cell:
                layer.c = c
            y = self._model(x)
            return (y, layer.h, layer.c) if self.cell else (y, layer.h)
        finally:
            layer.h = saved[0]
            if self.cell:
                layer.c = saved[1]


@dataclass
class _Exported:
    """How a recipe's model is rebuilt and traced: the model from run.json's model
    config; each input's shape past the batch axis ('hidden': the recurrent layer's
    hidden size) and its dtype; the outputs' names."""
    build: Callable[[dict], Model]  # the recipe builds its model with it too
    inputs: dict[str, tuple[tuple, str]]
    outputs: tuple[str, ...]
    recurrent: str | None = None  # the attribute of the RNN/LSTM layer


_MNIST_MLP = _Exported(lambda c: MLP(tuple(c.get('hidden', (1000, 1000))) + (10,),
                                      activation=F.relu),
                       {'x': ((784,), 'float32')}, ('y',))
_STATE = ('hidden',)  # a state input, h or c: (N, the recurrent layer's hidden_size)
EXPORTED: dict[str, _Exported] = {
    'demo': _MNIST_MLP,
    'mnist-mlp': _MNIST_MLP,
    'spiral': _Exported(lambda c: MLP((10, 3)), {'x': ((2,), 'float32')}, ('y',)),
    'sin-regression': _Exported(lambda c: MLP((10, 1)), {'x': ((1,), 'float32')}, ('y',)),
    'mnist-cnn': _Exported(lambda c: MnistCNN(), {'x': ((1, 28, 28), 'float32')}, ('y',)),
    'sin-rnn': _Exported(lambda c: SimpleRNN(100, 1),
                         {'x': ((1,), 'float32'), 'h': (_STATE, 'float32')},
                         ('y', 'h_next'), 'rnn'),
    'sin-lstm': _Exported(lambda c: BetterRNN(100, 1),
                          {'x': ((1,), 'float32'), 'h': (_STATE, 'float32'),
                           'c': (_STATE, 'float32')}, ('y', 'h_next', 'c_next'), 'rnn'),
    'char-lstm': _Exported(lambda c: CharLSTM(c['vocab_size']),
                           {'x': ((), 'int64'), 'h': (_STATE, 'float32'),
                            'c': (_STATE, 'float32')}, ('y', 'h_next', 'c_next'), 'lstm'),
}


def _read_run_file(folder: str, who: str) -> dict:
    """run.json of a run folder, checked; errors say what the folder is instead."""
    if not os.path.exists(folder):
        raise ValueError(f'{who}: {folder}: no such folder')
    if not os.path.isdir(folder):
        raise ValueError(f'{who}: {folder} is not a folder (give the output folder of '
                         'zerograd demo or zerograd train)')
    path = os.path.join(folder, RUN_FILE)
    if not os.path.exists(path):
        if any(os.path.exists(os.path.join(folder, name))
               for name in ('weights.npz', 'checkpoint.npz')):
            raise ValueError(f'{who}: {folder} records no recipe ({path} is missing: the run '
                             'was made by an older zerograd, or has not finished); train it '
                             'again, or export its model in Python with zerograd.onnx.export')
        raise ValueError(f'{who}: {folder} is not the output folder of zerograd demo or '
                         f'zerograd train (it holds no {RUN_FILE}, weights.npz or '
                         'checkpoint.npz)')
    try:
        with open(path, encoding='utf-8') as file:
            record = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f'{who}: {path} cannot be read: {error}') from None
    if not (isinstance(record, dict) and isinstance(record.get('recipe'), str)
            and isinstance(record.get('model', {}), dict)):
        raise ValueError(f'{who}: {path} is not a run description (a JSON object with a '
                         '"recipe" string and a "model" object)')
    recipe = record['recipe']
    if recipe not in EXPORTED:
        raise ValueError(f'{who}: {path} names the recipe {recipe!r}, which this zerograd '
                         f'does not know; the recipes are: demo, {", ".join(sorted(RECIPES))}')
    if recipe == 'char-lstm':
        size = record.get('model', {}).get('vocab_size')
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f'{who}: {path} records vocab_size {size!r} for char-lstm; it '
                             'must be an int >= 1')
    return record


def _check_output(out: str, who: str) -> None:
    """Refuse an output path that cannot be written, before any work."""
    if os.path.isdir(out):
        raise ValueError(f'{who}: -o {out} is a folder; give a file name (model.onnx)')
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f'{who}: -o {out}: the folder {folder} does not exist')
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f'{who}: -o {out}: the folder {folder} is not writable')
    if os.path.exists(out) and not os.access(out, os.W_OK):
        raise ValueError(f'{who}: -o {out} exists and is not writable')


def load_run(folder: str) -> tuple[str, dict, Model]:
    """The recipe, run.json and trained model (weights loaded) of a run's output folder."""
    who = 'zerograd export'
    record = _read_run_file(folder, who)
    recipe = record['recipe']
    weights = os.path.join(folder, 'weights.npz')
    if not os.path.isfile(weights):
        command = 'zerograd demo' if recipe == 'demo' else f'zerograd train {recipe}'
        raise ValueError(f'{who}: {folder} holds no trained weights ({weights} is missing; '
                         f'finish the run with {command} --resume --out {folder})')
    model = EXPORTED[recipe].build(record.get('model', {}))
    model.load_weights(weights)
    # An RNN that never took a second step has no h2h weight; tracing would draw one at
    # random and export it as if it were trained.
    missing = [key for key, param in model.named_params().items() if param.data is None]
    if missing:
        raise ValueError(f'{who}: {weights} holds no {", ".join(missing)}: the run never took '
                         'a second time step, so those weights were never made or trained')
    return recipe, record, model


def export_run(folder: str, out: str, opset: int | None = None) -> dict:
    """Write the trained model of a run's output folder (``zerograd demo`` or ``zerograd
    train RECIPE``) to the ONNX file ``out``, its batch axis dynamic.

    The inputs and outputs, N the batch size:

    ==================  =====================================  ==========================
    recipe              inputs                                 outputs
    ==================  =====================================  ==========================
    demo, mnist-mlp     x (N, 784) float32 (pixels / 255)      y (N, 10) class scores
    mnist-cnn           x (N, 1, 28, 28) float32               y (N, 10)
    spiral              x (N, 2) float32                       y (N, 3)
    sin-regression      x (N, 1) float32                       y (N, 1)
    sin-rnn             x (N, 1), h (N, 100) float32           y (N, 1), h_next
    sin-lstm            x (N, 1), h, c (N, 100) float32        y (N, 1), h_next, c_next
    char-lstm           x (N,) int64 character ids,            y (N, V) next-character
                        h, c (N, 128) float32                  scores, h_next, c_next
    ==================  =====================================  ==========================

    The recurrent ones run one time step per call: zeros for h and c start a sequence,
    and h_next (c_next) is the next step's h (c). char-lstm's ids and vocabulary are the
    folder's ``run.json`` ``vocabulary`` (id i is its i-th character), also in the file's
    metadata. opset: 17 (None) to ``zerograd.onnx.newest_opset()``.
    Returns {'recipe', 'path', 'opset', 'inputs', 'outputs'} with inputs and outputs as
    {name: (shape with 'N', dtype)}.
    """
    from zerograd.onnx import exporter  # (zerograd.onnx registers the converters)
    who = 'zerograd export'
    onnx = exporter.require_onnx()  # ImportError naming the extra, before any other work
    if opset is None:
        opset = exporter.MIN_OPSET
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise TypeError(f'{who}: opset must be an int, got {type(opset).__name__}')
    if not exporter.MIN_OPSET <= opset <= newest:
        raise ValueError(f'{who}: --opset {opset}: zerograd writes opsets {exporter.MIN_OPSET} '
                         f'to {newest} (the newest this onnx {onnx.__version__} knows)')
    _read_run_file(folder, who)  # what the folder is wrong with comes before the output path
    _check_output(out, who)
    recipe, record, model = load_run(folder)
    spec = EXPORTED[recipe]
    traced = model
    hidden = None
    if spec.recurrent is not None:
        traced = RecurrentStep(model, spec.recurrent)
        hidden = getattr(model, spec.recurrent).hidden_size
    batch = 2  # the traced batch size; export checks that every size of it works
    args, inputs = [], {}
    for name, (shape, dtype) in spec.inputs.items():
        shape = tuple(hidden if size == 'hidden' else size for size in shape)
        args.append(np.zeros((batch,) + shape, dtype=dtype))
        inputs[name] = (('N',) + shape, dtype)
    proto = exporter.export(traced, tuple(args), opset=opset, input_names=list(spec.inputs),
                            output_names=list(spec.outputs))
    metadata = {'zerograd_recipe': recipe}
    if 'vocabulary' in record.get('model', {}):
        metadata['vocabulary'] = json.dumps(record['model']['vocabulary'])
    onnx.helper.set_model_props(proto, metadata)
    exporter.write_model(proto, out)
    outputs = {}
    for value in proto.graph.output:
        dims = value.type.tensor_type.shape.dim
        shape = tuple('N' if d.dim_param else d.dim_value for d in dims)
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        outputs[value.name] = (shape, str(dtype))
    return {'recipe': recipe, 'path': out, 'opset': opset, 'inputs': inputs,
            'outputs': outputs}
