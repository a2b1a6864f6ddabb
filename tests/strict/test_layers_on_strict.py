"""Every layer's forward and backward on the strict stand-in equals numpy's, bit for bit."""
import numpy
import pytest

from engine import backend, rng
from engine.layer import supported_types
from tests.engine.helpers import forward_backward_ramp, make_layer

R = numpy.random.default_rng(7)


def normal(*shape):
    return R.normal(size=shape).astype(numpy.float32)


def labels(n, classes):
    return (numpy.arange(n) % classes).astype(numpy.float32)


def probabilities(n, classes):
    p = numpy.abs(normal(n, classes)) + 0.1
    return (p / p.sum(axis=1, keepdims=True)).astype(numpy.float32)


CONT = numpy.array([[0, 0], [1, 0], [1, 1]], numpy.float32)  # sequence starts (0) and continuations (1)
FILL = 'weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.3 }'

#: (Caffe type, prototxt body, bottoms, bottoms that take a gradient)
CASES = [
    ("AbsVal", "", [normal(4, 5)], [0]),
    ("Accuracy", "", [normal(6, 4), labels(6, 4)], []),
    ("ArgMax", "argmax_param { top_k: 2 out_max_val: true }", [normal(3, 5)], []),
    ("ArgMax", "argmax_param { top_k: 1 axis: 1 }", [normal(2, 4, 3)], []),
    ("BNLL", "", [normal(4, 5)], [0]),
    ("Accuracy", "accuracy_param { top_k: 2 ignore_label: 1 }", [normal(6, 4), labels(6, 4)], []),
    ("BatchNorm", "", [normal(4, 3, 2, 2)], [0]),
    ("BatchNorm", "batch_norm_param { use_global_stats: true }", [normal(4, 3, 2, 2)], [0]),
    ("BatchReindex", "", [normal(4, 3), numpy.array([3, 0, 3], numpy.float32)], [0]),
    ("Bias", "bias_param { axis: 1 num_axes: 1 filler { type: 'gaussian' std: 0.5 } }", [normal(2, 3, 4)], [0]),
    ("Bias", "", [normal(2, 3, 4), normal(3)], [0, 1]),
    ("Clip", "clip_param { min: -0.5 max: 0.7 }", [normal(4, 5)], [0]),
    ("Concat", "concat_param { axis: 1 }", [normal(2, 3, 4), normal(2, 2, 4)], [0, 1]),
    ("ContrastiveLoss", "contrastive_loss_param { margin: 2.0 }", [normal(4, 3), normal(4, 3), labels(4, 2)],
     [0, 1]),
    ("ContrastiveLoss", "contrastive_loss_param { margin: 2.0 legacy_version: true }",
     [normal(4, 3), normal(4, 3), labels(4, 2)], [0, 1]),
    ("Convolution", f"convolution_param {{ num_output: 4 kernel_size: 3 pad: 1 stride: 2 group: 1 {FILL} }}",
     [normal(2, 3, 6, 6)], [0]),
    ("Convolution", f"convolution_param {{ num_output: 4 kernel_size: 3 group: 2 {FILL} }}",
     [normal(2, 4, 5, 5)], [0]),
    ("Crop", "crop_param { axis: 2 offset: 1 }", [normal(2, 3, 6, 6), normal(2, 3, 4, 4)], [0]),
    ("Deconvolution", f"convolution_param {{ num_output: 2 kernel_size: 3 stride: 2 {FILL} }}",
     [normal(2, 3, 4, 4)], [0]),
    ("Dropout", "dropout_param { dropout_ratio: 0.4 }", [normal(4, 5)], [0]),
    ("Eltwise", "eltwise_param { operation: SUM coeff: 0.5 coeff: -2 }", [normal(3, 4), normal(3, 4)], [0, 1]),
    ("Eltwise", "eltwise_param { operation: PROD }", [normal(3, 4), normal(3, 4)], [0, 1]),
    ("Eltwise", "eltwise_param { operation: MAX }", [normal(3, 4), normal(3, 4)], [0, 1]),
    ("Embed", f"embed_param {{ num_output: 3 input_dim: 5 {FILL} }}", [labels(6, 5)], []),
    ("ELU", "elu_param { alpha: 0.7 }", [normal(4, 5)], [0]),
    ("Exp", "exp_param { base: 2 scale: 0.5 shift: 0.1 }", [normal(4, 5)], [0]),
    ("EuclideanLoss", "", [normal(4, 3), normal(4, 3)], [0, 1]),
    ("Filter", "", [normal(4, 3), numpy.array([1, 0, 2, 0], numpy.float32)], [0]),
    ("Flatten", "", [normal(2, 3, 4)], [0]),
    ("HingeLoss", "", [normal(6, 4), labels(6, 4)], [0]),
    ("HingeLoss", "hinge_loss_param { norm: L2 }", [normal(6, 4), labels(6, 4)], [0]),
    ("Im2col", "convolution_param { kernel_size: 2 stride: 2 pad: 1 }", [normal(2, 3, 5, 4)], [0]),
    ("InfogainLoss", "", [probabilities(6, 4), labels(6, 4), numpy.abs(normal(4, 4))], [0]),
    ("InnerProduct", f"inner_product_param {{ num_output: 3 {FILL} }}", [normal(4, 5)], [0]),
    ("InnerProduct", f"inner_product_param {{ num_output: 3 transpose: true {FILL} }}", [normal(4, 2, 3)], [0]),
    ("Log", "log_param { scale: 0.5 shift: 3 }", [numpy.abs(normal(4, 5)) + 0.5], [0]),
    ("LSTM", f"recurrent_param {{ num_output: 4 {FILL} }}", [normal(3, 2, 3), CONT], [0]),
    ("LSTMUnit", "", [normal(1, 2, 4), normal(1, 2, 16), numpy.array([[1, 0]], numpy.float32)], [0, 1]),
    ("LRN", "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 }", [normal(2, 5, 3, 3)], [0]),
    ("LRN", "lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL }", [normal(2, 2, 5, 5)], [0]),
    ("MVN", "mvn_param { normalize_variance: true across_channels: false }", [normal(2, 3, 4, 4)], [0]),
    ("MVN", "mvn_param { normalize_variance: false across_channels: true }", [normal(2, 3, 2, 2)], [0]),
    ("MultinomialLogisticLoss", "", [probabilities(6, 4), labels(6, 4)], [0]),
    ("Parameter", "parameter_param { shape { dim: 2 dim: 3 } }", [], []),
    ("Pooling", "pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 }", [normal(2, 3, 7, 6)], [0]),
    ("Pooling", "pooling_param { pool: AVE kernel_size: 3 stride: 2 }", [normal(2, 3, 7, 6)], [0]),
    ("Pooling", "pooling_param { pool: MAX global_pooling: true }", [normal(2, 3, 4, 4)], [0]),
    ("Power", "power_param { power: 2 scale: 0.5 shift: 1 }", [normal(4, 5)], [0]),
    ("PReLU", "prelu_param { filler { type: 'gaussian' std: 0.5 } }", [normal(2, 3, 4)], [0]),
    ("PReLU", "prelu_param { channel_shared: true }", [normal(2, 3, 4)], [0]),
    ("Reduction", "reduction_param { operation: SUMSQ axis: 1 coeff: 0.5 }", [normal(2, 3, 4)], [0]),
    ("Reduction", "reduction_param { operation: ASUM }", [normal(2, 3)], [0]),
    ("Reduction", "reduction_param { operation: MEAN axis: 0 }", [normal(2, 3)], [0]),
    ("RNN", f"recurrent_param {{ num_output: 4 {FILL} }}", [normal(3, 2, 3), CONT, normal(2, 2)], [0, 2]),
    ("ReLU", "relu_param { negative_slope: 0.1 }", [normal(4, 5)], [0]),
    ("Reshape", "reshape_param { shape { dim: 0 dim: -1 } }", [normal(2, 3, 4)], [0]),
    ("Scale", "scale_param { axis: 1 num_axes: 1 bias_term: true filler { type: 'gaussian' std: 0.5 } "
              "bias_filler { type: 'gaussian' std: 0.5 } }", [normal(2, 3, 4)], [0]),
    ("Scale", "", [normal(2, 3, 4), normal(3, 4)], [0, 1]),
    ("Sigmoid", "", [normal(4, 5)], [0]),
    ("SigmoidCrossEntropyLoss", "", [normal(6, 4), numpy.abs(normal(6, 4)) % 1], [0]),
    ("SigmoidCrossEntropyLoss", "loss_param { ignore_label: 1 }", [normal(6, 4), labels(24, 3).reshape(6, 4)], [0]),
    ("Silence", "", [normal(2, 3), normal(4)], [0, 1]),
    ("Slice", "slice_param { axis: 1 slice_point: 2 }", [normal(2, 6, 3)], [0]),
    ("Softmax", "softmax_param { axis: 1 }", [normal(2, 4, 3)], [0]),
    ("SPP", "spp_param { pyramid_height: 3 pool: MAX }", [normal(2, 2, 9, 8)], [0]),
    ("SoftmaxWithLoss", "", [normal(6, 4), labels(6, 4)], [0]),
    ("SoftmaxWithLoss", "loss_param { ignore_label: 1 normalization: VALID }", [normal(6, 4), labels(6, 4)], [0]),
    ("Split", "", [normal(3, 4)], [0]),
    ("Swish", "swish_param { beta: 1.5 }", [normal(4, 5)], [0]),
    ("TanH", "", [normal(4, 5)], [0]),
    ("Threshold", "threshold_param { threshold: 0.2 }", [normal(4, 5)], []),
    ("Tile", "tile_param { axis: 1 tiles: 3 }", [normal(2, 3, 2)], [0]),
]
#: data layers and Input: run in the net and solver tests, not alone
# data layers (their own strict tests) and Python layers (CPU only by design: refused on a GPU)
NOT_HERE = {"BuiltinData", "Data", "DummyData", "HDF5Data", "ImageData", "Input", "MemoryData", "WindowData",
            "Python",
            "HDF5Output"}  # writes a file: its strict test is in tests/engine/test_layers_zoo_d.py
