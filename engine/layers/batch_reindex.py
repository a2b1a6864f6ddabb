"""BatchReindex: pick, reorder or repeat items of a batch (Caffe's BatchReindexLayer).

Bottom 0 is the data (N x ...), bottom 1 a 1-axis blob of M indices into its first
axis; the top (M x ...) holds item ``index[m]`` of the data at row ``m``. As Caffe
(src/caffe/layers/batch_reindex_layer.cpp) an index is truncated to an integer
(``static_cast<int>``) after it is checked to lie in ``[0, N)``. Backward adds each top
row's diff into the item it came from (repeated indices add up; items never picked
get 0). The indices take no gradient.
"""
from __future__ import annotations

from ..errors import LabelError, NetDefinitionError, ShapeError
from ..layer import Layer, register
from .embed import _scatter_add


@register("BatchReindex")
class BatchReindexLayer(Layer):
    num_bottoms = 2
    num_tops = 1
    in_place_allowed = False

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index != 1

    def reshape(self, bottom, top):
        if bottom[1].num_axes != 1:
            raise ShapeError(f"layer '{self.name}' (BatchReindex): the indices {self.bottom_name(1)} must have "
                             f"one axis, got shape {bottom[1].shape}")
        if bottom[0].num_axes < 1:
            raise ShapeError(f"layer '{self.name}' (BatchReindex): the data {self.bottom_name(0)} needs a "
                             f"first (batch) axis, got shape {bottom[0].shape}")
        top[0].reshape(bottom[1].shape[:1] + bottom[0].shape[1:])

    def _indices(self, bottom):
        """The indices as integers (truncated as Caffe); LabelError naming the first out of range."""
        xp, values = bottom[0].xp, bottom[1].data
        num = bottom[0].shape[0]
        bad = (values < 0) | (values >= num) | (values != values)
        if values.size and bad.any().item():  # one explicit device->host read
            value = values[bad][0].item()
            raise LabelError(f"layer '{self.name}' (BatchReindex): index {value:g} in {self.bottom_name(1)} "
                             f"is outside the batch of {num} item(s) of {self.bottom_name(0)} (as Caffe's "
                             f"check: 0 <= index < {num})")
        return values.astype(xp.intp)

    def forward(self, bottom, top):
        index = self._indices(bottom)
        if top[0].count() == 0:
            return
        bottom[0].xp.take(bottom[0].data, index, axis=0, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if len(propagate_down) > 1 and propagate_down[1]:
            raise NetDefinitionError(f"layer '{self.name}' (BatchReindex) cannot backpropagate to its indices "
                                     f"{self.bottom_name(1)} (as in Caffe): give it propagate_down: false")
        if not propagate_down[0]:
            return
        diff = bottom[0].diff
        diff.fill(0)
        if top[0].count() == 0:
            return
        num = bottom[0].shape[0]
        index = bottom[1].data.astype(bottom[0].xp.intp)
        _scatter_add(bottom[0].xp, diff.reshape(num, -1), index, top[0].diff.reshape(index.shape[0], -1))
