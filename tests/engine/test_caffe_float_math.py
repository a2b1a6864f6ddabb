"""Caffe's CPU layers call glibc's float functions (expf, logf, powf) and, where a double
constant is in the expression, compute in double and round once. Checked against glibc
itself (through ctypes) and against each formula written out per element in Python."""
from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy
import pytest

from engine.mathops import float_exp, float_log, float_pow
from tests.engine.helpers import run_forward

F32 = numpy.float32


def _libm(name: str, nargs: int):
    library = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    function = getattr(library, name)
    function.restype = ctypes.c_float
    function.argtypes = [ctypes.c_float] * nargs
    return function


VALUES = (numpy.random.default_rng(7).standard_normal(3000) * 6).astype(F32)


@pytest.mark.parametrize("ours,theirs,values", [
    (lambda x: float_exp(numpy, x), _libm("expf", 1), VALUES),
    (lambda x: float_log(numpy, x), _libm("logf", 1), numpy.abs(VALUES) + F32(1e-3)),
    (lambda x: float_pow(numpy, x, -0.75), lambda v: _libm("powf", 2)(v, -0.75), numpy.abs(VALUES) + F32(1e-3)),
], ids=["expf", "logf", "powf"])
def test_the_float_functions_are_glibcs_but_for_rare_ties(ours, theirs, values):
    expected = numpy.array([theirs(float(v)) for v in values], dtype=F32)
    differ = numpy.flatnonzero(ours(values) != expected)
    assert differ.size <= values.size // 200, differ.size  # glibc's float functions are correctly rounded but for ties
    assert numpy.all(numpy.abs(ours(values)[differ] - expected[differ]) <= numpy.spacing(numpy.abs(expected[differ])))


def test_sigmoid_is_caffes_double_expression_rounded_once():
    x = VALUES.reshape(60, 50)
    layer, bottom, top = run_forward("type: 'Sigmoid'", [x], dtype=F32)
    expected = numpy.array([F32(0.5 * math.tanh(0.5 * float(v)) + 0.5) for v in x.ravel()], F32).reshape(x.shape)
    assert top[0].data.tobytes() == expected.tobytes()
    dy = numpy.random.default_rng(3).standard_normal(x.shape).astype(F32)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    y = top[0].data
    # Caffe: top_diff * sigmoid_x * (1. - sigmoid_x): a float product, then a double one
    expected_dx = numpy.array([F32(float(F32(a * b)) * (1.0 - float(b))) for a, b in zip(dy.ravel(), y.ravel())],
                              F32).reshape(x.shape)
    assert bottom[0].diff.tobytes() == expected_dx.tobytes()


def test_bnll_takes_expf_then_double():
    x = VALUES.reshape(60, 50)
    expf = _libm("expf", 1)
    _, _, top = run_forward("type: 'BNLL'", [x], dtype=F32)
    expected = numpy.array([F32(float(v) + math.log(1.0 + float(expf(-float(v))))) if v > 0
                            else F32(math.log(1.0 + float(expf(float(v))))) for v in x.ravel()], F32)
    got = top[0].data.ravel()
    differ = numpy.flatnonzero(got != expected)  # where the double exp rounds otherwise than expf (a tie)
    assert differ.size <= x.size // 200, differ.size
    assert numpy.all(numpy.abs(got[differ] - expected[differ]) <= numpy.spacing(numpy.abs(expected[differ])))


def test_tanh_is_the_double_tanh_rounded_and_within_two_ulps_of_glibcs_tanhf():
    """glibc's tanhf (fdlibm's) is not correctly rounded, and evaluating it as glibc does,
    in numpy, costs hundreds of times numpy's tanh: the TanH layer takes the correctly
    rounded value, which is glibc's for most inputs and an ulp or two from it for the rest."""
    tanhf = _libm("tanhf", 1)
    x = numpy.concatenate([VALUES, numpy.linspace(-25, 25, 20001, dtype=F32)])
    _, _, top = run_forward("type: 'TanH'", [x], dtype=F32)
    rounded = numpy.array([F32(math.tanh(float(v))) for v in x], dtype=F32)
    assert top[0].data.tobytes() == rounded.tobytes()
    glibc = numpy.array([tanhf(float(v)) for v in x], dtype=F32)
    assert numpy.all(numpy.abs(top[0].data - glibc) <= 2 * numpy.spacing(numpy.abs(glibc)))
    assert (top[0].data == glibc).mean() > 0.7
