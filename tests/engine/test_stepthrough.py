"""The step-through: events one by one equal step(1); per-layer views survive in-place layers."""
import math

import numpy
import pytest

import engine
from engine import events
from tests.engine.helpers import params_numpy


@pytest.fixture
def spiral_solver_path(examples_dir):
    return str(examples_dir / "spiral_mlp" / "solver.prototxt")


def _solver(path):
    solver = engine.get_solver(path)
    solver.param.test_initialization = False
    return solver


def test_events_to_the_end_equal_step_one(spiral_solver_path):
    stepped, walked = _solver(spiral_solver_path), _solver(spiral_solver_path)
    assert all(numpy.array_equal(a, b) for a, b in zip(params_numpy(stepped.net), params_numpy(walked.net)))
    for iteration in range(4):
        loss = stepped.step(1)
        kinds = [event.kind for event in walked.iteration_events()]
        assert kinds[-1] == events.ITERATION_END
        assert walked.iter == stepped.iter == iteration + 1
        for a, b in zip(params_numpy(stepped.net), params_numpy(walked.net)):
            assert numpy.array_equal(a, b), iteration
        for a, b in zip(stepped.history, walked.history):
            assert numpy.array_equal(a, b)
        assert walked.smoothed_loss == stepped.smoothed_loss
        assert walked.net.loss == pytest.approx(loss, rel=0, abs=0)


def test_event_order_forward_backward_update(spiral_solver_path):
    solver = _solver(spiral_solver_path)
    net = solver.net
    seen = list(solver.iteration_events())
    names = [layer.name for layer in net.layers]
    forward = [e.layer for e in seen if e.kind == events.FORWARD]
    backward = [e.layer for e in seen if e.kind == events.BACKWARD]
    updates = [e.detail["param"] for e in seen if e.kind == events.UPDATE_VALUE]
    assert forward == names
    assert backward == [n for i, n in reversed(list(enumerate(names))) if net.layer_need_backward[i]]
    assert backward == ["loss", "ip3", "relu2", "ip2", "relu1", "ip1"]
    assert updates == ["ip1.0", "ip1.1", "ip2.0", "ip2.1", "ip3.0", "ip3.1"]
    kinds = [e.kind for e in seen]
    expected = ([events.FORWARD] * len(names) + [events.BACKWARD] * len(backward) + [events.CLIP]
                + [events.UPDATE_VALUE] * 6 + [events.UPDATE, events.ITERATION_END])
    assert kinds == expected
    assert all(e.iteration == 0 for e in seen)


def test_inner_product_events_carry_products_and_dims(spiral_solver_path):
    solver = _solver(spiral_solver_path)
    seen = {(e.kind, e.layer): e for e in solver.iteration_events()}
    forward, backward = seen[(events.FORWARD, "ip2")], seen[(events.BACKWARD, "ip2")]
    assert forward.dims == {"M_": 32, "N_": 16, "K_": 16}
    assert forward.layer_type == "InnerProduct" and forward.bottoms == ["ip1"] and forward.tops == ["ip2"]
    assert forward.shapes == {"ip1": (32, 16), "ip2": (32, 16)}
    assert len(forward.products) == 1 and "[32×16]" in forward.products[0]
    assert len(backward.products) == 3
    assert "dW [16×16]" in backward.products[0] and "db [16]" in backward.products[1]
    assert "δ_down [32×16]" in backward.products[2]
    assert seen[(events.FORWARD, "ip1")].dims == {"M_": 32, "N_": 16, "K_": 2}
    assert seen[(events.FORWARD, "relu1")].products == []


def test_weights_change_only_at_the_update_event(spiral_solver_path):
    solver = _solver(spiral_solver_path)
    before = params_numpy(solver.net)
    for event in solver.iteration_events():
        now = params_numpy(solver.net)
        changed = not all(numpy.array_equal(a, b) for a, b in zip(before, now))
        assert changed == (event.kind in (events.UPDATE, events.ITERATION_END)), event.kind


