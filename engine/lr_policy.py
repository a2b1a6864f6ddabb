"""Learning-rate policies (Caffe's SGDSolver::GetLearningRate), in Caffe's precision."""
from __future__ import annotations

import math

import numpy

from .errors import NetDefinitionError, SolverParameterError

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


def learning_rate(param, iteration: int, current_step: int) -> tuple[numpy.float32, int]:
    """(rate for ``iteration``, updated current_step) for the solver's ``lr_policy``.

    Computed in double from the float32 prototxt values and rounded to float32,
    as Caffe does.
    """
    try:
        return _learning_rate(param, iteration, current_step)
    except (ValueError, OverflowError, ZeroDivisionError) as exc:
        policy = param.lr_policy or "fixed"
        raise SolverParameterError(
            f"lr_policy '{policy}' cannot give a learning rate at iteration {iteration} with base_lr "
            f"{param.base_lr:g}, gamma {param.gamma:g}, power {param.power:g}, stepsize {param.stepsize} ({exc})"
        ) from None


def _learning_rate(param, iteration: int, current_step: int) -> tuple[numpy.float32, int]:
    policy = param.lr_policy or "fixed"
    base_lr, gamma, power = param.base_lr, param.gamma, param.power
    if policy == "fixed":
        rate = base_lr
    elif policy == "step":
        if param.stepsize <= 0:
            raise NetDefinitionError("lr_policy 'step' needs stepsize > 0")
        current_step = iteration // param.stepsize
        rate = base_lr * math.pow(gamma, current_step)
    elif policy == "exp":
        rate = base_lr * math.pow(gamma, iteration)
    elif policy == "inv":  # Caffe: Dtype(1) + gamma * iter in float, pow in double
        base = numpy.float32(1.0) + numpy.float32(gamma) * numpy.float32(iteration)
        rate = base_lr * math.pow(float(base), -power)
    elif policy == "multistep":
        if current_step < len(param.stepvalue) and iteration >= param.stepvalue[current_step]:
            current_step += 1
        rate = base_lr * math.pow(gamma, current_step)
    elif policy == "poly":
        if param.max_iter <= 0:
            raise NetDefinitionError("lr_policy 'poly' needs max_iter > 0")
        fraction = numpy.float32(1.0) - numpy.float32(iteration) / numpy.float32(param.max_iter)
        rate = base_lr * math.pow(float(fraction), power)
    elif policy == "sigmoid":  # Caffe: the exponent in float, exp and the quotient in double
        if param.stepsize <= 0:
            raise NetDefinitionError("lr_policy 'sigmoid' needs stepsize > 0")
        with numpy.errstate(over="ignore"):
            exponent = -numpy.float32(gamma) * (numpy.float32(iteration) - numpy.float32(param.stepsize))
        # exp overflowing is 1/(1+inf) = 0 in C++, not an error
        power_of_e = math.exp(float(exponent)) if exponent < 709.0 else math.inf
        rate = base_lr * (1.0 / (1.0 + power_of_e))
    else:
        raise NetDefinitionError(f"unknown lr_policy '{policy}' (supported: {', '.join(POLICIES)})")
    return numpy.float32(rate), current_step
