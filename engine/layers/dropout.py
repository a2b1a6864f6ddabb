"""Dropout: TRAIN keeps a unit with probability 1-p and scales it by 1/(1-p); TEST is identity.

The TRAIN mask is Caffe's CPU mask bit for bit: ``caffe_rng_bernoulli`` with the
double ``p = 1 - dropout_ratio``, one draw per element in memory order, from
Caffe's stream (:func:`engine.rng.caffe_stream`, the one the fillers draw from),
and ``scale = Dtype(1 / (1 - ratio))``. On a GPU the mask is still drawn on the
host from that stream and sent with one explicit host-to-device copy per forward
(``backend.to_device``), so CPU and GPU runs with one seed drop the same units
(Caffe's own GPU path draws with cuRAND instead).
"""
import numpy

from .. import backend, rng
from ..errors import NetDefinitionError
from ..layer import Layer, register

TRAIN = 0


@register("Dropout")
class DropoutLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        self.ratio = float(self.param.dropout_param.dropout_ratio)  # Caffe's Dtype threshold_, as a double
        if not 0.0 <= self.ratio < 1.0:
            raise NetDefinitionError(
                f"layer '{self.name}': dropout_ratio must be in [0, 1), got {self.ratio}")
        self.scale = 1.0 / (1.0 - self.ratio)

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        x, y = bottom[0].data, top[0].data
        if self.phase != TRAIN:
            if y is not x:
                y[...] = x
            return
        keep = rng.caffe_stream().bernoulli(x.size, 1.0 - self.ratio, numpy.float64).reshape(x.shape)
        # x * mask * scale in Dtype equals x * (mask * scale): the mask is 0 or 1.
        scaled_mask = keep.astype(x.dtype) * x.dtype.type(self.scale)
        self.mask = backend.to_device(scaled_mask, bottom[0].device)  # the one host->device copy
        bottom[0].xp.multiply(x, self.mask, out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.phase != TRAIN:
            if bottom[0].diff is not top[0].diff:
                bottom[0].diff[...] = top[0].diff
            return
        bottom[0].xp.multiply(top[0].diff, self.mask, out=bottom[0].diff)