TOPS = {"Slice": 2, "Split": 2, "Silence": 0, "LSTMUnit": 2}


def _run(kind, body, bottoms, grads, device):
    spec = f'type: "{kind}" {body}'
    rng.set_seed(3)
    layer, bottom, top = make_layer(spec, bottoms, num_tops=TOPS.get(kind, 1), dtype=numpy.float32)
    return layer, bottom, top


def _to_strict(layer, bottom, top, weights):
    layer.device = "gpu"
    for blob in bottom + top + layer.blobs:
        blob.to("gpu")
    for blob, values in zip(layer.blobs, weights):
        blob.data[...] = backend.to_device(values, "gpu")


def _forward_backward(layer, bottom, top, grads, device):
    rng.set_seed(5)
    forward_backward_ramp(layer, bottom, top, grads, device)


def _results(layer, bottom, top, grads):
    arrays = [("top data", b.data) for b in top] + [(f"bottom {k} diff", bottom[k].diff) for k in grads]
    arrays += [(f"param {j} diff", b.diff) for j, b in enumerate(layer.blobs)]
    arrays += [(f"param {j} data", b.data) for j, b in enumerate(layer.blobs)]
    return [(name, backend.to_numpy(a)) for name, a in arrays]


@pytest.mark.parametrize("kind, body, bottoms, grads", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_layer_on_strict_equals_numpy(strict, kind, body, bottoms, grads):
    cpu = _run(kind, body, bottoms, grads, "cpu")
    weights = [b.data.copy() for b in cpu[0].blobs]
    _forward_backward(*cpu, grads, "cpu")
    dev = _run(kind, body, bottoms, grads, "gpu")
    _to_strict(*dev, weights)
    _forward_backward(*dev, grads, "gpu")
    assert all(type(b.data).__module__ == "engine.strict_device" for b in dev[2])
    for (name, mine), (_, theirs) in zip(_results(dev[0], dev[1], dev[2], grads),
                                         _results(cpu[0], cpu[1], cpu[2], grads)):
        numpy.testing.assert_array_equal(mine, theirs, err_msg=f"{kind}: {name}")


@pytest.mark.parametrize("kind", sorted(set(supported_types()) - NOT_HERE))
def test_every_compute_layer_has_a_case(kind):
    assert kind in {c[0] for c in CASES}, f"{kind}: no strict-device case yet (add one to CASES)"
