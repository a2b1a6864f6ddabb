"""Caffe's net rules that real files rely on: memory like Caffe's (diffs only when
a backward needs them), reshape on forward, the automatic top of a loss layer,
Solve's extra forward pass, the in-place rule, a layer's own phase."""
from __future__ import annotations

import csv

import numpy
import pytest

import engine
from tests.conftest import DATA

RNG = numpy.random.default_rng(11)
INPUT = ('layer { name: "input" type: "Input" top: "data" top: "label" '
         'input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } } }\n')
IP = 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 5 } }\n'


def _all_blobs(net):
    return list(net.blobs.values()) + [blob for blobs in net.params.values() for blob in blobs]


# ---------------------------------------------------------------------------
# memory like Caffe's
# ---------------------------------------------------------------------------
def test_a_forward_only_net_holds_no_diffs():
    net = engine.Net(INPUT + IP + 'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }', engine.TEST)
    net.forward(data=RNG.normal(size=(4, 3)))
    assert not any(blob.has_diff for blob in _all_blobs(net))
    diff = net.blobs["ip"].diff   # pycaffe users still get a diff: zeros, allocated now
    assert diff.shape == (4, 5) and not diff.any() and net.blobs["ip"].has_diff


def test_backward_allocates_the_diffs_it_needs():
    net = engine.Net(INPUT + IP + 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" '
                     'top: "loss" }', engine.TRAIN)
    net.forward(data=RNG.normal(size=(4, 3)), label=[0, 1, 2, 3])
    assert not net.params["ip"][0].has_diff
    net.backward()
    assert net.params["ip"][0].has_diff and net.params["ip"][0].diff.any()


def test_a_blob_allocates_its_diff_once_and_a_reshape_drops_it():
    blob = engine.Blob((2, 3))
    assert not blob.has_diff
    blob.diff[...] = 1.0
    assert blob.diff.sum() == 6.0
    blob.clear_diff()
    blob.diff_is_clear = False   # a write happened: the lazy clear must zero it on the next read
    blob.clear_diff()
    assert blob.diff.sum() == 0.0
    blob.reshape(4, 1)
    assert not blob.has_diff and blob.diff.shape == (4, 1)


# ---------------------------------------------------------------------------
# reshape on forward (pycaffe's blobs['data'].reshape(...) then forward())
# ---------------------------------------------------------------------------
def test_forward_after_an_input_is_reshaped_reshapes_the_net():
    net = engine.Net(INPUT + IP + 'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }',
                     engine.TEST, dtype=numpy.float64)
    net.blobs["data"].reshape(7, 3)
    x = RNG.normal(size=(7, 3))
    net.blobs["data"].data[...] = x
    out = net.forward()
    assert out["prob"].shape == (7, 5)
    W, b = net.params["ip"][0].data, net.params["ip"][1].data
    logits = numpy.array([[sum(x[n, k] * W[j, k] for k in range(3)) + b[j] for j in range(5)] for n in range(7)])
    expected = numpy.exp(logits) / numpy.exp(logits).sum(axis=1, keepdims=True)
    numpy.testing.assert_allclose(out["prob"], expected, rtol=1e-12)


def test_a_shape_error_on_the_reshaping_forward_names_the_layer():
    text = ('layer { name: "input" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 } } }\n'
            'layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }')
    net = engine.Net(text, engine.TEST)
    net.blobs["a"].reshape(5, 3)
    with pytest.raises(engine.ShapeError, match="layer 'sum'"):
        net.forward()


# ---------------------------------------------------------------------------
# a loss layer written without a top
# ---------------------------------------------------------------------------
def test_a_loss_layer_without_a_top_gets_one_and_its_loss_counts():
    text = INPUT + IP + 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" }'
    net = engine.Net(text, engine.TRAIN, dtype=numpy.float64)
    assert net.top_names[net.layer_index("loss")] == ["(automatic)"]
    assert "(automatic)" not in net.outputs           # as Caffe: not a net output
    x, label = RNG.normal(size=(4, 3)), numpy.array([0, 4, 2, 1])
    net.forward(data=x, label=label)
    logits = net.blobs["ip"].data
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_prob = shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))
    assert net.loss == pytest.approx(-numpy.mean([log_prob[n, label[n]] for n in range(4)]), rel=1e-12)
    net.backward()
    expected = numpy.exp(log_prob)
    expected[numpy.arange(4), label] -= 1
    numpy.testing.assert_allclose(net.blobs["ip"].diff, expected / 4, rtol=1e-10)


