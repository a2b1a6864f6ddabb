"""Zoo layers, part C: the loss layers, SoftmaxWithLoss's normalization modes and spatial
ignore_label, and Accuracy's top_k / axis / ignore_label / per-class top. Forwards against
PyTorch's equal ops or float64 loops written here, backwards against central differences
(engine.check_layer) and against PyTorch's autograd."""
import math

import numpy
import pytest

# PyTorch is the independent reference for many forwards here; CI installs it (.ci/run)
torch = pytest.importorskip("torch")
F = torch.nn.functional

from engine.errors import DataError, LabelError, NetDefinitionError, ShapeError
from engine.gradcheck import check_layer
from engine.proto import caffe_pb2
from tests.engine.helpers import make_layer, run_forward

RNG = numpy.random.default_rng(77)
MODES = ["FULL", "VALID", "BATCH_SIZE", "NONE"]


def assert_gradients(spec, bottoms, blobs, **kwargs):
    result = check_layer(spec, bottoms, **kwargs)
    assert len(result.blobs) == blobs, result.summary()
    assert all(b.checked > 0 for b in result.blobs), result.summary()
    assert result.passed, result.summary()


def loss_and_diff(spec, bottoms, loss_weight=1.0, propagate=None):
    """(loss, bottom diffs) of one forward and backward with the top diff = loss_weight."""
    layer, bottom, top = run_forward(spec, bottoms)
    top[0].diff[...] = loss_weight
    layer.backward(top, propagate or [True] + [False] * (len(bottoms) - 1), bottom)
    return float(top[0].data), [b.diff.copy() for b in bottom]


def expected_normalizer(mode, outer, inner, valid):
    return max(1.0, {"FULL": outer * inner, "VALID": valid, "BATCH_SIZE": outer, "NONE": 1}[mode])


# -- SoftmaxWithLoss ----------------------------------------------------------------------------
def spatial_problem(ignore_fraction=0.3):
    """N x C x H x W scores and N x 1 x H x W labels with some positions labelled 255."""
    scores = RNG.normal(size=(2, 4, 3, 2))
    labels = RNG.integers(0, 4, size=(2, 1, 3, 2)).astype(float)
    labels[RNG.uniform(size=labels.shape) < ignore_fraction] = 255
    return scores, labels


@pytest.mark.parametrize("mode", MODES)
def test_softmax_with_loss_spatial_ignore_label_against_torch(mode):
    scores, labels = spatial_problem()
    spec = f'type: "SoftmaxWithLoss" loss_param {{ ignore_label: 255 normalization: {mode} }}'
    loss, diffs = loss_and_diff(spec, [scores, labels], loss_weight=2.0)
    valid = int((labels != 255).sum())
    norm = expected_normalizer(mode, 2, 6, valid)
    x = torch.from_numpy(scores).requires_grad_()
    target = torch.from_numpy(labels[:, 0]).long()
    reference = F.cross_entropy(x, target, ignore_index=255, reduction="sum") / norm
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    (2.0 * reference).backward()
    numpy.testing.assert_allclose(diffs[0], x.grad.numpy(), rtol=1e-10, atol=1e-15)
    assert_gradients(spec, [scores, labels], 1, check_bottoms=[0])


@pytest.mark.parametrize("normalize,divisor", [("true", "valid"), ("false", "batch")])
def test_softmax_with_loss_legacy_normalize_flag(normalize, divisor):
    scores, labels = spatial_problem()
    spec = f'type: "SoftmaxWithLoss" loss_param {{ ignore_label: 255 normalize: {normalize} }}'
    loss, _ = loss_and_diff(spec, [scores, labels])
    total = F.cross_entropy(torch.from_numpy(scores), torch.from_numpy(labels[:, 0]).long(), ignore_index=255,
                            reduction="sum").item()
    assert loss == pytest.approx(total / (int((labels != 255).sum()) if divisor == "valid" else 2), rel=1e-12)
    both = spec.replace("normalize:", "normalization: FULL normalize:")  # normalization wins
    assert loss_and_diff(both, [scores, labels])[0] == pytest.approx(total / 12, rel=1e-12)


def test_softmax_with_loss_all_ignored_gives_zero_not_nan():
    scores = RNG.normal(size=(2, 3))
    loss, diffs = loss_and_diff('type: "SoftmaxWithLoss" loss_param { ignore_label: 1 }',
                                [scores, numpy.array([1.0, 1.0])])
    assert loss == 0.0
    numpy.testing.assert_array_equal(diffs[0], 0)


