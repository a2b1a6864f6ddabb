"""Weights as images (Qt-free): each output's weights over an image input, as a tile.

For an InnerProduct layer whose input is an image (C×H×W, e.g. the 8×8 digits)
row n of W is reshaped to C×H×W; for a Convolution layer each filter is
C_in×kh×kw. Tiles are laid out in a grid; a tile's channels sit side by side;
NaN separates them (drawn as the background).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from engine import backend


@dataclass
class Mosaic:
    layer: str
    image: numpy.ndarray          # the mosaic, NaN between tiles
    tiles: numpy.ndarray          # (n, C, h, w): the tiles themselves
    grid: tuple[int, int]         # (rows, cols) of tiles
    pad: int

    def tile_origin(self, n: int, channel: int = 0) -> tuple[int, int]:
        """(row, col) of the top-left pixel of channel ``channel`` of tile ``n`` in ``image``."""
        _, channels, h, w = self.tiles.shape
        r, c = divmod(n, self.grid[1])
        return r * (h + self.pad) + self.pad, c * (channels * (w + self.pad)) + channel * (w + self.pad) + self.pad


def _input_image_shape(net, index: int) -> tuple[int, ...] | None:
    bottom = net.bottoms_of(index)[0]
    layer = net.layers[index]
    axis = getattr(layer, "axis", 1)
    shape = bottom.shape[axis:]
    if len(shape) == 3:
        return shape
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side == shape[0] and side >= 4:
            return (1, side, side)
    return None


def image_layers(net) -> list[str]:
    """Layers whose weights can be shown as images."""
    names = []
    for i, layer in enumerate(net.layers):
        if layer.type_name == "Convolution" and layer.blobs and layer.blobs[0].num_axes == 4:
            names.append(layer.name)
        elif layer.type_name == "InnerProduct" and _input_image_shape(net, i) is not None:
            names.append(layer.name)
    return names


def weight_tiles(net, layer: str, pad: int = 1) -> Mosaic:
    """The mosaic of ``layer``'s weights (see the module doc)."""
    i = net.layer_index(layer)
    obj = net.layers[i]
    W = backend.to_numpy(obj.blobs[0].data).astype(numpy.float32)
    if obj.type_name == "Convolution":
        tiles = W
    else:
        shape = _input_image_shape(net, i)
        if shape is None:
            raise ValueError(f"layer '{layer}': its input is not an image")
        rows = W.T if getattr(obj, "transpose", False) else W
        tiles = rows.reshape((rows.shape[0],) + tuple(shape))
    n, channels, h, w = tiles.shape
    cols = math.ceil(math.sqrt(n))
    grid = (math.ceil(n / cols), cols)
    height = grid[0] * (h + pad) + pad
    width = grid[1] * channels * (w + pad) + pad
    image = numpy.full((height, width), numpy.nan, dtype=numpy.float32)
    mosaic = Mosaic(layer, image, tiles, grid, pad)
    for k in range(n):
        for c in range(channels):
            top, left = mosaic.tile_origin(k, c)
            image[top:top + h, left:left + w] = tiles[k, c]
    return mosaic
