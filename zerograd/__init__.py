"""zerograd: the define-by-run deep-learning framework of *Deep Learning from Scratch 3*,
complete, correct and fast. NumPy is its only hard dependency.

>>> import numpy as np
>>> from zerograd import Variable
>>> x = Variable(np.array(2.0))
>>> y = x ** 3
>>> y.backward()
>>> x.grad
variable(12.0)
"""
__version__ = '0.1.0'

# The book's switch (dezero/__init__.py): steps 23-32 flip it to use the simple engine.
# zerograd always runs on zerograd.core; the book's steps 1-32 engine is importable as
# zerograd.core_simple (not imported here: `import zerograd` stays light).
is_simple_core = False

from zerograd.core import (Config, Function, Parameter, Variable, as_array,  # noqa: F401
                           as_variable, no_grad, test_mode, using_config)
from zerograd.arithmetic import setup_variable  # noqa: E402

setup_variable()  # the operators of Variable, as the book's dezero/__init__.py does

from zerograd import cuda  # noqa: E402,F401
from zerograd import utils  # noqa: E402,F401
from zerograd import functions  # noqa: E402,F401
from zerograd import functions_conv  # noqa: E402,F401
from zerograd import layers  # noqa: E402,F401
from zerograd import models  # noqa: E402,F401
from zerograd import optimizers  # noqa: E402,F401
from zerograd import schedulers  # noqa: E402,F401
from zerograd import checkpoints  # noqa: E402,F401
from zerograd import datasets  # noqa: E402,F401
from zerograd import dataloaders  # noqa: E402,F401
from zerograd import transforms  # noqa: E402,F401
from zerograd import onnx  # noqa: E402,F401 (onnx itself is imported only when used)
from zerograd.layers import Layer  # noqa: E402,F401
from zerograd.models import Model  # noqa: E402,F401
from zerograd.datasets import Dataset  # noqa: E402,F401
from zerograd.dataloaders import DataLoader, SeqDataLoader  # noqa: E402,F401