def test_softmax_with_loss_on_another_axis_and_a_bad_label():
    scores = RNG.normal(size=(2, 3, 4))
    labels = RNG.integers(0, 4, size=(2, 3)).astype(float)
    spec = 'type: "SoftmaxWithLoss" softmax_param { axis: 2 }'
    loss, _ = loss_and_diff(spec, [scores, labels])
    reference = F.cross_entropy(torch.from_numpy(scores).permute(0, 2, 1), torch.from_numpy(labels).long())
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    with pytest.raises(LabelError, match="layer 'SoftmaxWithLoss': label 4"):
        run_forward(spec, [scores, numpy.where(labels == labels.max(), 4.0, labels)])


# -- Accuracy -----------------------------------------------------------------------------------
def accuracy_reference(scores, labels, top_k, ignore_label=None):
    """Caffe 1.0 by loops: correct when fewer than top_k classes score >= the true one (itself excluded)."""
    outer, classes = scores.shape[0], scores.shape[1]
    inner = int(numpy.prod(scores.shape[2:]))
    s = scores.reshape(outer, classes, inner)
    lab = labels.reshape(outer, inner)
    hits, count = 0, 0
    per_hits, per_count = [0] * classes, [0] * classes
    for i in range(outer):
        for j in range(inner):
            label = int(lab[i, j])
            if ignore_label is not None and label == ignore_label:
                continue
            better = sum(1 for c in range(classes) if c != label and s[i, c, j] >= s[i, label, j])
            per_count[label] += 1
            if better < top_k:
                hits += 1
                per_hits[label] += 1
            count += 1
    per_class = [h / n if n else 0.0 for h, n in zip(per_hits, per_count)]
    return (hits / count if count else 0.0), per_class


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_accuracy_top_k_with_ties_and_the_per_class_top(top_k):
    scores = RNG.integers(0, 3, size=(12, 4)).astype(float)  # many ties
    labels = RNG.integers(0, 4, size=(12,)).astype(float)
    _, _, top = run_forward(f'type: "Accuracy" accuracy_param {{ top_k: {top_k} }}', [scores, labels], num_tops=2)
    accuracy, per_class = accuracy_reference(scores, labels, top_k)
    assert float(top[0].data) == pytest.approx(accuracy, rel=1e-12)
    numpy.testing.assert_allclose(top[1].data, per_class, rtol=1e-12)


def test_accuracy_over_spatial_positions_with_ignore_label():
    scores, labels = spatial_problem()
    spec = 'type: "Accuracy" accuracy_param { top_k: 2 ignore_label: 255 }'
    _, _, top = run_forward(spec, [scores, labels], num_tops=2)
    accuracy, per_class = accuracy_reference(scores, labels, 2, ignore_label=255)
    assert float(top[0].data) == pytest.approx(accuracy, rel=1e-12)
    numpy.testing.assert_allclose(top[1].data, per_class, rtol=1e-12)
    assert top[1].shape == (4,)


def test_accuracy_on_a_later_axis_and_with_nothing_to_count():
    scores = RNG.normal(size=(2, 3, 5))
    labels = RNG.integers(0, 5, size=(2, 3)).astype(float)
    _, _, top = run_forward('type: "Accuracy" accuracy_param { axis: -1 }', [scores, labels])
    expected = (scores.argmax(axis=2) == labels).mean()
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)
    _, _, top = run_forward('type: "Accuracy" accuracy_param { ignore_label: 0 }',
                            [RNG.normal(size=(3, 2)), numpy.zeros(3)], num_tops=2)
    assert float(top[0].data) == 0.0
    numpy.testing.assert_array_equal(top[1].data, [0, 0])


def test_accuracy_refuses_top_k_beyond_the_classes_and_bad_labels():
    with pytest.raises(ShapeError, match="top_k 4"):
        make_layer('type: "Accuracy" accuracy_param { top_k: 4 }', [numpy.ones((2, 3)), numpy.zeros(2)])
    with pytest.raises(LabelError, match="layer 'Accuracy': label 3"):
        run_forward('type: "Accuracy"', [numpy.ones((2, 3)), numpy.array([0.0, 3.0])])


