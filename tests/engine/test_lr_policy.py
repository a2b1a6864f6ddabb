"""Learning-rate policies against Caffe's formulas, directly and through a solver."""
import math

import numpy
import pytest

import engine
from engine.lr_policy import learning_rate
from engine.proto import caffe_pb2
from tests.engine.helpers import linear_net_text, solver_for

F32 = lambda v: float(numpy.float32(v))  # noqa: E731  prototxt numbers are float32
BASE, GAMMA, POWER, STEPSIZE, MAX_ITER = 0.1, 0.5, 0.75, 4, 20


def _expected(policy, it):
    base, gamma, power = F32(BASE), F32(GAMMA), F32(POWER)
    if policy == "fixed":
        return base
    if policy == "step":
        return base * gamma ** (it // STEPSIZE)
    if policy == "exp":
        return base * gamma ** it
    if policy == "inv":
        return base * (1 + gamma * it) ** -power
    if policy == "multistep":  # stepvalue 3, 7, 8
        return base * gamma ** sum(it >= v for v in (3, 7, 8))
    if policy == "poly":
        return base * (1 - it / MAX_ITER) ** power
    if policy == "sigmoid":
        return base / (1 + math.exp(-gamma * (it - STEPSIZE)))
    raise AssertionError(policy)


def _param(policy):
    param = caffe_pb2.SolverParameter(base_lr=BASE, lr_policy=policy, gamma=GAMMA, power=POWER,
                                      stepsize=STEPSIZE, max_iter=MAX_ITER)
    param.stepvalue.extend([3, 7, 8])
    return param


POLICIES = ["fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid"]


@pytest.mark.parametrize("policy", POLICIES)
def test_policy_formula(policy):
    param, current_step = _param(policy), 0
    for it in range(MAX_ITER):
        rate, current_step = learning_rate(param, it, current_step)
        assert isinstance(rate, numpy.float32)
        assert float(rate) == pytest.approx(_expected(policy, it), rel=1e-6, abs=1e-12), (policy, it)


def test_multistep_counter_moves_at_each_stepvalue():
    param, current_step, steps = _param("multistep"), 0, []
    for it in range(10):
        _, current_step = learning_rate(param, it, current_step)
        steps.append(current_step)
    assert steps == [0, 0, 0, 1, 1, 1, 1, 2, 3, 3]


@pytest.mark.parametrize("policy", POLICIES)
def test_solver_uses_the_policy_each_iteration(policy):
    solver = solver_for(linear_net_text(), base_lr=BASE, lr_policy=policy, gamma=GAMMA, power=POWER,
                        stepsize=STEPSIZE, max_iter=MAX_ITER, stepvalue=[3, 7, 8])
    for it in range(10):
        solver.step(1)
        assert solver.learning_rate == pytest.approx(_expected(policy, it), rel=1e-6), (policy, it)


@pytest.mark.parametrize("policy,fields,message", [
    ("bogus", {}, "unknown lr_policy 'bogus'"),
    ("step", {"stepsize": 0}, "stepsize"),
    ("poly", {"max_iter": 0}, "max_iter"),
])
def test_bad_policy_settings_are_errors(policy, fields, message):
    param = _param(policy)
    for name, value in fields.items():
        setattr(param, name, value)
    with pytest.raises(engine.NetDefinitionError, match=message):
        learning_rate(param, 0, 0)


def test_a_stepvalue_list_that_does_not_increase_steps_once_per_iteration_as_caffe():
    """Caffe accepts any stepvalue list and advances current_step at most once per
    iteration (sgd_solver.cpp): [4, 2] drops the rate at 4 and again at 5."""
    import warnings

    import engine
    from engine.errors import EngineWarning
    text = """type: "SGD" base_lr: 1 lr_policy: "multistep" gamma: 0.5 stepvalue: 4 stepvalue: 2
    net_param { layer { name: "d" type: "DummyData" top: "x" top: "t"
                        dummy_data_param { shape { dim: 1 dim: 1 } data_filler { type: "constant" value: 1 } } }
                layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 1 } }
                layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" } }"""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        solver = engine.get_solver(text)
    assert any(issubclass(w.category, EngineWarning) and "stepvalue does not increase" in str(w.message)
               for w in caught)
    rates = []
    for _ in range(7):
        solver.step(1)
        rates.append(float(solver.learning_rate))
    assert rates == [1, 1, 1, 1, 0.5, 0.25, 0.25]
