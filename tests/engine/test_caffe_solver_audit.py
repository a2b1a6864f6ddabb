"""The solvers' weight updates against a plain float32 re-implementation of BVLC Caffe's
CPU code, written here from its sources (no engine code in the simulation):

- src/caffe/solvers/sgd_solver.cpp: GetLearningRate, ClipGradients, Normalize,
  Regularize, ComputeUpdateValue; nesterov_, adagrad_, rmsprop_, adadelta_ and
  adam_solver.cpp: their ComputeUpdateValue (CPU branch), op by op;
- src/caffe/util/math_functions.cpp + include/caffe/util/mkl_alternate.hpp:
  ``caffe_cpu_axpby(a, x, b, y)`` is sscal(b, y) then saxpy(a, x, y); every
  caffe_* call rounds to float;
- src/caffe/net.cpp: learnable_params (a shared param once, at its owner),
  params_lr_ / params_weight_decay_ (the first layer that sets a shared param's
  multiplier sets it), param_propagate_down = (lr_mult != 0).

Approach: the engine's forward/backward gives the raw gradients (``capture_gradients``:
the param diffs summed over the iter_size passes, before ClipGradients). The
simulation takes them, and only them, from the engine, and runs Caffe's ApplyUpdate
on its own copies of the weights and histories; the engine's weights and histories
after every one of 10 iterations must equal the simulation's, in the fast path (no
observer) and in the staged body (an observer attached). Where Caffe's own
expression is float or double (GetLearningRate), the rates must be equal bit for bit.

What is not simulated: ``caffe_powx(x, 2)`` / ``caffe_powx(x, 0.5)`` call glibc's
powf, which differs from x*x / sqrtf by one ulp for about 0.07% of elements, and
OpenBLAS's saxpy may fuse its multiply-add; both are far below the tolerance here.
"""
import ctypes
import ctypes.util
import math

import numpy
import pytest
from google.protobuf import text_format

import engine
from engine.events import Observer
from engine.proto import caffe_pb2
from tests.engine.helpers import relative_error

F32 = numpy.float32
ITERATIONS = 10
TOLERANCE = 1e-6

_LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_LIBM.powf.restype, _LIBM.powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
_LIBM.expf.restype, _LIBM.expf.argtypes = ctypes.c_float, [ctypes.c_float]


# -- SGDSolver::GetLearningRate ----------------------------------------------------------
def caffe_rate(p, it, current_step):
    """``Dtype rate`` as sgd_solver.cpp computes it (g++ >= 6: <math.h> gives std's float
    overloads). pow(float, int) is the promoting template (double pow), so step, exp and
    multistep are a double product rounded once; pow(float, float) and exp(float) are
    powf / expf and the rest of inv, poly and sigmoid is float arithmetic."""
    base_lr, gamma, power = F32(p["base_lr"]), F32(p.get("gamma", 0)), F32(p.get("power", 0))
    policy = p["lr_policy"]
    if policy == "fixed":
        return base_lr, current_step
    if policy == "step":
        current_step = it // p["stepsize"]
        return F32(float(base_lr) * math.pow(float(gamma), current_step)), current_step
    if policy == "exp":
        return F32(float(base_lr) * math.pow(float(gamma), it)), current_step
    if policy == "inv":
        base = F32(F32(1) + F32(gamma * F32(it)))
        return F32(base_lr * F32(_LIBM.powf(float(base), float(-power)))), current_step
    if policy == "multistep":
        values = p["stepvalue"]
        if current_step < len(values) and it >= values[current_step]:
            current_step += 1
        return F32(float(base_lr) * math.pow(float(gamma), current_step)), current_step
    if policy == "poly":
        fraction = F32(1) - F32(F32(it) / F32(p["max_iter"]))
        return F32(base_lr * F32(_LIBM.powf(float(fraction), float(power)))), current_step
    if policy == "sigmoid":
        exponent = F32(-gamma * F32(F32(it) - F32(p["stepsize"])))
        quotient = F32(F32(1) / F32(F32(1) + F32(_LIBM.expf(float(exponent)))))
        return F32(base_lr * quotient), current_step
    raise AssertionError(policy)