# -- SigmoidCrossEntropyLoss --------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES + [None])
def test_sigmoid_cross_entropy_against_bce_with_logits(mode):
    x = RNG.normal(size=(3, 2, 2)) * 4
    x[0, 0, 0], x[1, 1, 1] = 60.0, -60.0  # the stable form: no overflow
    target = RNG.uniform(size=x.shape)
    target[RNG.uniform(size=x.shape) < 0.25] = -1  # ignored
    body = f"normalization: {mode} " if mode else ""
    spec = f'type: "SigmoidCrossEntropyLoss" loss_param {{ {body}ignore_label: -1 }}'
    loss, diffs = loss_and_diff(spec, [x, target], loss_weight=0.5)
    valid = target != -1
    norm = expected_normalizer(mode or "BATCH_SIZE", 3, 4, int(valid.sum()))  # Caffe's default: BATCH_SIZE
    logits = torch.from_numpy(x).requires_grad_()
    per_element = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(numpy.where(valid, target, 0)),
                                                     reduction="none")
    reference = (per_element * torch.from_numpy(valid)).sum() / norm
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    (0.5 * reference).backward()
    numpy.testing.assert_allclose(diffs[0], logits.grad.numpy(), rtol=1e-10, atol=1e-15)
    assert_gradients(spec.replace("60", "6"), [RNG.normal(size=(3, 4)), RNG.uniform(size=(3, 4))], 1,
                     check_bottoms=[0])


def test_sigmoid_cross_entropy_legacy_normalize_and_shape_check():
    x, target = RNG.normal(size=(4, 3)), RNG.uniform(size=(4, 3))
    total = F.binary_cross_entropy_with_logits(torch.from_numpy(x), torch.from_numpy(target),
                                               reduction="sum").item()
    loss, _ = loss_and_diff('type: "SigmoidCrossEntropyLoss" loss_param { normalize: true }', [x, target])
    assert loss == pytest.approx(total / 12, rel=1e-12)
    with pytest.raises(ShapeError, match="same count"):
        make_layer('type: "SigmoidCrossEntropyLoss"', [x, numpy.ones((4, 2))])


# -- ContrastiveLoss ----------------------------------------------------------------------------
def contrastive_reference(a, b, y, margin, legacy):
    total = 0.0
    for n in range(a.shape[0]):
        d2 = sum((a[n] - b[n]) ** 2)
        if int(y[n]):
            total += d2
        elif legacy:
            total += max(margin - d2, 0.0)
        else:
            total += max(margin - math.sqrt(d2), 0.0) ** 2
    return total / a.shape[0] / 2


def contrastive_gradient_reference(a, b, y, margin, legacy):
    """Caffe's backward for bottom 0 (d + 1e-4 in the non-legacy denominator), by loops."""
    grad = numpy.zeros_like(a)
    num = a.shape[0]
    for n in range(num):
        diff = a[n] - b[n]
        d2 = float(diff @ diff)
        if int(y[n]):
            grad[n] = diff / num
        elif legacy:
            grad[n] = -diff / num if margin - d2 > 0 else 0
        else:
            d = math.sqrt(d2)
            grad[n] = -(margin - d) / (d + 1e-4) * diff / num if margin - d > 0 else 0
    return grad


@pytest.mark.parametrize("legacy", [False, True])
def test_contrastive_loss_forward_and_caffes_backward(legacy):
    a, b = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
    y = numpy.array([1, 0, 0, 1, 0, 0], dtype=float)
    margin = 3.0 if legacy else 2.0
    spec = (f'type: "ContrastiveLoss" contrastive_loss_param {{ margin: {margin} '
            f'legacy_version: {str(legacy).lower()} }}')
    loss, diffs = loss_and_diff(spec, [a, b, y], propagate=[True, True, False])
    assert loss == pytest.approx(contrastive_reference(a, b, y, margin, legacy), rel=1e-12)
    expected = contrastive_gradient_reference(a, b, y, margin, legacy)
    numpy.testing.assert_allclose(diffs[0], expected, rtol=1e-12)
    numpy.testing.assert_allclose(diffs[1], -expected, rtol=1e-12)
    # central differences agree up to Caffe's 1e-4 in the denominator
    assert_gradients(spec, [a, b, y], 2, check_bottoms=[0, 1], threshold=1e-3)


# -- HingeLoss ----------------------------------------------------------------------------------
def hinge_reference(scores, labels, power):
    total = 0.0
    for n, row in enumerate(scores):
        for k, v in enumerate(row):
            margin = max(0.0, 1 - v) if k == int(labels[n]) else max(0.0, 1 + v)
            total += margin ** power
    return total / scores.shape[0]


