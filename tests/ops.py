"""The op registry: one entry per differentiable function of ``zerograd.functions``.

An entry (``Op``) names the function, its topic (the module of ``zerograd/functions/``
and the test file ``tests/test_functions_<topic>.py`` that checks it), its NumPy
reference and its PyTorch reference (``op_references.NP`` / ``TH``, the same signature as
the zerograd function), and its cases. A case (``Case``) is one call ``fn(m, *xs,
**consts)`` written once for every framework (``m`` is ``zerograd.functions``, ``NP`` or
``TH``; operators work on all three), with its input shapes, a broadcasting shape set, the
input domain, whether double backward applies, and the kinds of test that run it:

* ``'grad'``: ``zerograd.testing.check_op`` (forward against NumPy in float64 and
  float32, float32 kept, first derivatives and double backward against central
  differences, the broadcasting shapes too), in tests/test_functions_<topic>.py;
* ``'torch'``: forward, first and second derivatives against PyTorch, in float64 and
  float32, in tests/test_torch.py;
* ``'device'``: forward, gradients (and, with ``device_double``, second gradients) on the
  strict stand-in for CuPy and on CuPy equal to the CPU's, in tests/test_gpu.py.

Adding an op means adding one ``op(...)`` entry and its cases here;
tests/test_functions.py fails while a public function of ``zerograd.functions`` has
neither an entry nor a line in ``NOT_DIFFERENTIABLE`` or ``ALIASES``.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import zerograd
import zerograd.functions as F
from op_references import NP, TH, const, index_for

GRAD, TORCH, DEVICE = 'grad', 'torch', 'device'
KINDS = (GRAD, TORCH, DEVICE)
ALL = frozenset(KINDS)
G, T, D = frozenset({GRAD}), frozenset({TORCH}), frozenset({DEVICE})


@dataclass(eq=False)
class Case:
    """One call of an op, and which tests run it.

    fn(m, *xs, **consts): the call; xs the differentiable inputs (shapes), consts the
    non-differentiable arrays (labels, ids), which the device test moves to the device.
    ref: a NumPy reference (arrays in) when fn(NP, ...) cannot serve as one.
    double: double backward applies (check_op's and PyTorch's second derivatives).
    device_double / device_float32: the device test also checks second gradients /
    a float32 run. torch_tol: 'core', 'nn' or 'conv' (TORCH_TOLERANCE).
    torch_plain_first: the first derivatives compared with PyTorch come from a backward
    without create_graph (else from the create_graph one). float32_double: the float32
    through double backward test of test_functions.py runs it."""
    op: str
    id: str
    fn: Callable
    shapes: list
    broadcast: list | None = None
    domain: Any = 'any'
    consts: dict = field(default_factory=dict)
    kinds: frozenset = ALL
    ref: Callable | None = None
    double: bool = True
    device_double: bool = False
    device_float32: bool = False
    torch_tol: str = 'core'
    torch_plain_first: bool = True
    float32_double: bool = False

    def zerograd(self) -> Callable:
        """The case as a function of Variables (or device arrays), consts bound."""
        return lambda *xs, **consts: self.fn(F, *xs, **(consts or self.consts))

    def numpy(self) -> Callable:
        """The NumPy reference: arrays in, array out."""
        if self.ref is not None:
            return self.ref
        return lambda *xs: self.fn(NP, *xs, **self.consts)

    def torch(self) -> Callable:
        """The PyTorch reference: fn(TH, ...), the m argument already bound."""
        return lambda m, *xs: self.fn(m, *xs, **self.consts)


@dataclass(eq=False)
class Op:
    name: str
    topic: str
    numpy: Callable
    torch: Callable | None
    cases: list = field(default_factory=list)


TOPICS = ('math', 'array', 'reduction', 'linalg', 'activation', 'loss', 'normalization',
          'conv', 'pooling', 'rnn')
OPS: dict[str, Op] = {}

# Public functions of zerograd.functions that are not differentiable ops, and why.
NOT_DIFFERENTIABLE = {
    'accuracy': 'a fraction of right answers: no gradient (tested in test_functions_loss.py '
                'and on the device in test_gpu.py)',
    'as_array': 'converts a scalar to an ndarray; not an op',
    'as_variable': 'wraps an array in a Variable; not an op',
    'get_array_module': 'returns numpy or cupy for an array (zerograd.cuda); not an op',
    'scatter_add': 'the in-place array kernel of get_item\'s backward (zerograd.cuda); '
                   'tested on the device in test_gpu.py',
}
# Other names of an op with an entry: the same function object.
ALIASES = {'batch_nrom': 'batch_norm', 'mean': 'average'}


def op(name: str, topic: str) -> None:
    """Register the entry of F.<name>: its NumPy and PyTorch references by name."""
    assert topic in TOPICS and name not in OPS, name
    OPS[name] = Op(name, topic, getattr(NP, name), getattr(TH, name, None) if TH else None)


def case(op_name: str, case_id: str, fn: Callable, shapes: list, **options) -> None:
    """Add a case to the entry of op_name."""
    OPS[op_name].cases.append(Case(op_name, case_id, fn, list(shapes), **options))


def plain(f: Callable) -> Callable:
    """A zerograd-only function of Variables as a case's fn (the m argument unused)."""
    return lambda m, *xs, **consts: f(*xs, **consts)


def cases(kind: str, topic: str | None = None, **flags) -> list[Case]:
    """Every case of the given kind (and topic, and flags), in registry order."""
    return [c for entry in OPS.values() if topic in (None, entry.topic)
            for c in entry.cases
            if kind in c.kinds and all(getattr(c, k) == v for k, v in flags.items())]


def find(kind: str, case_id: str) -> Case:
    """The case of the given kind and id."""
    (found,) = [c for c in cases(kind) if c.id == case_id]
    return found


def case_id(c: Case) -> str:
    return c.id


TORCH_TOLERANCE = {
    # conv: sums of many products; nn: losses and batch norm sum many rounded terms, and
    # second derivatives of batch norm cancel large ones, so a few float32 spacings.
    'core': {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)},
    'nn': {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=1e-4, atol=1e-5)},
    'conv': {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=1e-4, atol=1e-4)},
}

# Constants. Positive: a constant may be a divisor or the base of a power.
C23 = np.random.default_rng(1).uniform(0.5, 1.5, size=(2, 3))
C23_TORCH = np.random.default_rng(7).uniform(0.5, 1.5, size=(2, 3))
_rng = np.random.default_rng(42)
T4 = np.array([2, 0, 1, 2])  # class ids for 4 rows of 3 scores
T41 = _rng.integers(0, 2, size=(4, 1)).astype(np.float64)  # 0/1 labels, shape (N, 1)
T43 = _rng.integers(0, 2, size=(4, 3)).astype(np.float64)  # multi-label, shape (N, C)
X43 = _rng.uniform(-1, 1, size=(4, 3))  # a plain-array input of linear
IDS = np.array([[0, 4, 2], [4, 4, 1]])  # embed_id ids, repeats included
RUNNING_MEAN = _rng.uniform(-0.5, 0.5, size=3)
RUNNING_VAR = _rng.uniform(0.5, 2.0, size=3)
_rng = np.random.default_rng(11)
T5 = _rng.integers(0, 4, size=5)
T51 = _rng.integers(0, 2, size=(5, 1)).astype(np.float64)
T54 = _rng.integers(0, 2, size=(5, 4)).astype(np.float64)
X53 = _rng.uniform(-1, 1, size=(5, 3))
IDS_TORCH = np.array([[0, 3, 3], [5, 0, 1]])
X_CONV = np.random.default_rng(0).uniform(-1, 1, (2, 2, 4, 4))
X_CONV_TORCH = np.random.default_rng(21).uniform(-1, 1, size=(2, 2, 6, 5))
LABELS = np.array([0, 2, 1, 2])
EMBED_IDS = np.array([[1, 3], [1, 0]])  # a repeated id: the scatter-add must add twice


def _device(op_name, device_id, fn, shapes, domain='any', **options):
    case(op_name, device_id, plain(fn), shapes, domain=domain, kinds=D, **options)


def _torch(op_name, torch_id, fn, shapes, domain='any', tol='core', **options):
    case(op_name, torch_id, fn, shapes, domain=domain, kinds=T, torch_tol=tol,
         torch_plain_first=tol != 'nn', **options)


