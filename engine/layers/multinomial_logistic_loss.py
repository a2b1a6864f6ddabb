"""MultinomialLogisticLoss: for probabilities p (N x dim, already normalized) and one
label per sample, ``loss = -sum log(max(p[label], kLOG_THRESHOLD)) / N`` (kLOG_THRESHOLD
= 1e-20); backward ``dx[label] = -w / (N * max(p[label], kLOG_THRESHOLD))``, 0 elsewhere."""
from __future__ import annotations

from ..layer import register
from .loss_common import (
    BATCH_SIZE,
    KLOG_THRESHOLD,
    SampleLabelLossLayer,
    label_indices,
    loss_scale,
    normalizer,
    set_loss,
)


@register("MultinomialLogisticLoss")
class MultinomialLogisticLossLayer(SampleLabelLossLayer):
    def _picked(self, bottom):
        """(row indices, label indices, max(p[label], kLOG_THRESHOLD))."""
        xp = bottom[0].xp
        index, _ = label_indices(self.name, bottom[1].data.reshape(self.num), self.dim, None)
        rows = xp.arange(self.num)
        prob = bottom[0].data.reshape(self.num, self.dim)[rows, index]
        return rows, index, xp.maximum(prob, KLOG_THRESHOLD)

    def forward(self, bottom, top):
        _, _, prob = self._picked(bottom)
        set_loss(top[0], -bottom[0].xp.log(prob).sum(), normalizer(BATCH_SIZE, self.num, self.dim))

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        rows, index, prob = self._picked(bottom)
        dx = bottom[0].diff_to_overwrite().reshape(self.num, self.dim)
        dx.fill(0)
        dx[rows, index] = -loss_scale(top[0], normalizer(BATCH_SIZE, self.num, self.dim)) / prob
