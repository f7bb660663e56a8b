"""Helpers: graph pictures, numerical gradients, array comparisons, shape arithmetic."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Any, Callable

import numpy as np

from zerograd.core import Variable, as_array, as_variable
from zerograd.cuda import as_numpy, get_array_module

# Where downloaded datasets and weights are kept: $ZEROGRAD_DATA, else ~/.zerograd.
cache_dir = os.environ.get('ZEROGRAD_DATA') or os.path.join(os.path.expanduser('~'), '.zerograd')


# =============================================================================
# Graph pictures (Graphviz)
# =============================================================================
def _dot_var(v: Variable, verbose: bool = False) -> str:
    name = '' if v.name is None else v.name
    if verbose and v.data is not None:
        if v.name is not None:
            name += ': '
        name += f'{v.shape} {v.dtype}'
    return f'{id(v)} [label="{name}", color=orange, style=filled]\n'


def _dot_func(f: Any) -> str:
    text = f'{id(f)} [label="{type(f).__name__}", color=lightblue, style=filled, shape=box]\n'
    for x in f.inputs:
        text += f'{id(x)} -> {id(f)}\n'
    for y in f.outputs:
        text += f'{id(f)} -> {id(y())}\n'  # y is a weakref
    return text


def get_dot_graph(output: Variable, verbose: bool = True) -> str:
    """The graph that produced ``output`` as Graphviz DOT text: variables as orange
    ellipses (name, and shape and dtype when verbose), functions as light-blue boxes."""
    text = _dot_var(output, verbose)
    funcs = []
    seen = set()
    if output.creator is not None:
        funcs.append(output.creator)
        seen.add(output.creator)
    while funcs:  # any order will do for a picture; no recursion, so any depth works
        f = funcs.pop()
        text += _dot_func(f)
        for x in f.inputs:
            text += _dot_var(x, verbose)
            if x.creator is not None and x.creator not in seen:
                seen.add(x.creator)
                funcs.append(x.creator)
    return 'digraph g {\n' + text + '}'


_DOT_FORMATS = ('png', 'svg', 'pdf')


def plot_dot_graph(output: Variable, verbose: bool = True, to_file: str = 'graph.png') -> str:
    """Draw the graph behind ``output`` into ``to_file`` with Graphviz's ``dot``.

    The format follows the extension: .png, .svg or .pdf. Returns the path written.
    """
    extension = os.path.splitext(to_file)[1][1:].lower()
    if extension not in _DOT_FORMATS:
        raise ValueError(f'plot_dot_graph: to_file must end in .png, .svg or .pdf, '
                         f'got {to_file!r}')
    dot = shutil.which('dot')
    if dot is None:
        raise RuntimeError("plot_dot_graph: Graphviz's `dot` program was not found; install "
                           'the graphviz package (apt-get install graphviz, brew install '
                           'graphviz, conda install graphviz)')
    dot_text = get_dot_graph(output, verbose)
    directory = os.path.dirname(os.path.abspath(to_file))
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, 'graph.dot')
        with open(source, 'w') as file:
            file.write(dot_text)
        # An argument list, never a shell: the file name is passed as it is.
        result = subprocess.run([dot, f'-T{extension}', source, '-o', to_file],
                                capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'plot_dot_graph: dot failed with exit code {result.returncode}: '
                           f'{result.stderr.strip()}')
    return to_file


# =============================================================================
# Shape arithmetic used by the Functions
# =============================================================================
def sum_to(x: Any, shape: tuple) -> Any:
    """Sum the array x over axes so that it has ``shape`` (x's shape broadcasts from it)."""
    ndim = len(shape)
    lead = x.ndim - ndim
    lead_axis = tuple(range(lead))
    axis = tuple(i + lead for i, sx in enumerate(shape) if sx == 1)
    y = x.sum(lead_axis + axis, keepdims=True)
    if lead > 0:
        y = y.squeeze(lead_axis)
    return y


def reshape_sum_backward(gy: Any, x_shape: tuple, axis: Any, keepdims: bool) -> Any:
    """Reshape the gradient of a sum so it broadcasts back over the summed axes."""
    ndim = len(x_shape)
    if axis is None:
        axes = None
    elif isinstance(axis, (tuple, list)):
        axes = axis
    else:
        axes = (axis,)
    if not (ndim == 0 or axes is None or keepdims):
        actual_axes = sorted(a if a >= 0 else a + ndim for a in axes)
        shape = list(gy.shape)
        for a in actual_axes:
            shape.insert(a, 1)
    elif axes is None and not keepdims:
        shape = [1] * ndim
    else:
        shape = gy.shape
    return gy.reshape(tuple(shape))


def max_backward_shape(x: Any, axis: Any) -> list:
    """x's shape with each reduced axis set to 1 (axis: None, an int or a tuple)."""
    if axis is None:
        axis = range(x.ndim)
    elif isinstance(axis, int):
        axis = (axis,)
    axis = [a % x.ndim for a in axis]
    return [s if ax not in axis else 1 for ax, s in enumerate(x.shape)]


def logsumexp(x: Any, axis: int = 1) -> Any:
    """log(sum(exp(x), axis)) with keepdims, computed without overflow (array in, array out)."""
    xp = get_array_module(x)
    m = x.max(axis=axis, keepdims=True)
    y = x - m
    xp.exp(y, out=y)
    s = y.sum(axis=axis, keepdims=True)
    xp.log(s, out=s)
    m += s
    return m


def pair(x: Any) -> tuple:
    """An int as (x, x); a pair of ints as it is. Anything else is a ValueError."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return (int(x), int(x))
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in x):
        return (int(x[0]), int(x[1]))
    raise ValueError(f'pair: expected an int or a pair of ints, got {x!r}')


def get_conv_outsize(input_size: int, kernel_size: int, stride: int, pad: int) -> int:
    """Output length of a convolution: (input + 2 pad - kernel) // stride + 1."""
    return (input_size + pad * 2 - kernel_size) // stride + 1


def get_deconv_outsize(size: int, k: int, s: int, p: int) -> int:
    """Output length of a transposed convolution: s (size - 1) + k - 2 p."""
    return s * (size - 1) + k - 2 * p


# =============================================================================
# Numerical gradients and comparisons
# =============================================================================
def numerical_diff(f: Callable, x: Variable, eps: float = 1e-4) -> Any:
    """The book's central difference (f(x + eps) - f(x - eps)) / (2 eps), for a Variable x."""
    x0 = Variable(as_array(x.data - eps))
    x1 = Variable(as_array(x.data + eps))
    y0 = f(x0)
    y1 = f(x1)
    return (y1.data - y0.data) / (2 * eps)


def _sum_of(y: Any) -> float:
    data = y.data if isinstance(y, Variable) else y
    return float(as_numpy(data).astype(np.float64).sum())


def numerical_grad(f: Callable, x: Any, *args: Any, eps: float = 1e-4, **kwargs: Any) -> np.ndarray:
    """Central-difference gradient of sum(f(x, *args, **kwargs)) with respect to x.

    Works on a float64 copy of x, so x itself is never changed. Returns a float64 array
    of x's shape.
    """
    data = as_numpy(x.data if isinstance(x, Variable) else x)
    point = data.astype(np.float64)  # a copy
    xp = get_array_module(x.data if isinstance(x, Variable) else x)
    grad = np.zeros_like(point)
    flat = point.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        y_plus = _sum_of(f(xp.asarray(point), *args, **kwargs))
        flat[i] = original - eps
        y_minus = _sum_of(f(xp.asarray(point), *args, **kwargs))
        flat[i] = original
        grad.reshape(-1)[i] = (y_plus - y_minus) / (2 * eps)
    return grad


def gradient_check(f: Callable, x: Any, *args: Any, rtol: float = 1e-4, atol: float = 1e-5,
                   **kwargs: Any) -> bool:
    """True when backprop's gradient of sum(f(x)) matches the central difference.

    Both are computed in float64 on a copy: x (array or Variable) is left as it was.
    """
    data = as_numpy(x.data if isinstance(x, Variable) else x)
    x64 = Variable(data.astype(np.float64))
    num_grad = numerical_grad(f, x64.data, *args, **kwargs)
    y = f(x64, *args, **kwargs)
    y = as_variable(y)
    y.backward()
    if x64.grad is None:
        return False
    bp_grad = as_numpy(x64.grad.data)
    if bp_grad.shape != num_grad.shape:
        return False
    return bool(np.allclose(bp_grad, num_grad, rtol=rtol, atol=atol))


def array_equal(a: Any, b: Any) -> bool:
    """True when a and b (Variables or arrays, CPU or GPU) have equal shapes and values."""
    a = as_numpy(a.data if isinstance(a, Variable) else a)
    b = as_numpy(b.data if isinstance(b, Variable) else b)
    return bool(np.array_equal(a, b))


def array_allclose(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True when a and b (Variables or arrays, CPU or GPU) are equal within tolerances."""
    a = as_numpy(a.data if isinstance(a, Variable) else a)
    b = as_numpy(b.data if isinstance(b, Variable) else b)
    return bool(a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol))
