"""Helpers: graph pictures, numerical gradients, array comparisons, shape arithmetic,
downloads into the data cache (``get_file``)."""
from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Sequence

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
    """Central-difference gradient of sum(f(x, *args, **kwargs)) with respect to x.

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
# A download goes to a temporary file in the cache folder, is checked (length, checksum)
# and only then renamed to its final name: the cache never holds a partial or wrong file
# under a real name. Downloaded content is only ever read as data, never run.

_OFFLINE_ENV = 'ZEROGRAD_OFFLINE'
_SCHEMES = ('http', 'https', 'file')  # file:// is for local mirrors and tests
_LOOPBACK_HOSTS = ('127.0.0.1', 'localhost', '::1')
_CHUNK_SIZE = 1 << 18  # 256 KiB per read
_TIMEOUT = 30.0  # seconds without progress before a connection counts as failed


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
    """True when the environment variable ``ZEROGRAD_OFFLINE`` is 1, true, yes or on
    (read at each call): then ``get_file`` uses the cache only and never downloads."""
    return os.environ.get(_OFFLINE_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


def data_dir(root: str | os.PathLike | None = None) -> str:
    """The folder ``get_file`` caches files in, as an absolute path.

    ``root`` when given, else ``$ZEROGRAD_DATA`` (read at each call), else ``cache_dir``
    (``~/.zerograd`` unless ``$ZEROGRAD_DATA`` was set at import).
    """
    if root is None:
        root = os.environ.get('ZEROGRAD_DATA') or cache_dir
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


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
    if not isinstance(file_name, str) or not file_name:
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


def _open_url(url: str, timeout: float = _TIMEOUT) -> Any:
    """urllib's urlopen with a timeout, http(s)-only redirects, and no proxy for loopback
    addresses (a proxy could not reach this machine's own servers)."""
    handlers: list = [_HttpOnlyRedirects()]
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


def _fetch(url: str, path: str, md5: str | None, quiet: bool, timeout: float) -> None:
    """Download ``url`` to ``path`` through a temporary file; on any failure (or Ctrl-C)
    the temporary file is deleted and the exception propagates."""
    folder, file_name = os.path.split(path)
    handle, tmp_path = tempfile.mkstemp(prefix=f'.{file_name}.', suffix='.part', dir=folder)
    bar = None
    try:
        with os.fdopen(handle, 'wb') as out, _open_url(url, timeout) as response:
            status = getattr(response, 'status', None)
            if status is not None and url.lower().startswith('http') \
                    and not 200 <= status < 300:
                raise OSError(f'HTTP status {status}')
            length = response.headers.get('Content-Length')
            total = int(length) if length is not None and length.strip().isdigit() else None
            if not quiet:
                size = '' if total is None else f' ({total:,} bytes)'
                print(f'Downloading {file_name}{size} from {url}', file=sys.stderr)
            bar = _progress_bar(total, file_name, quiet)
            received = 0
            while True:
                chunk = response.read(_CHUNK_SIZE)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                if total is not None and received > total:
                    raise OSError(f'the server sent more than the {total:,} bytes its '
                                  f'Content-Length announced')
        # http.client does not complain when a connection closes early: count the bytes.
        if total is not None and received != total:
            raise OSError(f'the connection closed after {received:,} of {total:,} bytes '
                          f'(interrupted download)')
        if md5 is not None:
            problem = _checksum_problem(tmp_path, md5)
            if problem is not None:
                raise ValueError(f'checksum failed: {problem}')
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.remove(tmp_path)
        except FileNotFoundError:
            pass
        raise
    finally:
        if bar is not None:
            bar.close()


def get_file(url: str | Sequence[str], file_name: str | None = None, md5: str | None = None,
             *, root: str | os.PathLike | None = None, mirrors: Sequence[str] | None = None,
             quiet: bool = False, timeout: float = _TIMEOUT) -> str:
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
        timeout: seconds to wait for a connection, or for data, before a URL counts as
            failed (a program with a fallback, like ``zerograd demo``, uses a short one).

    A cached file (verified, when ``md5`` is given) is returned without any network access.
    A cached file that fails its checksum is downloaded again once; with
    ``ZEROGRAD_OFFLINE=1`` it is a ValueError naming the file and both MD5s instead.
    A download is written to a temporary file and renamed only once complete and verified,
    so a failure leaves nothing in the cache. When every URL fails, or when offline with
    nothing cached, a ``DownloadError`` (an OSError) names the file, the folder to put it
    in, and each URL (with why it failed).
    """
    urls = _url_list(url, mirrors)
    file_name = _check_file_name(_name_from_url(urls[0]) if file_name is None else file_name)
    md5 = None if md5 is None else _check_md5(md5)
    folder = data_dir(root)
    path = os.path.join(folder, file_name)
    url_text = urls[0] + ''.join(f'\n  or {u}' for u in urls[1:])

    cached_problem = None
    if os.path.exists(path):
        if not os.path.isfile(path):
            raise ValueError(f'get_file: {path!r} exists but is not a file')
        cached_problem = None if md5 is None else _checksum_problem(path, md5)
        if cached_problem is None:
            return path

    if is_offline():
        if cached_problem is not None:
            raise ValueError(f'get_file: the cached file {path!r} fails its checksum '
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
            _fetch(u, path, md5, quiet, timeout)
            return path
        except Exception as error:  # any failure of one URL: note it, try the next one
            reasons.append((u, f'{type(error).__name__}: {error}'))

    lines = ''.join(f'\n  {u}\n    -> {reason}' for u, reason in reasons)
    before = '' if cached_problem is None else \
        f'the cached copy {path!r} fails its checksum ({cached_problem}), and '
    checksum = '' if md5 is None else f' (MD5 {md5})'
    raise DownloadError(
        f'get_file: {before}could not download {file_name!r} into {folder!r}; nothing was '
        f'saved. Tried:{lines}\nDownload it yourself from one of these URLs{checksum} and '
        f'place it at {path!r}.',
        file_name=file_name, folder=folder, urls=urls, reasons=reasons)
