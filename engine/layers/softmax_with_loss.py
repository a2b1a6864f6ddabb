"""SoftmaxWithLoss: softmax over ``axis``, then the negative log-likelihood of the labels.

``loss = -sum log(max(p[label], FLT_MIN)) / normalizer`` over every (outer, inner)
position whose label is not ``ignore_label`` (so N x C x H x W scores take N x H x W
labels); the normalizer follows ``loss_param.normalization`` (FULL, VALID, BATCH_SIZE,
NONE) or the legacy ``normalize`` flag. Backward: ``(p - onehot(label)) * weight /
normalizer``, zero at ignored positions, nothing to the labels.
"""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import register
from .loss_common import (
    FLT_MIN,
    LabelLossLayer,
    check_labels,
    ignore_label_of,
    label_indices,
    label_positions,
    loss_scale,
    normalization_mode,
    normalizer,
    set_loss,
)
from .softmax import softmax_into

__all__ = ["SoftmaxWithLossLayer", "check_labels"]


@register("SoftmaxWithLoss")
class SoftmaxWithLossLayer(LabelLossLayer):
    num_tops: int | None = None  # the loss, and optionally the probabilities

    def layer_setup(self, bottom, top):
        if len(top) > 2:
            raise NetDefinitionError(f"layer '{self.name}' (SoftmaxWithLoss): produces one or two tops (the loss "
                                     f"and the probabilities), got {len(top)}")
        loss_param = self.param.loss_param
        self.ignore_label = ignore_label_of(loss_param)
        self.normalization = normalization_mode(loss_param)
        self.axis = bottom[0].canonical_axis(self.param.softmax_param.axis)
        self.valid_count = None

    def reshape(self, bottom, top):
        self.outer, self.inner, self.num_classes = label_positions(self, bottom, self.axis)
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape_like(bottom[0])

    _prob_buf = None

    def _prob(self, bottom, top):
        if len(top) > 1:
            return top[1].data
        data, buf = bottom[0].data, self._prob_buf
        if buf is None or buf.shape != data.shape or buf.dtype != data.dtype or type(buf) is not type(data):
            buf = self._prob_buf = bottom[0].xp.empty_like(data)
        return buf

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

    def _normalizer(self):
        return normalizer(self.normalization, self.outer, self.inner, self.valid_count)

    def forward(self, bottom, top):
        xp = bottom[0].xp
        prob = self._prob(bottom, top)
        softmax_into(bottom[0].data, self.axis, prob)
        index, valid = label_indices(self.name, self._labels(bottom), self.num_classes, self.ignore_label)
        rows, cols = self._row_col_index(xp)
        picked = prob.reshape(self.outer, self.num_classes, self.inner)[rows, index, cols]
        log_prob = xp.log(xp.maximum(picked, picked.dtype.type(FLT_MIN)))
        if valid is not None:
            log_prob = log_prob * valid
            self.valid_count = valid.sum()  # stays on the device
        else:
            self.valid_count = None  # every position counts
        set_loss(top[0], -log_prob.sum(), self._normalizer())

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
        diff3 *= loss_scale(top[0], self._normalizer())
