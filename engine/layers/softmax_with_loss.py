"""SoftmaxWithLoss: softmax, then the mean negative log-likelihood of the labels."""
from __future__ import annotations

import numpy

from ..backend import get_array_module
from ..errors import LabelError, ShapeError
from ..layer import Layer, register
from .softmax import softmax_into

FLT_MIN = numpy.finfo(numpy.float32).tiny
FULL, VALID, BATCH_SIZE, NONE = 0, 1, 2, 3


def normalization_mode(loss_param) -> int:
    """Caffe's rule: ``normalization`` wins; else legacy ``normalize: false`` means BATCH_SIZE."""
    if not loss_param.HasField("normalization") and loss_param.HasField("normalize"):
        return VALID if loss_param.normalize else BATCH_SIZE
    return loss_param.normalization


def check_labels(layer_name: str, labels, num_classes: int, ignore_label) -> None:
    """Raise LabelError naming the first label outside [0, num_classes)."""
    xp = get_array_module(labels)
    valid = labels if ignore_label is None else labels[labels != ignore_label]
    bad = (valid < 0) | (valid >= num_classes) | (valid != xp.floor(valid))
    if bool(bad.any()):
        value = float(valid[bad].ravel()[0])
        raise LabelError(
            f"layer '{layer_name}': label {value:g} is out of range: expected an integer in "
            f"[0, {num_classes - 1}]" + ("" if ignore_label is None else f" or ignore_label {ignore_label}"))


@register("SoftmaxWithLoss")
class SoftmaxWithLossLayer(Layer):
    num_bottoms = 2
    min_tops = 1
    is_loss = True

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index != 1

    def layer_setup(self, bottom, top):
        loss_param = self.param.loss_param
        self.ignore_label = int(loss_param.ignore_label) if loss_param.HasField("ignore_label") else None
        self.normalization = normalization_mode(loss_param)
        self.axis = bottom[0].canonical_axis(self.param.softmax_param.axis)

    def reshape(self, bottom, top):
        self.outer = bottom[0].count(0, self.axis)
        self.inner = bottom[0].count(self.axis + 1)
        self.num_classes = bottom[0].shape[self.axis]
        if bottom[1].count() != self.outer * self.inner:
            raise ShapeError(
                f"layer '{self.name}': {self.outer * self.inner} labels expected for predictions of "
                f"shape {bottom[0].shape} ({self.bottom_name(0)}), but the label blob {self.bottom_name(1)} "
                f"has shape {bottom[1].shape}")
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape_like(bottom[0])
        self.prob_shape = bottom[0].shape

    _prob_buf = None

    def _prob(self, bottom, top):
        if len(top) > 1:
            return top[1].data
        data, buf = bottom[0].data, self._prob_buf
        if buf is None or buf.shape != data.shape or buf.dtype != data.dtype or type(buf) is not type(data):
            buf = self._prob_buf = bottom[0].xp.empty_like(data)
        return buf

    def _normalizer(self, valid_count) -> float:
        if self.normalization == FULL:
            norm = self.outer * self.inner
        elif self.normalization == VALID:
            norm = valid_count
        elif self.normalization == BATCH_SIZE:
            norm = self.outer
        else:
            norm = 1
        return max(1.0, float(norm))

    def _labels(self, bottom):
        return bottom[1].data.reshape(self.outer, self.inner)

    _index_cache = None

    def _row_col_index(self, xp):
        """Cached aranges that pick one class per (outer, inner) position."""
        cache = self._index_cache
        if cache is None or cache[0] != (self.outer, self.inner) or cache[1] is not xp:
            rows = xp.arange(self.outer)[:, None]
            cols = xp.arange(self.inner)[None, :]
            cache = self._index_cache = ((self.outer, self.inner), xp, rows, cols)
        return cache[2], cache[3]

    def _checked_index(self, labels, xp):
        """The labels as integer indices, raising LabelError for a bad one (fast path
        without ignore_label: range by min/max, integrality by the cast)."""
        if self.ignore_label is None and labels.size:
            low, high = labels.min(), labels.max()
            if low >= 0 and high < self.num_classes:  # False for NaN too
                index = labels.astype(xp.intp)
                if not bool((index != labels).any()):
                    return index
        check_labels(self.name, labels, self.num_classes, self.ignore_label)
        return labels.astype(xp.intp)

    def forward(self, bottom, top):
        xp = bottom[0].xp
        prob = self._prob(bottom, top)
        softmax_into(bottom[0].data, self.axis, prob)
        labels = self._labels(bottom)
        index = self._checked_index(labels, xp)
        prob3 = prob.reshape(self.outer, self.num_classes, self.inner)
        if self.ignore_label is not None:
            valid = labels != self.ignore_label
            index = xp.where(valid, index, 0)
        rows, cols = self._row_col_index(xp)
        picked = prob3[rows, index, cols]
        log_prob = xp.log(xp.maximum(picked, picked.dtype.type(FLT_MIN)))
        if self.ignore_label is not None:
            log_prob = log_prob * valid
            self.valid_count = int(valid.sum())
        else:
            self.valid_count = self.outer * self.inner
        top[0].data[...] = -log_prob.sum() / top[0].dtype.type(self._normalizer(self.valid_count))

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = bottom[0].xp
        prob = self._prob_buf if len(top) == 1 else top[1].data
        diff3 = bottom[0].diff.reshape(self.outer, self.num_classes, self.inner)
        xp.copyto(diff3, prob.reshape(diff3.shape))
        labels = self._labels(bottom)
        index = labels.astype(xp.intp)
        rows, cols = self._row_col_index(xp)
        if self.ignore_label is None:
            diff3[rows, index, cols] -= 1
        else:
            valid = labels != self.ignore_label
            index = xp.where(valid, index, 0)
            diff3[rows, index, cols] -= valid.astype(diff3.dtype)
            diff3 *= valid[:, None, :]
        scale = top[0].diff.reshape(-1)[0] / top[0].dtype.type(self._normalizer(self.valid_count))
        diff3 *= scale
