"""What Caffe's loss layers share: the normalization rule (``LossLayer::GetNormalizer``),
the legacy ``normalize`` flag, ``kLOG_THRESHOLD`` and the check of class labels."""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from ..errors import LabelError, NetDefinitionError, ShapeError
from ..layer import Layer

FULL, VALID, BATCH_SIZE, NONE = 0, 1, 2, 3  # LossParameter.NormalizationMode
MODE_NAMES = {FULL: "FULL", VALID: "VALID", BATCH_SIZE: "BATCH_SIZE", NONE: "NONE"}

#: the floor under a probability before its log (Caffe's ``kLOG_THRESHOLD``, a float)
KLOG_THRESHOLD = float(numpy.float32(1e-20))
#: SoftmaxWithLoss's floor (``FLT_MIN``)
FLT_MIN = float(numpy.finfo(numpy.float32).tiny)


def normalization_mode(loss_param, default: int = VALID) -> int:
    """Caffe's rule: ``normalization`` when given; else the legacy ``normalize`` flag
    (true: VALID, false: BATCH_SIZE); else ``default`` (VALID for SoftmaxWithLoss,
    BATCH_SIZE for SigmoidCrossEntropyLoss)."""
    if loss_param.HasField("normalization"):
        return int(loss_param.normalization)
    if loss_param.HasField("normalize"):
        return VALID if loss_param.normalize else BATCH_SIZE
    return default


def ignore_label_of(param) -> int | None:
    """``ignore_label`` of a LossParameter / AccuracyParameter, or None when unset."""
    return int(param.ignore_label) if param.HasField("ignore_label") else None


def normalizer(mode: int, outer: int, inner: int, valid_count=None):
    """Caffe's ``GetNormalizer``: what a loss summed over ``outer x inner`` positions is
    divided by, never below 1. ``valid_count`` (VALID only) is the number of positions whose
    label is not ignored: an int, an array scalar (kept on its device), or None for all."""
    if mode == FULL:
        return float(max(1, outer * inner))
    if mode == VALID:
        if valid_count is None:
            return float(max(1, outer * inner))
        if isinstance(valid_count, (int, numpy.integer)):
            return float(max(1, int(valid_count)))
        return get_array_module(valid_count).maximum(valid_count, 1)
    if mode == BATCH_SIZE:
        return float(max(1, outer))
    if mode == NONE:
        return 1.0
    raise NetDefinitionError(f"unknown loss normalization mode {mode} (use FULL, VALID, BATCH_SIZE or NONE)")


def check_labels(layer_name: str, labels, num_classes: int, ignore_label: int | None) -> None:
    """Raise LabelError naming the layer and the first label that is not an integer in
    ``[0, num_classes)`` (labels equal to ``ignore_label`` are skipped)."""
    xp = get_array_module(labels)
    valid = labels if ignore_label is None else labels[labels != ignore_label]
    bad = (valid < 0) | (valid >= num_classes) | (valid != xp.floor(valid))
    if bad.any().item():  # one explicit device->host read
        value = valid[bad].ravel()[0].item()
        raise LabelError(
            f"layer '{layer_name}': label {value:g} is out of range: expected an integer in "
            f"[0, {num_classes - 1}]" + ("" if ignore_label is None else f" or ignore_label {ignore_label}"))


def label_indices(layer_name: str, labels, num_classes: int, ignore_label: int | None):
    """The labels as integer indices (ignored positions pointing at class 0) and the mask
    of positions that count (None when nothing is ignored); LabelError for a bad label."""
    xp = get_array_module(labels)
    if ignore_label is None and labels.size:
        low, high = labels.min(), labels.max()
        fits = (low >= 0) & (high < num_classes) & (xp.floor(labels) == labels).all()
        if fits.item():  # in range and whole (False for NaN too): one explicit device->host read
            return labels.astype(xp.intp), None
    check_labels(layer_name, labels, num_classes, ignore_label)
    index = labels.astype(xp.intp)
    if ignore_label is None:
        return index, None
    valid = labels != ignore_label
    return xp.where(valid, index, 0), valid


def typed(norm, dtype):
    """A normalizer as a scalar of ``dtype`` (or an array scalar of it, on its device)."""
    if isinstance(norm, float):
        return numpy.dtype(dtype).type(norm)
    return norm.astype(dtype)


def set_loss(top_blob, loss_sum, norm) -> None:
    """``top = loss_sum / normalizer`` without leaving the device."""
    top_blob.data[...] = loss_sum / typed(norm, top_blob.dtype)


def loss_scale(top_blob, norm):
    """``top diff / normalizer``: what each unit gradient is multiplied by (the loss
    weight arrives as the top's diff)."""
    return top_blob.diff.reshape(-1)[0] / typed(norm, top_blob.dtype)


def label_positions(layer: Layer, bottom, axis: int) -> tuple[int, int, int]:
    """(outer, inner, classes) of predictions over ``axis`` (Caffe's outer_num_, inner_num_
    and the class count), the label blob checked to hold one label per position."""
    outer, inner = bottom[0].count(0, axis), bottom[0].count(axis + 1)
    if bottom[1].count() != outer * inner:
        raise ShapeError(f"layer '{layer.name}' ({layer.type_name}): {outer * inner} labels expected for the "
                         f"predictions {layer.bottom_name(0)} of shape {bottom[0].shape}, but the label blob "
                         f"{layer.bottom_name(1)} has shape {bottom[1].shape}")
    return outer, inner, bottom[0].shape[axis]


class LabelLossLayer(Layer):
    """Caffe's LossLayer over (predictions, labels): a loss top, and no gradient into
    the labels (bottom 1) even under ``force_backward``."""

    num_bottoms = 2
    num_tops: int | None = 1
    is_loss = True

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index != 1


class SampleLabelLossLayer(LabelLossLayer):
    """A LabelLossLayer with one label per sample (HingeLoss, MultinomialLogisticLoss):
    predictions N x dim (the axes after the first flattened), labels N."""

    def reshape(self, bottom, top):
        if bottom[0].num_axes < 1 or bottom[1].count() != bottom[0].shape[0]:
            raise ShapeError(f"layer '{self.name}' ({self.type_name}): one label per sample of "
                             f"{self.bottom_name(0)} {bottom[0].shape} expected, label blob "
                             f"{self.bottom_name(1)} has shape {bottom[1].shape}")
        self.num, self.dim = bottom[0].shape[0], bottom[0].count(1)
        top[0].reshape(())
