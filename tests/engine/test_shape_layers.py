"""Flatten, Reshape, Concat and Eltwise: shapes by Caffe's rules, values, numeric gradients."""
import numpy
import pytest

import engine
from engine.errors import NetDefinitionError, ShapeError
from engine.gradcheck import check_layer
from tests.engine.helpers import make_layer, run_forward

RNG = numpy.random.default_rng(3)


# -- Flatten ---------------------------------------------------------------------
@pytest.mark.parametrize("params,expected", [
    ("", (2, 60)),
    ("axis: 2", (2, 3, 20)),
    ("axis: 1 end_axis: 2", (2, 12, 5)),
    ("axis: -3 end_axis: -2", (2, 12, 5)),
    ("axis: 0", (120,)),
    ("axis: 3", (2, 3, 4, 5)),
])
def test_flatten_shapes_and_values(params, expected):
    x = RNG.normal(size=(2, 3, 4, 5))
    spec = f'type: "Flatten" flatten_param {{ {params} }}'
    _, _, top = run_forward(spec, [x])
    assert top[0].shape == expected
    numpy.testing.assert_array_equal(top[0].data.ravel(), x.ravel())  # C order is kept
    assert check_layer(spec, [x], max_elements=30).passed


def test_flatten_errors():
    with pytest.raises(ShapeError, match="layer 'Flatten'"):
        make_layer('type: "Flatten" flatten_param { axis: 2 end_axis: 1 }', [numpy.zeros((2, 3, 4))])


# -- Reshape ---------------------------------------------------------------------
@pytest.mark.parametrize("params,shape,expected", [
    ("shape { dim: 0 dim: -1 }", (2, 3, 4, 5), (2, 60)),
    ("shape { dim: 0 dim: 3 dim: 2 dim: -1 }", (2, 3, 4, 5), (2, 3, 2, 10)),
    ("shape { dim: -1 dim: 5 }", (2, 3, 4, 5), (24, 5)),
    ("shape { dim: 2 dim: 2 } axis: 1 num_axes: 1", (2, 4, 3, 5), (2, 2, 2, 3, 5)),
    ("shape { dim: 12 } axis: 1 num_axes: 2", (2, 3, 4, 5), (2, 12, 5)),
    ("shape { dim: 1 } axis: 0 num_axes: 0", (2, 3, 4, 5), (1, 2, 3, 4, 5)),   # a leading axis
    ("shape { dim: 1 } axis: -1 num_axes: 0", (2, 3, 4, 5), (2, 3, 4, 5, 1)),  # a trailing axis
    ("shape { dim: 0 dim: -1 } axis: 2", (2, 3, 4, 5), (2, 3, 4, 5)),          # 0 copies axis 2
    ("shape { dim: 0 dim: 0 dim: 0 dim: 0 }", (2, 3, 4, 5), (2, 3, 4, 5)),
])
def test_reshape_dims(params, shape, expected):
    x = RNG.normal(size=shape)
    spec = f'type: "Reshape" reshape_param {{ {params} }}'
    _, _, top = run_forward(spec, [x])
    assert top[0].shape == expected
    numpy.testing.assert_array_equal(top[0].data.ravel(), x.ravel())
    assert check_layer(spec, [x], max_elements=30).passed


@pytest.mark.parametrize("params,match", [
    ("shape { dim: -1 dim: -1 }", "more than one -1"),
    ("shape { dim: 7 dim: -1 }", "not divisible"),
    ("shape { dim: 5 dim: 5 }", "elements"),
    ("shape { dim: 0 dim: 0 dim: 0 dim: 0 dim: 0 }", "no axis"),
    ("shape { dim: 2 } axis: 5", "out of range"),
])
def test_reshape_errors(params, match):
    with pytest.raises(ShapeError, match=match):
        make_layer(f'type: "Reshape" reshape_param {{ {params} }}', [numpy.zeros((2, 3, 4, 5))])