def _softmax(x):
    e = numpy.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_captured_views_and_raw_gradients(spiral_solver_path):
    solver = _solver(spiral_solver_path)
    net = solver.net
    solver.capture_gradients = True
    solver.param.clip_gradients = 1e6     # on but never scaling: the clip event reports the norm
    net.capture_layers = {"ip1", "ip2", "ip3"}
    weights = {name: net.params[name][0].data.astype(numpy.float64) for name in ("ip2", "ip3")}
    seen = list(solver.iteration_events())
    clip = next(e for e in seen if e.kind == events.CLIP)
    labels = net.blobs["label"].data.astype(int)
    # δ arriving at ip3: (softmax - onehot) / batch
    expected_delta3 = _softmax(net.blobs["ip3"].data.astype(numpy.float64))
    expected_delta3[numpy.arange(32), labels] -= 1
    expected_delta3 /= 32
    captured = net.captured
    numpy.testing.assert_allclose(captured["ip3"]["top_diff"], expected_delta3, rtol=1e-5, atol=1e-8)
    # δ_down of ip3 = δ · W3 (before the ReLU's backward masks it in the shared diff)
    delta_down3 = expected_delta3 @ weights["ip3"]
    numpy.testing.assert_allclose(captured["ip3"]["bottom_diff"], delta_down3, rtol=1e-5, atol=1e-8)
    relu_out = net.blobs["ip2"].data.astype(numpy.float64)   # relu2 ran in place on 'ip2'
    masked = delta_down3 * (relu_out > 0)
    assert not numpy.allclose(masked, delta_down3)          # the in-place ReLU did overwrite something
    numpy.testing.assert_allclose(captured["ip2"]["top_diff"], masked, rtol=1e-5, atol=1e-8)
    numpy.testing.assert_allclose(captured["ip2"]["bottom_diff"], masked @ weights["ip2"], rtol=1e-5, atol=1e-8)
    # raw dW = top_diff^T . bottom_data, db = top_diff^T . 1, kept although diff now holds the update
    order = net.param_display_names
    for layer, bottom in (("ip2", "ip1"), ("ip3", "ip2")):
        delta = captured[layer]["top_diff"].astype(numpy.float64)
        a = net.blobs[bottom].data.astype(numpy.float64)
        numpy.testing.assert_allclose(solver.raw_gradients[order.index(f"{layer}.0")], delta.T @ a,
                                      rtol=1e-5, atol=1e-8)
        numpy.testing.assert_allclose(solver.raw_gradients[order.index(f"{layer}.1")], delta.sum(axis=0),
                                      rtol=1e-5, atol=1e-8)
        assert not numpy.allclose(net.params[layer][0].diff, delta.T @ a)   # diff is the update now
    norm = math.sqrt(sum(float((g.astype(numpy.float64) ** 2).sum()) for g in solver.raw_gradients))
    assert clip.detail["norm"] == pytest.approx(norm, rel=1e-5)


def test_capture_also_works_with_step(spiral_solver_path):
    solver = _solver(spiral_solver_path)
    solver.capture_gradients = True
    solver.net.capture_layers = {"ip1"}
    solver.step(1)
    delta = solver.net.captured["ip1"]["top_diff"].astype(numpy.float64)
    a = solver.net.blobs["data"].data.astype(numpy.float64)
    numpy.testing.assert_allclose(solver.raw_gradients[0], delta.T @ a, rtol=1e-5, atol=1e-8)


DROPOUT_NET = """
layer { name: "data" type: "BuiltinData" top: "data" top: "label"
        builtin_data_param { dataset: "blobs" num_points: 96 batch_size: 12 shuffle: true } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param { num_output: 8 weight_filler { type: "xavier" } } }
layer { name: "tanh" type: "TanH" bottom: "ip1" top: "ip1" }
layer { name: "drop" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.3 } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 3 weight_filler { type: "msra" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""


@pytest.mark.parametrize("kind", ["SGD", "AdaDelta", "Adam"])
def test_stepthrough_equals_step_with_iter_size_dropout_and_clipping(kind):
    from tests.engine.helpers import solver_for

    def make():
        return solver_for(DROPOUT_NET, type=kind, base_lr=0.05, momentum=0.9, weight_decay=0.01,
                          iter_size=2, clip_gradients=0.5, random_seed=9)
    stepped = make()
    stepped.step(3)
    walked = make()
    seen = []
    for _ in range(3):
        seen = list(walked.iteration_events())
    for a, b in zip(params_numpy(stepped.net), params_numpy(walked.net)):
        assert numpy.array_equal(a, b)
    for a, b in zip(stepped.history, walked.history):
        assert numpy.array_equal(a, b)
    assert [e.layer for e in seen if e.kind == events.FORWARD].count("drop") == 2   # two passes
    assert [e.layer for e in seen if e.kind == events.BACKWARD].count("ip1") == 2


def test_a_test_event_comes_first_when_the_solver_tests(spiral_solver_path):
    solver = engine.get_solver(spiral_solver_path)       # test_initialization defaults to true
    first = next(iter(solver.iteration_events()))
    assert first.kind == events.TEST
    assert set(first.detail["scores"]) == {"accuracy", "loss"}
    assert solver.test_scores[0][0] == 0
