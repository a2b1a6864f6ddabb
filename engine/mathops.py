"""Small array helpers shared by layers (one body for numpy and cupy)."""
from __future__ import annotations

import numpy

_ndarray = numpy.ndarray
_numpy_dot = numpy.dot
_add_reduce = numpy.add.reduce


def matmul_into(left, right, out) -> None:
    """``out[...] = left @ right`` for 2-D arrays, with the least call overhead.

    On numpy this is ``numpy.dot`` (the same BLAS gemm call as ``matmul``, bit
    for bit, but about 1 us cheaper per call on small matrices); cupy and any
    case ``dot`` refuses (an ``out`` it cannot write directly) go to ``matmul``.
    """
    if type(out) is _ndarray:
        try:
            _numpy_dot(left, right, out=out)
            return
        except ValueError:
            pass
    from .backend import get_array_module
    get_array_module(out).matmul(left, right, out=out)


def accumulate_matmul(blob, left, right) -> None:
    """``blob.diff += left @ right`` (Caffe's gemm with beta=1), without a temporary
    when the diff is known to be zero."""
    clear = blob.diff_is_clear
    target = blob.diff_to_overwrite() if clear else blob.diff  # a cleared diff needs no zero-fill
    rows, cols = left.shape[0], right.shape[1]
    if target.shape != (rows, cols):
        target = target.reshape(rows, cols)
    if clear:
        matmul_into(left, right, target)
        blob.diff_is_clear = False
    else:
        target += left @ right


def accumulate_sum_rows(blob, matrix) -> None:
    """``blob.diff += 1^T . matrix`` (Caffe's gemv with the ones vector)."""
    if blob.diff_is_clear:
        target = blob.diff_to_overwrite()
        if type(matrix) is _ndarray:
            _add_reduce(matrix, 0, None, target)  # = matrix.sum(axis=0, out=...), minus a wrapper
        else:
            matrix.sum(axis=0, out=target)
        blob.diff_is_clear = False
    else:
        blob.diff += matrix.sum(axis=0)
