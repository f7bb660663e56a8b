"""The ops' type hints say something: ``VarOrArray`` (a Variable or an array) for their
array arguments and ``int | Pair`` for the conv and pooling window arguments, not ``Any``;
and they resolve (``typing.get_type_hints``), so an IDE or a type checker can use them."""
import inspect
import typing

import numpy as np
import pytest

import zerograd.functions as F
from zerograd.core import Variable
from zerograd.hints import Pair, VarOrArray

OPS = sorted(name for name, value in vars(F).items()
             if inspect.isfunction(value) and not name.startswith('_')
             and value.__module__.startswith('zerograd.functions.'))
ARRAY_ARGUMENTS = {'x', 'x0', 'x1', 'W', 'b', 'h', 'U', 't', 'y', 'p', 'gamma', 'beta',
                   'mean', 'var', 'c_prev', 'af', 'ai', 'ao', 'au'}
# A NumPy index (an int, a slice, an array, a tuple of them, ...) is truly any object.
MAY_BE_ANY = {('get_item', 'slices')}


def test_the_ops_are_found():
    assert {'exp', 'linear', 'conv2d', 'pooling', 'lstm_cell', 'softmax_cross_entropy'} <= set(OPS)


@pytest.mark.parametrize('name', OPS)
def test_op_signature_says_variable_or_array_instead_of_any(name):
    f = getattr(F, name)
    hints = typing.get_type_hints(f)
    for parameter in inspect.signature(f).parameters:
        assert parameter in hints, f'{name}: {parameter} has no type hint'
        hint = hints[parameter]
        assert hint is not typing.Any or (name, parameter) in MAY_BE_ANY, \
            f'{name}: {parameter} is hinted Any'
        if parameter in ARRAY_ARGUMENTS:
            assert hint in (VarOrArray, VarOrArray | None), f'{name}: {parameter}: {hint}'
    assert hints['return'] in (Variable, tuple[Variable, Variable])


@pytest.mark.parametrize('name', ['conv2d', 'deconv2d', 'conv2d_simple', 'im2col', 'col2im',
                                  'pooling', 'pooling_simple', 'average_pooling'])
def test_window_arguments_are_an_int_or_a_pair(name):
    hints = typing.get_type_hints(getattr(F, name))
    for parameter in ('stride', 'pad') + (('kernel_size',) if 'conv2d' not in name else ()):
        assert hints[parameter] == int | Pair


def test_the_aliases_mean_what_they_say():
    assert Pair == tuple[int, int]
    assert set(typing.get_args(VarOrArray)) == {Variable, np.ndarray}
