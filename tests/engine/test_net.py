"""Net semantics: splits, in-place layers, shared params, loss weights, phases,
the backward-needed analysis, force_backward, and the pycaffe-style API."""
import numpy
import pytest

import engine
from tests.engine.helpers import linear_net_text, solver_for

RNG = numpy.random.default_rng(7)

INPUT = ('layer {{ name: "input" type: "Input" top: "data" {extra_tops} '
         'input_param {{ shape {{ dim: 4 dim: 3 }} {extra_shapes} }} }}')


def _ip(name, bottom, top, num_output=2, extra=""):
    return (f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{top}" {extra} '
            f'inner_product_param {{ num_output: {num_output} weight_filler {{ type: "gaussian" }} '
            f'bias_filler {{ type: "gaussian" }} }} }}')


def _float64(text, **kwargs):
    engine.rng.set_seed(1234)   # the fillers draw from the engine's stream: same weights every run
    return engine.Net(text, dtype=numpy.float64, **kwargs)


def test_split_layers_are_inserted_with_caffe_names_and_sum_the_diffs():
    text = "\n".join([
        INPUT.format(extra_tops='top: "t1" top: "t2"', extra_shapes="shape { dim: 4 dim: 2 } " * 2),
        _ip("ip", "data", "h"),
        'layer { name: "loss1" type: "EuclideanLoss" bottom: "h" bottom: "t1" top: "loss1" }',
        'layer { name: "loss2" type: "EuclideanLoss" bottom: "h" bottom: "t2" top: "loss2" }'])
    net = _float64(text)
    names = [layer.name for layer in net.layers]
    assert names == ["input", "ip", "h_ip_0_split", "loss1", "loss2"]
    assert net.bottom_names[3] == ["h_ip_0_split_0", "t1"]
    assert net.bottom_names[4] == ["h_ip_0_split_1", "t2"]
    x, t1, t2 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2)), RNG.normal(size=(4, 2))
    net.forward(data=x, t1=t1, t2=t2)
    net.backward()
    W, b = net.params["ip"][0].data, net.params["ip"][1].data
    h = x @ W.T + b
    assert net.loss == pytest.approx(((h - t1) ** 2).sum() / 8 + ((h - t2) ** 2).sum() / 8, rel=1e-12)
    dh = (h - t1) / 4 + (h - t2) / 4             # the two consumers' diffs, summed
    numpy.testing.assert_allclose(net.blobs["h"].diff, dh, rtol=1e-12)
    numpy.testing.assert_allclose(net.params["ip"][0].diff, dh.T @ x, rtol=1e-12)
    numpy.testing.assert_allclose(net.params["ip"][1].diff, dh.sum(axis=0), rtol=1e-12)


def test_in_place_relu_shares_the_blob_and_masks_the_gradient():
    text = "\n".join([
        INPUT.format(extra_tops='top: "target"', extra_shapes="shape { dim: 4 dim: 2 }"),
        _ip("ip", "data", "ip"),
        'layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }',
        'layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }'])
    net = _float64(text)
    assert list(net.blobs) == ["data", "target", "ip", "loss"]
    x, t = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))
    net.params["ip"][1].data[...] = [0.0, -1.0]
    W, b = net.params["ip"][0].data, net.params["ip"][1].data
    W[0] = [1.0, 1.0, 1.0]
    x[:, 0] = [2.0, -2.0, 1.0, -1.0]
    x[:, 1:] = numpy.abs(x[:, 1:]) * 0.1
    net.forward(data=x, target=t)
    z = x @ W.T + b
    assert (z > 0).any() and (z < 0).any()
    y = numpy.maximum(z, 0)
    numpy.testing.assert_allclose(net.blobs["ip"].data, y, rtol=1e-12)
    net.backward()
    dz = (y - t) / 4 * (z > 0)
    numpy.testing.assert_allclose(net.blobs["ip"].diff, dz, rtol=1e-12, atol=1e-15)
    numpy.testing.assert_allclose(net.params["ip"][0].diff, dz.T @ x, rtol=1e-12, atol=1e-15)


