"""ArgMax: the indices (and with ``out_max_val`` the values) of the ``top_k`` largest
entries, per sample over everything after axis 0, or along ``axis`` when it is given.

Without ``axis`` the top is N x 1 x top_k (N x 2 x top_k with ``out_max_val``: indices,
then values; at least 3 axes, trailing 1s as Caffe). With ``axis`` the top is the bottom's
shape with ``top_k`` on that axis, holding values if ``out_max_val`` else indices.
Ties rank the larger index first (Caffe's partial_sort of (value, index) pairs).
No backward (Caffe's is not implemented).
"""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import Layer, register


@register("ArgMax")
class ArgMaxLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def allow_force_backward(self, bottom_index: int) -> bool:
        return False

    def layer_setup(self, bottom, top):
        p = self.param.argmax_param
        self.out_max_val = bool(p.out_max_val)
        self.top_k = int(p.top_k)
        self.has_axis = p.HasField("axis")
        if self.top_k < 1:
            raise NetDefinitionError(f"layer '{self.name}' (ArgMax): top_k must be at least 1, got {self.top_k}")
        if self.has_axis:
            self.axis = bottom[0].canonical_axis(int(p.axis))
            size, what = bottom[0].shape[self.axis], f"axis {self.axis}"
        else:
            size, what = bottom[0].count(1), "the flattened sample"
        if self.top_k > size:
            raise NetDefinitionError(f"layer '{self.name}' (ArgMax): top_k {self.top_k} exceeds the {size} "
                                     f"entries of {what} of {self.bottom_name(0)} {bottom[0].shape}")

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if self.has_axis:
            top[0].reshape(shape[:self.axis] + (self.top_k,) + shape[self.axis + 1:])
        else:
            top_shape = [1] * max(len(shape), 3)
            top_shape[0], top_shape[1], top_shape[2] = shape[0], 2 if self.out_max_val else 1, self.top_k
            top[0].reshape(top_shape)

    def forward(self, bottom, top):
        xp, data = bottom[0].xp, bottom[0].data
        if self.has_axis:
            values = xp.moveaxis(data, self.axis, -1)
        else:
            values = data.reshape(data.shape[0], -1)
        size = values.shape[-1]
        # descending by value, ties by the larger index: sort the reversed axis stably
        order = xp.argsort(-values[..., ::-1], axis=-1, kind="stable")[..., :self.top_k]
        index = (size - 1) - order
        if self.has_axis:
            result = xp.take_along_axis(values, index, axis=-1) if self.out_max_val else index
            top[0].data[...] = xp.moveaxis(result, -1, self.axis)
            return
        out = top[0].data.reshape(data.shape[0], -1, self.top_k)
        out[:, 0, :] = index
        if self.out_max_val:
            out[:, 1, :] = xp.take_along_axis(values, index, axis=-1)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            raise NetDefinitionError(f"layer '{self.name}' (ArgMax) has no backward (Caffe's is not implemented)")