# -- Concat ----------------------------------------------------------------------
@pytest.mark.parametrize("params,axis", [("", 1), ("axis: 0", 0), ("axis: -1", 3), ("concat_dim: 2", 2)])
def test_concat_values_and_gradients(params, axis):
    shapes = []
    for extra in (1, 2, 3):
        shape = [2, 3, 4, 2]
        shape[axis] = extra
        shapes.append(tuple(shape))
    bottoms = [RNG.normal(size=s) for s in shapes]
    spec = (f'type: "Concat" bottom: "a" bottom: "b" bottom: "c" top: "t" '
            f'concat_param {{ {params} }}')
    _, _, top = run_forward(spec, bottoms)
    numpy.testing.assert_array_equal(top[0].data, numpy.concatenate(bottoms, axis=axis))
    result = check_layer(spec, bottoms, max_elements=30)
    assert result.passed and len(result.blobs) == 3


def test_concat_backward_slices_the_diff():
    a, b = numpy.zeros((1, 2, 2, 2)), numpy.zeros((1, 1, 2, 2))
    layer, bottom, top = make_layer('type: "Concat" bottom: "a" bottom: "b" top: "t"', [a, b])
    layer.forward(bottom, top)
    top[0].diff[...] = numpy.arange(12.0).reshape(1, 3, 2, 2)
    layer.backward(top, [True, True], bottom)
    numpy.testing.assert_array_equal(bottom[0].diff.ravel(), numpy.arange(8.0))
    numpy.testing.assert_array_equal(bottom[1].diff.ravel(), numpy.arange(8.0, 12.0))


@pytest.mark.parametrize("spec,shapes,error,match", [
    ('concat_param { axis: 1 concat_dim: 1 }', [(1, 2), (1, 2)], NetDefinitionError, "not both"),
    ('', [(1, 2, 3), (2, 2, 3)], ShapeError, "differ outside"),
    ('concat_param { axis: 3 }', [(1, 2), (1, 2)], ShapeError, "out of range"),
])
def test_concat_errors(spec, shapes, error, match):
    with pytest.raises(error, match=match):
        make_layer(f'type: "Concat" bottom: "a" bottom: "b" top: "t" {spec}',
                   [numpy.zeros(s) for s in shapes])


# -- Eltwise ---------------------------------------------------------------------
def _eltwise(params, n=3):
    names = " ".join(f'bottom: "b{k}"' for k in range(n))
    return f'type: "Eltwise" {names} top: "t" eltwise_param {{ {params} }}'


def test_eltwise_sum_with_coefficients():
    bottoms = [RNG.normal(size=(2, 3, 2)) for _ in range(3)]
    spec = _eltwise("operation: SUM coeff: 1 coeff: -0.5 coeff: 2")
    _, _, top = run_forward(spec, bottoms)
    numpy.testing.assert_allclose(top[0].data, bottoms[0] - 0.5 * bottoms[1] + 2 * bottoms[2], rtol=1e-12)
    assert check_layer(spec, bottoms).passed
    _, _, top = run_forward(_eltwise("", 2), bottoms[:2])  # SUM, coefficients 1 by default
    numpy.testing.assert_allclose(top[0].data, bottoms[0] + bottoms[1], rtol=1e-12)


@pytest.mark.parametrize("stable", ["true", "false"])
def test_eltwise_prod(stable):
    bottoms = [RNG.uniform(0.5, 2.0, size=(2, 3)) * RNG.choice([-1, 1], size=(2, 3)) for _ in range(3)]
    spec = _eltwise(f"operation: PROD stable_prod_grad: {stable}")
    _, _, top = run_forward(spec, bottoms)
    numpy.testing.assert_allclose(top[0].data, bottoms[0] * bottoms[1] * bottoms[2], rtol=1e-12)
    result = check_layer(spec, bottoms)
    assert result.passed, result.summary()