def test_shared_params_are_one_blob_and_sum_gradients():
    shared = 'param { name: "w" } param { name: "b" }'
    text = "\n".join([
        INPUT.format(extra_tops='top: "data2" top: "target"', extra_shapes="shape { dim: 4 dim: 3 } "
                     "shape { dim: 4 dim: 2 }"),
        _ip("ip_a", "data", "a", extra=shared),
        _ip("ip_b", "data2", "b", extra=shared),
        'layer { name: "sum" type: "EuclideanLoss" bottom: "a" bottom: "target" top: "la" }',
        'layer { name: "sum2" type: "EuclideanLoss" bottom: "b" bottom: "target" top: "lb" }'])
    net = _float64(text)
    assert net.params["ip_a"][0] is net.params["ip_b"][0]
    assert net.params["ip_a"][1] is net.params["ip_b"][1]
    assert len(net.learnable_params) == 2
    x1, x2, t = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))
    net.forward(data=x1, data2=x2, target=t)
    net.clear_param_diffs()
    net.backward()
    W, b = net.params["ip_a"][0].data, net.params["ip_a"][1].data
    da, db_ = (x1 @ W.T + b - t) / 4, (x2 @ W.T + b - t) / 4
    numpy.testing.assert_allclose(net.params["ip_a"][0].diff, da.T @ x1 + db_.T @ x2, rtol=1e-12)
    numpy.testing.assert_allclose(net.params["ip_a"][1].diff, da.sum(0) + db_.sum(0), rtol=1e-12)


def test_shared_param_shape_mismatch_is_an_error():
    text = "\n".join([INPUT.format(extra_tops="", extra_shapes=""),
                      _ip("a", "data", "a", 2, 'param { name: "w" }'),
                      _ip("b", "data", "b", 3, 'param { name: "w" }')])
    with pytest.raises(engine.ShapeError, match="shared parameter 'w'"):
        engine.Net(text)


def _twin_losses(weight: str):
    text = linear_net_text(extra="").replace(
        'top: "loss" }', f'top: "loss" {weight} }}')
    return _float64(text)


def test_loss_weight_two_doubles_the_loss_and_every_gradient():
    plain, doubled = _twin_losses(""), _twin_losses("loss_weight: 2")
    for net in (plain, doubled):
        for mine, theirs in zip(net.learnable_params, plain.learnable_params):
            mine.data[...] = theirs.data
    x, t = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))
    for net in (plain, doubled):
        net.forward(data=x, target=t)
        net.backward()
    assert doubled.loss == pytest.approx(2 * plain.loss, rel=1e-12)
    for a, b in zip(plain.learnable_params, doubled.learnable_params):
        numpy.testing.assert_allclose(b.diff, 2 * a.diff, rtol=1e-12)
    numpy.testing.assert_allclose(doubled.blobs["ip"].diff, 2 * plain.blobs["ip"].diff, rtol=1e-12)


def test_loss_weight_on_a_non_loss_layer_adds_its_sum():
    text = "\n".join([INPUT.format(extra_tops="", extra_shapes=""),
                      _ip("ip", "data", "ip", extra="loss_weight: 0.5")])
    net = _float64(text)
    x = RNG.normal(size=(4, 3))
    net.forward(data=x)
    assert net.loss == pytest.approx(0.5 * net.blobs["ip"].data.sum(), rel=1e-12)
    net.backward()
    numpy.testing.assert_allclose(net.params["ip"][0].diff, 0.5 * numpy.ones((4, 2)).T @ x, rtol=1e-12)


def test_phase_include_and_exclude():
    text = "\n".join([
        INPUT.format(extra_tops="", extra_shapes=""),
        _ip("always", "data", "a"),
        _ip("train_only", "data", "b", extra="include { phase: TRAIN }"),
        _ip("not_train", "data", "c", extra="exclude { phase: TRAIN }"),
        _ip("test_only", "data", "d", extra="include { phase: TEST }")])
    train = engine.Net(text, engine.TRAIN)
    test = engine.Net(text, engine.TEST)
    def computing(net):
        return [layer.name for layer in net.layers if layer.type_name != "Split"]
    assert computing(train) == ["input", "always", "train_only"]
    assert computing(test) == ["input", "always", "not_train", "test_only"]


