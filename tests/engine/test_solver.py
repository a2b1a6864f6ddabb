"""Solvers against their update formulas written out here in float64 numpy."""
import math

import numpy
import pytest

import engine
from tests.engine.helpers import linear_net_text, params_numpy, relative_error, solver_for

RNG = numpy.random.default_rng(11)
X = RNG.normal(size=(4, 3))
T = RNG.normal(size=(4, 2))
F32 = lambda v: float(numpy.float32(v))  # noqa: E731  prototxt numbers are float32

# weights lr_mult 1 / decay_mult 1; bias lr_mult 2 / decay_mult 0 (as Caffe nets often do)
MULTS = 'param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }'
LR_MULTS, DECAY_MULTS = [1.0, 2.0], [1.0, 0.0]


def _gradients(W, b):
    """d/dW, d/db of 1/(2N) * ||X W^T + b - T||^2 with N = 4."""
    residual = X @ W.T + b - T
    return [residual.T @ X / 4, residual.sum(axis=0) / 4]


def _linear_solver(**fields):
    solver = solver_for(linear_net_text(extra=MULTS), **fields)
    solver.net.blobs["data"].data[...] = X
    solver.net.blobs["target"].data[...] = T
    return solver


def _sgd(g, h, rate, p, t):
    h[0] = F32(p["momentum"]) * h[0] + rate * g
    return h[0]


def _nesterov(g, h, rate, p, t):
    m = F32(p["momentum"])
    previous = h[0].copy()
    h[0] = m * h[0] + rate * g
    return (1 + m) * h[0] - m * previous


def _adagrad(g, h, rate, p, t):
    h[0] = h[0] + g * g
    return rate * g / (numpy.sqrt(h[0]) + F32(p["delta"]))


def _rmsprop(g, h, rate, p, t):
    decay = F32(p["rms_decay"])
    h[0] = decay * h[0] + (1 - decay) * g * g
    return rate * g / (numpy.sqrt(h[0]) + F32(p["delta"]))


def _adadelta(g, h, rate, p, t):
    m, d = F32(p["momentum"]), F32(p["delta"])
    h[0] = m * h[0] + (1 - m) * g * g
    g = g * numpy.sqrt((h[1] + d) / (h[0] + d))
    h[1] = m * h[1] + (1 - m) * g * g
    return rate * g


def _adam(g, h, rate, p, t):
    b1, b2, eps = F32(p["momentum"]), F32(p["momentum2"]), F32(p["delta"])
    h[0] = b1 * h[0] + (1 - b1) * g
    h[1] = b2 * h[1] + (1 - b2) * g * g
    correction = math.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
    return rate * correction * h[0] / (numpy.sqrt(h[1]) + eps)


