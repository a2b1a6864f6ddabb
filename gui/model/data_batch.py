"""The batch a data layer delivered in the last forward (Qt-free).

:func:`data_batch` copies a data layer's top blobs — the data after its
``transform_param`` (scale, mean, crop, mirror) and the labels — for the data
view: images (N×C×H×W, or flat rows that are square images) as tiles with
their labels, 2-D points (the spiral) as a scatter, other flat rows as a table.
It reads what the engine's forward wrote into the blobs; nothing is re-read
from the source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy

from engine.backend import to_numpy

#: Images of the batch shown at most (the rest are counted, not copied).
MAX_TILES = 64
#: Rows of a table (flat data that is neither points nor images).
MAX_ROWS = 64
#: Data layer types (any layer without bottoms whose type ends in "Data", and Input).
DATA_TYPES = ("Data", "ImageData", "HDF5Data", "MemoryData", "BuiltinData", "DummyData", "WindowData", "Input")

IMAGES, POINTS, TABLE = "images", "points", "table"


@dataclass
class DataBatch:
    """One data layer's current batch, as the data view draws it.

    ``kind``: ``images`` (``images`` is n×C×H×W, the first :data:`MAX_TILES`
    samples), ``points`` (``values`` n×2) or ``table`` (``values`` n×D, the first
    :data:`MAX_ROWS` rows). ``labels``: one per sample shown (None without a
    label top). ``values`` / ``images`` are exactly the top blob's data.
    """

    layer: str
    type: str
    kind: str
    data_name: str
    data_shape: tuple
    batch_size: int
    label_name: str = ""
    images: numpy.ndarray | None = None
    values: numpy.ndarray | None = None
    labels: numpy.ndarray | None = None
    reshaped: str = ""             # "64 → 1×8×8" when flat rows are drawn as images
    transform: list[str] = field(default_factory=list)
    channel_order: str = ""        # "BGR" for images Caffe decoded (Data, ImageData)

    @property
    def shown(self) -> int:
        array = self.images if self.kind == IMAGES else self.values
        return 0 if array is None else int(array.shape[0])

    def label_text(self, k: int) -> str:
        """The label of sample ``k`` as text ('' without labels): integers without a point."""
        if self.labels is None or k >= self.labels.shape[0]:
            return ""
        value = self.labels[k]
        if value.size != 1:
            return "[" + ", ".join(_number(float(v)) for v in value.reshape(-1)[:4]) + "]"
        return _number(float(value.reshape(-1)[0]))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e9 else f"{value:.3g}"


def is_data_layer(net, index: int) -> bool:
    """A layer that feeds the net: no bottoms and a data type."""
    layer = net.layers[index]
    return not net.bottom_names[index] and (layer.type_name in DATA_TYPES or layer.type_name.endswith("Data"))


def data_layers(net) -> list[str]:
    return [layer.name for i, layer in enumerate(net.layers) if is_data_layer(net, i)]


def _square_image(width: int) -> tuple[int, int, int] | None:
    side = math.isqrt(width)
    return (1, side, side) if side * side == width and side >= 4 else None


def _transform_lines(layer) -> list[str]:
    """The transform_param that was applied, in words (empty when none)."""
    param = layer.param
    if not param.HasField("transform_param"):
        return []
    t = param.transform_param
    lines = []
    if t.HasField("scale"):
        lines.append(f"scale {t.scale:g}")
    if t.mean_file:
        lines.append(f"mean file {t.mean_file}")
    if len(t.mean_value):
        lines.append("mean " + ", ".join(f"{v:g}" for v in t.mean_value))
    if t.crop_size:
        lines.append(f"crop {t.crop_size}")
    if t.mirror:
        lines.append("mirror")
    if t.force_gray:
        lines.append("force gray")
    if t.force_color:
        lines.append("force color")
    return lines


def data_batch(net, name: str) -> DataBatch:
    """Host copies of data layer ``name``'s first top (the data) and second top (the labels)."""
    i = net.layer_index(name)
    layer = net.layers[i]
    tops, top_names = net.tops_of(i), net.top_names[i]
    data = tops[0]
    shape = tuple(data.shape)
    batch = shape[0] if shape else 1
    result = DataBatch(layer=name, type=layer.type_name, kind=TABLE, data_name=top_names[0],
                       data_shape=shape, batch_size=batch, transform=_transform_lines(layer))
    if layer.type_name in ("Data", "ImageData") and len(shape) == 4 and shape[1] == 3:
        result.channel_order = "BGR"
    array = to_numpy(data.data)
    if len(shape) == 4:
        result.kind = IMAGES
        result.images = numpy.array(array[:MAX_TILES], copy=True)
    elif len(shape) == 3:
        result.kind = IMAGES
        result.images = numpy.array(array[:MAX_TILES, :, None, :], copy=True)
    elif len(shape) == 2 and shape[1] == 2:
        result.kind = POINTS
        result.values = numpy.array(array, copy=True)
    elif len(shape) == 2 and _square_image(shape[1]) is not None:
        c, h, w = _square_image(shape[1])  # type: ignore[misc]
        result.kind = IMAGES
        result.images = numpy.array(array[:MAX_TILES].reshape(-1, c, h, w), copy=True)
        result.reshaped = f"{shape[1]} → {c}×{h}×{w}"
    else:
        result.values = numpy.array(array.reshape(batch, -1)[:MAX_ROWS], copy=True)
    if len(tops) > 1 and tops[1].num_axes and tops[1].shape[0] == batch:
        result.label_name = top_names[1]
        labels = to_numpy(tops[1].data).reshape(batch, -1)
        result.labels = numpy.array(labels[:result.shown], copy=True)
    return result


def display_images(batch: DataBatch) -> numpy.ndarray:
    """The shown images as n×H×W×3 uint8 for drawing: one channel as grey, three as colour
    (BGR turned to RGB where Caffe decoded them), others by their first channel; scaled
    from the batch's min..max (the transformed values may be centred or scaled)."""
    images = batch.images if batch.images is not None else numpy.zeros((0, 1, 1, 1), numpy.float32)
    if images.shape[1] == 3:
        rgb = images[:, ::-1] if batch.channel_order == "BGR" else images
    else:
        rgb = numpy.repeat(images[:, :1], 3, axis=1)
    finite = rgb[numpy.isfinite(rgb)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    scaled = numpy.clip((numpy.nan_to_num(rgb, nan=lo) - lo) / span * 255.0 + 0.5, 0, 255)
    return numpy.ascontiguousarray(scaled.astype(numpy.uint8).transpose(0, 2, 3, 1))
