"""Learning-rate policies (Caffe's SGDSolver::GetLearningRate), in Caffe's precision.

Caffe's src/caffe/solvers/sgd_solver.cpp computes ``Dtype rate`` with unqualified
``pow`` / ``exp`` and includes <math.h> (include/caffe/util/mkl_alternate.hpp), which
in C++ (libstdc++ since GCC 6) brings std's float overloads into scope. So where
every argument is float the call is glibc's ``powf`` / ``expf`` and the rest of the
expression is float arithmetic (inv, poly, sigmoid); ``pow(float, int)`` is the
C++11 promoting template, i.e. double ``pow`` (step, exp, multistep), whose double
product with base_lr is rounded to float once.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy

from .errors import NetDefinitionError, SolverParameterError

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
F32 = numpy.float32


def _libm(name: str, nargs: int):
    """The C library's float function ``name`` (powf, expf), or None where there is none."""
    try:
        library = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        function = getattr(library, name)
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_float
    function.argtypes = [ctypes.c_float] * nargs
    return function


_POWF = _libm("powf", 2)
_EXPF = _libm("expf", 1)


def powf(x, y) -> numpy.float32:
    """C's powf(x, y) (glibc's, as Caffe calls it); elsewhere double pow rounded to float."""
    if _POWF is not None:
        return F32(_POWF(float(x), float(y)))
    try:
        return F32(math.pow(float(x), float(y)))
    except (ValueError, ZeroDivisionError):
        return F32(math.nan)
    except OverflowError:
        return F32(math.inf)


def expf(x) -> numpy.float32:
    """C's expf(x); elsewhere double exp rounded to float (inf where it overflows)."""
    if _EXPF is not None:
        return F32(_EXPF(float(x)))
    return F32(math.exp(float(x))) if float(x) < 709.0 else F32(math.inf)


def learning_rate(param, iteration: int, current_step: int) -> tuple[numpy.float32, int]:
    """(rate for ``iteration``, updated current_step) for the solver's ``lr_policy``,
    computed as Caffe computes it (see the module docstring)."""
    try:
        rate, current_step = _learning_rate(param, iteration, current_step)
        if not math.isfinite(rate):
            raise ValueError("the result is not a finite number")
        return rate, current_step
    except (ValueError, OverflowError, ZeroDivisionError) as exc:
        policy = param.lr_policy or "fixed"
        raise SolverParameterError(
            f"lr_policy '{policy}' cannot give a learning rate at iteration {iteration} with base_lr "
            f"{param.base_lr:g}, gamma {param.gamma:g}, power {param.power:g}, stepsize {param.stepsize} ({exc})"
        ) from None


def _learning_rate(param, iteration: int, current_step: int) -> tuple[numpy.float32, int]:
    policy = param.lr_policy or "fixed"
    base_lr, gamma, power = param.base_lr, param.gamma, param.power
    with numpy.errstate(all="ignore"):
        if policy == "fixed":
            rate = F32(base_lr)
        elif policy == "step":  # base_lr * pow(gamma, current_step): double, rounded once
            if param.stepsize <= 0:
                raise NetDefinitionError("lr_policy 'step' needs stepsize > 0")
            current_step = iteration // param.stepsize
            rate = F32(base_lr * math.pow(gamma, current_step))
        elif policy == "exp":  # base_lr * pow(gamma, iter_): double
            rate = F32(base_lr * math.pow(gamma, iteration))
        elif policy == "inv":  # base_lr * powf(1 + gamma * iter_, -power): all float
            base = F32(1.0) + F32(gamma) * F32(iteration)
            rate = F32(base_lr) * powf(base, -F32(power))
        elif policy == "multistep":  # the step counter moves by one per call at most
            if current_step < len(param.stepvalue) and iteration >= param.stepvalue[current_step]:
                current_step += 1
            rate = F32(base_lr * math.pow(gamma, current_step))
        elif policy == "poly":  # base_lr * powf(1 - iter_ / max_iter, power): all float
            if param.max_iter <= 0:
                raise NetDefinitionError("lr_policy 'poly' needs max_iter > 0")
            fraction = F32(1.0) - F32(iteration) / F32(param.max_iter)
            rate = F32(base_lr) * powf(fraction, F32(power))
        elif policy == "sigmoid":  # base_lr * (1 / (1 + expf(-gamma * (iter_ - stepsize)))): all float
            if param.stepsize <= 0:
                raise NetDefinitionError("lr_policy 'sigmoid' needs stepsize > 0")
            power_of_e = expf(-F32(gamma) * (F32(iteration) - F32(param.stepsize)))
            rate = F32(base_lr) * (F32(1.0) / (F32(1.0) + power_of_e))  # expf overflowing: a rate of 0
        else:
            raise NetDefinitionError(f"unknown lr_policy '{policy}' (supported: {', '.join(POLICIES)})")
    return F32(rate), current_step
