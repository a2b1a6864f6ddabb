"""LRN: local response normalization, Caffe's two regions (``lrn_param.norm_region``).

ACROSS_CHANNELS (Caffe's CrossChannelForward/Backward), ``n = local_size``::

    scale = k + alpha / n * sum of x^2 over the n channels centred on c (zero padded)
    y     = x * scale^-beta
    dx    = dy * scale^-beta - 2 * alpha * beta / n * x * sum over the window of (dy * y / scale)

WITHIN_CHANNEL: Caffe builds it from Split, Power (x^2), AVE Pooling (kernel n,
pad (n-1)/2, stride 1), Power (shift 1, scale alpha, power -beta) and an Eltwise
product, so ``k`` is ignored::

    y = x * (1 + alpha * avg(x^2))^-beta

where ``avg`` is that pooling: its divisor counts the padded cells, which with
stride 1 and this pad is always ``n * n`` (the window never overhangs the padding).
The backward is the chain of those layers' backwards, summed at the split.
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register

ACROSS_CHANNELS, WITHIN_CHANNEL = 0, 1  # LRNParameter.NormRegion


def window_sum(values, size: int, axis: int, xp):
    """Sum of ``size`` consecutive entries along ``axis`` (zero padded, centred; ``size`` odd)."""
    pre = (size - 1) // 2
    shape = list(values.shape)
    length = shape[axis]
    shape[axis] = length + size - 1
    padded = xp.zeros(shape, dtype=values.dtype)
    index = [slice(None)] * values.ndim
    index[axis] = slice(pre, pre + length)
    padded[tuple(index)] = values
    index[axis] = slice(0, length)
    total = padded[tuple(index)].copy()
    for offset in range(1, size):
        index[axis] = slice(offset, offset + length)
        total += padded[tuple(index)]
    return total


@register("LRN")
class LRNLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    in_place_allowed = False  # wrong in place: backward reads the bottom the top overwrote

    def layer_setup(self, bottom, top):
        p = self.param.lrn_param
        self.size = int(p.local_size)
        if self.size <= 0 or self.size % 2 == 0:
            raise NetDefinitionError(
                f"layer '{self.name}' (LRN): local_size must be odd and positive (Caffe supports only "
                f"odd sizes), got {self.size}")
        self.alpha, self.beta, self.k = float(p.alpha), float(p.beta), float(p.k)
        self.region = int(p.norm_region)
        if self.region not in (ACROSS_CHANNELS, WITHIN_CHANNEL):
            raise NetDefinitionError(f"layer '{self.name}' (LRN): unknown norm_region {self.region}")

    def reshape(self, bottom, top):
        if bottom[0].num_axes != 4:
            raise ShapeError(f"layer '{self.name}' (LRN): input must have 4 axes (num, channels, "
                             f"height, width), got shape {bottom[0].shape}")
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp = bottom[0].xp
        x = bottom[0].data
        if self.region == ACROSS_CHANNELS:
            self._forward_across(x, top[0].data, xp)
        else:
            self._forward_within(x, top[0].data, xp)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = bottom[0].xp
        if self.region == ACROSS_CHANNELS:
            self._backward_across(top[0], bottom[0], xp)
        else:
            self._backward_within(top[0], bottom[0], xp)

    # -- ACROSS_CHANNELS --------------------------------------------------
    def _forward_across(self, x, y, xp):
        dtype = x.dtype.type
        scale = window_sum(x * x, self.size, 1, xp)
        scale *= dtype(self.alpha) / dtype(self.size)  # Caffe's alpha_over_size, in Dtype
        scale += dtype(self.k)
        self.scale = scale
        self.factor = xp.power(scale, dtype(-self.beta))  # scale^-beta, kept for backward
        xp.multiply(x, self.factor, out=y)

    def _backward_across(self, top, bottom, xp):
        dtype = bottom.data.dtype.type
        ratio = top.diff * top.data
        ratio /= self.scale
        accumulated = window_sum(ratio, self.size, 1, xp)
        accumulated *= bottom.data
        accumulated *= dtype(2.0 * self.alpha * self.beta / self.size)
        xp.multiply(top.diff, self.factor, out=bottom.diff)
        bottom.diff[...] -= accumulated

    # -- WITHIN_CHANNEL ---------------------------------------------------
    def _box_average(self, values, xp):
        """Caffe's AVE pooling (kernel n, pad (n-1)/2, stride 1): the n x n window summed row by
        row (Caffe's order), then divided by n * n."""
        pad = (self.size - 1) // 2
        height, width = values.shape[2:]
        padded = xp.zeros(values.shape[:2] + (height + 2 * pad, width + 2 * pad), dtype=values.dtype)
        padded[:, :, pad:pad + height, pad:pad + width] = values
        total = padded[:, :, :height, :width].copy()
        for i in range(self.size):
            for j in range(self.size):
                if i or j:
                    total += padded[:, :, i:i + height, j:j + width]
        total /= total.dtype.type(self.size * self.size)
        return total

    def _forward_within(self, x, y, xp):
        dtype = x.dtype.type
        base = self._box_average(x * x, xp)
        base *= dtype(self.alpha)
        base += dtype(1.0)
        self.base = base  # 1 + alpha * avg(x^2)
        self.factor = xp.power(base, dtype(-self.beta))
        xp.multiply(x, self.factor, out=y)

    def _backward_within(self, top, bottom, xp):
        dtype = bottom.data.dtype.type
        x, dy = bottom.data, top.diff
        # Power backward: d(factor)/d(avg) = -beta * alpha * factor / base
        d_average = dy * x
        d_average *= self.factor
        d_average /= self.base
        d_average *= dtype(-self.beta * self.alpha)
        # AVE pooling backward: each output's share spread over its window (the adjoint box sum)
        d_square = self._box_average(d_average, xp)
        d_square *= x
        d_square *= dtype(2.0)
        xp.multiply(dy, self.factor, out=bottom.diff)
        bottom.diff[...] += d_square