def test_eltwise_max_values_gradients_and_caffes_tie_rule():
    values = RNG.permutation(3 * 12).reshape(3, 2, 6) * 0.01
    bottoms = list(values)
    spec = _eltwise("operation: MAX")
    _, _, top = run_forward(spec, bottoms)
    numpy.testing.assert_array_equal(top[0].data, values.max(axis=0))
    result = check_layer(spec, bottoms)
    assert result.passed and all(b.skipped == 0 for b in result.blobs), result.summary()
    # ties: bottoms 0 and 1 -> bottom 1 (Caffe's `a > b ? a : b`); later bottoms need a strict >
    same = numpy.ones((1, 2))
    layer, bottom, top = make_layer(spec, [same, same, same])
    layer.forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.backward(top, [True, True, True], bottom)
    assert [float(b.diff.sum()) for b in bottom] == [0.0, 2.0, 0.0]


@pytest.mark.parametrize("params,n,error,match", [
    ("operation: PROD coeff: 1 coeff: 2", 2, NetDefinitionError, "only for operation: SUM"),
    ("coeff: 1", 2, NetDefinitionError, "one coeff per bottom"),
    ("", 1, NetDefinitionError, "at least two"),
])
def test_eltwise_errors(params, n, error, match):
    with pytest.raises(error, match=match):
        make_layer(_eltwise(params, n), [numpy.zeros((2, 2))] * n)


def test_eltwise_shape_mismatch():
    with pytest.raises(ShapeError, match="one shape"):
        make_layer(_eltwise("", 2), [numpy.zeros((2, 2)), numpy.zeros((2, 3))])


# -- in a net ----------------------------------------------------------------------
def test_a_net_with_every_shape_layer_has_right_gradients():
    # no blob feeds two layers: check_net perturbs a blob's data, which Split tops share
    text = """
    name: "shapes"
    force_backward: true
    layer { name: "in" type: "Input" top: "x" top: "z" top: "e"
            input_param { shape { dim: 2 dim: 2 dim: 5 dim: 5 } shape { dim: 2 dim: 1 dim: 4 dim: 4 }
                          shape { dim: 2 dim: 5 dim: 3 dim: 3 } } }
    layer { name: "conv" type: "Convolution" bottom: "x" top: "c"
            convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.3 } } }
    layer { name: "pool" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
    layer { name: "conv_z" type: "Convolution" bottom: "z" top: "d"
            convolution_param { num_output: 2 kernel_size: 2 stride: 1 weight_filler { type: "gaussian" std: 0.3 } } }
    layer { name: "cat" type: "Concat" bottom: "p" bottom: "d" top: "pd" }
    layer { name: "sum" type: "Eltwise" bottom: "pd" bottom: "e" top: "s" eltwise_param { coeff: 1 coeff: 0.5 } }
    layer { name: "flat" type: "Flatten" bottom: "s" top: "f" }
    layer { name: "back" type: "Reshape" bottom: "f" top: "r" reshape_param { shape { dim: 0 dim: -1 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "r" top: "y"
            inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.3 } } }
    layer { name: "target" type: "DummyData" top: "t" dummy_data_param { shape { dim: 2 dim: 2 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" }
    """
    net = engine.Net(text, engine.TRAIN, dtype=numpy.float64)
    for name in ("x", "z", "e"):
        net.blobs[name].data[...] = RNG.normal(size=net.blobs[name].shape)
    net.forward()
    assert net.blobs["r"].shape == (2, 5 * 3 * 3)
    results = engine.check_net(net, max_elements=20)
    assert set(results) == {"conv", "pool", "conv_z", "cat", "sum", "flat", "back", "ip", "loss"}
    assert all(r.passed for r in results.values()), {k: r.summary() for k, r in results.items()}