def test_lr_mult_zero_freezes_a_blob_and_skips_unneeded_backward():
    text = "\n".join([
        INPUT.format(extra_tops='top: "target"', extra_shapes="shape { dim: 4 dim: 2 }"),
        _ip("frozen", "data", "h", 4, 'param { lr_mult: 0 } param { lr_mult: 0 }'),
        _ip("half", "h", "out", 2, 'param { lr_mult: 1 } param { lr_mult: 0 }'),
        'layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "target" top: "loss" }'])
    solver = solver_for(text, base_lr=0.1)
    net = solver.net
    frozen_index = net.layer_index("frozen")
    assert not net.layer_need_backward[frozen_index]       # nothing below it learns
    assert not net.bottom_need_backward[net.layer_index("half")][0]
    net.blobs["data"].data[...] = RNG.normal(size=(4, 3))
    net.blobs["target"].data[...] = RNG.normal(size=(4, 2))
    before = [b.data.copy() for b in net.learnable_params]
    solver.step(3)
    after = [b.data for b in net.learnable_params]
    assert numpy.array_equal(before[0], after[0]) and numpy.array_equal(before[1], after[1])
    assert not numpy.array_equal(before[2], after[2])       # half.W learns
    assert numpy.array_equal(before[3], after[3])           # half.b frozen
    assert not net.blobs["h"].diff.any()                    # no backward into 'h'
    assert net.lr_mults == [0, 0, 1, 0]


def test_force_backward_computes_input_diffs():
    text = linear_net_text()
    x, t = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))
    plain = _float64(text)
    plain.forward(data=x, target=t)
    diffs = plain.backward()
    assert not diffs["data"].any()
    forced = _float64("force_backward: true\n" + text)
    forced.params["ip"][0].data[...] = plain.params["ip"][0].data
    forced.params["ip"][1].data[...] = plain.params["ip"][1].data
    forced.forward(data=x, target=t)
    diffs = forced.backward()
    W = plain.params["ip"][0].data
    delta = (x @ W.T + plain.params["ip"][1].data - t) / 4
    numpy.testing.assert_allclose(diffs["data"], delta @ W, rtol=1e-12)
    numpy.testing.assert_allclose(diffs["target"], -delta, rtol=1e-12)


def test_inputs_outputs_and_pycaffe_style_forward_backward():
    net = _float64(linear_net_text())
    assert net.inputs == ["data", "target"]
    assert net.outputs == ["loss"]
    assert list(net.params) == ["ip"]
    assert [b.shape for b in net.params["ip"]] == [(2, 3), (2,)]
    x, t = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))
    out = net.forward(data=x, target=t)
    W, b = net.params["ip"][0].data, net.params["ip"][1].data
    expected = ((x @ W.T + b - t) ** 2).sum() / 8
    assert set(out) == {"loss"} and float(out["loss"]) == pytest.approx(expected, rel=1e-12)
    assert net.loss == pytest.approx(expected, rel=1e-12)
    assert net.forward_backward() == pytest.approx(expected, rel=1e-12)
    assert set(net.backward()) == {"data", "target"}


def test_forward_and_backward_between_named_layers():
    net = _float64(linear_net_text())
    x, t = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))
    net.blobs["data"].data[...] = x
    net.blobs["target"].data[...] = t
    net.forward(end="ip")
    assert not net.blobs["loss"].data.any()
    net.forward(start="loss")
    assert float(net.blobs["loss"].data) > 0
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        net.forward(start="nope")


def test_legacy_input_fields_become_an_input_layer():
    net = engine.Net('input: "data" input_shape { dim: 2 dim: 5 }\n' + _ip("ip", "data", "ip"))
    assert net.layers[0].type_name == "Input"
    assert net.inputs == ["data"] and net.blobs["data"].shape == (2, 5)


def test_test_net_shares_weights_with_the_train_net():
    text = linear_net_text()
    solver = solver_for(text, test_iter=[1], test_interval=10, test_initialization=False)
    test_net = solver.test_nets[0]
    assert test_net.params["ip"][0] is solver.net.params["ip"][0]
    assert test_net.params["ip"][1] is solver.net.params["ip"][1]


def test_outputs_are_sorted_by_name_as_caffe_lists_them():
    text = "\n".join([INPUT.format(extra_tops="", extra_shapes=""),
                      _ip("zeta", "data", "zeta"), _ip("alpha", "data", "alpha"), _ip("mid", "data", "mid")])
    assert engine.Net(text).outputs == ["alpha", "mid", "zeta"]