CASES = {
    "SGD": (_sgd, {"base_lr": 0.1, "momentum": 0.9}),
    "Nesterov": (_nesterov, {"base_lr": 0.1, "momentum": 0.9}),
    "AdaGrad": (_adagrad, {"base_lr": 0.1, "delta": 1e-8}),
    "RMSProp": (_rmsprop, {"base_lr": 0.01, "rms_decay": 0.9, "delta": 1e-8}),
    "AdaDelta": (_adadelta, {"base_lr": 1.0, "momentum": 0.95, "delta": 1e-6}),
    "Adam": (_adam, {"base_lr": 0.01, "momentum": 0.9, "momentum2": 0.999, "delta": 1e-8}),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_solver_rule_over_three_iterations(kind):
    rule, fields = CASES[kind]
    fields = dict(fields, type=kind, weight_decay=0.01)
    solver = _linear_solver(**fields)
    assert type(solver).__name__.lower().startswith(kind.lower())
    params = [p.astype(numpy.float64) for p in params_numpy(solver.net)]
    histories = [[numpy.zeros_like(p), numpy.zeros_like(p)] for p in params]
    for t in range(3):
        grads = _gradients(*params)
        updates = []
        for i, (data, g) in enumerate(zip(params, grads)):
            g = g + F32(0.01) * DECAY_MULTS[i] * data                    # L2 Regularize
            rate = F32(fields["base_lr"]) * LR_MULTS[i]                    # local_rate
            updates.append(rule(g, histories[i], rate, fields, t))
        params = [p - u for p, u in zip(params, updates)]                 # Update
        solver.step(1)
        assert solver.iter == t + 1
        for i, blob in enumerate(solver.net.learnable_params):
            assert relative_error(blob.diff, updates[i]) < 2e-5, (kind, t, i)   # diff holds the update
            assert relative_error(blob.data, params[i]) < 1e-5, (kind, t, i)
    count = len(params)
    for i in range(count):
        assert relative_error(solver.history[i], histories[i][0]) < 2e-5, (kind, i)
        if solver.histories_per_param == 2:
            assert relative_error(solver.history[i + count], histories[i][1]) < 2e-5, (kind, i)


def test_solver_types_and_legacy_solver_type():
    assert type(_linear_solver(type="Adam")).__name__ == "AdamSolver"
    param = engine.proto.caffe_pb2.SolverParameter()
    param.solver_type = engine.proto.caffe_pb2.SolverParameter.NESTEROV
    from google.protobuf import text_format
    text_format.Parse(linear_net_text(), param.net_param)
    param.base_lr = 0.1
    assert type(engine.get_solver(param)).__name__ == "NesterovSolver"


def _plain_sgd(**fields):
    settings = {"type": "SGD", "base_lr": 0.1, "momentum": 0.0, "weight_decay": 0.0}
    settings.update(fields)
    return _linear_solver(**settings)


def test_l1_regularization_adds_the_sign_of_the_weights():
    solver = _plain_sgd(weight_decay=0.05, regularization_type="L1")
    W, b = [p.astype(numpy.float64) for p in params_numpy(solver.net)]
    gW, gb = _gradients(W, b)
    solver.step(1)
    expected_W = W - F32(0.1) * (gW + F32(0.05) * numpy.sign(W))
    expected_b = b - F32(0.1) * 2 * gb                               # decay_mult 0 on the bias
    assert relative_error(solver.net.learnable_params[0].data, expected_W) < 1e-6
    assert relative_error(solver.net.learnable_params[1].data, expected_b) < 1e-6


def test_l2_regularization_adds_decay_times_the_weights():
    solver = _plain_sgd(weight_decay=0.05)
    W, b = [p.astype(numpy.float64) for p in params_numpy(solver.net)]
    gW, _ = _gradients(W, b)
    solver.step(1)
    expected_W = W - F32(0.1) * (gW + F32(0.05) * W)
    assert relative_error(solver.net.learnable_params[0].data, expected_W) < 1e-6


def _global_norm(grads):
    return math.sqrt(sum(float((g * g).sum()) for g in grads))


@pytest.mark.parametrize("iter_size", [1, 2])
def test_clip_gradients_scales_the_summed_diffs_to_the_threshold(iter_size):
    solver = _plain_sgd(clip_gradients=0.01, iter_size=iter_size)
    W, b = [p.astype(numpy.float64) for p in params_numpy(solver.net)]
    grads = [iter_size * g for g in _gradients(W, b)]       # summed over the passes (same batch)
    norm = _global_norm(grads)
    assert norm > 0.01
    solver.step(1)
    for i, (data, g) in enumerate(zip((W, b), grads)):
        clipped = g * (0.01 / norm) / iter_size             # clip, then Normalize by iter_size
        expected = data - F32(0.1) * LR_MULTS[i] * clipped
        assert relative_error(solver.net.learnable_params[i].data, expected) < 1e-6


def test_clip_gradients_leaves_small_gradients_alone():
    solver = _plain_sgd(clip_gradients=1e6)
    W, b = [p.astype(numpy.float64) for p in params_numpy(solver.net)]
    gW, _ = _gradients(W, b)
    solver.step(1)
    assert relative_error(solver.net.learnable_params[0].data, W - F32(0.1) * gW) < 1e-6


MEMORY_NET = """
layer {{ name: "mem" type: "MemoryData" top: "data" top: "label"
        memory_data_param {{ batch_size: {batch} channels: 3 height: 1 width: 1 }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param {{ num_output: 1 weight_filler {{ type: "gaussian" }} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "label" top: "loss" }}
"""
ROWS = RNG.normal(size=(8, 3, 1, 1)).astype(numpy.float32)
LABELS = RNG.normal(size=8).astype(numpy.float32)


def _memory_solver(batch, **fields):
    solver = solver_for(MEMORY_NET.format(batch=batch), type="SGD", base_lr=0.1, momentum=0.9,
                        weight_decay=0.001, **fields)
    solver.net.layers[0].set_arrays(ROWS, LABELS)
    return solver


def test_iter_size_two_equals_a_batch_twice_the_size():
    small, large = _memory_solver(4, iter_size=2), _memory_solver(8)
    for mine, theirs in zip(small.net.learnable_params, large.net.learnable_params):
        mine.data[...] = theirs.data
    for _ in range(3):
        loss_small, loss_large = small.step(1), large.step(1)
        assert loss_small == pytest.approx(loss_large, rel=1e-5)
        for a, b in zip(small.net.learnable_params, large.net.learnable_params):
            numpy.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-7)


