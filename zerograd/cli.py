"""The ``zerograd`` command (also ``python -m zerograd``)::

    zerograd [--version]
    zerograd demo [--out DIR] [--epochs N] [--seed N] [--checkpoint-every SECONDS]
                  [--resume] [--gpu] [--quiet]
    zerograd train RECIPE [--epochs N] [--batch-size N] [--lr LR] [--seed N] [--out DIR]
                          [--data FILE] [--early-stop N] [--tensorboard DIR]
                          [--checkpoint-every SECONDS] [--resume] [--gpu] [--quiet]
    zerograd export RUN_DIR [-o FILE] [--opset N]
    zerograd info

Errors (a bad option, an unknown recipe, missing data, a checkpoint that --resume cannot
continue, a folder that export cannot read) are one line on stderr and a non-zero exit
status (2 for usage, 1 otherwise), never a traceback. Output cut short by a closed pipe
(``zerograd info | head -1``) ends quietly, with exit status 141 as a program killed by
SIGPIPE.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import shutil
import sys


class _Parser(argparse.ArgumentParser):
    """argparse, with errors as one line (no usage block) and exit status 2."""

    def error(self, message: str) -> None:
        raise _UsageError(f'{self.prog}: {message} (see {self.prog} --help)')


class _UsageError(Exception):
    pass


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {value}')
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive number, got {text!r}') from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f'expected a positive number, got {value}')
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'expected a positive finite number, got {value}')
    return value


def _epochs_to_wait(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number of epochs >= 0, got {text!r}') \
            from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected a number of epochs >= 0, got {value}')
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number of seconds, got {text!r}') from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f'expected a finite number of seconds >= 0, got '
                                         f'{value}')
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f'expected an integer from 0 to 2**32 - 1, got {value}')
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``zerograd``."""
    import zerograd
    from zerograd import recipes
    parser = _Parser(prog='zerograd', description='zerograd: the framework of "Deep Learning '
                     'from Scratch 3", complete, correct and fast.')
    parser.add_argument('--version', action='version', version=f'zerograd {zerograd.__version__}')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND', parser_class=_Parser)

    every = recipes.Options.checkpoint_every
    checkpoint_help = (f'save a checkpoint at least every SECONDS of training ({every:g}), '
                       'mid-epoch too; --resume continues from it exactly')
    quiet_help = 'no progress bars, progress or epoch lines (a switch to other data is still said)'
    mlp = recipes.RECIPES['mnist-mlp']
    demo = commands.add_parser('demo', help='train an MLP on real MNIST digits, with pictures')
    demo.add_argument('--out', default='zerograd-demo', metavar='DIR',
                      help='output folder (zerograd-demo)')
    demo.add_argument('--epochs', type=_positive_int, metavar='N', help=f'epochs ({mlp.epochs})')
    demo.add_argument('--seed', type=_seed, default=0, metavar='N', help='NumPy seed (0)')
    demo.add_argument('--checkpoint-every', type=_seconds, default=every, metavar='SECONDS',
                      help=checkpoint_help)
    demo.add_argument('--resume', action='store_true',
                      help='continue from the last checkpoint in the output folder')
    demo.add_argument('--gpu', action='store_true', help='train on the GPU (needs CuPy)')
    demo.add_argument('--quiet', action='store_true', help=quiet_help)

    names = ', '.join(sorted(recipes.RECIPES))
    with_test = ', '.join(sorted(r.name for r in recipes.RECIPES.values() if r.test_set))
    defaults = '\n'.join(f'  {r.name:15s} {r.epochs:>6,} {r.batch_size:>6} {r.lr:>7g}  {r.help}'
                         for r in sorted(recipes.RECIPES.values(), key=lambda r: r.name))
    train = commands.add_parser(
        'train', help=f"run one of the book's experiments: {names}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"recipes and their defaults:\n  {'RECIPE':15s} {'epochs':>6} {'batch':>6} "
               f"{'lr':>7}\n{defaults}\n\nThe recipes with a test set ({with_test}) keep "
               "the weights of their\nbest epoch (test accuracy) in best.npz beside the last "
               "ones (weights.npz).\n\nWithout --resume an output folder that holds a "
               "checkpoint is refused (resume it, or\nremove the folder or give another --out to "
               "start over); a resume takes the same\n--early-stop and --tensorboard as the run "
               "it continues.")
    train.add_argument('recipe', metavar='RECIPE', help=f'one of: {names}')
    train.add_argument('--epochs', type=_positive_int, metavar='N',
                       help="epochs (the recipe's default)")
    train.add_argument('--batch-size', type=_positive_int, metavar='N',
                       help="batch size (the recipe's)")
    train.add_argument('--lr', type=_positive_float, metavar='LR',
                       help="learning rate (the recipe's)")
    train.add_argument('--seed', type=_seed, default=0, metavar='N', help='NumPy seed (0)')
    train.add_argument('--out', metavar='DIR', help='output folder (zerograd-RECIPE)')
    train.add_argument('--data', metavar='FILE', help='a text file, for char-lstm '
                       '(default: the Shakespeare corpus, downloaded once)')
    train.add_argument('--early-stop', type=_epochs_to_wait, metavar='N',
                       help='stop when the test loss has not improved for N epochs '
                       f'(EarlyStopping; recipes with a test set: {with_test})')
    train.add_argument('--tensorboard', metavar='DIR',
                       help='log the losses, metrics, learning rate, weight histograms and '
                       "the model's graph into DIR for TensorBoard (needs "
                       "zerograd[tensorboard]; tensorboard --logdir DIR shows them)")
    train.add_argument('--checkpoint-every', type=_seconds, default=every, metavar='SECONDS',
                       help=checkpoint_help)
    train.add_argument('--resume', action='store_true',
                       help='continue from the last checkpoint in the output folder (its batch '
                       'size and learning rate)')
    train.add_argument('--gpu', action='store_true', help='train on the GPU (needs CuPy)')
    train.add_argument('--quiet', action='store_true', help=quiet_help)

    export = commands.add_parser(
        'export', help="write a run's trained model as an ONNX file (needs zerograd[onnx])",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='The RNN recipes (sin-rnn, sin-lstm, char-lstm) export one time step: inputs\n'
               'x, h (and c), outputs y, h_next (and c_next); zeros for h and c start a\n'
               "sequence. char-lstm's x is int64 character ids (the vocabulary is in the\n"
               "file's metadata and the folder's run.json).")
    export.add_argument('run', metavar='RUN_DIR',
                        help='the output folder of zerograd demo or zerograd train RECIPE')
    export.add_argument('-o', '--output', metavar='FILE',
                        help='the ONNX file to write (RUN_DIR/model.onnx)')
    export.add_argument('--opset', type=_positive_int, metavar='N',
                        help='the ONNX opset (17; up to the newest the onnx package knows)')

    commands.add_parser('info', help='versions, optional extras, GPU, data folder')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``zerograd`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == 'info':
            print(info())
            return 0
        if args.command == 'export':
            return _export(args)
        return _train(args)
    except _UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`zerograd info | head -1`): not an error. Point stdout at
        # devnull so that the flush at exit does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except KeyboardInterrupt:
        print('zerograd: interrupted', file=sys.stderr)
        return 130
    except Exception as error:  # anything else: one line, never a traceback
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f'zerograd: error: {message}', file=sys.stderr)
        return 1


def _train(args: argparse.Namespace) -> int:
    from zerograd import recipes
    if args.command == 'train' and args.recipe not in recipes.RECIPES:
        raise _UsageError(f'zerograd train: unknown recipe {args.recipe!r}; the recipes are: '
                          f'{", ".join(sorted(recipes.RECIPES))}')
    if args.command == 'train' and args.data is not None and args.recipe != 'char-lstm':
        raise _UsageError(f'zerograd train: --data is for char-lstm, not {args.recipe}')
    if args.command == 'train' and args.early_stop is not None \
            and not recipes.RECIPES[args.recipe].test_set:
        with_test = ', '.join(sorted(r.name for r in recipes.RECIPES.values() if r.test_set))
        raise _UsageError(f'zerograd train: --early-stop watches the test loss, and '
                          f'{args.recipe} has no test set; the recipes with one are: {with_test}')
    comm = _communicator()
    root = comm is None or comm.rank == 0
    options = recipes.Options(epochs=args.epochs, seed=args.seed, quiet=args.quiet,
                              out=args.out or 'zerograd-demo', gpu=args.gpu,
                              resume=args.resume, checkpoint_every=args.checkpoint_every,
                              comm=comm)
    if not root:  # rank 0 alone prints
        options.log = lambda line: None
    if args.command == 'demo':
        result = recipes.demo(options)
    else:
        options.batch_size, options.lr, options.data = args.batch_size, args.lr, args.data
        options.early_stop, options.tensorboard = args.early_stop, args.tensorboard
        options.out = args.out or f'zerograd-{args.recipe}'
        result = recipes.run(args.recipe, options)
    final = result['final']
    if not root:
        return 0
    best = result.get('best')
    if best is not None and best['epoch'] != final.get('epoch'):
        name = best['monitor'].replace('_', ' ')
        print(f'best {name} {best["value"]:.4f} at epoch {best["epoch"]} ({best["path"]})')
    if 'test_accuracy' in final:
        print(f'test accuracy {final["test_accuracy"]:.4f}')
    elif 'train_loss' in final:
        print(f'final loss {final["train_loss"]:.6f}')
    print('wrote ' + ', '.join(result['files']))
    return 0


# Set by mpiexec / mpirun (MPICH's Hydra and PMI, OpenMPI, PMIx).
_MPI_ENVIRONMENT = ('PMI_SIZE', 'PMI_RANK', 'OMPI_COMM_WORLD_SIZE', 'PMIX_RANK')


def _communicator():
    """A communicator when launched by mpiexec (zerograd.distributed), else None: a plain
    run never imports mpi4py."""
    if not any(name in os.environ for name in _MPI_ENVIRONMENT):
        return None
    from zerograd.distributed import create_communicator
    comm = create_communicator()
    return comm if comm.size > 1 else None


def _export(args: argparse.Namespace) -> int:
    from zerograd import recipes
    output = args.output if args.output is not None else os.path.join(args.run, 'model.onnx')
    result = recipes.export_run(args.run, output, args.opset)

    def described(values: dict) -> str:
        return ', '.join(f'{name} ({", ".join(map(str, shape))}{"," if len(shape) == 1 else ""})'
                         f' {dtype}' for name, (shape, dtype) in values.items())
    print(f'wrote {result["path"]} ({result["recipe"]}, ONNX opset {result["opset"]}): inputs '
          f'{described(result["inputs"])}; outputs {described(result["outputs"])}')
    return 0


# =============================================================================
# zerograd info
# =============================================================================
_EXTRAS = [('matplotlib', 'plot'), ('PIL', 'image'), ('tqdm', 'progress'), ('cupy', 'gpu'),
           ('onnx', 'onnx'), ('onnxruntime', 'onnx'), ('tensorboardX', 'tensorboard'),
           ('mpi4py', 'mpi'), ('torch', 'dev')]


def _version(module_name: str) -> str | None:
    try:
        module = importlib.import_module(module_name)
    except Exception:  # not installed, or broken: either way not usable
        return None
    return getattr(module, '__version__', 'installed')


def _blas() -> str:
    import numpy as np
    try:
        config = np.show_config(mode='dicts')
        blas = config['Build Dependencies']['blas']
        return f'{blas.get("name", "?")} {blas.get("version", "")}'.strip()
    except Exception:  # NumPy < 1.25 has no mode='dicts'
        return 'unknown'


def info() -> str:
    """The text of ``zerograd info``."""
    import numpy as np

    import zerograd
    from zerograd import cuda, utils
    lines = [f'zerograd {zerograd.__version__}',
             f'Python {platform.python_version()} ({sys.executable})',
             f'NumPy {np.__version__} (BLAS: {_blas()})',
             'optional extras:']
    for module_name, extra in _EXTRAS:
        version = _version(module_name)
        lines.append(f'  {module_name:12s} {version or "not installed":14s} [{extra}]')
    dot = shutil.which('dot')
    # The install hint only when it is needed.
    lines.append(f'  {"graphviz":12s} ' + (f'dot at {dot}' if dot else
                                            f'{"not installed":14s} (apt-get install graphviz)'))
    ok, gpu = cuda.gpu_status()
    lines.append(f'GPU: {"available" if ok else "not available"}: {gpu}')
    # The folder get_file really uses: a relative ZEROGRAD_DATA resolved, a file refused.
    try:
        data = utils.data_dir()
    except ValueError as error:
        data = f'unusable: {error}'
    lines.append(f'data folder: {data}' + ('' if os.environ.get('ZEROGRAD_DATA')
                                            else ' (set ZEROGRAD_DATA to change it)'))
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
