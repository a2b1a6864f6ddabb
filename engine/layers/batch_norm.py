"""BatchNorm: Caffe's normalization by per-channel statistics (no scale or shift: that is Scale).

Three blobs, all zero at the start: ``blobs[0]`` the running sum of means,
``blobs[1]`` the running sum of (unbiased) variances and ``blobs[2]`` (one value)
their scale factor. The statistics used are ``blobs[i] / blobs[2]`` (0 when the
factor is 0). Caffe masks them from the solver: a missing ``param`` spec is added
with ``lr_mult: 0``, and a given one must have ``lr_mult: 0``.

``use_global_stats`` defaults to true in the TEST phase, false in TRAIN.
With per-channel ``mean`` and ``var`` over the batch and spatial axes (``m``
values per channel):

- batch statistics: ``y = (x - mean) / sqrt(var + eps)``; the forward also updates
  ``blobs[2] = maf * blobs[2] + 1``, ``blobs[0] = mean + maf * blobs[0]``,
  ``blobs[1] = m / (m - 1) * var + maf * blobs[1]`` (maf = moving_average_fraction);
  backward ``dx = (dy - mean(dy) - mean(dy * y) * y) / sqrt(var + eps)``;
- global statistics: the stored ones, and ``dx = dy / sqrt(var + eps)``.
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register

TEST = 1


@register("BatchNorm")
class BatchNormLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.batch_norm_param
        self.moving_average_fraction = float(p.moving_average_fraction)
        self.use_global_stats = self.phase == TEST
        if p.HasField("use_global_stats"):
            self.use_global_stats = bool(p.use_global_stats)
        self.eps = float(p.eps)
        self.channels = 1 if bottom[0].num_axes == 1 else bottom[0].shape[1]
        self.blobs = [self.new_param_blob((self.channels,)), self.new_param_blob((self.channels,)),
                      self.new_param_blob((1,))]
        self._mask_statistics()
        self.x_norm = None

    def _mask_statistics(self) -> None:
        """Caffe: the statistics are not learned; their param specs get (or must have) lr_mult 0."""
        specs = self.param.param
        for i in range(len(self.blobs)):
            if i == len(specs):
                specs.add().lr_mult = 0.0
            elif i < len(specs) and specs[i].lr_mult != 0:
                raise NetDefinitionError(
                    f"layer '{self.name}' (BatchNorm): param {i} has lr_mult {specs[i].lr_mult}; the "
                    f"batch statistics cannot be learned (Caffe requires lr_mult: 0 or no param spec)")

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) >= 2 and shape[1] != self.channels:
            raise ShapeError(f"layer '{self.name}' (BatchNorm): bottom has {shape[1]} channels, the "
                             f"statistics have {self.channels}")
        top[0].reshape_like(bottom[0])
        num = shape[0] if shape else 1
        self.grouped = (num, self.channels, bottom[0].count() // max(num * self.channels, 1))

    def _statistics_view(self, array):
        """``array`` as num x channels x spatial."""
        return array.reshape(self.grouped)

    def forward(self, bottom, top):
        xp = bottom[0].xp
        x = self._statistics_view(bottom[0].data)
        y = self._statistics_view(top[0].data)
        dtype = x.dtype.type
        if self.use_global_stats:
            stored = self.blobs[2].data[0]
            factor = xp.where(stored == 0, dtype(0), dtype(1) / xp.where(stored == 0, dtype(1), stored))
            mean = self.blobs[0].data * factor
            variance = self.blobs[1].data * factor
        else:
            count = self.grouped[0] * self.grouped[2]
            mean = self._channel_mean(x, count)
        xp.subtract(x, mean[None, :, None], out=y)
        if not self.use_global_stats:
            variance = self._channel_mean(y * y, count)
            self._update_running_statistics(mean, variance, count)
        self.std = xp.sqrt(variance + dtype(self.eps))
        y /= self.std[None, :, None]
        if not self.use_global_stats:  # backward needs y; an in-place layer above may overwrite it
            self.x_norm = y.copy()

    @staticmethod
    def _channel_mean(values, count: int):
        """Caffe's order: each image's per-channel sum scaled by 1/count, then summed over images."""
        per_image = values.sum(axis=2)
        per_image *= per_image.dtype.type(1.0 / count)
        return per_image.sum(axis=0)

    def _update_running_statistics(self, mean, variance, count: int) -> None:
        dtype = mean.dtype.type
        fraction = dtype(self.moving_average_fraction)
        sums, squares, factor = (blob.data for blob in self.blobs)
        factor *= fraction
        factor += dtype(1)
        sums *= fraction
        sums += mean
        correction = dtype(count) / dtype(count - 1) if count > 1 else dtype(1)  # in Dtype, as Caffe
        squares *= fraction
        squares += correction * variance

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = self._statistics_view(top[0].diff)
        std = self.std[None, :, None]
        if self.use_global_stats:
            self._statistics_view(bottom[0].diff)[...] = dy / std
            return
        dtype = dy.dtype.type
        y = self.x_norm
        count = self.grouped[0] * self.grouped[2]
        # Caffe's order: (sum(dy * y) * y + sum(dy)), then dy - that / count, then / std
        sum_dy_y = (dy * y).sum(axis=2).sum(axis=0)
        sum_dy = dy.sum(axis=2).sum(axis=0)
        dx = y * sum_dy_y[None, :, None]
        dx += sum_dy[None, :, None]
        dx *= dtype(-1.0 / count)
        dx += dy
        dx /= std
        self._statistics_view(bottom[0].diff)[...] = dx