def test_average_loss_is_the_running_mean_of_the_last_losses():
    solver = _plain_sgd(average_loss=3)
    losses = []
    for _ in range(6):
        losses.append(solver.step(1))
        window = losses[-3:]
        assert solver.smoothed_loss == pytest.approx(sum(window) / len(window), rel=1e-9)
    assert len(set(losses)) == 6   # the loss moved, so the window matters


def test_average_loss_window_after_resuming_mid_run():
    """A run resumed at iteration 5 (a Caffe solverstate has no loss window) still
    averages the last average_loss losses (Caffe indexes by iter - start_iter)."""
    solver = _plain_sgd(average_loss=3)
    solver.iter = 5
    losses = []
    for _ in range(7):
        losses.append(solver.step(1))
        window = losses[-3:]
        assert solver.smoothed_loss == pytest.approx(sum(window) / len(window), rel=1e-9), len(losses)


def test_step_returns_the_mean_loss_over_iter_size_passes():
    solver = _memory_solver(4, iter_size=2)
    W = params_numpy(solver.net)[0].astype(numpy.float64)
    rows = ROWS.reshape(8, 3).astype(numpy.float64)
    residual = rows @ W.T - LABELS[:, None]
    first, second = (residual[:4] ** 2).sum() / 8, (residual[4:] ** 2).sum() / 8
    assert solver.step(1) == pytest.approx((first + second) / 2, rel=1e-5)


def _test_net_solver(**fields):
    settings = {"type": "SGD", "base_lr": 0.1, "momentum": 0.9, "test_iter": [2], "test_interval": 2}
    settings.update(fields)
    solver = solver_for(MEMORY_NET.format(batch=4), **settings)
    solver.net.layers[0].set_arrays(ROWS, LABELS)
    solver.test_nets[0].layers[0].set_arrays(ROWS[::-1].copy(), LABELS[::-1].copy())
    return solver


def _loss_on(rows, labels, W, b):
    residual = rows.reshape(len(rows), -1).astype(numpy.float64) @ W.T + b - labels[:, None]
    return (residual ** 2).sum() / (2 * len(rows))


