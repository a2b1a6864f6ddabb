"""Filter: keep the items whose selector is non-zero (Caffe's FilterLayer).

Bottoms: K data blobs, then the selector (N values: N x 1 x 1 ..., every axis after
the first of size 1); tops: one per data blob. Each top holds, in order, the items of
its bottom whose selector value is non-zero (NaN counts as non-zero, as C++'s ``if``).
As Caffe (src/caffe/layers/filter_layer.cpp): at setup the tops get all N items (its
``first_reshape_``), then every forward sizes them to the selected count, which may
be 0. Backward copies each top diff back to the item it came from and writes 0 to
the others; the selector takes no gradient.

Caffe's backward divides by the top's item count, so with nothing selected it
stops with a division by zero: that case is refused here with an error instead.
Layers after a Filter must be reshaped when the count changes (Caffe reshapes every
layer on every forward).
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register


@register("Filter")
class FilterLayer(Layer):
    num_bottoms = None
    num_tops = None
    in_place_allowed = False
    reshapes_in_forward = True  # the tops hold the selected items: their count follows the selector

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index != self.selector_index

    def layer_setup(self, bottom, top):
        if len(bottom) < 2:
            raise NetDefinitionError(f"layer '{self.name}' (Filter) takes at least 2 bottoms (data blobs, then "
                                     f"the selector), got {len(bottom)}")
        if len(top) != len(bottom) - 1:
            raise NetDefinitionError(f"layer '{self.name}' (Filter): {len(bottom) - 1} data bottom(s) need as many "
                                     f"tops, got {len(top)}")
        self.selector_index = len(bottom) - 1
        self.first_reshape = True
        self.selected = None

    def reshape(self, bottom, top):
        selector = bottom[self.selector_index]
        if selector.num_axes < 1 or any(d != 1 for d in selector.shape[1:]):
            raise ShapeError(f"layer '{self.name}' (Filter): the selector {self.bottom_name(self.selector_index)} "
                             f"must be N x 1 x ... (every axis after the first of size 1), got shape {selector.shape}")
        num = selector.shape[0]
        for i in range(self.selector_index):
            if bottom[i].num_axes < 1 or bottom[i].shape[0] != num:
                raise ShapeError(f"layer '{self.name}' (Filter): bottom {self.bottom_name(i)} of shape "
                                 f"{bottom[i].shape} must have the selector's {num} items in its first axis")
        if self.first_reshape:  # Caffe's first Reshape gives the tops all N items
            self.first_reshape = False
            self._size_tops(bottom, top, num)

    def _size_tops(self, bottom, top, count: int) -> None:
        for blob, source in zip(top, bottom):
            blob.reshape((count,) + source.shape[1:])

    def forward(self, bottom, top):
        xp = bottom[0].xp
        flags = bottom[self.selector_index].data.reshape(-1) != 0
        self.selected = xp.flatnonzero(flags)
        self._size_tops(bottom, top, int(self.selected.shape[0]))
        for blob, source in zip(top, bottom):
            if blob.count():
                xp.take(source.data, self.selected, axis=0, out=blob.data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[self.selector_index]:
            raise NetDefinitionError(f"layer '{self.name}' (Filter) cannot backpropagate to its selector "
                                     f"{self.bottom_name(self.selector_index)} (as in Caffe): give it "
                                     f"propagate_down: false")
        for i, blob in enumerate(top):
            if not propagate_down[i]:
                continue
            if blob.shape[0] == 0:
                raise ShapeError(f"layer '{self.name}' (Filter): the selector {self.bottom_name(self.selector_index)} "
                                 f"selected no item, and Caffe's backward divides by the number selected "
                                 f"(it stops there); select at least one item per batch")
            diff = bottom[i].diff
            diff.fill(0)
            diff[self.selected] = blob.diff
