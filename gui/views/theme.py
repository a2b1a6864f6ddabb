"""Shared look of the views: colour maps, fonts, pens (one place to tune for a projector).

Importing this module sets pyqtgraph's global options the views rely on:
row-major images (a matrix is drawn as written: row i, column j), a white
background with black text (readable when projected) and antialiasing.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QFontDatabase
from PySide6.QtWidgets import QGraphicsItem

pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k", antialias=True)

# Diverging map centred on zero: negative blue, zero white, positive red (ColorBrewer RdBu, reversed).
DIVERGING_STOPS = [
    (0.00, (5, 48, 97)),
    (0.15, (33, 102, 172)),
    (0.30, (67, 147, 195)),
    (0.42, (146, 197, 222)),
    (0.50, (247, 247, 247)),
    (0.58, (244, 165, 130)),
    (0.70, (214, 96, 77)),
    (0.85, (178, 24, 43)),
    (1.00, (103, 0, 31)),
]
DIVERGING = pg.ColorMap([p for p, _ in DIVERGING_STOPS], [c for _, c in DIVERGING_STOPS],
                        name="blue-white-red")
LUT_SIZE = 256

# Text sizes in points: large enough to read from the back of a lecture hall.
TITLE_PT = 13
LABEL_PT = 11
TICK_PT = 10
STATS_PT = 10
COMPACT_TITLE_PT = 10
COMPACT_TICK_PT = 8
FORMULA_PT = 13

TEXT_COLOR = "#1a1a1a"
MUTED_COLOR = "#555555"
PLACEHOLDER_BG = "#f3f3f3"
NAN_COLOR = QColor(0, 200, 0)

# Curves: one colour per series, colour-blind friendly (Okabe-Ito).
CURVE_COLORS = {
    "loss": (153, 153, 153),
    "smoothed_loss": (0, 114, 178),
    "lr": (0, 158, 115),
    "test": [(213, 94, 0), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0)],
}

#: Map titles: (symbol, description).
MAP_TITLES = {
    "W": ("W", "weights"),
    "dW": ("dW", "raw gradient"),
    "db": ("db", "bias gradient"),
    "update": ("V", "update (W −= V)"),
    "a": ("a", "bottom data"),
    "delta": ("δ", "top diff"),
    "delta_down": ("δ_down", "bottom diff"),
}


def map_title(which: str, *, compact: bool = False) -> str:
    """Rich-text title of a map: bold symbol, muted description."""
    symbol, description = MAP_TITLES[which]
    if compact:
        return f"<b>{symbol}</b>"
    return f"<b>{symbol}</b>&nbsp;&nbsp;<span style='color:{MUTED_COLOR}; font-weight:normal'>{description}</span>"


def font(point_size: int, *, bold: bool = False) -> QFont:
    """The UI font at ``point_size``."""
    f = QFont()
    f.setPointSize(point_size)
    f.setBold(bold)
    return f


def mono_font(point_size: int) -> QFont:
    """A fixed-width font for formulas and numbers."""
    f = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    f.setPointSize(point_size)
    return f


def format_number(x: float, digits: int = 4) -> str:
    """A short rendering of a float with ``digits`` significant digits (exponent outside 1e-3..1e4)."""
    if x != x:
        return "nan"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.{digits - 1}e}"


def text_width(text: str, font: QFont) -> int:
    """Width in pixels of ``text`` drawn in ``font``."""
    from PySide6.QtGui import QFontMetrics
    return QFontMetrics(font).horizontalAdvance(text)


def cache_axes(*axes: pg.AxisItem) -> None:
    """Keep each axis as a pixmap, redrawn only when its ticks or size change: a frame
    that changes only the data then repaints an axis as one blit instead of replaying
    every tick label (pyqtgraph replays them on every repaint of the view otherwise)."""
    for axis in axes:
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
