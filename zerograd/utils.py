"""Helpers: graph pictures, numerical gradients, array comparisons, shape arithmetic,
downloads into the data cache (``get_file``)."""
from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zlib
from typing import Any, BinaryIO, Callable, Sequence

import numpy as np

from zerograd.core import Variable, as_array, as_variable
from zerograd.cuda import as_numpy, get_array_module

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
    """Sum the array x over axes so that it has ``shape`` (x's shape broadcasts from it).

    A shape x does not broadcast from is a ValueError (the book's version returns an array
    of some other shape).
    """
    ndim = len(shape)
    lead = x.ndim - ndim
    if lead < 0 or any(sx != 1 and sx != x.shape[lead + i] for i, sx in enumerate(shape)):
        raise ValueError(f'sum_to: an array of shape {x.shape} cannot be summed to shape '
                         f'{tuple(shape)} (it must broadcast to {x.shape})')
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


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def pair(x: Any) -> tuple[int, int]:
    """An int as (x, x); a pair (tuple or list) of ints as a tuple.

    The one check of every ``kernel_size``/``stride``/``pad`` (the conv functions and
    layers): anything else (a str, a float, a bool, a pair of floats, three ints) is a
    TypeError, wherever it is given. (The book's ``pair`` raised ValueError.) The values
    themselves (a stride of 0) are checked by the caller, as ValueErrors.
    """
    if _is_int(x):
        return (int(x), int(x))
    if isinstance(x, (tuple, list)) and len(x) == 2 and _is_int(x[0]) and _is_int(x[1]):
        return (int(x[0]), int(x[1]))
    raise TypeError(f'pair: expected an int or a pair of ints, got {x!r} '
                    f'({type(x).__name__})')


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
    """Central-difference gradient of ``sum(f(x, *args, **kwargs))`` with respect to x.

    Works on a float64 copy of x, so x itself is never changed. Returns a float64 array
    of x's shape.
    """
    data = as_numpy(x.data if isinstance(x, Variable) else x)
    point = data.astype(np.float64, order='C')  # a C-ordered copy: its flat view writes back
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
    """True when a and b (Variables or arrays, CPU or GPU) are equal within tolerances,
    compared as ``np.allclose`` does, broadcasting (the book's meaning: a (2, 3) array of
    ones is close to the scalar 1). Shapes that do not broadcast together give False
    (``np.allclose`` would raise)."""
    a = as_numpy(a.data if isinstance(a, Variable) else a)
    b = as_numpy(b.data if isinstance(b, Variable) else b)
    try:
        np.broadcast_shapes(np.shape(a), np.shape(b))
    except ValueError:
        return False
    return bool(np.allclose(a, b, rtol=rtol, atol=atol))


# =============================================================================
# Downloads: datasets and weights, cached and verified
# =============================================================================
# A download goes to a temporary file in the cache folder, is checked (length, size,
# checksum) and only then renamed to its final name: the cache never holds a partial or
# wrong file under a real name. Downloaded content is only ever read as data, never run.

_OFFLINE_ENV = 'ZEROGRAD_OFFLINE'
_OFFLINE_ON = ('1', 'true', 'yes', 'on')
_OFFLINE_OFF = ('0', 'false', 'no', 'off', '')
_SCHEMES = ('http', 'https', 'file')  # file:// is for local mirrors and tests
_LOOPBACK_HOSTS = ('127.0.0.1', 'localhost', '::1')
_CHUNK_SIZE = 1 << 18  # 256 KiB per read at most
_PROGRESS_BYTES = 1 << 16  # timeout= is the longest wait for each 64 KiB of a download
_TIMEOUT = 30.0  # default timeout= in seconds
_DECODABLE = ('gzip', 'x-gzip', 'deflate')  # Content-Encodings get_file can undo


class DownloadError(OSError):
    """A file could not be fetched: every URL failed, or it is missing while offline.

    The message names the file, the folder it belongs in, every URL and why each failed.
    Attributes: ``file_name``, ``folder``, ``urls``, ``reasons`` (one ``(url, reason)`` per
    URL tried; empty when offline), ``offline`` (True when ``ZEROGRAD_OFFLINE`` forbade it).
    """

    def __init__(self, message: str, *, file_name: str | None = None,
                 folder: str | None = None, urls: Sequence[str] = (),
                 reasons: Sequence[tuple[str, str]] = (), offline: bool = False) -> None:
        super().__init__(message)
        self.file_name = file_name
        self.folder = folder
        self.urls = list(urls)
        self.reasons = list(reasons)
        self.offline = offline