# =============================================================================
# math: arithmetic (operators and F.add etc., every operand form) and elementwise
# =============================================================================
for _name in ('add', 'sub', 'mul', 'div', 'pow', 'neg', 'rsub', 'rdiv', 'sin', 'cos', 'tanh',
              'exp', 'log', 'square', 'sqrt', 'abs', 'clip'):
    op(_name, 'math')

_OPERATORS = {'add': operator.add, 'sub': operator.sub, 'mul': operator.mul,
              'div': operator.truediv, 'pow': operator.pow}
_ARITHMETIC_DOMAIN = {'add': 'any', 'sub': 'any', 'mul': 'any', 'div': 'nonzero', 'pow': 'pos'}
# operand form -> (call(f, *xs), shapes, broadcasting shapes)
_OPERANDS = {
    'var-var': (lambda f, x, y: f(x, y), [(2, 3), (2, 3)], [(2, 1, 3), (4, 1)]),
    'var-scalar': (lambda f, x: f(x, 1.5), [(2, 3)], None),
    'scalar-var': (lambda f, x: f(1.5, x), [(2, 3)], None),
    'var-ndarray': (lambda f, x: f(x, const(C23, x)), [(2, 3)], [(3,)]),
    'ndarray-var': (lambda f, x: f(const(C23, x), x), [(2, 3)], [(1, 3)]),
}
for _name, _operator in _OPERATORS.items():
    for _spelling in ('operator', 'F'):
        for _form, (_call, _shapes, _broadcast) in _OPERANDS.items():
            if _spelling == 'operator':
                _fn = lambda m, *xs, o=_operator, c=_call: c(o, *xs)  # noqa: E731
            else:
                _fn = lambda m, *xs, n=_name, c=_call: c(getattr(m, n), *xs)  # noqa: E731
            case(_name, f'{_name} ({_spelling}, {_form})', _fn, _shapes, broadcast=_broadcast,
                 domain=_ARITHMETIC_DOMAIN[_name], kinds=G)

for _name, _id, _fn, _domain in [
        ('neg', '-x', lambda m, x: -x, 'any'),
        ('neg', 'F.neg', lambda m, x: m.neg(x), 'any'),
        ('rsub', 'F.rsub', lambda m, x: m.rsub(x, 1.5), 'any'),
        ('rdiv', 'F.rdiv', lambda m, x: m.rdiv(x, 1.5), 'nonzero'),
        ('pow', 'x ** 3 (int exponent, negative base)', lambda m, x: x ** 3, 'any'),
        ('pow', 'x ** 2 (int exponent)', lambda m, x: x ** 2, 'any'),
        ('pow', 'x ** -1.5', lambda m, x: x ** -1.5, 'pos'),
        ('pow', 'x ** 0.5', lambda m, x: x ** 0.5, 'pos'),
        ('pow', '2 ** x (int base)', lambda m, x: 2 ** x, 'any'),
        ('pow', '0.5 ** x', lambda m, x: 0.5 ** x, 'any'),
        ('rsub', '2.0 - x', lambda m, x: 2.0 - x, 'any'),
        ('rdiv', '2.0 / x', lambda m, x: 2.0 / x, 'nonzero')]:
    case(_name, _id, _fn, [(2, 3)], domain=_domain, kinds=G)


def _signed_exponent(shape, rng):
    """A positive base x; an exponent y (shape (2, 1)) in [-2, 2]."""
    if shape == (2, 1):
        return rng.uniform(-2.0, 2.0, size=shape)
    return rng.uniform(0.5, 2.0, size=shape)


case('pow', 'x ** y (signed exponent)', lambda m, x, y: x ** y, [(2, 3), (2, 1)],
     broadcast=[(3,), (2, 1)], domain=_signed_exponent, kinds=G)

_ELEMENTWISE_DOMAIN = {'log': 'pos', 'sqrt': 'pos', 'abs': 'nonzero'}
for _name in ('sin', 'cos', 'tanh', 'exp', 'log', 'square', 'sqrt', 'abs'):
    for _shape in [(2, 3), (), (2, 1, 3)]:
        # (2, 3) for every function and () for sin are compared with PyTorch too.
        _kinds = G | T if _shape == (2, 3) or (_name, _shape) == ('sin', ()) else G
        case(_name, f'{_name} {_shape}', lambda m, x, n=_name: getattr(m, n)(x), [_shape],
             domain=_ELEMENTWISE_DOMAIN.get(_name, 'any'), kinds=_kinds)

case('clip', 'clip', lambda m, x: m.clip(x, -0.5, 0.5), [(3, 4)], broadcast=[(2, 3, 4)],
     domain='clip', kinds=G | T, torch_tol='nn', torch_plain_first=False, float32_double=True)

for _name, _id, _fn, _shapes, _domain in [
        ('add', 'x + y', lambda m, x, y: x + y, [(2, 3), (2, 3)], 'any'),
        ('add', 'x + y broadcast', lambda m, x, y: x + y, [(2, 1, 3), (4, 1)], 'any'),
        ('add', 'F.add broadcast', lambda m, x, y: m.add(x, y), [(3,), (2, 3)], 'any'),
        ('sub', 'x - y broadcast', lambda m, x, y: x - y, [(2, 1, 3), (4, 1)], 'any'),
        ('sub', 'F.sub broadcast', lambda m, x, y: m.sub(x, y), [(2, 3), (2, 1)], 'any'),
        ('mul', 'x * y broadcast', lambda m, x, y: x * y, [(2, 1, 3), (4, 1)], 'any'),
        ('mul', 'F.mul broadcast', lambda m, x, y: m.mul(x, y), [(2, 3), (3,)], 'any'),
        ('div', 'x / y broadcast', lambda m, x, y: x / y, [(2, 1, 3), (4, 1)], 'nonzero'),
        ('div', 'F.div broadcast', lambda m, x, y: m.div(x, y), [(1, 3), (2, 1)], 'nonzero'),
        ('pow', 'x ** y broadcast', lambda m, x, y: x ** y, [(2, 1, 3), (4, 1)], 'pos'),
        ('pow', 'F.pow(x, y)', lambda m, x, y: m.pow(x, y), [(2, 3), (2, 3)], 'pos'),
        ('neg', '-x', lambda m, x: -x, [(2, 3)], 'any'),
        ('neg', 'F.neg', lambda m, x: m.neg(x), [(2, 3)], 'any'),
        ('add', 'x + 1.5', lambda m, x: x + 1.5, [(2, 3)], 'any'),
        ('add', '1.5 + x', lambda m, x: 1.5 + x, [(2, 3)], 'any'),
        ('sub', 'x - 1.5', lambda m, x: x - 1.5, [(2, 3)], 'any'),
        ('rsub', '2.0 - x', lambda m, x: 2.0 - x, [(2, 3)], 'any'),
        ('mul', 'x * 1.5', lambda m, x: x * 1.5, [(2, 3)], 'any'),
        ('mul', '2 * x', lambda m, x: 2 * x, [(2, 3)], 'any'),
        ('div', 'x / 1.5', lambda m, x: x / 1.5, [(2, 3)], 'any'),
        ('rdiv', '2.0 / x', lambda m, x: 2.0 / x, [(2, 3)], 'nonzero'),
        ('pow', 'x ** 3', lambda m, x: x ** 3, [(2, 3)], 'any'),
        ('pow', 'x ** -1.5', lambda m, x: x ** -1.5, [(2, 3)], 'pos'),
        ('pow', '2 ** x', lambda m, x: 2 ** x, [(2, 3)], 'any'),
        ('add', 'x + C', lambda m, x: x + const(C23_TORCH, x), [(3,)], 'any'),
        ('rsub', 'C - x', lambda m, x: const(C23_TORCH, x) - x, [(1, 3)], 'any'),
        ('mul', 'x * C', lambda m, x: x * const(C23_TORCH, x), [(2, 1)], 'any'),
        ('rdiv', 'C / x', lambda m, x: const(C23_TORCH, x) / x, [(3,)], 'nonzero'),
        ('div', 'x / C', lambda m, x: x / const(C23_TORCH, x), [(2, 3)], 'any'),
        ('pow', 'x ** C', lambda m, x: x ** const(C23_TORCH, x), [(3,)], 'pos'),
        ('pow', 'C ** x', lambda m, x: const(C23_TORCH, x) ** x, [(2, 1)], 'any')]:
    _torch(_name, _id, _fn, _shapes, _domain)