def test_a_branch_no_loss_depends_on_runs_no_backward():
    text = "\n".join([
        INPUT.format(extra_tops='top: "target"', extra_shapes="shape { dim: 4 dim: 2 }"),
        _ip("ip", "data", "ip"),
        _ip("side", "data", "side"),       # an output nobody trains
        'layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }'])
    net = _float64(text)
    assert net.layer_need_backward[net.layer_index("ip")]
    assert not net.layer_need_backward[net.layer_index("side")]
    net.forward(data=RNG.normal(size=(4, 3)), target=RNG.normal(size=(4, 2)))
    net.backward()
    assert net.params["ip"][0].diff.any()
    assert not net.params["side"][0].diff.any() and not net.params["side"][1].diff.any()
    assert "side" in net.outputs and "loss" in net.outputs


SHARED_TWO = "\n".join([
    INPUT.format(extra_tops='top: "target"', extra_shapes="shape { dim: 4 dim: 2 }"),
    _ip("a", "data", "a", extra='param {{ name: "w" {first} }} param {{ name: "b" }}'),
    _ip("b", "data", "b", extra='param {{ name: "w" {second} }} param {{ name: "b" }}'),
    'layer { name: "la" type: "EuclideanLoss" bottom: "a" bottom: "target" top: "la" }',
    'layer { name: "lb" type: "EuclideanLoss" bottom: "b" bottom: "target" top: "lb" }'])


def _shared(first="", second=""):
    return SHARED_TWO.replace("{first}", first).replace("{second}", second).replace("{{", "{").replace("}}", "}")


def test_a_later_layer_can_set_a_shared_params_lr_mult():
    """Caffe: the first layer that sets lr_mult/decay_mult of a shared param sets it for every user."""
    solver = solver_for(_shared(second="lr_mult: 0 decay_mult: 3"), base_lr=0.1)
    net = solver.net
    assert net.lr_mults == [0.0, 1.0] and net.decay_mults == [3.0, 1.0]
    net.blobs["data"].data[...] = RNG.normal(size=(4, 3))
    net.blobs["target"].data[...] = RNG.normal(size=(4, 2))
    before = [b.data.copy() for b in net.learnable_params]
    solver.step(2)
    assert numpy.array_equal(before[0], net.learnable_params[0].data)      # frozen by layer b
    assert not numpy.array_equal(before[1], net.learnable_params[1].data)


@pytest.mark.parametrize("field", ["lr_mult", "decay_mult"])
def test_shared_param_multiplier_mismatch_is_an_error(field):
    with pytest.raises(engine.NetDefinitionError, match=f"shared parameter 'w' has {field} 2"):
        engine.Net(_shared(first=f"{field}: 1", second=f"{field}: 2"))


def test_propagate_down_false_stops_the_gradient_at_that_bottom():
    text = "\n".join([
        INPUT.format(extra_tops='top: "target"', extra_shapes="shape { dim: 4 dim: 2 }"),
        _ip("ip1", "data", "h", 3),
        'layer { name: "act" type: "TanH" bottom: "h" top: "r" propagate_down: false }',
        _ip("ip2", "r", "out", 2),
        'layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "target" top: "loss" }'])
    net = _float64(text)
    act = net.layer_index("act")
    assert net.bottom_need_backward[act] == [False]
    assert net.bottom_need_backward[net.layer_index("ip2")] == [True]   # as in Caffe: 'r' still gets δ
    net.forward(data=RNG.normal(size=(4, 3)), target=RNG.normal(size=(4, 2)))
    net.backward()
    W2 = net.params["ip2"][0].data
    delta = (net.blobs["out"].data - net.blobs["target"].data) / 4
    numpy.testing.assert_allclose(net.blobs["r"].diff, delta @ W2, rtol=1e-12)
    assert not net.blobs["h"].diff.any()
    assert not net.params["ip1"][0].diff.any()
    assert not net.layer_need_backward[net.layer_index("ip1")]         # pruned, as Caffe does


def test_level_and_stage_rules():
    text = "\n".join([
        INPUT.format(extra_tops="", extra_shapes=""),
        _ip("deploy_only", "data", "a", extra='include { stage: "deploy" }'),
        _ip("not_deploy", "data", "b", extra='exclude { stage: "deploy" }'),
        _ip("level2", "data", "c", extra="include { min_level: 2 }"),
        _ip("low", "data", "d", extra="include { max_level: 0 }")])

    def computing(**kwargs):
        return [layer.name for layer in engine.Net(text, **kwargs).layers if layer.type_name != "Split"]
    assert computing() == ["input", "not_deploy", "low"]
    assert computing(stages=["deploy"]) == ["input", "deploy_only", "low"]
    assert computing(level=2) == ["input", "not_deploy", "level2"]