def is_offline() -> bool:
    """True when the environment variable ``ZEROGRAD_OFFLINE`` says offline (read at each
    call): then ``get_file`` uses the cache only and never downloads.

    Accepted values, case-insensitive and ignoring surrounding spaces: 1, true, yes, on
    (offline); 0, false, no, off or empty (online, as when it is unset). Any other value
    is a ValueError listing these, rather than a guess either way.
    """
    raw = os.environ.get(_OFFLINE_ENV)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _OFFLINE_ON:
        return True
    if value in _OFFLINE_OFF:
        return False
    raise ValueError(f'{_OFFLINE_ENV} must be one of {", ".join(_OFFLINE_ON)} (offline) or '
                     f'{", ".join(_OFFLINE_OFF[:-1])} or empty (online), case-insensitive; '
                     f'got {raw!r}')


# $ZEROGRAD_DATA values already made absolute: a relative value is resolved against the
# working directory once, the first time it is read (at import when it is set then), so a
# later os.chdir does not move the data folder.
_resolved_data_env: dict[str, str] = {}


def _data_env() -> str | None:
    """$ZEROGRAD_DATA as an absolute path, or None when it is unset or empty."""
    value = os.environ.get('ZEROGRAD_DATA', '')
    if not value.strip():
        return None
    if value not in _resolved_data_env:
        _resolved_data_env[value] = os.path.abspath(os.path.expanduser(value))
    return _resolved_data_env[value]


# Where downloaded datasets and weights are kept: $ZEROGRAD_DATA, else ~/.zerograd.
cache_dir = _data_env() or os.path.join(os.path.expanduser('~'), '.zerograd')


def _check_folder(path: str, source: str, who: str) -> None:
    """A ValueError when ``path``, or the nearest part of it that exists, is not a folder
    (a file there would make every download fail with a raw FileExistsError)."""
    existing = path
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            return
        existing = parent
    if not os.path.isdir(existing):
        where = '' if existing == path else f' (the data folder {path!r} would be inside it)'
        raise ValueError(f'{who}: {source} must name a folder, but {existing!r} is a '
                         f'file{where}')


def _data_dir(root: Any, who: str) -> str:
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f'{who}: root must be a str or os.PathLike folder, got {root!r}')
        path = os.path.abspath(os.path.expanduser(os.fspath(root)))
        _check_folder(path, f'root={os.fspath(root)!r}', who)
        return path
    env = _data_env()
    if env is not None:
        _check_folder(env, f'ZEROGRAD_DATA={os.environ["ZEROGRAD_DATA"]!r}', who)
        return env
    path = os.path.abspath(os.path.expanduser(cache_dir))
    _check_folder(path, f'the default data folder {cache_dir!r} (set ZEROGRAD_DATA to '
                        f'choose another)', who)
    return path


def data_dir(root: str | os.PathLike | None = None) -> str:
    """The folder ``get_file`` caches files in, as an absolute path.

    ``root`` when given, else ``$ZEROGRAD_DATA`` (read at each call; a relative value is
    resolved against the working directory the first time it is read, so a later
    ``os.chdir`` does not move it), else ``cache_dir`` (``~/.zerograd`` unless
    ``$ZEROGRAD_DATA`` was set at import). A path that is, or lies inside, a file is a
    ValueError naming ``root=`` or ``ZEROGRAD_DATA`` and the file.
    """
    return _data_dir(root, 'data_dir')


