"""``caffe.coord_map``: how coordinates of one NetSpec top map onto another's, through
spatial layers, and ``crop(top_from, top_to)``, the Crop layer that aligns them
(as FCNs use it).

A map is ``(axis, scale, shift)``: output coordinate ``y = scale * x + shift`` of
input coordinate ``x`` along the spatial axes from ``axis`` on (``axis`` None for
layers that do not move coordinates). Scale and shift are numpy arrays, one entry
per spatial axis when a layer's parameters differ per axis.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .net_spec import Function, Top
from .net_spec import layers as L

PASS_THROUGH_LAYERS = ["AbsVal", "BatchNorm", "Bias", "BNLL", "Dropout", "Eltwise", "ELU", "Log", "LRN",
                       "Exp", "MVN", "Power", "ReLU", "PReLU", "Scale", "Sigmoid", "Split", "TanH",
                       "Threshold"]

CoordMap = tuple[Any, Any, Any]


class UndefinedMapException(Exception):
    """A layer whose coordinate mapping is not defined (InnerProduct, ...)."""


class AxisMismatchException(Exception):
    """Two maps over different first spatial axes."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def conv_params(fn: Function) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(axis, stride, effective kernel extent, pad) of a Convolution/Pooling/Deconvolution call."""
    params = fn.params.get("convolution_param", fn.params)
    legacy = {"pad_h", "pad_w", "kernel_h", "kernel_w", "stride_h", "stride_w"} & set(fn.params)
    _require(not legacy, f"coordinate maps do not support the _h/_w parameters ({sorted(legacy)})")
    kernel = np.array(params["kernel_size"], ndmin=1)
    dilation = np.array(params.get("dilation", 1), ndmin=1)
    return (params.get("axis", 1), np.array(params.get("stride", 1), ndmin=1),
            (kernel - 1) * dilation + 1, np.array(params.get("pad", 0), ndmin=1))


def crop_params(fn: Function) -> tuple[int, np.ndarray]:
    """(axis, offset) of a Crop call, with Caffe's defaults (axis 2, offset 0)."""
    params = fn.params.get("crop_param", fn.params)
    return params.get("axis", 2), np.array(params.get("offset", 0), ndmin=1)


def coord_map(fn: Function) -> CoordMap:
    """The map from a layer's input coordinates to its output coordinates."""
    kind = fn.type_name
    if kind in ("Convolution", "Pooling", "Im2col"):
        axis, stride, extent, pad = conv_params(fn)
        return axis, 1 / stride, (pad - (extent - 1) / 2) / stride
    if kind == "Deconvolution":
        axis, stride, extent, pad = conv_params(fn)
        return axis, stride, (extent - 1) / 2 - pad
    if kind in PASS_THROUGH_LAYERS:
        return None, 1, 0
    if kind == "Crop":
        axis, offset = crop_params(fn)
        return axis - 1, 1, -offset  # the crop axis is the first cropped one: one past the map's
    raise UndefinedMapException(kind)


def compose(base_map: CoordMap, next_map: CoordMap) -> CoordMap:
    """``next_map`` applied after ``base_map``: scales multiply, the next shift is scaled."""
    axis1, scale1, shift1 = base_map
    axis2, scale2, shift2 = next_map
    if axis1 is None:
        axis = axis2
    elif axis2 is None or axis1 == axis2:
        axis = axis1
    else:
        raise AxisMismatchException(f"maps over axis {axis1} and axis {axis2}")
    return axis, scale1 * scale2, scale1 * shift2 + shift1


def inverse(mapping: CoordMap) -> CoordMap:
    """The map back: output to input coordinates."""
    axis, scale, shift = mapping
    return axis, 1 / scale, -shift / scale


def _mappable_bottoms(top: Top) -> tuple:
    """A layer's inputs that coordinates map through (a Crop's reference input does not)."""
    inputs = top.fn.inputs
    return inputs[:1] if top.fn.type_name == "Crop" else inputs


def _maps_to_ancestors(start: Top, stop_at: dict | None = None):
    """Walk from ``start`` towards the inputs composing maps; returns (maps, meeting top)
    where the meeting top is the first one found in ``stop_at``."""
    maps: dict[Top, CoordMap] = {start: (None, 1, 0)}
    frontier = {start}
    while frontier:
        top = frontier.pop()
        if stop_at is not None and top in stop_at:
            return maps, top
        try:
            step = coord_map(top.fn)
        except UndefinedMapException:
            continue
        for bottom in _mappable_bottoms(top):
            maps[bottom] = compose(maps[top], step)
            frontier.add(bottom)
    return maps, None


def coord_map_from_to(top_from: Top, top_to: Top) -> CoordMap:
    """The map from ``top_from``'s coordinates to ``top_to``'s, through a common ancestor."""
    from_maps, _ = _maps_to_ancestors(top_from)
    to_maps, common = _maps_to_ancestors(top_to, stop_at=from_maps)
    if common is None:
        raise RuntimeError("Could not compute map between tops; are they connected by spatial layers?")
    return compose(to_maps[common], inverse(from_maps[common]))


def crop(top_from: Top, top_to: Top) -> Top:
    """A Crop layer call that crops ``top_from`` to the coordinates of ``top_to``."""
    axis, scale, shift = coord_map_from_to(top_from, top_to)
    _require(bool(np.all(scale == 1)), f"scale mismatch on crop (a = {scale})")
    _require(bool(np.all(shift <= 0)), f"cannot crop negative offset (b = {shift})")
    _require(bool(np.all(np.round(shift) == shift)), f"cannot crop noninteger offset (b = {shift})")
    return L.Crop(top_from, top_to,
                  crop_param=dict(axis=axis + 1, offset=[int(v) for v in -np.round(np.atleast_1d(shift))]))
