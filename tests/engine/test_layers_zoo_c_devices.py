"""Zoo layers, part C, on the device: forward and backward on the GPU (cupy) and on the
strict stand-in (every implicit host<->device crossing raises) equal numpy's."""
import numpy
import pytest

from tests.engine.helpers import assert_layer_same_on_device

R = numpy.random.default_rng(31)


def normal(*shape):
    return R.normal(size=shape).astype(numpy.float32)


def labels(n, classes, ignore=None):
    values = (numpy.arange(n) % classes).astype(numpy.float32)
    if ignore is not None:
        values[::3] = ignore
    return values


FILL = 'weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.3 }'
SPATIAL = labels(2 * 3 * 2, 4, ignore=255).reshape(2, 1, 3, 2)

#: (Caffe type, prototxt body, bottoms, bottoms that take a gradient, tops)
CASES = [
    ("Power", "power_param { power: 3 scale: 0.5 shift: 0.2 }", [normal(4, 5)], [0], 1),
    ("Power", "power_param { power: 1 scale: 2 }", [normal(4, 5)], [0], 1),
    ("AbsVal", "", [normal(4, 5)], [0], 1),
    ("ELU", "elu_param { alpha: 0.5 }", [normal(4, 5)], [0], 1),
    ("PReLU", "", [normal(2, 3, 2, 2)], [0], 1),
    ("PReLU", "prelu_param { channel_shared: true }", [normal(2, 3, 4)], [0], 1),
    ("Exp", "exp_param { base: -1 scale: 0.5 shift: 1 }", [normal(4, 5)], [0], 1),
    ("Log", "log_param { base: 2 scale: 0.5 shift: 3 }", [numpy.abs(normal(4, 5)) + 0.5], [0], 1),
    ("BNLL", "", [normal(4, 5) * 10], [0], 1),
    ("Threshold", "threshold_param { threshold: 0.1 }", [normal(4, 5)], [], 1),
    ("Clip", "clip_param { min: -0.5 max: 0.5 }", [normal(4, 5)], [0], 1),
    ("Swish", "swish_param { beta: 1.5 }", [normal(4, 5)], [0], 1),
    ("Silence", "", [normal(4, 5), normal(2)], [0, 1], 0),
    ("ArgMax", "argmax_param { top_k: 2 out_max_val: true }", [normal(3, 2, 4)], [], 1),
    ("ArgMax", "argmax_param { top_k: 2 axis: 1 }", [normal(3, 4, 2)], [], 1),
    ("Tile", "tile_param { axis: 1 tiles: 3 }", [normal(2, 3, 2)], [0], 1),
    ("Reduction", "reduction_param { operation: ASUM axis: 1 coeff: 0.5 }", [normal(2, 3, 2)], [0], 1),
    ("Reduction", "reduction_param { operation: SUMSQ }", [normal(2, 3)], [0], 1),
    ("Reduction", "reduction_param { operation: MEAN axis: 2 }", [normal(2, 3, 4)], [0], 1),
    ("MVN", "", [normal(2, 3, 2, 2)], [0], 1),
    ("MVN", "mvn_param { across_channels: true normalize_variance: false }", [normal(2, 3, 2, 2)], [0], 1),
    ("Embed", f"embed_param {{ num_output: 3 input_dim: 5 {FILL} }}",
     [numpy.array([[0, 4], [4, 2]], numpy.float32)], [], 1),
    ("SoftmaxWithLoss", "loss_param { ignore_label: 255 normalization: FULL }", [normal(2, 4, 3, 2), SPATIAL],
     [0], 1),
    ("SoftmaxWithLoss", "loss_param { ignore_label: 255 }", [normal(2, 4, 3, 2), SPATIAL], [0], 2),
    ("Accuracy", "accuracy_param { top_k: 2 ignore_label: 255 }", [normal(2, 4, 3, 2), SPATIAL], [], 2),
    ("SigmoidCrossEntropyLoss", "loss_param { ignore_label: -1 normalization: VALID }",
     [normal(4, 3), numpy.where(normal(4, 3) > 1, -1, numpy.abs(normal(4, 3)) % 1).astype(numpy.float32)], [0], 1),
    ("ContrastiveLoss", "contrastive_loss_param { margin: 2 }",
     [normal(6, 3), normal(6, 3), labels(6, 2)], [0, 1], 1),
    ("ContrastiveLoss", "contrastive_loss_param { margin: 6 legacy_version: true }",
     [normal(6, 3), normal(6, 3), labels(6, 2)], [0, 1], 1),
    ("HingeLoss", "hinge_loss_param { norm: L2 }", [normal(6, 4), labels(6, 4)], [0], 1),
    ("InfogainLoss", "loss_param { ignore_label: 1 }", [normal(6, 4), labels(6, 4), numpy.abs(normal(4, 4))],
     [0], 1),
    ("MultinomialLogisticLoss", "", [numpy.abs(normal(6, 4)) + 0.1, labels(6, 4)], [0], 1),
]


@pytest.mark.gpu
@pytest.mark.parametrize("kind, body, bottoms, grads, tops", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_layer_on_the_device_equals_numpy(gpu_kind, kind, body, bottoms, grads, tops):
    assert_layer_same_on_device(gpu_kind, kind, body, bottoms, grads, tops)