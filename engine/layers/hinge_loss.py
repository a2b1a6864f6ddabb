"""HingeLoss (one-vs-all): with ``t = -1`` for the labelled class and ``+1`` otherwise,
``m = max(0, 1 + t * x)``; L1 (default) ``loss = sum m / N``, L2 ``loss = sum m^2 / N``.
Backward: ``-t``-signed ``sign(m) * w / N`` (L1) or ``2 m * w / N`` (L2), as Caffe."""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import register
from .loss_common import BATCH_SIZE, SampleLabelLossLayer, label_indices, loss_scale, normalizer, set_loss

L1, L2 = 1, 2  # HingeLossParameter.Norm


@register("HingeLoss")
class HingeLossLayer(SampleLabelLossLayer):
    def layer_setup(self, bottom, top):
        self.norm = int(self.param.hinge_loss_param.norm)
        if self.norm not in (L1, L2):
            raise NetDefinitionError(f"layer '{self.name}' (HingeLoss): unknown norm {self.norm} (use L1 or L2)")
        self.margins = None

    def _signs(self, bottom):
        """-1 at each sample's labelled class, +1 elsewhere (N x dim)."""
        xp = bottom[0].xp
        index, _ = label_indices(self.name, bottom[1].data.reshape(self.num), self.dim, None)
        signs = xp.ones((self.num, self.dim), dtype=bottom[0].dtype)
        signs[xp.arange(self.num), index] = -1
        return signs

    def forward(self, bottom, top):
        xp = bottom[0].xp
        self.signs = self._signs(bottom)
        self.margins = xp.maximum(1 + self.signs * bottom[0].data.reshape(self.num, self.dim), 0)
        total = self.margins.sum() if self.norm == L1 else (self.margins * self.margins).sum()
        set_loss(top[0], total, normalizer(BATCH_SIZE, self.num, self.dim))

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = bottom[0].xp
        weight = loss_scale(top[0], normalizer(BATCH_SIZE, self.num, self.dim))
        signed = self.signs * self.margins  # Caffe flips the labelled entry back
        dx = bottom[0].diff_to_overwrite().reshape(self.num, self.dim)
        if self.norm == L1:
            xp.sign(signed, out=dx)
            dx *= weight
        else:
            xp.multiply(signed, 2 * weight, out=dx)