# ---------------------------------------------------------------------------
# Solve's end
# ---------------------------------------------------------------------------
def test_solve_ends_with_caffes_extra_forward_pass():
    folder = DATA / "caffe_reference" / "mlp_sgd"
    with open(folder / "losses.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    import h5py
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    with h5py.File(folder / "snapshots" / "mlp_sgd_iter_0.caffemodel.h5", "r") as handle:
        for layer in ("ip1", "ip2", "ip3"):
            for i in (0, 1):
                solver.net.params[layer][i].data[...] = numpy.array(handle["data"][layer][str(i)])
    solver.solve()                                     # max_iter 20, display 1: the extra pass runs
    assert solver.iter == 20
    assert rows[20]["iter"] == "20" and rows[20]["lr"] == "-"
    assert solver.net.loss == pytest.approx(float(rows[20]["loss_full_precision"]), rel=1e-5)
    # average_loss is 1: Caffe's logged (smoothed) loss after Solve is that pass's loss
    assert solver.smoothed_loss == pytest.approx(float(rows[20]["loss_log"]), rel=1e-5)


# ---------------------------------------------------------------------------
# in place, where Caffe allows it
# ---------------------------------------------------------------------------
def _one_layer(layer: str) -> str:
    return 'layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }\n' + layer


@pytest.mark.parametrize("layer, reason", [
    ('layer { name: "abs" type: "AbsVal" bottom: "data" top: "data" }', "Caffe refuses it"),
    ('layer { name: "flat" type: "Flatten" bottom: "data" top: "data" }', "Caffe refuses it"),
    ('layer { name: "shape" type: "Reshape" bottom: "data" top: "data" reshape_param { shape { dim: 3 dim: 2 } } }',
     "Caffe refuses it"),
    ('layer { name: "ip" type: "InnerProduct" bottom: "data" top: "data" inner_product_param { num_output: 4 } }',
     "give the top another name"),
])
def test_in_place_is_refused_where_caffe_refuses_or_would_corrupt(layer, reason):
    with pytest.raises(engine.NetDefinitionError, match="cannot be computed in place") as info:
        engine.Net(_one_layer(layer), engine.TEST)
    assert reason in str(info.value)


@pytest.mark.parametrize("layer", [
    'layer { name: "relu" type: "ReLU" bottom: "data" top: "data" }',
    'layer { name: "drop" type: "Dropout" bottom: "data" top: "data" }',
    'layer { name: "sig" type: "Sigmoid" bottom: "data" top: "data" }',
    'layer { name: "scale" type: "Scale" bottom: "data" top: "data" }',
])
def test_in_place_is_allowed_where_caffe_allows_it(layer):
    net = engine.Net(_one_layer(layer), engine.TEST)
    assert net.tops_of(1)[0] is net.bottoms_of(1)[0]


def test_a_layers_own_phase_field_wins_over_the_nets():
    """Caffe's Net::Init sets a layer's phase only when the layer has none: a Dropout
    marked `phase: TEST` in a TRAIN net passes its input through."""
    text = _one_layer('layer { name: "drop" type: "Dropout" bottom: "data" top: "out" phase: TEST '
                      'dropout_param { dropout_ratio: 0.5 } }')
    net = engine.Net(text, engine.TRAIN, dtype=numpy.float64)
    x = RNG.normal(size=(2, 3))
    numpy.testing.assert_array_equal(net.forward(data=x)["out"], x)


def test_a_permissive_shared_parameter_of_another_shape_is_refused_at_build_time():
    """Caffe's PERMISSIVE sharing lets two layers read one memory under two shapes of the
    same count; the engine refuses it with a clear message before anything runs."""
    import engine
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 6 } } }
    layer { name: "a" type: "InnerProduct" bottom: "x" top: "a" param { name: "w" }
            inner_product_param { num_output: 4 bias_term: false } }
    layer { name: "b" type: "Embed" bottom: "x" top: "b" param { name: "w" share_mode: PERMISSIVE }
            embed_param { num_output: 4 input_dim: 6 bias_term: false } }
    """
    with pytest.raises(engine.NetDefinitionError, match=r"layer 'b': shared parameter 'w' has shape \(6, 4\).*"
                                                        r"PERMISSIVE"):
        engine.Net(text, engine.TRAIN)