# -- Bias and Scale ------------------------------------------------------------------
@pytest.mark.parametrize("params,operand_shape,view", [
    ("", (3,), (1, 3, 1, 1)),                               # axis 1, num_axes 1: one per channel
    ("axis: 1 num_axes: 2", (3, 4), (1, 3, 4, 1)),
    ("axis: 2 num_axes: -1", (4, 5), (1, 1, 4, 5)),
    ("axis: -1", (5,), (1, 1, 1, 5)),
    ("num_axes: 0", (), ()),                               # one scalar
])
def test_bias_and_scale_with_learned_operands(params, operand_shape, view):
    x = RNG.normal(size=(2, 3, 4, 5))
    spec = f'type: "Bias" bias_param {{ {params} filler {{ type: "gaussian" }} }}'
    layer, _, top = run_forward(spec, [x])
    b = layer.blobs[0].data
    assert b.shape == operand_shape
    numpy.testing.assert_allclose(top[0].data, x + b.reshape(view), rtol=1e-12)
    assert check_layer(spec, [x], max_elements=40).passed
    spec = (f'type: "Scale" scale_param {{ {params} filler {{ type: "gaussian" }} bias_term: true '
            f'bias_filler {{ type: "gaussian" }} }}')
    layer, _, top = run_forward(spec, [x])
    s, b = layer.blobs[0].data, layer.blobs[1].data
    assert s.shape == b.shape == operand_shape
    numpy.testing.assert_allclose(top[0].data, x * s.reshape(view) + b.reshape(view), rtol=1e-12)
    result = check_layer(spec, [x], max_elements=40)
    assert result.passed and len(result.blobs) == 3, result.summary()


def test_default_fillers_are_identity():
    x = RNG.normal(size=(2, 3, 2))
    _, _, top = run_forward('type: "Scale" scale_param { bias_term: true }', [x])
    numpy.testing.assert_array_equal(top[0].data, x)
    _, _, top = run_forward('type: "Bias"', [x])
    numpy.testing.assert_array_equal(top[0].data, x)


@pytest.mark.parametrize("kind", ["Bias", "Scale"])
def test_operand_from_a_second_bottom(kind):
    x, operand = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(3, 4))
    spec = f'type: "{kind}" bottom: "x" bottom: "y" top: "t"'
    layer, _, top = run_forward(spec, [x, operand])
    assert layer.blobs == []
    expected = x + operand if kind == "Bias" else x * operand
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    result = check_layer(spec, [x, operand])
    assert result.passed and len(result.blobs) == 2, result.summary()


def test_scale_in_place_keeps_the_input_for_backward():
    x = RNG.normal(size=(2, 3, 2))
    layer, bottom, top = make_layer('type: "Scale" scale_param { filler { type: "gaussian" } }', [x])
    blob = bottom[0]
    layer.reshape([blob], [blob])
    layer.forward([blob], [blob])  # in place
    s = layer.blobs[0].data.reshape(1, 3, 1)
    numpy.testing.assert_allclose(blob.data, x * s, rtol=1e-12)
    delta = RNG.normal(size=x.shape)
    blob.diff[...] = delta
    layer.blobs[0].diff_is_clear = True
    layer.backward([blob], [True], [blob])
    numpy.testing.assert_allclose(layer.blobs[0].diff, (delta * x).sum(axis=(0, 2)), rtol=1e-12)
    numpy.testing.assert_allclose(blob.diff, delta * s, rtol=1e-12)


def test_bias_shape_errors():
    with pytest.raises(ShapeError, match="layer 'Bias'"):
        make_layer('type: "Bias" bottom: "x" bottom: "y" top: "t"', [numpy.zeros((2, 3)), numpy.zeros((4,))])
    with pytest.raises(ShapeError, match="out of range"):
        make_layer('type: "Scale" scale_param { axis: 1 num_axes: 3 }', [numpy.zeros((2, 3))])


@pytest.mark.parametrize("layer", [
    'type: "Flatten" bottom: "x" top: "x"',
    'type: "Reshape" bottom: "x" top: "x" reshape_param { shape { dim: 0 dim: -1 } }',
    'type: "Concat" bottom: "x" top: "x"',
])
def test_shape_layers_refuse_to_run_in_place(layer):
    text = ('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 4 } } }\n'
            f'layer {{ name: "shaper" {layer} }}')
    with pytest.raises(NetDefinitionError, match="layer 'shaper' .*cannot be computed in place"):
        engine.Net(text, engine.TEST)