for _name, _id, _fn, _shapes, _domain, _options in [
        ('add', 'add', lambda a, b: a + b, [(3, 4), (4,)], 'any', {}),
        ('sub', 'sub', lambda a, b: a - b, [(3, 4), (3, 1)], 'any', {}),
        ('mul', 'mul', lambda a, b: a * b, [(3, 4), (3, 4)], 'any', {'device_double': True}),
        ('div', 'div', lambda a, b: a / b, [(3, 4), (4,)], 'pos', {'device_double': True}),
        ('neg', 'neg', lambda a: -a, [(3, 4)], 'any', {}),
        ('pow', 'pow', lambda a: a ** 3, [(3, 4)], 'any', {}),
        ('pow', 'pow-variable', lambda a, b: a ** b, [(3, 4), (3, 4)], 'pos',
         {'device_double': True}),
        ('rsub', 'scalars', lambda a: (2.0 - a) * 3 / 4 + 1, [(3, 4)], 'any', {}),
        ('pow', 'scalar-base', lambda a: 2.0 ** a, [(3, 4)], 'any', {}),
        ('rdiv', 'scalar-over', lambda a: 2.0 / a, [(3, 4)], 'pos', {}),
        ('sin', 'sin', F.sin, [(3, 4)], 'any', {}),
        ('cos', 'cos', F.cos, [(3, 4)], 'any', {}),
        ('tanh', 'tanh', F.tanh, [(3, 4)], 'any',
         {'device_double': True, 'device_float32': True}),
        ('exp', 'exp', F.exp, [(3, 4)], 'any', {'device_double': True}),
        ('log', 'log', F.log, [(3, 4)], 'pos', {'device_double': True}),
        ('square', 'square', F.square, [(3, 4)], 'any', {}),
        ('sqrt', 'sqrt', F.sqrt, [(3, 4)], 'pos', {}),
        ('abs', 'abs', F.abs, [(3, 4)], 'any', {}),
        ('clip', 'clip', lambda a: F.clip(a, -0.5, 0.5), [(3, 4)], 'any', {})]:
    _device(_name, _id, _fn, _shapes, _domain, **_options)


# =============================================================================
# array: shapes, indexing, joining, cast
# =============================================================================
for _name in ('reshape', 'transpose', 'sum_to', 'broadcast_to', 'expand_dims', 'flatten',
              'get_item', 'GetItemGrad', 'concat', 'stack', 'cast'):
    op(_name, 'array')