# -- ApplyUpdate ------------------------------------------------------------------------
def axpby(a, x, b, y):
    """caffe_cpu_axpby without MKL: y = b*y (sscal), then y += a*x (saxpy); in place."""
    y *= F32(b)
    y += F32(a) * x


def caffe_clip(grads, clip):
    """ClipGradients: Dtype sumsq += each blob's sdot; sqrt in float; scale by clip/norm."""
    if clip < 0:
        return False
    sumsq = F32(0)
    for g in grads:
        flat = g.reshape(-1).astype(numpy.float64)
        sumsq = F32(sumsq + F32(flat @ flat))
    norm = F32(numpy.sqrt(sumsq))
    if not norm > F32(clip):
        return False
    scale = F32(F32(clip) / norm)
    for g in grads:
        g *= scale
    return True


def caffe_update(kind, p, g, w, hist, it, rate, lr_mult, decay_mult):
    """Normalize, Regularize and ComputeUpdateValue for one param (float32 arrays, ``g``
    and ``hist`` changed in place), then Blob::Update; returns the new weights."""
    if p["iter_size"] > 1:  # Normalize: caffe_scal(Dtype(1) / iter_size)
        g *= F32(F32(1) / F32(p["iter_size"]))
    local_decay = F32(F32(p["weight_decay"]) * F32(decay_mult))
    if local_decay:  # Regularize: caffe_axpy(local_decay, data or sign(data), diff)
        term = w if p["regularization_type"] == "L2" else numpy.sign(w).astype(F32)
        g += local_decay * term
    local_rate = F32(F32(rate) * F32(lr_mult))
    momentum, delta = F32(p.get("momentum", 0)), F32(p.get("delta", 1e-8))
    h = hist[0]
    if kind == "SGD":
        axpby(local_rate, g, momentum, h)
        g[...] = h
    elif kind == "Nesterov":
        update = h.copy()
        axpby(local_rate, g, momentum, h)
        axpby(F32(1) + momentum, h, -momentum, update)
        g[...] = update
    elif kind == "AdaGrad":
        update = g * g
        h += update
        update = numpy.sqrt(h) + delta
        update = g / update
        g[...] = local_rate * update  # axpby(local_rate, update, 0, diff)
    elif kind == "RMSProp":
        rms_decay = F32(p.get("rms_decay", 0.99))
        update = g * g
        axpby(F32(1) - rms_decay, update, rms_decay, h)
        update = numpy.sqrt(h) + delta
        update = g / update
        g[...] = local_rate * update
    elif kind == "AdaDelta":
        h2 = hist[1]
        update = g * g
        axpby(F32(1) - momentum, update, momentum, h)
        temp = numpy.full_like(g, delta)
        update = temp + h2
        temp = temp + h
        update = numpy.sqrt(update / temp)
        g *= update
        update = g * g
        axpby(F32(1) - momentum, update, momentum, h2)
        g *= local_rate  # caffe_cpu_scale(local_rate, diff, diff)
    elif kind == "Adam":
        m, v = hist
        beta1, beta2 = momentum, F32(p.get("momentum2", 0.999))
        t = it + 1  # correction: pow(Dtype, int) is double, the quotient too, then Dtype
        correction = F32(math.sqrt(1.0 - math.pow(float(beta2), t)) / (1.0 - math.pow(float(beta1), t)))
        axpby(F32(1) - beta1, g, beta1, m)
        update = g * g
        axpby(F32(1) - beta2, update, beta2, v)
        update = numpy.sqrt(v) + delta
        update = m / update
        g[...] = F32(local_rate * correction) * update
    else:
        raise AssertionError(kind)
    return w - g  # Blob::Update: data -= diff


