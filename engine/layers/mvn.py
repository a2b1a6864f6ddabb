"""MVN: subtract the mean of each sample's channel (of each sample with
``across_channels``) and, with ``normalize_variance`` (default), divide by the standard
deviation plus ``eps``: ``y = (x - mean) / (sqrt(var) + eps)``, eps added after the
square root as in Caffe.

Backward is Caffe's: ``dx = (dy - mean(dy) - y * mean(y * dy)) / (sqrt(var) + eps)``
(``dx = dy - mean(dy)`` without the variance); it is the exact gradient for eps = 0 and
Caffe's approximation otherwise.
"""
from __future__ import annotations

from ..layer import Layer, register


@register("MVN")
class MVNLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.mvn_param
        self.normalize_variance = bool(p.normalize_variance)
        self.across_channels = bool(p.across_channels)
        self.eps = float(p.eps)
        self.std = None

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        num = shape[0] if self.across_channels or len(shape) < 2 else shape[0] * shape[1]
        self.groups = (num, bottom[0].count() // num if num else 0)
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp = bottom[0].xp
        x = bottom[0].data.reshape(self.groups)
        y = top[0].data.reshape(self.groups)
        mean = x.mean(axis=1, keepdims=True)
        xp.subtract(x, mean, out=y)
        if self.normalize_variance:
            variance = (y * y).mean(axis=1, keepdims=True)
            self.std = xp.sqrt(variance) + self.eps
            y /= self.std

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.groups)
        dy_mean = dy.mean(axis=1, keepdims=True)
        if self.normalize_variance:
            y = top[0].data.reshape(self.groups)
            y_dy_mean = (y * dy).mean(axis=1, keepdims=True)
            dx = (dy - dy_mean - y * y_dy_mean) / self.std
        else:
            dx = dy - dy_mean
        bottom[0].diff_to_overwrite().reshape(self.groups)[...] = dx