def file_md5(path: str | os.PathLike) -> str:
    """The MD5 of a file's bytes, as 32 lowercase hex digits (read in chunks)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, 'rb') as file:
        for chunk in iter(lambda: file.read(_CHUNK_SIZE), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _gzip_content_md5(path: str | os.PathLike) -> str:
    """The MD5 of a gzip file's decompressed content (EOFError etc. when it is corrupt)."""
    digest = hashlib.md5(usedforsecurity=False)
    with gzip.open(path, 'rb') as file:
        for chunk in iter(lambda: file.read(_CHUNK_SIZE), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _is_gzip(path: str | os.PathLike) -> bool:
    with open(path, 'rb') as file:
        return file.read(2) == b'\x1f\x8b'


def _checksum_problem(path: str | os.PathLike, md5: str) -> str | None:
    """None when the file's bytes, or the content of the gzip file, have MD5 ``md5``;
    otherwise a sentence saying what was expected and what was found."""
    actual = file_md5(path)
    if actual == md5:
        return None
    problem = f'MD5 mismatch: expected {md5}, got {actual}'
    if _is_gzip(path):
        # Some publishers (MNIST) give the MD5 of the decompressed file.
        try:
            content_md5 = _gzip_content_md5(path)
        except Exception as error:  # EOFError (truncated), BadGzipFile, zlib.error
            return f'{problem}; it is a gzip file but its content cannot be read, it is ' \
                   f'truncated or corrupt ({type(error).__name__}: {error})'
        if content_md5 == md5:
            return None
        problem += f' (and {content_md5} for its decompressed content)'
    return problem


def _size_problem(path: str | os.PathLike, size: int) -> str | None:
    """None when the file has ``size`` bytes, otherwise a sentence saying so."""
    actual = os.path.getsize(path)
    if actual == size:
        return None
    hint = ' (an interrupted download?)' if actual < size else ''
    return f'size mismatch: expected {size:,} bytes, got {actual:,}{hint}'


def verify_file(path: str | os.PathLike, md5: str) -> bool:
    """True when ``path`` is a file whose MD5 is ``md5``, or a gzip file whose
    decompressed content has that MD5. Never touches the network."""
    if not os.path.isfile(path):
        return False
    return _checksum_problem(path, _check_md5(md5)) is None


def _check_md5(md5: Any) -> str:
    if not (isinstance(md5, str) and len(md5) == 32
            and all(c in '0123456789abcdef' for c in md5.lower())):
        raise ValueError(f'get_file: md5 must be 32 hexadecimal digits, got {md5!r}')
    return md5.lower()


def _check_size(size: Any) -> int | None:
    if size is None:
        return None
    if not isinstance(size, (int, np.integer)) or isinstance(size, (bool, np.bool_)):
        raise TypeError(f'get_file: size must be an int number of bytes, got {size!r}')
    if size < 1:
        raise ValueError(f'get_file: size must be a positive number of bytes, got {size!r}')
    return int(size)


def _check_timeout(timeout: Any, who: str = 'get_file') -> float:
    """``timeout`` as a float when it is a positive, finite number of seconds; otherwise a
    TypeError (not a number) or ValueError (zero, negative, nan, inf) naming ``who``."""
    if not isinstance(timeout, (int, float, np.integer, np.floating)) \
            or isinstance(timeout, (bool, np.bool_)):
        raise TypeError(f'{who}: timeout must be a positive number of seconds, '
                        f'got {timeout!r}')
    value = float(timeout)
    if not (0 < value < float('inf')):  # also False for nan
        raise ValueError(f'{who}: timeout must be a positive, finite number of seconds, '
                         f'got {timeout!r}')
    return value


def _url_list(url: str | Sequence[str], mirrors: Sequence[str] | None) -> list[str]:
    urls = [url] if isinstance(url, str) else list(url)
    if mirrors is not None:
        urls += [mirrors] if isinstance(mirrors, str) else list(mirrors)
    if not urls:
        raise ValueError('get_file: no URL given')
    for u in urls:
        if not isinstance(u, str) or not u:
            raise TypeError(f'get_file: every URL must be a non-empty str, got {u!r}')
        scheme = urllib.parse.urlsplit(u).scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(f'get_file: only http, https and file URLs can be fetched, '
                             f'got {u!r}')
    return urls


def _check_file_name(file_name: Any) -> str:
    if not isinstance(file_name, str):
        raise TypeError(f'get_file: file_name must be a non-empty str, got {file_name!r} '
                        f'({type(file_name).__name__})')
    if not file_name:
        raise ValueError(f'get_file: file_name must be a non-empty str, got {file_name!r}')
    separators = {'/', '\\', os.sep} | ({os.altsep} if os.altsep else set())
    if file_name in ('.', '..') or any(s in file_name for s in separators) \
            or '\0' in file_name:
        raise ValueError(f'get_file: file_name must be a plain file name, without folders, '
                         f"path separators or '..', got {file_name!r}")
    return file_name


def _name_from_url(url: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    name = posixpath.basename(path)
    if not name:
        raise ValueError(f'get_file: cannot tell a file name from the URL {url!r}; '
                         f'pass file_name=')
    return name


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) URLs only (urllib alone would follow one to ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ('http', 'https'):
            raise urllib.error.HTTPError(newurl, code, f'redirect to a non-http(s) URL '
                                         f'refused: {newurl}', headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Deadline:
    """get_file's timeout as a deadline that moves only with progress: each 64 KiB (or the
    rest of the file) must arrive within ``timeout`` seconds of the previous 64 KiB (of the
    request, for the first).

    A socket timeout alone bounds each read, not the whole: a server sending a byte a
    second never trips it. So a watchdog thread shuts the connection's sockets down when
    the deadline passes, which ends a read blocked in any phase (headers or body); the
    downloading thread then sees ``expired`` and reports the timeout.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.start = self.mark_time = time.monotonic()
        self.mark_bytes = 0
        self.expired = False
        self.raised: TimeoutError | None = None
        self._sockets: list = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name='zerograd-download-deadline',
                                        daemon=True)
        self._thread.start()

    def watch(self, sock: Any) -> None:
        """Shut ``sock`` down when the deadline passes (at once, if it already has)."""
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shut(sock)

    def progress(self, received: int) -> None:
        """``received`` bytes have arrived: each further 64 KiB moves the deadline."""
        if received - self.mark_bytes >= _PROGRESS_BYTES:
            self.mark_bytes = received
            self.mark_time = time.monotonic()

    def passed(self) -> bool:
        return self.expired or time.monotonic() - self.mark_time > self.timeout

    def error(self, received: int, total: int | None) -> TimeoutError:
        """The TimeoutError that says so (remembered, so it is not wrapped again)."""
        of = '' if total is None else f' of {total:,}'
        self.raised = TimeoutError(f'timed out: less than 64 KiB arrived in '
                                   f'{self.timeout:g} s ({received:,}{of} bytes in '
                                   f'{time.monotonic() - self.start:.1f} s); timeout= is '
                                   f'the longest wait for each 64 KiB')
        return self.raised

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    @staticmethod
    def _shut(sock: Any) -> None:
        try:  # the plain socket's shutdown, also for an SSL socket: it only wakes the reader
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except (OSError, TypeError, ValueError):
            pass

    def _watch(self) -> None:
        while True:
            left = self.mark_time + self.timeout - time.monotonic()
            if left <= 0:
                break
            if self._done.wait(left):
                return
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)


def _watched(http_class: type, deadline: _Deadline) -> type:
    """``http_class`` (an HTTP(S)Connection) whose socket ``deadline`` watches."""

    class Watched(http_class):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _WatchedHTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def do_open(self, http_class, req, **kwargs):  # noqa: D102
        return super().do_open(_watched(http_class, self._deadline), req, **kwargs)


_handler_classes: list = [_WatchedHTTP]
if hasattr(urllib.request, 'HTTPSHandler'):  # Python built with ssl
    class _WatchedHTTPS(urllib.request.HTTPSHandler):
        def __init__(self, deadline: _Deadline) -> None:
            super().__init__()
            self._deadline = deadline

        def do_open(self, http_class, req, **kwargs):  # noqa: D102
            return super().do_open(_watched(http_class, self._deadline), req, **kwargs)

    _handler_classes.append(_WatchedHTTPS)


def _open_url(url: str, timeout: float = _TIMEOUT, deadline: _Deadline | None = None) -> Any:
    """urllib's urlopen with a timeout, http(s)-only redirects, no proxy for loopback
    addresses (a proxy could not reach this machine's own servers), and the connection's
    sockets watched by ``deadline`` when given."""
    handlers: list = [_HttpOnlyRedirects()]
    if deadline is not None:
        handlers += [cls(deadline) for cls in _handler_classes]
    if (urllib.parse.urlsplit(url).hostname or '') in _LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={
        'User-Agent': 'zerograd (Python urllib)',
        'Accept-Encoding': 'identity',  # the bytes as published, so the checksum holds
    })
    return opener.open(request, timeout=timeout)


def _progress_bar(total: int | None, file_name: str, quiet: bool) -> Any:
    """A tqdm bar on a terminal (tqdm installed, stderr a TTY, not quiet), else None."""
    if quiet or sys.stderr is None or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024, desc=file_name,
                file=sys.stderr, leave=False)


def _decode(encoding: str, source: str, target: str) -> None:
    """Undo a gzip or deflate Content-Encoding from file ``source`` into file ``target``;
    a truncated or corrupt stream is an OSError (gzip checks its CRC and length)."""
    try:
        with open(target, 'wb') as out:
            if encoding in ('gzip', 'x-gzip'):
                with gzip.open(source, 'rb') as file:
                    shutil.copyfileobj(file, out, _CHUNK_SIZE)
            else:  # deflate: the zlib format, whose Adler-32 is checked at its end
                decompressor = zlib.decompressobj()
                with open(source, 'rb') as file:
                    for chunk in iter(lambda: file.read(_CHUNK_SIZE), b''):
                        out.write(decompressor.decompress(chunk))
                out.write(decompressor.flush())
                if not decompressor.eof:
                    raise EOFError('the deflate stream ends early')
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise OSError(f'the response is sent with Content-Encoding {encoding!r} but cannot '
                      f'be decoded: it is truncated or corrupt '
                      f'({type(error).__name__}: {error})') from None


def _fetch(url: str, path: str, md5: str | None, quiet: bool, timeout: float,
           size: int | None = None) -> None:
    """Download ``url`` to ``path`` through a temporary file; on any failure (or Ctrl-C)
    the temporary files are deleted and the exception propagates."""
    folder, file_name = os.path.split(path)
    handle, tmp_path = tempfile.mkstemp(prefix=f'.{file_name}.', suffix='.part', dir=folder)
    temporary = [tmp_path]
    bar = None
    received, total = 0, None
    try:
        deadline = _Deadline(timeout)
        try:
            with os.fdopen(handle, 'wb') as out, _open_url(url, timeout, deadline) as response:
                status = getattr(response, 'status', None)
                if status is not None and url.lower().startswith('http'):
                    if status == 204:
                        raise OSError('HTTP status 204 (No Content): the server sent no file')
                    if not 200 <= status < 300:
                        raise OSError(f'HTTP status {status}')
                encoding = (response.headers.get('Content-Encoding') or '').strip().lower()
                if encoding not in ('', 'identity') + _DECODABLE:
                    raise OSError(f'the server sent the file with Content-Encoding '
                                  f'{encoding!r}, which cannot be decoded here (identity '
                                  f'was asked for)')
                length = response.headers.get('Content-Length')
                total = int(length) if length is not None and length.strip().isdigit() \
                    else None
                if size is not None and total is not None and encoding in ('', 'identity') \
                        and total != size:
                    raise OSError(f'the server announces {total:,} bytes (Content-Length), '
                                  f'but the file has {size:,}')
                if not quiet:
                    shown = '' if total is None else f' ({total:,} bytes)'
                    print(f'Downloading {file_name}{shown} from {url}', file=sys.stderr)
                bar = _progress_bar(total, file_name, quiet)
                # read1 returns what has arrived (up to a chunk): progress is seen as it
                # comes, and a slow server cannot hold one read open for a whole chunk.
                read = getattr(response, 'read1', None) or response.read
                while True:
                    chunk = read(_CHUNK_SIZE)
                    if deadline.passed():  # a shut-down socket reads as an early end
                        raise deadline.error(received, total)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    deadline.progress(received)
                    if bar is not None:
                        bar.update(len(chunk))
                    if total is not None and received > total:
                        raise OSError(f'the server sent more than the {total:,} bytes its '
                                      f'Content-Length announced')
        except Exception as error:
            # A read ended by the watchdog, or by the socket timeout, is the timeout's doing.
            if error is not deadline.raised and (
                    deadline.passed() or isinstance(error, (TimeoutError, socket.timeout))):
                raise deadline.error(received, total) from None
            raise
        finally:
            deadline.stop()
        # http.client does not complain when a connection closes early: count the bytes.
        if total is not None and received != total:
            raise OSError(f'the connection closed after {received:,} of {total:,} bytes '
                          f'(interrupted download)')
        decoded = False
        if encoding in _DECODABLE:
            # A server may label a published .gz file itself as gzip-encoded: when the bytes
            # as sent are the published ones (their MD5 or size; or a .gz name and the MD5
            # of their content, as MNIST publishes), they are kept; otherwise the encoding
            # is undone, so compressed bytes are never stored as the plain file.
            as_sent = (md5 is not None and file_md5(tmp_path) == md5) or \
                (size is not None and os.path.getsize(tmp_path) == size) or \
                (md5 is not None and file_name.lower().endswith(('.gz', '.tgz'))
                 and _checksum_problem(tmp_path, md5) is None)
            if not as_sent:
                handle2, decoded_path = tempfile.mkstemp(prefix=f'.{file_name}.',
                                                         suffix='.part', dir=folder)
                os.close(handle2)
                temporary.append(decoded_path)
                _decode(encoding, tmp_path, decoded_path)
                tmp_path = decoded_path
                decoded = True
        if os.path.getsize(tmp_path) == 0:
            raise OSError('the server sent an empty file (0 bytes)')
        if size is not None:
            problem = _size_problem(tmp_path, size)
            if problem is not None:
                raise ValueError(problem)
        if md5 is not None:
            problem = _checksum_problem(tmp_path, md5)
            if problem is not None:
                raise ValueError(f'checksum failed: {problem}')
        os.replace(tmp_path, path)
        if md5 is None and size is None and total is None and not decoded:
            warnings.warn(f'get_file: {path!r} ({os.path.getsize(path):,} bytes from {url}) '
                          f'cannot be verified: no md5, no size and no Content-Length; if it '
                          f'is incomplete, delete it and download again', stacklevel=3)
    finally:
        # On any failure (or Ctrl-C) nothing is left; on success the file renamed into
        # place is gone from its temporary name, and the encoded download (if decoded) goes.
        for name in temporary:
            try:
                os.remove(name)
            except FileNotFoundError:
                pass
        if bar is not None:
            bar.close()


def get_file(url: str | Sequence[str], file_name: str | None = None, md5: str | None = None,
             *, root: str | os.PathLike | None = None, mirrors: Sequence[str] | None = None,
             quiet: bool = False, timeout: float = _TIMEOUT, size: int | None = None) -> str:
    """The local path of a downloaded file, fetching it into the cache if needed.

    Args:
        url: the file's URL, or a list of URLs of the same file (mirrors, tried in order).
            Only http, https and file URLs are accepted.
        file_name: the name in the cache (default: the last component of the first URL);
            a plain name, without folders.
        md5: the published MD5 (32 hex digits). The file verifies when the MD5 of its bytes
            is ``md5``, or when it is gzip and the MD5 of its decompressed content is.
        root: the cache folder (default: ``$ZEROGRAD_DATA`` read now, else ``cache_dir``).
        mirrors: more URLs, tried after ``url``.
        quiet: no message and no progress bar (a tqdm bar shows on a terminal otherwise).
        timeout: a positive, finite number of seconds: the longest wait for the connection
            and the first 64 KiB of the file, and then for each further 64 KiB (or the rest
            of the file). A URL that is unreachable, stalls or trickles slower than that
            fails (the next mirror is tried), so a file of n bytes takes at most about
            ``timeout * (1 + n / 65536)`` seconds per URL, however slowly a server sends.
        size: the file's size in bytes, when known: a download or a cached file of another
            size is refused (checked before the MD5).

    A cached file (verified by ``size`` and ``md5`` when given) is returned without any
    network access. A cached file that fails a check is downloaded again once; with
    ``ZEROGRAD_OFFLINE`` on it is a ValueError naming the file and the mismatch instead.
    A download is written to a temporary file and renamed only once complete and verified,
    so a failure leaves nothing in the cache: fewer bytes than the Content-Length, another
    size than ``size``, a wrong MD5, an empty response (or HTTP 204) are all failures. A
    response sent with ``Content-Encoding`` gzip or deflate is decoded (kept as sent only
    when those bytes match ``md5`` or ``size``: a .gz file its server labels gzip); another
    encoding is refused. A file that nothing can verify (no ``md5``, no ``size``, no
    Content-Length) is kept with a warning saying so. When every URL fails, or when offline
    with nothing cached, a ``DownloadError`` (an OSError) names the file, the folder to put
    it in, and each URL (with why it failed).
    """
    urls = _url_list(url, mirrors)
    file_name = _check_file_name(_name_from_url(urls[0]) if file_name is None else file_name)
    md5 = None if md5 is None else _check_md5(md5)
    size = _check_size(size)
    timeout = _check_timeout(timeout)
    offline = is_offline()  # a mistyped ZEROGRAD_OFFLINE is an error even with a cached file
    folder = _data_dir(root, 'get_file')
    path = os.path.join(folder, file_name)
    url_text = urls[0] + ''.join(f'\n  or {u}' for u in urls[1:])

    cached_problem = None
    if os.path.exists(path):
        if not os.path.isfile(path):
            raise ValueError(f'get_file: {path!r} exists but is not a file')
        if size is not None:
            cached_problem = _size_problem(path, size)
        if cached_problem is None and md5 is not None:
            cached_problem = _checksum_problem(path, md5)
        if cached_problem is None:
            return path

    if offline:
        if cached_problem is not None:
            raise ValueError(f'get_file: the cached file {path!r} fails its check '
                             f'({cached_problem}) and {_OFFLINE_ENV} is set, so it is not '
                             f'downloaded again; replace it with a good copy from\n  '
                             f'{url_text}')
        raise DownloadError(
            f'get_file: {file_name!r} is not in the data folder {folder!r}, and '
            f'{_OFFLINE_ENV} is set, so it is not downloaded. Fetch it from\n  {url_text}\n'
            f'and place it at {path!r} (the folder is the root= argument, else '
            f'$ZEROGRAD_DATA, else ~/.zerograd), or unset {_OFFLINE_ENV}.',
            file_name=file_name, folder=folder, urls=urls, offline=True)

    os.makedirs(folder, exist_ok=True)
    reasons = []
    for u in urls:
        try:
            _fetch(u, path, md5, quiet, timeout, size)
            return path
        except Exception as error:  # any failure of one URL: note it, try the next one
            reasons.append((u, f'{type(error).__name__}: {error}'))

    lines = ''.join(f'\n  {u}\n    -> {reason}' for u, reason in reasons)
    before = '' if cached_problem is None else \
        f'the cached copy {path!r} fails its check ({cached_problem}), and '
    checks = [f'MD5 {md5}'] if md5 is not None else []
    checks += [f'{size:,} bytes'] if size is not None else []
    checksum = f' ({", ".join(checks)})' if checks else ''
    raise DownloadError(
        f'get_file: {before}could not download {file_name!r} into {folder!r}; nothing was '
        f'saved. Tried:{lines}\nDownload it yourself from one of these URLs{checksum} and '
        f'place it at {path!r}.',
        file_name=file_name, folder=folder, urls=urls, reasons=reasons)


_TMP_SUFFIX = '.tmp'


def atomic_write(path: str, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write data (bytes, or a function writing into the open file) to path through a
    temporary file beside it, flushed to disk, then renamed over it: a crash leaves the
    old file or the new one, never half of one. The file's mode follows the umask, as for
    any file the user writes; temporaries left by a killed earlier write of the same path
    are removed."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp_path = f'{path}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}'
    try:
        # 0o666 less the umask, as open() gives; mkstemp would make it 0600.
        handle = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, 'O_BINARY', 0), 0o666)
        with os.fdopen(handle, 'wb') as file:
            if callable(data):
                data(file)
            else:
                file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    _fsync_folder(folder)




def _remove_stale_temporaries(path: str) -> None:
    """Remove '<path>.<pid>.<random>.tmp' files of processes that no longer run (a save
    killed with SIGKILL cannot clean up after itself). Only on POSIX, where a process's
    existence can be asked safely; a file of a live process (another save in progress)
    or of an unknown one is left alone."""
    if os.name != 'posix':
        return
    folder, name = os.path.split(path)
    try:
        entries = os.listdir(folder or '.')
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(name + '.') and entry.endswith(_TMP_SUFFIX)):
            continue
        pid_text = entry[len(name) + 1:-len(_TMP_SUFFIX)].partition('.')[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # the process lives: its save may be in progress
        except ProcessLookupError:
            pass
        except OSError:
            continue  # exists but is not ours (EPERM), or cannot be asked
        try:
            os.remove(os.path.join(folder, entry))
        except OSError:
            pass  # gone already (another save cleaned it), or not ours to remove


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (POSIX; elsewhere folders cannot be opened)."""
    if os.name != 'posix':
        return
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself is done
    finally:
        os.close(handle)