# -- the runs -------------------------------------------------------------------------------
MLP = """
name: "audit"
layer { name: "data" type: "DummyData" top: "data" top: "target"
  dummy_data_param { shape { dim: 6 dim: 5 } shape { dim: 6 dim: 3 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  param { lr_mult: 2 decay_mult: 0.5 } param { lr_mult: 0 }
  inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 0.5 }
                        bias_filler { type: "constant" value: 0.1 } } }
layer { name: "act" type: "TanH" bottom: "ip1" top: "act" }
layer { name: "ip2" type: "InnerProduct" bottom: "act" top: "ip2"
  param { lr_mult: 1 } param { lr_mult: 1.5 decay_mult: 0 }
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 }
                        bias_filler { type: "constant" value: -0.2 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip2" bottom: "target" top: "loss" }
"""
MULTIPLIERS = [(2.0, 0.5), (0.0, 1.0), (1.0, 1.0), (1.5, 0.0)]  # (lr_mult, decay_mult) per param

COMMON = {"weight_decay": 0.004, "regularization_type": "L2", "iter_size": 1, "clip_gradients": -1.0,
          "max_iter": 12}
CONFIGS = {
    "SGD-multistep-iter_size3": ("SGD", {"base_lr": 0.05, "momentum": 0.8, "lr_policy": "multistep",
                                         "gamma": 0.6, "stepvalue": [2, 3, 5, 9], "iter_size": 3}),
    "SGD-clip-L1": ("SGD", {"base_lr": 0.2, "momentum": 0.9, "lr_policy": "fixed", "clip_gradients": 0.3,
                            "regularization_type": "L1", "weight_decay": 0.01}),
    "Nesterov-exp-L1": ("Nesterov", {"base_lr": 0.05, "momentum": 0.95, "lr_policy": "exp", "gamma": 0.9,
                                     "regularization_type": "L1"}),
    "AdaGrad-inv": ("AdaGrad", {"base_lr": 0.3, "delta": 1e-3, "lr_policy": "inv", "gamma": 0.1,
                                "power": 0.75, "iter_size": 2}),
    "RMSProp-poly-clip": ("RMSProp", {"base_lr": 0.01, "rms_decay": 0.8, "delta": 1e-5, "lr_policy": "poly",
                                      "power": 1.5, "clip_gradients": 0.2}),
    "AdaDelta-sigmoid": ("AdaDelta", {"base_lr": 0.7, "momentum": 0.85, "delta": 1e-4,
                                      "lr_policy": "sigmoid", "gamma": 0.4, "stepsize": 4}),
    "Adam-step": ("Adam", {"base_lr": 0.02, "momentum": 0.8, "momentum2": 0.95, "delta": 1e-4,
                           "lr_policy": "step", "gamma": 0.5, "stepsize": 3}),
    "Adam-inv-iter_size2-clip-L1": ("Adam", {"base_lr": 0.01, "momentum": 0.7, "momentum2": 0.9, "delta": 1e-6,
                                             "lr_policy": "inv", "gamma": 0.3, "power": 2.0, "iter_size": 2,
                                             "clip_gradients": 0.25, "regularization_type": "L1"}),
}


def _solver(kind, fields, net_text=MLP):
    param = caffe_pb2.SolverParameter(type=kind, random_seed=1701)
    text_format.Parse(net_text, param.net_param)
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(param, name).extend(value)
        else:
            setattr(param, name, value)
    return engine.get_solver(param)


def _numpy(array):
    return engine.backend.to_numpy(array).astype(F32, copy=True)


