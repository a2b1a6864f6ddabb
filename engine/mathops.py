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


# -- Caffe's float transcendental functions -----------------------------------------------
# Caffe's CPU layers call exp, log, pow and tanh on float values; its headers bring std's
# float overloads into scope, so those are glibc's expf / logf / powf / tanhf. The first
# three are correctly rounded but for rare ties, so the double function rounded to float
# matches them; tanhf (fdlibm's) is within two ulps of that value, which is used for it
# too (evaluating fdlibm's tanhf in numpy costs hundreds of times more). numpy's own
# float32 functions (vectorised approximations) differ from glibc's in the last bit for
# 20-40% of values.
# Where Caffe's expression is double (a double constant in it), the callers compute in
# double and round once, as Caffe does.

def float_exp(xp, x):
    """Caffe's ``exp`` of a float array (glibc expf): exp in double, rounded to the Dtype."""
    if x.dtype != numpy.float32:
        return xp.exp(x)
    with numpy.errstate(over="ignore"):
        return xp.exp(x.astype(numpy.float64)).astype(numpy.float32)


def float_log(xp, x):
    """Caffe's ``log`` of a float array (glibc logf): log in double, rounded to the Dtype."""
    if x.dtype != numpy.float32:
        return xp.log(x)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        return xp.log(x.astype(numpy.float64)).astype(numpy.float32)


def float_tanh(xp, x):
    """Caffe's ``tanh`` of a float array (glibc tanhf): tanh in double, rounded to the Dtype."""
    if x.dtype != numpy.float32:
        return xp.tanh(x)
    return xp.tanh(x.astype(numpy.float64)).astype(numpy.float32)


def caffe_sigmoid(xp, x, out) -> None:
    """``out = 0.5 * tanh(0.5 * x) + 0.5`` as sigmoid_layer.cpp computes it: the double
    constants make the whole expression double, rounded to the Dtype once."""
    wide = x.astype(numpy.float64)
    wide *= 0.5
    xp.tanh(wide, out=wide)
    wide *= 0.5
    wide += 0.5
    out[...] = wide


def float_pow(xp, x, exponent):
    """Caffe's ``caffe_powx`` of a float array (glibc powf, the exponent a float too): pow in
    double, rounded to the Dtype. numpy's float32 power differs from powf in ~20% of values."""
    if x.dtype != numpy.float32:
        return xp.power(x, exponent)
    with numpy.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return xp.power(x.astype(numpy.float64), float(numpy.float32(exponent))).astype(numpy.float32)
