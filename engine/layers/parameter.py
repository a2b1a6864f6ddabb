"""Parameter: a learnable blob of ``parameter_param { shape }`` offered as the top.

As Caffe's ParameterLayer (include/caffe/layers/parameter_layer.hpp): no bottoms, one
top, no filler: the blob starts as zeros (Caffe's freshly reshaped Blob) unless a
.caffemodel gives its values. Caffe's top *shares* the blob's data and diff, so

- forward: the top holds the parameter's values (copied here);
- backward: the parameter's diff *is* the top diff, which the layers above write
  (overwrite, not add) in their backward. With ``iter_size`` > 1 Caffe's parameter
  therefore keeps only the last pass's gradient (divided by iter_size by the solver);
  copying the top diff over the parameter diff reproduces that.
"""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import Layer, register


@register("Parameter")
class ParameterLayer(Layer):
    num_bottoms = 0
    num_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.parameter_param
        shape = tuple(int(d) for d in p.shape.dim)
        if any(d < 0 for d in shape):
            raise NetDefinitionError(f"layer '{self.name}' (Parameter): parameter_param.shape {list(shape)} "
                                     f"has a negative dimension")
        self.shape = shape
        self.blobs = [self.new_param_blob(shape)]  # zeros, as Caffe's new Blob

    def reshape(self, bottom, top):
        top[0].reshape(self.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.blobs[0].data

    def backward(self, top, propagate_down, bottom):
        if self.param_propagate_down[0]:
            self.blobs[0].diff = top[0].diff