def _run_against_caffe(kind, p, staged):
    solver = _solver(kind, p)
    if staged:
        solver.observers.append(Observer())
    else:
        assert solver._flat_params() is not None  # the fast path really runs
    net = solver.net
    assert [(float(a), float(b)) for a, b in zip(net.lr_mults, net.decay_mults)] == MULTIPLIERS
    solver.capture_gradients = True
    weights = [_numpy(b.data) for b in net.learnable_params]
    hist = [[numpy.zeros_like(w) for _ in range(2)] for w in weights]
    current_step, clipped = 0, 0
    for it in range(ITERATIONS):
        solver.step(1)
        rate, current_step = caffe_rate(p, it, current_step)
        assert F32(solver.learning_rate) == rate, (it, solver.learning_rate, rate)
        assert solver.current_step == current_step, it
        grads = [_numpy(g) for g in solver.raw_gradients]
        assert not grads[1].any()  # lr_mult 0: param_propagate_down is false, no gradient
        clipped += caffe_clip(grads, p["clip_gradients"])
        for i, (lr_mult, decay_mult) in enumerate(MULTIPLIERS):
            weights[i] = caffe_update(kind, p, grads[i], weights[i], hist[i], it, rate, lr_mult, decay_mult)
        for i, blob in enumerate(net.learnable_params):
            error = relative_error(blob.data, weights[i])
            assert error <= TOLERANCE, (kind, it, i, error)
        n = len(weights)
        for k in range(solver.histories_per_param):
            for i in range(n):
                error = relative_error(solver.history[i + k * n], hist[i][k])
                assert error <= TOLERANCE, (kind, it, "history", k, i, error)
    assert numpy.array_equal(_numpy(net.learnable_params[1].data), F32(0.1) * numpy.ones(4, F32))
    return clipped