def test_test_nets_run_every_test_interval_with_shared_weights():
    solver = _test_net_solver()
    solver.step(2)
    W, b = [p.astype(numpy.float64) for p in params_numpy(solver.net)]
    solver.step(1)
    rows, labels = ROWS[::-1], LABELS[::-1]
    expected = (_loss_on(rows[:4], labels[:4], W, b) + _loss_on(rows[4:], labels[4:], W, b)) / 2
    assert [it for it, _ in solver.test_scores] == [0, 2]
    assert solver.test_scores[-1][1]["loss"] == pytest.approx(expected, rel=1e-5)
    solver.step(2)
    assert [it for it, _ in solver.test_scores] == [0, 2, 4]


def test_test_initialization_false_skips_iteration_zero():
    solver = _test_net_solver(test_initialization=False)
    solver.step(5)
    assert [it for it, _ in solver.test_scores] == [2, 4]


def test_test_iter_must_match_the_test_nets():
    from google.protobuf import text_format
    param = engine.proto.caffe_pb2.SolverParameter(base_lr=0.1, test_interval=2)
    text_format.Parse(MEMORY_NET.format(batch=4), param.train_net_param)
    text_format.Parse(MEMORY_NET.format(batch=4), param.test_net_param.add())
    param.test_iter.extend([1, 1])
    with pytest.raises(engine.NetDefinitionError, match="test_iter must be given once per test net"):
        engine.get_solver(param)


def test_a_generic_net_serves_every_test_iter():
    solver = solver_for(MEMORY_NET.format(batch=4), test_iter=[1, 3], test_interval=2)
    assert len(solver.test_nets) == 2


SEEDED_NET = """
layer { name: "data" type: "BuiltinData" top: "data" top: "label"
        builtin_data_param { dataset: "spiral" num_points: 120 batch_size: 16 shuffle: true } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param { num_output: 8 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "relu" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "drop" type: "Dropout" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 3 weight_filler { type: "msra" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""


def _seeded_run(seed):
    solver = solver_for(SEEDED_NET, type="SGD", base_lr=0.1, momentum=0.9, random_seed=seed)
    solver.step(10)
    return params_numpy(solver.net)


def test_random_seed_makes_runs_identical_bit_for_bit():
    first, second = _seeded_run(5), _seeded_run(5)
    assert all(numpy.array_equal(a, b) for a, b in zip(first, second))
    other = _seeded_run(6)
    assert not all(numpy.array_equal(a, b) for a, b in zip(first, other))


def test_learning_rate_is_applied_through_lr_mult():
    solver = _plain_sgd(lr_policy="step", gamma=0.5, stepsize=1)
    for it in range(3):
        W, b = [p.astype(numpy.float64) for p in params_numpy(solver.net)]
        gW, gb = _gradients(W, b)
        solver.step(1)
        rate = F32(0.1) * 0.5 ** it
        assert solver.learning_rate == pytest.approx(rate, rel=1e-6)
        assert relative_error(solver.net.learnable_params[0].diff, rate * gW) < 1e-5
        assert relative_error(solver.net.learnable_params[1].diff, 2 * rate * gb) < 1e-5


def test_a_test_net_layer_whose_shape_differs_cannot_share_weights():
    """Caffe's ShareTrainedLayersWith refuses; silently keeping random weights would skew every test score."""
    from google.protobuf import text_format
    param = engine.proto.caffe_pb2.SolverParameter(base_lr=0.1, test_interval=2)
    text_format.Parse(MEMORY_NET.format(batch=4), param.train_net_param)
    wider = MEMORY_NET.format(batch=4).replace("num_output: 1", "num_output: 2")
    text_format.Parse(wider[:wider.index('layer { name: "loss"')], param.test_net_param.add())
    param.test_iter.append(1)
    with pytest.raises(engine.ShapeError, match=r"layer 'ip': cannot share parameter 0: its shape is \(2, 3\)"):
        engine.get_solver(param)


def test_solve_trains_to_max_iter_and_tests_at_the_end():
    solver = _test_net_solver(max_iter=5, test_interval=5)
    solver.solve()
    assert solver.iter == 5
    assert [it for it, _ in solver.test_scores] == [0, 5]     # Caffe's Solve: a final TestAll
