"""``zerograd.onnx.load``: an ONNX file, checked as untrusted input, as a trainable Model."""
from __future__ import annotations

from typing import Any


def load(path: Any) -> Any:
    """Not written yet."""
    raise NotImplementedError('zerograd.onnx.load is not written yet')