@pytest.mark.parametrize("staged", [False, True], ids=["fast", "staged"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_weights_follow_caffes_apply_update_for_ten_iterations(name, staged):
    kind, fields = CONFIGS[name]
    p = dict(COMMON, **fields)
    clipped = _run_against_caffe(kind, p, staged)
    if p["clip_gradients"] >= 0:
        assert 0 < clipped, "the threshold never clipped: the test would not check ClipGradients"


def test_lr_mult_zero_still_regularizes_into_adams_history():
    """A param with lr_mult 0 keeps its weights, but Caffe still runs Regularize and
    ComputeUpdateValue on it: Adam's m and v take in weight_decay·W (its raw diff is 0)."""
    p = dict(COMMON, **CONFIGS["Adam-step"][1])
    solver = _solver("Adam", p)
    solver.step(2)
    n = len(solver.net.learnable_params)
    bias = numpy.full(4, F32(0.1))
    g1 = F32(F32(p["weight_decay"]) * F32(1.0)) * bias
    m = g1 * (F32(1) - F32(0.8))
    m = m * F32(0.8) + (F32(1) - F32(0.8)) * g1  # the second iteration: the same diff again
    numpy.testing.assert_allclose(_numpy(solver.history[1]), m, rtol=1e-6)
    assert _numpy(solver.history[1 + n]).all()
    assert numpy.array_equal(_numpy(solver.net.learnable_params[1].data), bias)


# -- GetLearningRate on its own -------------------------------------------------------------
RATE_CASES = [
    {"lr_policy": "inv", "base_lr": 0.01, "gamma": 1e-4, "power": 0.75},
    {"lr_policy": "inv", "base_lr": 0.1, "gamma": 0.3, "power": 2.5},
    {"lr_policy": "poly", "base_lr": 0.01, "power": 0.9, "max_iter": 5000},
    {"lr_policy": "poly", "base_lr": 0.3, "power": 2.0, "max_iter": 777},
    {"lr_policy": "sigmoid", "base_lr": 0.01, "gamma": 0.1, "stepsize": 100},
    {"lr_policy": "sigmoid", "base_lr": 0.2, "gamma": 0.013, "stepsize": 333},
    {"lr_policy": "exp", "base_lr": 0.01, "gamma": 0.999},
    {"lr_policy": "step", "base_lr": 0.07, "gamma": 0.3, "stepsize": 37},
    {"lr_policy": "fixed", "base_lr": 0.0123},
]


@pytest.mark.parametrize("case", RATE_CASES, ids=lambda c: f"{c['lr_policy']}-{c['base_lr']}")
def test_every_policy_rate_is_caffes_bit_for_bit(case):
    from engine.lr_policy import learning_rate
    param = caffe_pb2.SolverParameter(max_iter=1000)
    for name, value in case.items():
        setattr(param, name, value)
    current_step = expected_step = 0
    for it in range(0, case.get("max_iter", 1000), 1):
        rate, current_step = learning_rate(param, it, current_step)
        expected, expected_step = caffe_rate(case, it, expected_step)
        assert rate == expected, (it, float(rate), float(expected))
        assert current_step == expected_step


def test_multistep_moves_one_step_per_iteration_and_resumes_from_current_step():
    """GetLearningRate moves current_step_ by one per call at most (repeated stepvalues
    take one iteration each), and a resumed run continues from the solverstate's
    current_step: resumed at iteration 7 with current_step 0, it catches up one step
    per iteration, as Caffe does."""
    from engine.lr_policy import learning_rate
    case = {"lr_policy": "multistep", "base_lr": 0.1, "gamma": 0.5, "stepvalue": [2, 2, 3, 6, 20]}
    param = caffe_pb2.SolverParameter(base_lr=0.1, lr_policy="multistep", gamma=0.5)
    param.stepvalue.extend(case["stepvalue"])
    steps, current_step, expected_step = [], 0, 0
    for it in range(10):
        rate, current_step = learning_rate(param, it, current_step)
        expected, expected_step = caffe_rate(case, it, expected_step)
        assert (rate, current_step) == (expected, expected_step)
        steps.append(current_step)
    assert steps == [0, 0, 1, 2, 3, 3, 4, 4, 4, 4]
    current_step, caught_up = 0, []
    for it in range(7, 12):
        _, current_step = learning_rate(param, it, current_step)
        caught_up.append(current_step)
    assert caught_up == [1, 2, 3, 4, 4]


# -- shared parameters ----------------------------------------------------------------------
SHARED = """
name: "shared"
layer { name: "input" type: "Input" top: "a" top: "b" top: "ta" top: "tb"
  input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } shape { dim: 4 dim: 2 } } }
layer { name: "ipa" type: "InnerProduct" bottom: "a" top: "ya"
  param { name: "w" } param { name: "bias_a" decay_mult: 0 }
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 }
                        bias_filler { type: "constant" value: 0.1 } } }
layer { name: "ipb" type: "InnerProduct" bottom: "b" top: "yb"
  param { name: "w" lr_mult: 2 decay_mult: 0.5 } param { lr_mult: 0 }
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 }
                        bias_filler { type: "constant" value: 0.3 } } }
layer { name: "la" type: "EuclideanLoss" bottom: "ya" bottom: "ta" top: "la" }
layer { name: "lb" type: "EuclideanLoss" bottom: "yb" bottom: "tb" top: "lb" }
"""


@pytest.mark.parametrize("staged", [False, True], ids=["fast", "staged"])
def test_a_shared_param_is_learned_once_with_both_gradients_and_the_first_multipliers_set(staged):
    """Net::AppendParam: ipb's "w" is ipa's blob (learnable once, at the owner's place);
    the owner sets no multiplier, so ipb's lr_mult 2 / decay_mult 0.5 become the shared
    param's; backward adds both layers' dW into the one diff."""
    p = dict(COMMON, base_lr=0.05, momentum=0.9, lr_policy="fixed", weight_decay=0.01)
    solver = _solver("SGD", p, SHARED)
    if staged:
        solver.observers.append(Observer())
    net = solver.net
    assert len(net.learnable_params) == 3  # w, bias_a, ipb's bias
    assert net.params["ipa"][0] is net.params["ipb"][0]
    assert [float(v) for v in net.lr_mults] == [2.0, 1.0, 0.0]
    assert [float(v) for v in net.decay_mults] == [0.5, 0.0, 1.0]
    rng = numpy.random.default_rng(5)
    inputs = {name: rng.normal(size=net.blobs[name].shape).astype(F32) for name in ("a", "b", "ta", "tb")}
    for name, values in inputs.items():
        net.blobs[name].data[...] = values
    solver.capture_gradients = True
    weights = [_numpy(b.data) for b in net.learnable_params]
    hist = [[numpy.zeros_like(w)] for w in weights]
    multipliers = [(2.0, 0.5), (1.0, 0.0), (0.0, 1.0)]
    for it in range(ITERATIONS):
        w, bias_a, bias_b = (x.astype(numpy.float64) for x in weights)
        delta_a = (inputs["a"] @ w.T + bias_a - inputs["ta"]) / 4  # EuclideanLoss: (y - t) / N
        delta_b = (inputs["b"] @ w.T + bias_b - inputs["tb"]) / 4
        solver.step(1)
        grads = [_numpy(g) for g in solver.raw_gradients]
        numpy.testing.assert_allclose(grads[0], delta_a.T @ inputs["a"] + delta_b.T @ inputs["b"],
                                      rtol=1e-5, atol=1e-6)
        numpy.testing.assert_allclose(grads[1], delta_a.sum(axis=0), rtol=1e-5, atol=1e-6)
        assert not grads[2].any()
        for i, (lr_mult, decay_mult) in enumerate(multipliers):
            weights[i] = caffe_update("SGD", p, grads[i], weights[i], hist[i], it, F32(0.05), lr_mult, decay_mult)
            assert relative_error(net.learnable_params[i].data, weights[i]) <= TOLERANCE, (it, i)
    assert numpy.array_equal(_numpy(net.params["ipb"][0].data), weights[0])


# -- Solver::Step: TestAll runs before the iteration's forward, on the same random stream ------
STREAM_NET = """
layer { name: "data" type: "DummyData" top: "data" top: "target"
  dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 1 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 0 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 1 weight_filler { type: "constant" value: 0.5 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }
"""


def _train_data_per_iteration(iterations, **test_fields):
    fields = {"base_lr": 0.1, "lr_policy": "fixed", "max_iter": 10}
    solver = _solver("SGD", dict(fields, **test_fields), STREAM_NET)  # test nets: the generic net
    seen = []
    for _ in range(iterations):
        solver.step(1)
        seen.append(_numpy(solver.net.blobs["data"].data))
    return seen


def test_test_passes_draw_from_the_training_stream_before_the_forward():
    """Caffe's Step: ClearParamDiffs, TestAll (when iter % test_interval == 0 and, at 0,
    test_initialization), then the forward/backward. Caffe's RNG is one stream, so the
    test net's DummyData draws come between two training forwards: with two test passes
    at iteration 0 the first training batch is the one a run without those passes (the
    same nets built, test_initialization false) draws third."""
    plain = _train_data_per_iteration(3, test_iter=[2], test_interval=5, test_initialization=False)
    tested = _train_data_per_iteration(1, test_iter=[2], test_interval=5)
    assert numpy.array_equal(tested[0], plain[2])
    assert not numpy.array_equal(plain[0], plain[1])


@pytest.mark.parametrize("display,extra_forward", [(4, True), (3, False), (0, False)])
def test_solve_ends_with_one_forward_only_when_display_divides_max_iter(display, extra_forward):
    """Solver::Solve: Step(max_iter - iter_); then, if display && iter_ % display == 0, one
    Forward of the train net (no backward, no update: the weights are those of max_iter
    updates) whose draws move the stream; then TestAll when test_interval divides iter_."""
    fields = {"base_lr": 0.1, "lr_policy": "fixed", "max_iter": 4, "momentum": 0.5, "display": display}
    stepped = _solver("SGD", fields, STREAM_NET)
    stepped.step(5)  # the fifth iteration's forward draws what Solve's extra forward draws
    fifth_batch = _numpy(stepped.net.blobs["data"].data)
    reference = _solver("SGD", fields, STREAM_NET)
    reference.step(4)
    solved = _solver("SGD", fields, STREAM_NET)
    solved.solve()
    assert solved.iter == 4
    for mine, theirs in zip(solved.net.learnable_params, reference.net.learnable_params):
        assert numpy.array_equal(_numpy(mine.data), _numpy(theirs.data))
    last = _numpy(solved.net.blobs["data"].data)
    assert numpy.array_equal(last, fifth_batch) == extra_forward
    assert numpy.array_equal(last, _numpy(reference.net.blobs["data"].data)) != extra_forward
