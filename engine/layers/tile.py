"""Tile: ``tiles`` copies of the bottom one after the other along ``axis`` (the whole
block from ``axis`` on is repeated, like numpy.tile); backward sums the copies' diffs."""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register


@register("Tile")
class TileLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.tile_param
        self.tiles = int(p.tiles)
        if self.tiles < 1:
            raise NetDefinitionError(f"layer '{self.name}' (Tile): tile_param.tiles must be positive, got {self.tiles}")

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if top[0] is bottom[0] and self.tiles != 1:
            raise ShapeError(f"layer '{self.name}' (Tile): {self.tiles} tiles cannot be computed in place "
                             f"(the top is larger than {self.bottom_name(0)})")
        self.axis = bottom[0].canonical_axis(int(self.param.tile_param.axis))
        self.outer, self.inner = bottom[0].count(0, self.axis), bottom[0].count(self.axis)
        top[0].reshape(shape[:self.axis] + (shape[self.axis] * self.tiles,) + shape[self.axis + 1:])

    def forward(self, bottom, top):
        blocks = top[0].data.reshape(self.outer, self.tiles, self.inner)
        blocks[...] = bottom[0].data.reshape(self.outer, 1, self.inner)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            blocks = top[0].diff.reshape(self.outer, self.tiles, self.inner)
            blocks.sum(axis=1, out=bottom[0].diff_to_overwrite().reshape(self.outer, self.inner))
