"""Every layer's backward against central differences (float64), and the checker itself."""
import numpy
import pytest

import engine
from engine.gradcheck import check_layer, check_net
from engine.layers.inner_product import InnerProductLayer
from engine.layers.sigmoid import SigmoidLayer

RNG = numpy.random.default_rng(5)


def _away_from_zero(shape, margin=0.05):
    x = RNG.normal(size=shape)
    return numpy.where(numpy.abs(x) < margin, margin * numpy.sign(x + 1e-12) + x, x)


def _assert_passed(result, expected_blobs):
    assert len(result.blobs) == expected_blobs, result.summary()
    assert all(b.checked > 0 for b in result.blobs), result.summary()
    assert result.passed, result.summary()


IP = 'type: "InnerProduct" inner_product_param {{ num_output: 3 weight_filler {{ type: "gaussian" }} ' \
     'bias_filler {{ type: "gaussian" }} {extra} }}'


@pytest.mark.parametrize("extra,shape,blobs", [
    ("", (4, 5), 3), ("axis: 2", (2, 3, 4), 3), ("transpose: true", (4, 5), 3),
    ("bias_term: false", (2, 3, 2), 2)])
def test_inner_product_backward(extra, shape, blobs):
    _assert_passed(check_layer(IP.format(extra=extra), [RNG.normal(size=shape)]), blobs)


@pytest.mark.parametrize("spec", ['type: "ReLU"', 'type: "ReLU" relu_param { negative_slope: 0.2 }'])
def test_relu_backward(spec):
    _assert_passed(check_layer(spec, [_away_from_zero((3, 4))]), 1)


@pytest.mark.parametrize("spec", ['type: "Sigmoid"', 'type: "TanH"', 'type: "Softmax"',
                                  'type: "Softmax" softmax_param { axis: 2 }'])
def test_smooth_activation_backward(spec):
    _assert_passed(check_layer(spec, [RNG.normal(size=(2, 3, 4))]), 1)


def test_dropout_backward_with_a_fixed_mask():
    _assert_passed(check_layer('type: "Dropout" dropout_param { dropout_ratio: 0.4 }',
                               [RNG.normal(size=(4, 6))]), 1)


@pytest.mark.parametrize("mode", ["FULL", "VALID", "BATCH_SIZE", "NONE"])
def test_softmax_with_loss_backward(mode):
    scores = RNG.normal(size=(3, 4, 2))
    labels = numpy.array([[0, 3], [1, 1], [2, 0]], dtype=float)[:, None, :]
    spec = f'type: "SoftmaxWithLoss" loss_param {{ normalization: {mode} ignore_label: 1 }}'
    _assert_passed(check_layer(spec, [scores, labels], check_bottoms=[0]), 1)


def test_euclidean_loss_backward_to_both_bottoms():
    _assert_passed(check_layer('type: "EuclideanLoss"', [RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))]), 2)


def test_split_backward_sums_the_diffs():
    _assert_passed(check_layer('type: "Split"', [RNG.normal(size=(3, 2))], num_tops=3), 1)


# -- the checker must catch a wrong backward ------------------------------------------
class _WrongWeightGradient(InnerProductLayer):
    def backward(self, top, propagate_down, bottom):
        super().backward(top, propagate_down, bottom)
        self.blobs[0].diff *= 1.1


class _WrongBottomGradient(SigmoidLayer):
    def backward(self, top, propagate_down, bottom):
        y = top[0].data
        bottom[0].diff[...] = top[0].diff * y  # forgot the (1 - y) factor


def test_checker_fails_on_a_wrong_weight_gradient():
    x = RNG.normal(size=(4, 5))
    result = check_layer(IP.format(extra=""), [x], layer_factory=_WrongWeightGradient)
    assert not result.passed
    failed = {b.name for b in result.blobs if not b.passed}
    assert failed == {"InnerProduct/param0"}
    assert result.worst.worst_error > 1e-3
    assert check_layer(IP.format(extra=""), [x]).passed  # the real layer, same input


def test_checker_fails_on_a_wrong_bottom_gradient():
    x = RNG.normal(size=(3, 3))
    result = check_layer('type: "Sigmoid"', [x], layer_factory=_WrongBottomGradient)
    assert not result.passed and "FAIL" in result.summary()
    assert check_layer('type: "Sigmoid"', [x]).passed


def test_checker_skips_the_relu_kink():
    x = numpy.array([[0.0, 1.0, -1.0, 2.0]])
    result = check_layer('type: "ReLU"', [x])
    assert result.passed
    assert result.blobs[0].skipped >= 1


def test_check_net_on_the_spiral_example(examples_dir):
    solver = engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    solver.param.test_initialization = False
    solver.step(5)
    solver.net.forward()
    results = check_net(solver.net, max_elements=24)
    assert set(results) == {"ip1", "relu1", "ip2", "relu2", "ip3", "loss"}
    for name, result in results.items():
        assert result.blobs, name
        assert result.passed, f"{name}\n{result.summary()}"
    assert {b.name for b in results["ip2"].blobs} == {"ip2/ip1", "ip2/param0", "ip2/param1"}


def test_check_net_on_splits_shared_params_in_place_and_loss_weights():
    text = """
force_backward: true
layer { name: "in" type: "Input" top: "data" top: "t1" top: "t2"
        input_param { shape { dim: 5 dim: 3 } shape { dim: 5 dim: 3 } shape { dim: 5 dim: 3 } } }
layer { name: "ip_a" type: "InnerProduct" bottom: "data" top: "a" param { name: "w" } param { name: "b" }
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } } }
layer { name: "sig" type: "Sigmoid" bottom: "a" top: "a" }
layer { name: "ip_b" type: "InnerProduct" bottom: "a" top: "b" param { name: "w" } param { name: "b" }
        inner_product_param { num_output: 3 } }
layer { name: "tanh" type: "TanH" bottom: "a" top: "h" }
layer { name: "l1" type: "EuclideanLoss" bottom: "b" bottom: "t1" top: "l1" loss_weight: 0.5 }
layer { name: "l2" type: "EuclideanLoss" bottom: "h" bottom: "t2" top: "l2" loss_weight: 2 }
"""
    engine.rng.set_seed(3)
    net = engine.Net(text)
    for name in ("data", "t1", "t2"):
        net.blobs[name].data[...] = RNG.normal(size=(5, 3))
    assert any(layer.type_name == "Split" for layer in net.layers)
    results = check_net(net)
    assert {"ip_a", "sig", "ip_b", "tanh", "l1", "l2"} <= set(results)
    for name, result in results.items():
        assert result.passed, f"{name}\n{result.summary()}"
    assert any(b.name == "ip_a/data" for b in results["ip_a"].blobs)   # force_backward reaches the input
