"""A live Caffe ``debug_info``: per layer mean |data|, mean |diff| and the
update/weight ratio (Qt-free rows; the Qt table model lives in widgets.py).

Read after an iteration: a top's data is the forward result, its diff the
gradient that arrived in the backward (for in-place layers, the last writer's),
and a parameter's diff holds the update ΔW the solver applied (Caffe's Update
subtracts diff from data), so ‖ΔW‖/‖W‖ is the step size relative to the weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from engine import backend

METRICS = {"data": "mean |data|", "diff": "mean |diff|", "ratio": "‖ΔW‖ / ‖W‖"}
COLUMNS = ["layer", "type", "top", "mean |data|", "mean |diff|", "param mean |W|", "param mean |ΔW|",
           "‖ΔW‖ / ‖W‖"]


@dataclass
class LayerStats:
    layer: str
    type: str
    top: str
    data_mean_abs: float
    diff_mean_abs: float
    param_mean_abs: float | None
    update_mean_abs: float | None
    update_ratio: float | None

    def values(self) -> list:
        return [self.layer, self.type, self.top, self.data_mean_abs, self.diff_mean_abs,
                self.param_mean_abs, self.update_mean_abs, self.update_ratio]

    def metric(self, key: str) -> float | None:
        return {"data": self.data_mean_abs, "diff": self.diff_mean_abs, "ratio": self.update_ratio}[key]


def _mean_abs(array) -> float:
    a = backend.to_numpy(array)
    return float(numpy.abs(a).mean()) if a.size else 0.0


def _norm(array) -> float:
    a = backend.to_numpy(array).astype(numpy.float64).ravel()
    return float(math.sqrt(a @ a))


def layer_stats(net) -> list[LayerStats]:
    """One row per layer (first top; parameters summed over W and b)."""
    rows = []
    for i, layer in enumerate(net.layers):
        tops = net.tops_of(i)
        top_name = net.top_names[i][0] if net.top_names[i] else ""
        data = _mean_abs(tops[0].data) if tops else 0.0
        diff = _mean_abs(tops[0].diff) if tops else 0.0
        p_mean = u_mean = ratio = None
        if layer.blobs:
            w = numpy.concatenate([backend.to_numpy(b.data).ravel() for b in layer.blobs])
            d = numpy.concatenate([backend.to_numpy(b.diff).ravel() for b in layer.blobs])
            p_mean, u_mean = float(numpy.abs(w).mean()), float(numpy.abs(d).mean())
            w_norm = _norm(w)
            ratio = _norm(d) / w_norm if w_norm > 0 else float("inf")
        rows.append(LayerStats(layer.name, layer.type_name, top_name, data, diff, p_mean, u_mean, ratio))
    return rows


def colour_scale(rows: list[LayerStats], key: str) -> tuple[float, float]:
    """(low, high) of a metric over the layers that have it, on a log10 scale."""
    values = [v for r in rows if (v := r.metric(key)) is not None and v > 0 and math.isfinite(v)]
    if not values:
        return 0.0, 1.0
    logs = [math.log10(v) for v in values]
    low, high = min(logs), max(logs)
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def node_colours(rows: list[LayerStats], key: str) -> dict[str, tuple[int, int, int] | None]:
    """{layer: RGB} on a blue → yellow → red ramp of log10(metric); None where it does not apply."""
    low, high = colour_scale(rows, key)
    colours: dict[str, tuple[int, int, int] | None] = {}
    for row in rows:
        value = row.metric(key)
        if value is None or not math.isfinite(value) or value <= 0:
            colours[row.layer] = None
            continue
        t = (math.log10(value) - low) / (high - low)
        colours[row.layer] = ramp(min(1.0, max(0.0, t)))
    return colours


def ramp(t: float) -> tuple[int, int, int]:
    """Blue (0) → yellow (0.5) → red (1)."""
    stops = [(0.0, (49, 104, 176)), (0.5, (250, 220, 90)), (1.0, (200, 40, 40))]
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            red, green, blue = (int(round(a + (b - a) * f)) for a, b in zip(c0, c1))
            return red, green, blue
    return stops[-1][1]
