"""ContrastiveLoss (Hadsell et al.): for feature pairs a, b (N x C) and a similarity y
(N, 1 = similar), with ``d = ||a - b||``:
``loss = 1/(2N) * sum(y * d^2 + (1 - y) * max(margin - d, 0)^2)``, or with
``legacy_version`` ``(1 - y) * max(margin - d^2, 0)`` for dissimilar pairs.

Backward is Caffe's: similar pairs ``+-(a - b) * w / N``; dissimilar pairs
``-+(margin - d) / (d + 1e-4) * (a - b) * w / N`` while ``margin - d > 0`` (legacy:
``-+(a - b) * w / N`` while ``margin - d^2 > 0``); nothing to y.
"""
from __future__ import annotations

from ..errors import ShapeError
from ..layer import Layer, register
from .loss_common import BATCH_SIZE, loss_scale, normalizer


@register("ContrastiveLoss")
class ContrastiveLossLayer(Layer):
    num_bottoms = 3
    num_tops = 1
    is_loss = True

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index != 2

    def layer_setup(self, bottom, top):
        p = self.param.contrastive_loss_param
        self.margin, self.legacy = float(p.margin), bool(p.legacy_version)
        self.difference = None
        self.dist_sq = None

    def reshape(self, bottom, top):
        a, b, y = bottom
        if a.num_axes < 1 or a.shape != b.shape:
            raise ShapeError(f"layer '{self.name}' (ContrastiveLoss): the two features {self.bottom_name(0)} "
                             f"{a.shape} and {self.bottom_name(1)} {b.shape} must have the same shape")
        if y.count() != a.shape[0]:
            raise ShapeError(f"layer '{self.name}' (ContrastiveLoss): one similarity per pair expected in "
                             f"{self.bottom_name(2)}: {a.shape[0]} pairs, got shape {y.shape}")
        self.num, self.channels = a.shape[0], a.count(1)
        top[0].reshape(())

    def _similar(self, bottom):
        """1 where the pair is similar (Caffe's static_cast<int>(y) != 0), as a column."""
        y = bottom[2].data.reshape(self.num, 1)
        return bottom[2].xp.trunc(y) != 0

    def forward(self, bottom, top):
        xp = bottom[0].xp
        a = bottom[0].data.reshape(self.num, self.channels)
        b = bottom[1].data.reshape(self.num, self.channels)
        self.difference = a - b
        self.dist_sq = (self.difference * self.difference).sum(axis=1, keepdims=True)
        if self.legacy:
            dissimilar = xp.maximum(self.margin - self.dist_sq, 0)
        else:
            dissimilar = xp.maximum(self.margin - xp.sqrt(self.dist_sq), 0) ** 2
        per_pair = xp.where(self._similar(bottom), self.dist_sq, dissimilar)
        num = normalizer(BATCH_SIZE, self.num, self.channels)
        top[0].data[...] = per_pair.sum() / top[0].dtype.type(num) / top[0].dtype.type(2)

    def backward(self, top, propagate_down, bottom):
        xp = bottom[0].xp
        similar = self._similar(bottom)
        if self.legacy:
            margin_left = self.margin - self.dist_sq
            dissimilar_factor = -xp.ones_like(margin_left)
        else:
            dist = xp.sqrt(self.dist_sq)
            margin_left = self.margin - dist
            dissimilar_factor = -margin_left / (dist + 1e-4)
        factor = xp.where(similar, 1, xp.where(margin_left > 0, dissimilar_factor, 0))
        weight = loss_scale(top[0], normalizer(BATCH_SIZE, self.num, self.channels))
        for i, sign in ((0, 1), (1, -1)):
            if propagate_down[i]:
                dx = bottom[i].diff_to_overwrite().reshape(self.num, self.channels)
                xp.multiply(self.difference, factor * (sign * weight), out=dx)