@pytest.mark.parametrize("norm,power", [("L1", 1), ("L2", 2)])
def test_hinge_loss_forward_and_gradient(norm, power):
    scores = RNG.uniform(-2, 2, size=(5, 4))
    scores = numpy.where(numpy.abs(numpy.abs(scores) - 1) < 0.05, scores * 1.2, scores)  # off the kinks
    labels = numpy.array([0, 3, 1, 1, 2], dtype=float)
    spec = f'type: "HingeLoss" hinge_loss_param {{ norm: {norm} }}'
    loss, _ = loss_and_diff(spec, [scores, labels])
    assert loss == pytest.approx(hinge_reference(scores, labels, power), rel=1e-12)
    assert_gradients(spec, [scores, labels], 1, check_bottoms=[0])


def test_hinge_loss_default_is_l1_and_refuses_bad_labels():
    scores, labels = RNG.normal(size=(3, 2)), numpy.array([0.0, 1.0, 1.0])
    assert loss_and_diff('type: "HingeLoss"', [scores, labels])[0] == \
        pytest.approx(hinge_reference(scores, labels, 1), rel=1e-12)
    with pytest.raises(LabelError, match="layer 'HingeLoss': label 2"):
        run_forward('type: "HingeLoss"', [scores, numpy.array([0.0, 2.0, 1.0])])


# -- MultinomialLogisticLoss --------------------------------------------------------------------
def test_multinomial_logistic_loss_against_nll_with_caffes_floor():
    prob = RNG.dirichlet(numpy.ones(4), size=5)
    labels = numpy.array([0, 3, 1, 1, 2], dtype=float)
    prob[2, 1] = 0.0  # floored at kLOG_THRESHOLD = 1e-20
    loss, diffs = loss_and_diff('type: "MultinomialLogisticLoss"', [prob, labels], loss_weight=3.0)
    floor = float(numpy.float32(1e-20))
    reference = F.nll_loss(torch.log(torch.from_numpy(prob).clamp(min=floor)), torch.from_numpy(labels).long())
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    assert loss == pytest.approx(-sum(math.log(max(prob[n, int(labels[n])], floor)) for n in range(5)) / 5)
    expected = numpy.zeros_like(prob)
    for n in range(5):
        expected[n, int(labels[n])] = -3.0 / 5 / max(prob[n, int(labels[n])], floor)
    numpy.testing.assert_allclose(diffs[0], expected, rtol=1e-12)
    assert_gradients('type: "MultinomialLogisticLoss"',
                     [RNG.uniform(0.2, 1.0, size=(4, 3)), numpy.array([0.0, 2.0, 1.0, 1.0])], 1, check_bottoms=[0])


# -- InfogainLoss -------------------------------------------------------------------------------
def infogain_reference(scores, labels, H, axis, ignore_label, mode):
    moved = numpy.moveaxis(scores, axis, -1)
    prob = numpy.exp(moved - moved.max(axis=-1, keepdims=True))
    prob /= prob.sum(axis=-1, keepdims=True)
    flat_prob = prob.reshape(-1, prob.shape[-1])
    flat_labels = labels.reshape(-1)
    total, valid = 0.0, 0
    for p, label in zip(flat_prob, flat_labels):
        if ignore_label is not None and int(label) == ignore_label:
            continue
        total -= sum(H[int(label), k] * math.log(max(p[k], 1e-20)) for k in range(len(p)))
        valid += 1
    outer = int(numpy.prod(scores.shape[:axis]))
    inner = int(numpy.prod(scores.shape[axis + 1:]))
    return total / expected_normalizer(mode, outer, inner, valid)


def write_blob_proto(path, array, legacy=True):
    proto = caffe_pb2.BlobProto()
    if legacy:  # as Caffe's tools write H: num 1, channels 1, height C, width C
        proto.num, proto.channels = 1, 1
        proto.height, proto.width = array.shape
    else:
        proto.shape.dim.extend(array.shape)
    proto.data.extend(array.astype(numpy.float32).ravel().tolist())
    path.write_bytes(proto.SerializeToString())
    return array.astype(numpy.float32).astype(numpy.float64)