for _name, _id, _f, _ref, _shape in [
        ('reshape', 'F.reshape tuple', lambda x: F.reshape(x, (3, 2)),
         lambda x: x.reshape(3, 2), (2, 3)),
        ('reshape', 'F.reshape list', lambda x: F.reshape(x, [3, 2]),
         lambda x: x.reshape(3, 2), (2, 3)),
        ('reshape', 'F.reshape int', lambda x: F.reshape(x, 6), lambda x: x.reshape(6), (2, 3)),
        ('reshape', 'F.reshape -1', lambda x: F.reshape(x, (-1,)), lambda x: x.reshape(-1),
         (2, 3)),
        ('reshape', 'F.reshape -1 middle', lambda x: F.reshape(x, (2, -1, 2)),
         lambda x: x.reshape(2, -1, 2), (4, 3)),
        ('reshape', 'F.reshape to 0-d', lambda x: F.reshape(x, ()), lambda x: x.reshape(()),
         (1, 1)),
        ('reshape', 'Variable.reshape varargs', lambda x: x.reshape(3, 2),
         lambda x: x.reshape(3, 2), (2, 3)),
        ('reshape', 'Variable.reshape tuple', lambda x: x.reshape((3, 2)),
         lambda x: x.reshape(3, 2), (2, 3)),
        ('reshape', 'Variable.reshape -1', lambda x: x.reshape(-1, 2),
         lambda x: x.reshape(-1, 2), (2, 3)),
        ('transpose', 'F.transpose None', F.transpose, np.transpose, (2, 3, 4)),
        ('transpose', 'F.transpose 2-D', F.transpose, np.transpose, (2, 3)),
        ('transpose', 'F.transpose axes', lambda x: F.transpose(x, (1, 0, 2)),
         lambda x: x.transpose(1, 0, 2), (2, 3, 4)),
        ('transpose', 'F.transpose cyclic axes', lambda x: F.transpose(x, (2, 0, 1)),
         lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
        ('transpose', 'F.transpose negative axes', lambda x: F.transpose(x, (-1, 0, -2)),
         lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
        ('transpose', 'Variable.transpose()', lambda x: x.transpose(), np.transpose, (2, 3, 4)),
        ('transpose', 'Variable.transpose(*axes)', lambda x: x.transpose(2, 0, 1),
         lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
        ('transpose', 'Variable.transpose(axes)', lambda x: x.transpose((1, 2, 0)),
         lambda x: x.transpose(1, 2, 0), (2, 3, 4)),
        ('transpose', 'Variable.T 2-D', lambda x: x.T, lambda x: x.T, (2, 3)),
        ('transpose', 'Variable.T 3-D', lambda x: x.T, lambda x: x.T, (2, 3, 4)),
        ('sum_to', 'sum_to (1, 3)', lambda x: F.sum_to(x, (1, 3)),
         lambda x: x.sum(0, keepdims=True), (2, 3)),
        ('sum_to', 'sum_to (3,)', lambda x: F.sum_to(x, (3,)), lambda x: x.sum(0), (2, 3)),
        ('sum_to', 'sum_to (2, 1)', lambda x: F.sum_to(x, (2, 1)),
         lambda x: x.sum(1, keepdims=True), (2, 3)),
        ('sum_to', 'sum_to ()', lambda x: F.sum_to(x, ()), np.sum, (2, 3)),
        ('sum_to', 'sum_to (3, 1) from 3-D', lambda x: F.sum_to(x, (3, 1)),
         lambda x: x.sum((0, 2))[:, None], (2, 3, 4)),
        ('broadcast_to', 'broadcast_to (3,)->(2, 3)', lambda x: F.broadcast_to(x, (2, 3)),
         lambda x: np.broadcast_to(x, (2, 3)), (3,)),
        ('broadcast_to', 'broadcast_to (2, 1)->(2, 3)', lambda x: F.broadcast_to(x, (2, 3)),
         lambda x: np.broadcast_to(x, (2, 3)), (2, 1)),
        ('broadcast_to', 'broadcast_to (1, 3)->(4, 2, 3)',
         lambda x: F.broadcast_to(x, [4, 2, 3]), lambda x: np.broadcast_to(x, (4, 2, 3)),
         (1, 3)),
        ('broadcast_to', 'broadcast_to ()->(2, 3)', lambda x: F.broadcast_to(x, (2, 3)),
         lambda x: np.broadcast_to(x, (2, 3)), ()),
        ('expand_dims', 'expand_dims 0', lambda x: F.expand_dims(x, 0),
         lambda x: np.expand_dims(x, 0), (2, 3)),
        ('expand_dims', 'expand_dims 1', lambda x: F.expand_dims(x, 1),
         lambda x: np.expand_dims(x, 1), (2, 3)),
        ('expand_dims', 'expand_dims 2', lambda x: F.expand_dims(x, 2),
         lambda x: np.expand_dims(x, 2), (2, 3)),
        ('expand_dims', 'expand_dims -1', lambda x: F.expand_dims(x, -1),
         lambda x: np.expand_dims(x, -1), (2, 3)),
        ('expand_dims', 'expand_dims -3', lambda x: F.expand_dims(x, -3),
         lambda x: np.expand_dims(x, -3), (2, 3)),
        ('flatten', 'flatten 3-D', F.flatten, lambda x: x.reshape(2, 12), (2, 3, 4)),
        ('flatten', 'flatten 4-D', F.flatten, lambda x: x.reshape(2, 6), (2, 3, 1, 2)),
        ('flatten', 'flatten 2-D', F.flatten, lambda x: x, (2, 3))]:
    case(_name, _id, plain(_f), [_shape], ref=_ref, kinds=G)

INDEXES = [
    ('int', 1),
    ('negative int', -1),
    ('slice', slice(1, 3)),
    ('reversed slice', slice(None, None, -1)),
    ('tuple of slices', (slice(None), slice(1, 3))),
    ('tuple of ints', (1, 2)),
    ('ellipsis', (Ellipsis, 1)),
    ('newaxis', (None, 0)),
    ('repeated index array', np.array([0, 0, 2, 0])),
    ('repeated index list', [2, 0, 2]),
    ('2-D index array', np.array([[0, 1], [1, 1]])),
    ('repeated index pairs', (np.array([0, 2, 0, 0]), np.array([1, 1, 1, 3]))),
    ('index array and slice', (np.array([1, 1]), slice(1, None))),
    ('slice and index array', (slice(None), np.array([3, 3, 0]))),
    ('boolean mask', np.array([True, False, True])),
]
for _index_name, _index in INDEXES:
    case('get_item', f'F.get_item {_index_name}', lambda m, x, i=_index: m.get_item(x, i),
         [(3, 4)], kinds=G)
    case('get_item', f'x[index] {_index_name}', lambda m, x, i=_index: x[i], [(3, 4)],
         kinds=G)
    # GetItemGrad scatters gy into zeros of the input's shape; its backward is get_item.
    case('GetItemGrad', f'GetItemGrad {_index_name}',
         lambda m, gy, i=_index: m.GetItemGrad(i, (3, 4))(gy),
         [np.zeros((3, 4))[_index].shape], kinds=G)

case('concat', 'concat axis=0', lambda m, a, b: m.concat([a, b]), [(2, 3), (1, 3)],
     broadcast=[(2, 3, 2), (4, 3, 2)], kinds=G, float32_double=True)
case('concat', 'concat axis=1', lambda m, a, b, c: m.concat((a, b, c), axis=1),
     [(2, 1), (2, 3), (2, 2)], broadcast=[(2, 1, 3), (2, 2, 3), (2, 4, 3)], kinds=G,
     float32_double=True)
case('concat', 'concat axis=-1', lambda m, a, b: m.concat([a, b], axis=-1),
     [(2, 3, 1), (2, 3, 2)], kinds=G, float32_double=True)
case('stack', 'stack axis=0', lambda m, a, b: m.stack([a, b]), [(2, 3), (2, 3)],
     broadcast=[(4,), (4,)], kinds=G, float32_double=True)
case('stack', 'stack axis=1', lambda m, a, b, c: m.stack([a, b, c], axis=1), [(2, 3)] * 3,
     kinds=G, float32_double=True)
case('stack', 'stack axis=-1', lambda m, a, b: m.stack([a, b], axis=-1), [(2, 3)] * 2,
     kinds=G, float32_double=True)

for _name, _id, _fn, _shapes in [
        ('reshape', 'reshape', lambda m, x: m.reshape(x, (3, 2)), [(2, 3)]),
        ('reshape', 'reshape -1', lambda m, x: m.reshape(x, (-1, 4)), [(2, 3, 4)]),
        ('reshape', 'Variable.reshape varargs', lambda m, x: x.reshape(4, 6), [(2, 3, 4)]),
        ('transpose', 'transpose None', lambda m, x: m.transpose(x), [(2, 3, 4)]),
        ('transpose', 'transpose axes', lambda m, x: m.transpose(x, (1, 2, 0)), [(2, 3, 4)]),
        ('transpose', 'Variable.T', lambda m, x: x.T, [(2, 3)]),
        ('sum_to', 'sum_to (1, 3)', lambda m, x: m.sum_to(x, (1, 3)), [(2, 3)]),
        ('sum_to', 'sum_to (3, 1)', lambda m, x: m.sum_to(x, (3, 1)), [(2, 3, 4)]),
        ('sum_to', 'sum_to ()', lambda m, x: m.sum_to(x, ()), [(2, 3)]),
        ('broadcast_to', 'broadcast_to', lambda m, x: m.broadcast_to(x, (4, 2, 3)), [(2, 1)]),
        ('expand_dims', 'expand_dims 1', lambda m, x: m.expand_dims(x, 1), [(2, 3)]),
        ('expand_dims', 'expand_dims -1', lambda m, x: m.expand_dims(x, -1), [(2, 3)]),
        ('flatten', 'flatten', lambda m, x: m.flatten(x), [(2, 3, 4)]),
        ('get_item', 'get_item int', lambda m, x: m.get_item(x, 1), [(3, 4)]),
        ('get_item', 'get_item slices',
         lambda m, x: m.get_item(x, (slice(None), slice(1, 3))), [(3, 4)]),
        ('get_item', 'get_item repeated',
         lambda m, x: m.get_item(x, np.array([0, 2, 0, 0])), [(3, 4)]),
        ('get_item', 'get_item repeated pairs',
         lambda m, x: m.get_item(x, (np.array([0, 2, 0]), np.array([1, 1, 1]))), [(3, 4)]),
        ('get_item', 'x[index, slice]', lambda m, x: x[index_for(m, np.array([1, 1])), 1:],
         [(3, 4)])]:
    _torch(_name, _id, _fn, _shapes)
_torch('concat', 'concat axis=0', lambda m, a, b: m.concat([a, b]), [(2, 3), (4, 3)], tol='nn')
_torch('concat', 'concat axis=1 three', lambda m, a, b, c: m.concat([a, b, c], 1),
       [(2, 1, 3), (2, 2, 3), (2, 4, 3)], tol='nn')
_torch('stack', 'stack axis=0', lambda m, a, b: m.stack([a, b]), [(2, 3), (2, 3)], tol='nn')
_torch('stack', 'stack axis=-1', lambda m, a, b, c: m.stack([a, b, c], -1), [(2, 3)] * 3,
       tol='nn')

for _name, _id, _fn, _shapes, _options in [
        ('cast', 'cast', lambda a: F.cast(a, np.float32) * 2, [(3, 4)], {}),
        ('reshape', 'reshape', lambda a: F.reshape(a, (4, 3)), [(3, 4)], {}),
        ('transpose', 'transpose', lambda a: F.transpose(a, (2, 0, 1)), [(2, 3, 4)], {}),
        ('transpose', 'T', lambda a: a.T, [(3, 4)], {}),
        ('get_item', 'get_item-basic', lambda a: a[1:, ::2], [(3, 4)], {'device_double': True}),
        ('expand_dims', 'expand_dims', lambda a: F.expand_dims(a, 1), [(3, 4)], {}),
        ('flatten', 'flatten', F.flatten, [(2, 3, 4)], {}),
        ('broadcast_to', 'broadcast_to', lambda a: F.broadcast_to(a, (3, 4)), [(1, 4)], {}),
        ('sum_to', 'sum_to', lambda a: F.sum_to(a, (1, 4)), [(3, 4)], {}),
        ('concat', 'concat', lambda a, b: F.concat([a, b], axis=1), [(3, 4), (3, 2)], {}),
        ('stack', 'stack', lambda a, b: F.stack([a, b], axis=1), [(3, 4), (3, 4)], {})]:
    _device(_name, _id, _fn, _shapes, **_options)


# =============================================================================
# reduction: sum, max, min, average (mean)
# =============================================================================
for _name in ('sum', 'max', 'min', 'average'):
    op(_name, 'reduction')

for _name in ('sum', 'max', 'min'):
    for _axis in [None, 0, 1, -1, -3, (0, 2), (-1, 0), (0, 1, 2)]:
        for _keepdims in (False, True):
            case(_name, f'{_name}(axis={_axis}, keepdims={_keepdims})',
                 lambda m, x, n=_name, a=_axis, k=_keepdims: getattr(m, n)(x, axis=a,
                                                                           keepdims=k),
                 [(2, 3, 4)], kinds=G)

for _name, _id, _f, _ref, _shape in [
        ('sum', 'sum empty tuple axis', lambda x: F.sum(x, ()), lambda x: np.sum(x, ()), (2, 3)),
        ('sum', 'sum of 0-d', F.sum, np.sum, ()),
        ('sum', 'Variable.sum()', lambda x: x.sum(), np.sum, (2, 3)),
        ('sum', 'Variable.sum(axis, keepdims)', lambda x: x.sum(axis=1, keepdims=True),
         lambda x: x.sum(axis=1, keepdims=True), (2, 3)),
        ('sum', 'Variable.sum(tuple)', lambda x: x.sum((0, 1)), lambda x: x.sum((0, 1)),
         (2, 3)),
        ('max', 'Variable.max()', lambda x: x.max(), np.max, (2, 3)),
        ('max', 'Variable.max(axis, keepdims)', lambda x: x.max(axis=-1, keepdims=True),
         lambda x: x.max(axis=-1, keepdims=True), (2, 3)),
        ('min', 'Variable.min()', lambda x: x.min(), np.min, (2, 3)),
        ('min', 'Variable.min(axis)', lambda x: x.min(0), lambda x: x.min(0), (2, 3)),
        ('average', 'average', F.average, np.mean, (2, 3, 4)),
        ('average', 'mean', F.mean, np.mean, (2, 3)),
        ('average', 'mean axis=1', lambda x: F.mean(x, axis=1), lambda x: x.mean(axis=1),
         (2, 3, 4)),
        ('average', 'average axis=-1 keepdims', lambda x: F.average(x, -1, True),
         lambda x: x.mean(axis=-1, keepdims=True), (2, 3, 4)),
        ('average', 'average axis=(0, 2)', lambda x: F.average(x, (0, 2)),
         lambda x: x.mean(axis=(0, 2)), (2, 3, 4)),
        ('average', 'mean axis=0', lambda x: F.mean(x, axis=0), lambda x: x.mean(axis=0),
         (4, 3))]:
    nn = _name == 'average'  # the cases of the former neural-network table
    case(_name, _id, plain(_f), [_shape], ref=_ref, kinds=G, float32_double=nn,
         broadcast=[(5,)] if _id == 'average' else None)

for _name, _id, _fn, _shapes in [
        ('sum', 'sum None', lambda m, x: m.sum(x), [(2, 3, 4)]),
        ('sum', 'sum 1', lambda m, x: m.sum(x, 1), [(2, 3, 4)]),
        ('sum', 'sum -1 keepdims', lambda m, x: m.sum(x, -1, True), [(2, 3, 4)]),
        ('sum', 'sum (0, 2)', lambda m, x: m.sum(x, (0, 2)), [(2, 3, 4)]),
        ('sum', 'sum (-1, 0) keepdims', lambda m, x: m.sum(x, (-1, 0), True), [(2, 3, 4)]),
        ('sum', 'Variable.sum(axis, keepdims)', lambda m, x: x.sum(axis=1, keepdims=True),
         [(2, 3)]),
        ('max', 'max None', lambda m, x: m.max(x), [(2, 3, 4)]),
        ('max', 'max 1', lambda m, x: m.max(x, 1), [(2, 3, 4)]),
        ('max', 'max (0, 2) keepdims', lambda m, x: m.max(x, (0, 2), True), [(2, 3, 4)]),
        ('min', 'min -1', lambda m, x: m.min(x, -1), [(2, 3, 4)]),
        ('min', 'min None keepdims', lambda m, x: m.min(x, None, True), [(2, 3, 4)])]:
    _torch(_name, _id, _fn, _shapes)
_torch('average', 'mean', lambda m, x: m.mean(x), [(2, 3, 4)], tol='nn')
_torch('average', 'mean axis=1', lambda m, x: m.mean(x, 1), [(2, 3, 4)], tol='nn')
_torch('average', 'mean axis=(0, 2) keepdims', lambda m, x: m.mean(x, (0, 2), True),
       [(2, 3, 4)], tol='nn')
_torch('average', 'mean axis=-1', lambda m, x: m.mean(x, -1), [(3, 4)], tol='nn')

_device('sum', 'sum', lambda a: F.sum(a, axis=(0, 2), keepdims=True), [(2, 3, 4)],
        device_double=True)
_device('average', 'average', lambda a: F.average(a, axis=1), [(3, 4)])
_device('max', 'max', lambda a: F.max(a, axis=1), [(3, 4)], device_double=True)
_device('min', 'min', lambda a: F.min(a), [(3, 4)])


# =============================================================================
# linalg: matmul, linear, linear_pair (and embed_id's cases, an array op)
# =============================================================================
for _name in ('matmul', 'linear', 'linear_simple', 'linear_pair'):
    op(_name, 'linalg')
op('embed_id', 'array')

for _shapes in [[(3, 4), (4, 5)], [(2, 3, 4), (4, 5)], [(3, 4), (2, 4, 5)],
                [(2, 3, 4), (2, 4, 5)], [(2, 3, 4), (1, 4, 5)], [(1, 3, 4), (2, 4, 5)],
                [(2, 1, 3, 4), (3, 4, 2)], [(4,), (4, 5)], [(3, 4), (4,)], [(4,), (4,)],
                [(4,), (2, 4, 5)], [(2, 3, 4), (4,)]]:
    case('matmul', f'matmul {_shapes}', lambda m, x, W: m.matmul(x, W), _shapes, kinds=G)
for _id, _f, _ref, _shapes in [
        ('x @ W', lambda x, W: x @ W, np.matmul, [(2, 3, 4), (1, 4, 5)]),
        ('x.matmul(W)', lambda x, W: x.matmul(W), np.matmul, [(3, 4), (4, 5)]),
        ('x.dot(W)', lambda x, W: x.dot(W), np.matmul, [(3, 4), (4, 5)]),
        ('x.dot(W) 1-D', lambda x, W: x.dot(W), np.matmul, [(4,), (4,)]),
        ('x @ ndarray', lambda x: x @ const(C23, x).T, lambda x: x @ C23.T, [(4, 3)]),
        ('ndarray @ x', lambda x: const(C23, x) @ x, lambda x: C23 @ x, [(3, 4)])]:
    case('matmul', _id, plain(_f), _shapes, ref=_ref, kinds=G)

case('linear', 'linear', lambda m, x, W, b: m.linear(x, W, b), [(4, 3), (3, 5), (5,)],
     broadcast=[(1, 2), (2, 3), (3,)], kinds=G, float32_double=True)
case('linear', 'linear without b', lambda m, x, W: m.linear(x, W), [(4, 3), (3, 5)], kinds=G,
     float32_double=True)
case('linear', 'linear ndarray x', lambda m, W, b: m.linear(const(X43, W), W, b),
     [(3, 5), (5,)], kinds=G, float32_double=True)
case('linear_simple', 'linear_simple', lambda m, x, W, b: m.linear_simple(x, W, b),
     [(4, 3), (3, 5), (5,)], kinds=G, float32_double=True)
case('linear_simple', 'linear_simple without b', lambda m, x, W: m.linear_simple(x, W),
     [(4, 3), (3, 5)], kinds=G, float32_double=True)
case('linear_pair', 'linear_pair', lambda m, *xs: m.linear_pair(*xs),
     [(3, 4), (4, 2), (2,), (3, 5), (5, 2)], device_double=True)
case('embed_id', 'embed_id', lambda m, W: m.embed_id(IDS, W), [(5, 3)], kinds=G,
     float32_double=True)
case('embed_id', 'embed_id 1-D ids', lambda m, W: m.embed_id(IDS[0], W), [(5, 2)], kinds=G,
     float32_double=True)

for _id, _fn, _shapes in [
        ('matmul 2-D', lambda m, x, W: m.matmul(x, W), [(3, 4), (4, 5)]),
        ('matmul (2,3,4)@(4,5)', lambda m, x, W: m.matmul(x, W), [(2, 3, 4), (4, 5)]),
        ('matmul (2,3,4)@(1,4,5)', lambda m, x, W: x @ W, [(2, 3, 4), (1, 4, 5)]),
        ('matmul (2,1,3,4)@(3,4,2)', lambda m, x, W: x @ W, [(2, 1, 3, 4), (3, 4, 2)]),
        ('matmul (3,4)@(2,4,5)', lambda m, x, W: x @ W, [(3, 4), (2, 4, 5)]),
        ('matmul (4,)@(4,5)', lambda m, x, W: m.matmul(x, W), [(4,), (4, 5)]),
        ('matmul (2,3,4)@(4,)', lambda m, x, W: m.matmul(x, W), [(2, 3, 4), (4,)]),
        ('matmul (4,)@(2,4,5)', lambda m, x, W: m.matmul(x, W), [(4,), (2, 4, 5)]),
        ('x.matmul(W)', lambda m, x, W: x.matmul(W), [(3, 4), (4, 5)]),
        ('x.dot(W) 1-D', lambda m, x, W: x.dot(W), [(4,), (4,)]),
        # a composition: the second derivative mixes several ops
        ('tanh(x @ W) * exp(-x.sum)',
         lambda m, x, W: m.tanh(x @ W) * m.exp(-m.sum(x, 1, True)), [(3, 4), (4, 2)])]:
    _torch('matmul', _id, _fn, _shapes)
_torch('linear', 'linear', lambda m, x, W, b: m.linear(x, W, b), [(5, 3), (3, 4), (4,)],
       tol='nn')
_torch('linear', 'linear without b', lambda m, x, W: m.linear(x, W), [(5, 3), (3, 4)], tol='nn')
_torch('linear', 'linear ndarray x', lambda m, W, b: m.linear(const(X53, W), W, b),
       [(3, 4), (4,)], tol='nn')
_torch('embed_id', 'embed_id', lambda m, W: m.embed_id(IDS_TORCH, W), [(6, 3)], tol='nn')

_device('matmul', 'matmul', F.matmul, [(3, 4), (4, 2)], device_double=True,
        device_float32=True)
_device('matmul', 'matmul-batched', F.matmul, [(2, 3, 4), (4, 2)])
_device('linear', 'linear', F.linear, [(3, 4), (4, 2), (2,)])
_device('linear_simple', 'linear_simple', F.linear_simple, [(3, 4), (4, 2), (2,)])
_device('embed_id', 'embed_id', lambda W, ids: F.embed_id(ids, W), [(4, 3)],
        consts={'ids': EMBED_IDS}, device_double=True, device_float32=True)


# =============================================================================
# activation: sigmoid, relu, leaky_relu, softmax, log_softmax
# =============================================================================
for _name in ('sigmoid', 'sigmoid_simple', 'relu', 'leaky_relu', 'softmax', 'softmax_simple',
              'log_softmax'):
    op(_name, 'activation')

for _name, _id, _fn, _shapes, _broadcast, _domain in [
        ('sigmoid', 'sigmoid', lambda m, x: m.sigmoid(x), [(2, 3)], [(2, 3, 4)], 'scores'),
        ('sigmoid_simple', 'sigmoid_simple', lambda m, x: m.sigmoid_simple(x), [(2, 3)],
         [(4,)], 'scores'),
        ('relu', 'relu', lambda m, x: m.relu(x), [(2, 3)], [(2, 3, 4)], 'kinkless'),
        ('leaky_relu', 'leaky_relu', lambda m, x: m.leaky_relu(x), [(2, 3)], [(2, 3, 4)],
         'kinkless'),
        ('leaky_relu', 'leaky_relu slope=0.1', lambda m, x: m.leaky_relu(x, slope=0.1),
         [(3, 4)], None, 'kinkless'),
        *[(_name, f'{_name} axis={_axis}', lambda m, x, n=_name, a=_axis: getattr(m, n)(x, axis=a),
           [(3, 4)], [(2, 3, 4)], 'scores')
          for _name in ('softmax', 'softmax_simple', 'log_softmax') for _axis in (0, 1, -1)],
        ('softmax', 'softmax default axis', lambda m, x: m.softmax(x), [(3, 4)], [(2, 3, 4)],
         'scores'),
        ('log_softmax', 'log_softmax default axis', lambda m, x: m.log_softmax(x), [(3, 4)],
         [(2, 3, 4)], 'scores')]:
    case(_name, _id, _fn, _shapes, broadcast=_broadcast, domain=_domain, kinds=G,
         float32_double=True)

for _name, _id, _fn, _shapes, _domain in [
        ('sigmoid', 'sigmoid', lambda m, x: m.sigmoid(x), [(2, 3, 4)], 'scores'),
        ('relu', 'relu', lambda m, x: m.relu(x), [(2, 3, 4)], 'kinkless'),
        ('leaky_relu', 'leaky_relu', lambda m, x: m.leaky_relu(x, 0.2), [(2, 3, 4)],
         'kinkless'),
        ('softmax', 'softmax', lambda m, x: m.softmax(x), [(5, 4)], 'scores'),
        ('softmax', 'softmax axis=0', lambda m, x: m.softmax(x, 0), [(5, 4)], 'scores'),
        ('softmax', 'softmax 3-D axis=-1', lambda m, x: m.softmax(x, -1), [(2, 3, 4)],
         'scores'),
        ('softmax', 'softmax 3-D axis=1', lambda m, x: m.softmax(x, 1), [(2, 3, 4)], 'scores'),
        ('log_softmax', 'log_softmax', lambda m, x: m.log_softmax(x), [(5, 4)], 'scores'),
        ('log_softmax', 'log_softmax 3-D axis=0', lambda m, x: m.log_softmax(x, 0),
         [(2, 3, 4)], 'scores'),
        # compositions whose inputs broadcast
        ('softmax', 'softmax(x + y) broadcast', lambda m, x, y: m.softmax(x + y),
         [(5, 4), (4,)], 'scores'),
        ('leaky_relu', 'leaky_relu(x) * y broadcast, mean axis=0',
         lambda m, x, y: m.mean(m.leaky_relu(x) * y, 0), [(2, 1, 3), (4, 1)], 'kinkless')]:
    _torch(_name, _id, _fn, _shapes, _domain, tol='nn')

for _name, _options in [('sigmoid', {'device_double': True}), ('sigmoid_simple', {}),
                        ('relu', {}), ('leaky_relu', {}),
                        ('softmax', {'device_double': True}), ('softmax_simple', {}),
                        ('log_softmax', {'device_double': True})]:
    _shape = [(3, 4)] if _name in ('sigmoid', 'sigmoid_simple', 'relu', 'leaky_relu') else \
        [(4, 3)]
    _device(_name, _name, getattr(F, _name), _shape, **_options)


# =============================================================================
# loss: mean_squared_error, the cross entropies
# =============================================================================
for _name in ('mean_squared_error', 'mean_squared_error_simple', 'softmax_cross_entropy',
              'softmax_cross_entropy_simple', 'sigmoid_cross_entropy', 'binary_cross_entropy'):
    op(_name, 'loss')

for _name, _id, _fn, _shapes, _broadcast, _domain in [
        ('mean_squared_error', 'mean_squared_error',
         lambda m, a, b: m.mean_squared_error(a, b), [(4, 3), (4, 3)], [(5,), (5,)], 'any'),
        ('mean_squared_error_simple', 'mean_squared_error_simple',
         lambda m, a, b: m.mean_squared_error_simple(a, b), [(4, 3), (4, 3)],
         [(5, 1), (5, 1)], 'any'),
        ('softmax_cross_entropy', 'softmax_cross_entropy',
         lambda m, x: m.softmax_cross_entropy(x, T4), [(4, 3)], None, 'scores'),
        ('softmax_cross_entropy_simple', 'softmax_cross_entropy_simple',
         lambda m, x: m.softmax_cross_entropy_simple(x, T4), [(4, 3)], None, 'scores'),
        ('sigmoid_cross_entropy', 'sigmoid_cross_entropy (N, 1)',
         lambda m, x: m.sigmoid_cross_entropy(x, T41), [(4, 1)], None, 'scores'),
        ('sigmoid_cross_entropy', 'sigmoid_cross_entropy (N,) labels',
         lambda m, x: m.sigmoid_cross_entropy(x, T41.ravel()), [(4, 1)], None, 'scores'),
        ('sigmoid_cross_entropy', 'sigmoid_cross_entropy (N, C)',
         lambda m, x: m.sigmoid_cross_entropy(x, T43), [(4, 3)], None, 'scores'),
        ('binary_cross_entropy', 'binary_cross_entropy',
         lambda m, p: m.binary_cross_entropy(p, T43), [(4, 3)], None, 'prob')]:
    case(_name, _id, _fn, _shapes, broadcast=_broadcast, domain=_domain, kinds=G,
         float32_double=True)

for _name, _id, _fn, _shapes, _domain in [
        ('mean_squared_error', 'mean_squared_error',
         lambda m, a, b: m.mean_squared_error(a, b), [(5, 3), (5, 3)], 'any'),
        ('mean_squared_error', 'mean_squared_error (N,)',
         lambda m, a, b: m.mean_squared_error(a, b), [(5,), (5,)], 'any'),
        ('softmax_cross_entropy', 'softmax_cross_entropy',
         lambda m, x: m.softmax_cross_entropy(x, T5), [(5, 4)], 'scores'),
        ('sigmoid_cross_entropy', 'sigmoid_cross_entropy',
         lambda m, x: m.sigmoid_cross_entropy(x, T51), [(5, 1)], 'scores'),
        ('sigmoid_cross_entropy', 'sigmoid_cross_entropy (N, C)',
         lambda m, x: m.sigmoid_cross_entropy(x, T54), [(5, 4)], 'scores'),
        ('binary_cross_entropy', 'binary_cross_entropy',
         lambda m, p: m.binary_cross_entropy(p, T54), [(5, 4)], 'prob'),
        ('sigmoid_cross_entropy', 'linear(x, W) * s broadcast then sigmoid_cross_entropy',
         lambda m, x, W, s: m.sigmoid_cross_entropy(m.linear(x, W) * s, T54),
         [(5, 3), (3, 4), (5, 1)], 'any')]:
    _torch(_name, _id, _fn, _shapes, _domain, tol='nn')

_device('mean_squared_error', 'mean_squared_error', F.mean_squared_error, [(4, 3), (4, 3)])
_device('mean_squared_error_simple', 'mean_squared_error_simple', F.mean_squared_error_simple,
        [(4, 3), (4, 3)])
_device('sigmoid_cross_entropy', 'sigmoid_cross_entropy',
        lambda a, t: F.sigmoid_cross_entropy(a, t), [(4, 3)],
        consts={'t': np.array([[0, 1, 1]] * 4)})
_device('binary_cross_entropy', 'binary_cross_entropy',
        lambda a, t: F.binary_cross_entropy(a, t), [(4, 3)],
        domain=lambda shape, rng: rng.uniform(0.1, 0.9, size=shape), consts={'t': np.eye(4, 3)})
_device('softmax_cross_entropy', 'softmax_cross_entropy',
        lambda a, t: F.softmax_cross_entropy(a, t), [(4, 3)], consts={'t': LABELS},
        device_double=True, device_float32=True)
_device('softmax_cross_entropy_simple', 'softmax_cross_entropy_simple',
        lambda a, t: F.softmax_cross_entropy_simple(a, t), [(4, 3)], consts={'t': LABELS})


# =============================================================================
# normalization: dropout, batch_norm, layer_norm
# =============================================================================
op('dropout', 'normalization')
op('batch_norm', 'normalization')
op('layer_norm', 'normalization')


def seeded_dropout(m, x, ratio=0.3):
    """dropout with the same mask at every call: a fixed linear op (NumPy's global seed)."""
    np.random.seed(0)
    return m.dropout(x, ratio)


def batch_norm_train(m, x, gamma, beta):
    """batch_norm in training with fresh running statistics (zeros and ones)."""
    C = x.shape[1]
    return m.batch_norm(x, gamma, beta, np.zeros(C), np.ones(C))


def batch_norm_test(m, x, gamma, beta):
    """batch_norm in test mode with the running statistics RUNNING_MEAN/VAR."""
    with zerograd.test_mode():
        return m.batch_norm(x, gamma, beta, RUNNING_MEAN.copy(), RUNNING_VAR.copy())


case('dropout', 'dropout (seeded mask)', seeded_dropout, [(4, 5)], broadcast=[(2, 3, 4)],
     kinds=G, float32_double=True)
case('batch_norm', 'batch_norm train', batch_norm_train, [(5, 3), (3,), (3,)],
     broadcast=[(3, 2, 2, 3), (2,), (2,)], kinds=G, float32_double=True)
case('batch_norm', 'batch_nrom train',
     lambda m, x, g, b: m.batch_nrom(x, g, b, np.zeros(3), np.ones(3)), [(4, 3), (3,), (3,)],
     kinds=G, float32_double=True)
case('batch_norm', 'batch_norm test mode', batch_norm_test, [(4, 3), (3,), (3,)],
     broadcast=[(2, 3, 2, 2), (3,), (3,)], kinds=G, float32_double=True)

# layer_norm over the last axis and over the last two; the broadcasting shapes normalise a
# (2, 3, 4) x over its last axis with (4,) parameters; without parameters; with eps.
case('layer_norm', 'layer_norm last axis', lambda m, x, g, b: m.layer_norm(x, g, b),
     [(4, 5), (5,), (5,)], broadcast=[(2, 3, 4), (4,), (4,)], float32_double=True)
case('layer_norm', 'layer_norm last two axes', lambda m, x, g, b: m.layer_norm(x, g, b),
     [(2, 3, 4), (3, 4), (3, 4)], broadcast=[(3, 2, 5), (2, 5), (2, 5)])
case('layer_norm', 'layer_norm without gamma and beta, eps 0.1',
     lambda m, x: m.layer_norm(x, eps=0.1, normalized_shape=(3, 2)), [(4, 3, 2)],
     broadcast=[(2, 2, 3, 2)])


def _batch_norm_like_torch(m, x, gamma, beta):
    """Fresh running statistics in x's dtype (PyTorch's batch_norm wants them so)."""
    C = x.shape[1]
    dtype = np.float32 if str(x.dtype).endswith('float32') else np.float64
    return m.batch_norm(x, gamma, beta, np.zeros(C, dtype), np.ones(C, dtype))


_torch('batch_norm', 'batch_norm (N, C)', _batch_norm_like_torch, [(6, 3), (3,), (3,)],
       tol='nn')
_torch('batch_norm', 'batch_norm (N, C, H, W)', _batch_norm_like_torch,
       [(3, 2, 3, 2), (2,), (2,)], tol='nn')


# =============================================================================
# conv: conv2d, deconv2d, im2col, col2im; pooling: pooling, average_pooling
# =============================================================================
for _name in ('conv2d', 'conv2d_simple', 'deconv2d', 'im2col', 'col2im'):
    op(_name, 'conv')
for _name in ('pooling', 'pooling_simple', 'average_pooling'):
    op(_name, 'pooling')


def _kernel(kernel_size):
    return (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)


# (kernel_size, stride, pad, x shape): square and non-square, strides 1-3, pads 0-2
CONV_SETTINGS = [
    (3, 1, 0, (2, 3, 5, 5)),
    (3, 1, 1, (2, 2, 4, 5)),
    (2, 2, 0, (1, 2, 5, 4)),
    ((2, 3), (2, 1), (1, 2), (2, 2, 4, 3)),
    (3, 3, 2, (1, 2, 5, 6)),
]
for _k, _s, _p, _x in CONV_SETTINGS:
    case('conv2d', f'conv2d k={_k} s={_s} p={_p}',
         lambda m, x, W, b, s=_s, p=_p: m.conv2d(x, W, b, stride=s, pad=p),
         [_x, (3, _x[1]) + _kernel(_k), (3,)], kinds=G)
case('conv2d', 'conv2d without b', lambda m, x, W: m.conv2d(x, W, stride=2, pad=1),
     [(2, 2, 5, 4), (3, 2, 3, 3)], kinds=G)
case('conv2d', 'conv2d ndarray x', lambda m, W, b: m.conv2d(const(X_CONV, W), W, b, pad=1),
     [(3, 2, 3, 3), (3,)], kinds=G)
for _k, _s, _p, _x in CONV_SETTINGS[:4]:
    case('conv2d_simple', f'conv2d_simple k={_k} s={_s} p={_p}',
         lambda m, x, W, b, s=_s, p=_p: m.conv2d_simple(x, W, b, s, p),
         [_x, (3, _x[1]) + _kernel(_k), (3,)], kinds=G)
# (kernel_size, stride, pad, x shape, outsize or None)
for _k, _s, _p, _x, _o in [
        (3, 1, 0, (2, 3, 3, 3), None),
        (3, 2, 1, (2, 2, 3, 2), None),
        (3, 2, 1, (1, 2, 3, 2), (6, 4)),
        ((2, 3), (3, 2), (0, 1), (2, 2, 2, 3), (5, 5)),
        (4, 3, 2, (1, 2, 3, 3), (7, 8))]:
    case('deconv2d', f'deconv2d k={_k} s={_s} p={_p} outsize={_o}',
         lambda m, x, W, b, s=_s, p=_p, o=_o: m.deconv2d(x, W, b, s, p, o),
         [_x, (_x[1], 3) + _kernel(_k), (3,)], kinds=G)
case('deconv2d', 'deconv2d without b', lambda m, x, W: m.deconv2d(x, W, stride=2),
     [(2, 2, 3, 3), (2, 3, 2, 2)], kinds=G)
# (kernel_size, stride, pad, x shape)
for _k, _s, _p, _x in [(2, 2, 0, (2, 3, 4, 4)), (3, 1, 1, (1, 2, 4, 5)),
                       ((2, 3), (1, 2), (1, 0), (2, 2, 5, 5)), ((3, 2), 3, (2, 1), (1, 2, 7, 6)),
                       (2, 1, 0, (1, 1, 3, 3))]:
    for _name in ('pooling', 'pooling_simple'):
        case(_name, f'{_name} k={_k} s={_s} p={_p}',
             lambda m, x, n=_name, k=_k, s=_s, p=_p: getattr(m, n)(x, k, s, p), [_x],
             domain='distinct', kinds=G)
    case('average_pooling', f'average_pooling k={_k} s={_s} p={_p}',
         lambda m, x, k=_k, s=_s, p=_p: m.average_pooling(x, k, s, p), [_x], kinds=G)
for _k, _s, _p, _x in CONV_SETTINGS[1:4]:
    for _to_matrix in (True, False):
        _tail = f'to_matrix={_to_matrix} k={_k} s={_s} p={_p}'
        case('im2col', f'im2col {_tail}',
             lambda m, x, k=_k, s=_s, p=_p, t=_to_matrix: m.im2col(x, k, s, p, t), [_x],
             kinds=G)
        _col_shape = NP.im2col(np.zeros(_x), _k, _s, _p, _to_matrix).shape
        case('col2im', f'col2im {_tail}',
             lambda m, col, x=_x, k=_k, s=_s, p=_p, t=_to_matrix: m.col2im(col, x, k, s, p, t),
             [_col_shape], kinds=G)

# Against PyTorch: conv2d (torch's conv2d), deconv2d (conv_transpose2d: its weight
# (C_in, C_out, KH, KW) is our (C, OC, KH, KW); output_padding reaches a larger outsize),
# pooling (max_pool2d, which pads with -inf as ours does), average_pooling (avg_pool2d,
# count_include_pad=True), over strides 1-3, paddings 0-2, odd and even sizes and
# non-square kernels. Pooling settings that PyTorch refuses (pad more than half the
# kernel) are left out.
TORCH_CONV_SHAPES = [(2, 2, 7, 6), (1, 3, 6, 5)]  # odd and even heights and widths
TORCH_CONV_KERNELS = [(3, 3), (2, 2), (2, 3)]
for _kernel_hw in TORCH_CONV_KERNELS:
    for _s in (1, 2, 3):
        for _p in (0, 1, 2):
            _x = TORCH_CONV_SHAPES[(_s + _p) % 2]
            _C = _x[1]
            _torch('conv2d', f'conv2d k={_kernel_hw} s={_s} p={_p} x={_x}',
                   lambda m, x, W, b, s=_s, p=_p: m.conv2d(x, W, b, s, p),
                   [_x, (3, _C) + _kernel_hw, (3,)], tol='conv')
            _default = [_s * (n - 1) + k - 2 * _p for n, k in zip(_x[2:], _kernel_hw)]
            if min(_default) <= 0:
                continue
            _o = None if _p % 2 == 0 else (_default[0] + _s - 1, _default[1])
            _torch('deconv2d', f'deconv2d k={_kernel_hw} s={_s} p={_p} x={_x} outsize={_o}',
                   lambda m, x, W, b, s=_s, p=_p, o=_o: m.deconv2d(x, W, b, s, p, o),
                   [_x, (_C, 3) + _kernel_hw, (3,)], tol='conv')
for _kernel_hw in TORCH_CONV_KERNELS + [(4, 5)]:
    for _s in (1, 2, 3):
        for _p in (0, 1, 2):
            _x = TORCH_CONV_SHAPES[(_s + _p) % 2]
            _fits = all(k <= n + 2 * _p for n, k in zip(_x[2:], _kernel_hw))
            if _p > min(_kernel_hw) // 2 or not _fits:
                continue  # torch: pad at most half the kernel
            for _name in ('pooling', 'average_pooling'):
                _torch(_name, f'{_name} k={_kernel_hw} s={_s} p={_p} x={_x}',
                       lambda m, x, n=_name, k=_kernel_hw, s=_s, p=_p: getattr(m, n)(x, k, s, p),
                       [_x], tol='conv')
for _name, _id, _fn, _shapes in [
        ('conv2d', 'conv2d s=(1, 2) p=(2, 1)', lambda m, x, W, b: m.conv2d(x, W, b, (1, 2), (2, 1)),
         [(2, 2, 5, 6), (3, 2, 3, 2), (3,)]),
        ('conv2d', 'conv2d without b', lambda m, x, W: m.conv2d(x, W, None, 2, 1),
         [(2, 2, 5, 6), (3, 2, 3, 3)]),
        ('conv2d', 'conv2d ndarray x',
         lambda m, W, b: m.conv2d(const(X_CONV_TORCH, W), W, b, 1, 1), [(4, 2, 3, 3), (4,)]),
        ('conv2d_simple', 'conv2d_simple s=2 p=1',
         lambda m, x, W, b: m.conv2d_simple(x, W, b, 2, 1), [(2, 2, 7, 6), (3, 2, 3, 2), (3,)]),
        ('deconv2d', 'deconv2d s=(2, 3) p=(1, 0) without b',
         lambda m, x, W: m.deconv2d(x, W, None, (2, 3), (1, 0)), [(2, 2, 3, 4), (2, 3, 3, 2)]),
        ('pooling', 'pooling k=(3, 2) s=(2, 1) p=(1, 0)',
         lambda m, x: m.pooling(x, (3, 2), (2, 1), (1, 0)), [(2, 2, 7, 6)]),
        ('pooling_simple', 'pooling_simple k=3 s=2 p=1',
         lambda m, x: m.pooling_simple(x, 3, 2, 1), [(2, 2, 7, 6)]),
        ('conv2d', 'conv2d, relu, conv2d, max pooling',
         lambda m, x, W1, W2, b2: m.pooling(
             m.conv2d(m.relu(m.conv2d(x, W1, None, 1, 1)), W2, b2, 1, 0), 2, 2, 0),
         [(2, 2, 7, 6), (3, 2, 3, 3), (4, 3, 2, 3), (4,)])]:
    _torch(_name, _id, _fn, _shapes, tol='conv')

for _name, _id, _fn, _shapes, _options in [
        ('conv2d', 'conv2d', lambda x, W, b: F.conv2d(x, W, b, stride=2, pad=1),
         [(2, 3, 5, 5), (4, 3, 3, 3), (4,)], {'device_double': True, 'device_float32': True}),
        ('deconv2d', 'deconv2d', lambda x, W, b: F.deconv2d(x, W, b, stride=2, pad=1),
         [(2, 3, 3, 3), (3, 4, 3, 3), (4,)], {'device_double': True}),
        ('conv2d_simple', 'conv2d_simple', lambda x, W: F.conv2d_simple(x, W, stride=1, pad=1),
         [(2, 3, 4, 4), (2, 3, 3, 3)], {}),
        ('pooling', 'pooling', lambda x: F.pooling(x, 2, stride=2), [(2, 3, 4, 4)],
         {'device_double': True, 'device_float32': True}),
        ('pooling', 'pooling-pad', lambda x: F.pooling(x, 3, stride=2, pad=1), [(2, 3, 5, 5)],
         {}),
        ('pooling_simple', 'pooling_simple', lambda x: F.pooling_simple(x, 3, stride=2, pad=1),
         [(2, 3, 5, 5)], {}),
        ('average_pooling', 'average_pooling',
         lambda x: F.average_pooling(x, (2, 3), stride=1, pad=1), [(2, 3, 4, 4)],
         {'device_double': True}),
        ('im2col', 'im2col', lambda x: F.im2col(x, 3, stride=2, pad=1), [(2, 3, 5, 5)], {}),
        ('im2col', 'im2col-6d', lambda x: F.im2col(x, 2, to_matrix=False), [(2, 3, 4, 4)], {}),
        ('col2im', 'col2im', lambda c: F.col2im(c, (2, 3, 5, 5), 3, stride=2, pad=1),
         [(18, 27)], {})]:
    _device(_name, _id, _fn, _shapes, **_options)


# =============================================================================
# rnn: lstm_cell, lstm_step
# =============================================================================
op('lstm_cell', 'rnn')


def _c_and_h(m, c_prev, af, ai, ao, au):
    """Both outputs of lstm_cell in one (c + 2 h), so both gradients are checked."""
    c, h = m.lstm_cell(c_prev, af, ai, ao, au)
    return c + 2 * h


case('lstm_cell', 'lstm_cell', _c_and_h, [(3, 4)] * 5, device_double=True)
op('lstm_step', 'rnn')


def _step_c_and_h(m, x, h, c_prev, *params):
    """Both outputs of lstm_step in one (c + 2 h): x (N, I), h and c_prev (N, H), then the
    gates' Wx (I, H), b (H,) and Wh (H, H), four each."""
    c, h = m.lstm_step(x, h, c_prev, params[0:4], params[4:8], params[8:12])
    return c + 2 * h


case('lstm_step', 'lstm_step', _step_c_and_h,
     [(3, 2), (3, 4), (3, 4)] + [(2, 4)] * 4 + [(4,)] * 4 + [(4, 4)] * 4, device_double=True)


def check_case(c: Case) -> None:
    """zerograd.testing.check_op on one case: forward against its NumPy reference, float32
    kept, first derivatives and (where it applies) double backward against central
    differences, on its shapes and its broadcasting shapes."""
    from op_references import make_array
    from zerograd.testing import check_op
    check_op(c.id, c.zerograd(), c.numpy(), c.shapes, broadcast=c.broadcast,
             make_input=lambda shape, rng: make_array(shape, c.domain, rng),
             double_backward=c.double)
