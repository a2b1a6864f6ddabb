"""SigmoidCrossEntropyLoss: the cross-entropy of targets t in [0, 1] against
``p = sigmoid(x)``, in Caffe's overflow-free form per element:
``-(x * (t - [x >= 0]) - log(1 + exp(x - 2 * x * [x >= 0])))``.

Elements whose target (truncated to an integer) equals ``ignore_label`` are skipped; the
sum is divided by the normalizer of ``loss_param.normalization`` (or the legacy
``normalize``; default BATCH_SIZE here, as in Caffe). Backward: ``(p - t) * weight /
normalizer``, zero where ignored, nothing to the targets.
"""
from __future__ import annotations

from ..errors import ShapeError
from ..layer import register
from ..mathops import caffe_sigmoid, float_exp, float_log
from .loss_common import (
    BATCH_SIZE,
    LabelLossLayer,
    ignore_label_of,
    loss_scale,
    normalization_mode,
    normalizer,
    set_loss,
)


@register("SigmoidCrossEntropyLoss")
class SigmoidCrossEntropyLossLayer(LabelLossLayer):
    def layer_setup(self, bottom, top):
        loss_param = self.param.loss_param
        self.ignore_label = ignore_label_of(loss_param)
        self.normalization = normalization_mode(loss_param, default=BATCH_SIZE)
        self.sigmoid_output = None
        self.valid = None
        self.valid_count = None

    def reshape(self, bottom, top):
        if bottom[0].count() != bottom[1].count():
            raise ShapeError(f"layer '{self.name}' (SigmoidCrossEntropyLoss): scores {self.bottom_name(0)} "
                             f"{bottom[0].shape} and targets {self.bottom_name(1)} {bottom[1].shape} must have "
                             f"the same count")
        self.outer = bottom[0].shape[0] if bottom[0].num_axes else 1
        self.inner = bottom[0].count(1)
        top[0].reshape(())

    def forward(self, bottom, top):
        xp, x = bottom[0].xp, bottom[0].data
        target = bottom[1].data.reshape(x.shape)
        s = xp.empty_like(x)
        caffe_sigmoid(xp, x, s)  # its inner Sigmoid layer
        self.sigmoid_output = s
        positive = (x >= 0).astype(x.dtype)
        per_element = x * (target - positive) - float_log(xp, 1 + float_exp(xp, x - 2 * x * positive))
        if self.ignore_label is not None:
            self.valid = xp.trunc(target) != self.ignore_label
            per_element = per_element * self.valid
            self.valid_count = self.valid.sum()
        else:
            self.valid, self.valid_count = None, None
        set_loss(top[0], -per_element.sum(), self._normalizer())

    def _normalizer(self):
        return normalizer(self.normalization, self.outer, self.inner, self.valid_count)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp, dx = bottom[0].xp, bottom[0].diff
        xp.subtract(self.sigmoid_output, bottom[1].data.reshape(dx.shape), out=dx)
        if self.valid is not None:
            dx *= self.valid
        dx *= loss_scale(top[0], self._normalizer())