@pytest.mark.parametrize("mode", MODES)
def test_infogain_loss_from_a_binaryproto_source(tmp_path, mode):
    H = write_blob_proto(tmp_path / "H.binaryproto", RNG.uniform(0, 2, size=(3, 3)))
    scores = RNG.normal(size=(2, 3, 2))
    labels = numpy.array([[0, 2], [1, 2]], dtype=float)
    spec = (f'type: "InfogainLoss" infogain_loss_param {{ source: "{tmp_path / "H.binaryproto"}" }} '
            f'loss_param {{ ignore_label: 2 normalization: {mode} }}')
    loss, _ = loss_and_diff(spec, [scores, labels])
    assert loss == pytest.approx(infogain_reference(scores, labels, H, 1, 2, mode), rel=1e-10)
    assert_gradients(spec, [scores, labels], 1, check_bottoms=[0])


def test_infogain_loss_with_h_as_third_bottom_on_another_axis():
    scores = RNG.normal(size=(2, 2, 4))
    labels = RNG.integers(0, 4, size=(2, 2)).astype(float)
    H = RNG.uniform(0, 1, size=(4, 4))
    spec = 'type: "InfogainLoss" infogain_loss_param { axis: 2 }'
    loss, _ = loss_and_diff(spec, [scores, labels, H], propagate=[True, False, False])
    assert loss == pytest.approx(infogain_reference(scores, labels, H, 2, None, "VALID"), rel=1e-10)
    assert_gradients(spec, [scores, labels, H], 1, check_bottoms=[0])


def test_infogain_with_identity_is_softmax_cross_entropy_and_second_top_is_softmax(tmp_path):
    write_blob_proto(tmp_path / "I.pb", numpy.eye(5), legacy=False)
    scores = RNG.normal(size=(4, 5))
    labels = numpy.array([4, 0, 2, 2], dtype=float)
    spec = f'type: "InfogainLoss" infogain_loss_param {{ source: "{tmp_path / "I.pb"}" }}'
    _, _, top = run_forward(spec, [scores, labels], num_tops=2)
    x = torch.from_numpy(scores)
    assert float(top[0].data) == pytest.approx(F.cross_entropy(x, torch.from_numpy(labels).long()).item(), rel=1e-7)
    numpy.testing.assert_allclose(top[1].data, torch.softmax(x, dim=1).numpy(), rtol=1e-7)


def test_infogain_errors_name_the_layer(tmp_path):
    scores, labels = RNG.normal(size=(2, 3)), numpy.array([0.0, 1.0])
    with pytest.raises(NetDefinitionError, match="'InfogainLoss'.*source"):
        make_layer('type: "InfogainLoss"', [scores, labels])
    with pytest.raises(NetDefinitionError, match="normalize is deprecated"):
        make_layer('type: "InfogainLoss" loss_param { normalize: true }', [scores, labels, numpy.eye(3)])
    with pytest.raises(ShapeError, match="H must be 3x3"):
        make_layer('type: "InfogainLoss"', [scores, labels, numpy.eye(2)])
    (tmp_path / "bad.binaryproto").write_bytes(b"\xff\xff\xff")
    with pytest.raises(DataError, match="bad.binaryproto"):
        make_layer(f'type: "InfogainLoss" infogain_loss_param {{ source: "{tmp_path / "bad.binaryproto"}" }}',
                   [scores, labels])


# -- the shared normalizer ----------------------------------------------------------------------
def test_normalizer_rules_shared_by_every_loss():
    from engine.layers import loss_common as lc

    param = caffe_pb2.LossParameter()
    assert lc.normalization_mode(param) == lc.VALID
    assert lc.normalization_mode(param, default=lc.BATCH_SIZE) == lc.BATCH_SIZE
    param.normalize = False
    assert lc.normalization_mode(param) == lc.BATCH_SIZE
    param.normalization = caffe_pb2.LossParameter.NONE
    assert lc.normalization_mode(param) == lc.NONE
    assert [lc.normalizer(m, 4, 3, 5) for m in (lc.FULL, lc.VALID, lc.BATCH_SIZE, lc.NONE)] == [12, 5, 4, 1]
    assert lc.normalizer(lc.VALID, 4, 3, None) == 12  # nothing ignored: every position
    assert lc.normalizer(lc.VALID, 4, 3, 0) == 1  # all ignored: 1, never 0
    assert float(lc.normalizer(lc.VALID, 4, 3, numpy.array(0))) == 1.0  # a count left on the device
    assert lc.normalizer(lc.BATCH_SIZE, 0, 3) == 1
