"""LayerInspector: the inspector for a layer other than InnerProduct.

Draws a :class:`gui.model.param_layer_frames.LayerFrame` (made by the worker
from what the engine computed): the parameter blobs with their raw gradient and
update (convolution filters as tiles, one per output filter, its input channels
side by side), the input and output feature maps of one chosen sample (the
spin box, or the ← / → keys), δ arriving and δ sent down, and beside them the
seed's products in im2col form with live shapes. A layer without parameters
says so in its notes line.
"""
from __future__ import annotations

import html
from typing import Callable

import numpy
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gui.model.param_layer_frames import (
    LayerFrame,
    Mosaic,
    ParamMap,
    best_columns,
    filter_tiles,
    map_tiles,
    mosaic,
)
from gui.views import theme

#: (tile, channel, y, x, value) -> what that pixel is
Describe = Callable[[int, int, int, int, float], str]
FEATURE_MAPS = ("input", "output", "delta", "delta_down")
FEATURE_TITLES = {"input": ("a[n]", "input"), "output": ("y[n]", "output"),
                  "delta": ("δ[n]", "arriving"), "delta_down": ("δ_down[n]", "sent down")}
SIDE_WIDTH = 330
VECTOR_HEIGHT = 124  # most height of the map of a vector parameter (b, γ, β, slopes, statistics)


def _title(symbol: str, description: str) -> str:
    return (f"<b>{html.escape(symbol)}</b>&nbsp;&nbsp;<span style='color:{theme.MUTED_COLOR}; "
            f"font-weight:normal'>{html.escape(description)}</span>")


def _as_tiles(array: numpy.ndarray, filters: bool) -> numpy.ndarray:
    """Any array as (n, c, h, w) tiles: filter banks one tile per filter, one sample's
    maps one tile per channel, vectors and matrices as one tile."""
    tiles = filter_tiles(array) if filters else map_tiles(array)
    return tiles if tiles is not None else _one_tile(array)


def _one_tile(array: numpy.ndarray) -> numpy.ndarray:
    """A vector as one row, anything else as one matrix (rows = the first axis)."""
    flat = array.reshape(1, -1) if array.ndim < 2 else array.reshape(array.shape[0], -1)
    return flat[None, None, :, :]


def _param_tiles(array: numpy.ndarray, filters: bool) -> numpy.ndarray:
    """A parameter: a filter bank one tile per filter; a vector or a weight matrix (an
    LSTM's W_xc, an Embed's table) one tile, rows and columns as stored."""
    return _as_tiles(array, True) if filters else _one_tile(array)



class _NoteLabel(QLabel):
    """A word-wrapped note that does not ask its layouts for height-for-width sizing:
    under it Qt's box layouts stop honouring the maps' minimum heights (rows overlap)."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt naming)
        return False

class TileMapView(QWidget):
    """A titled map of tiles (blue < 0 < red, grey between tiles), colour levels ±max|x|,
    a statistics line and a hover read-out."""

    def __init__(self, title: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._mosaic: Mosaic | None = None
        self._note = ""
        self._describe: Describe | None = None
        self._extent = 1.0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        self._title = QLabel(title)
        self._title.setTextFormat(Qt.TextFormat.RichText)
        self._title.setFont(theme.font(theme.LABEL_PT, bold=True))
        self._title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self._title)
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.ci.setContentsMargins(0, 0, 0, 0)
        self._view = pg.ViewBox(enableMenu=False, invertY=True, lockAspect=True)
        self._view.setMouseEnabled(x=False, y=False)
        self._view.setBackgroundColor("#b4b4b4")
        self._image = pg.ImageItem(axisOrder="row-major")
        self._image.setLookupTable(theme.DIVERGING.getLookupTable(nPts=theme.LUT_SIZE))
        self._view.addItem(self._image)
        self._graphics.ci.addItem(self._view)
        self._graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._placeholder = _NoteLabel()
        self._placeholder.setWordWrap(True)
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setFont(theme.font(theme.STATS_PT))
        self._placeholder.setStyleSheet(f"background: {theme.PLACEHOLDER_BG}; color: {theme.MUTED_COLOR};"
                                        " border: 1px dashed #bbb;")
        self._stack = QStackedWidget()
        self._stack.addWidget(self._graphics)
        self._stack.addWidget(self._placeholder)
        layout.addWidget(self._stack, 1)
        self._stats = QLabel(" ")
        self._stats.setFont(theme.font(theme.STATS_PT))
        self._stats.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        layout.addWidget(self._stats)
        self._stats_text = ""
        # The map itself keeps ~84 px; the title and statistics come on top (a widget minimum
        # would let the layout squeeze them over the next row's title).
        self._stack.setMinimumSize(116, 84)

    def set_title(self, title: str) -> None:
        if self._title.text() != title:
            self._title.setText(title)

    def title_text(self) -> str:
        return self._title.text()

    def set_tiles(self, tiles: numpy.ndarray, *, describe: Describe | None = None, note: str = "") -> None:
        """Draw ``tiles`` (n, c, h, w), as many per row as make them largest in the view."""
        size = self._graphics.size()
        laid_out = mosaic(tiles, columns=best_columns(tiles.shape, max(1, size.width()), max(1, size.height())))
        self._note = note
        finite = laid_out.tiles[numpy.isfinite(laid_out.tiles)]
        extent = float(numpy.abs(finite).max()) if finite.size else 0.0
        self._extent = extent if extent > 0 else 1.0
        shape_changed = self._mosaic is None or self._mosaic.image.shape != laid_out.image.shape
        self._mosaic, self._describe = laid_out, describe
        self._image.setImage(laid_out.image, autoLevels=False, levels=(-self._extent, self._extent))
        if shape_changed:
            self._view.autoRange(padding=0.01)
        n, c, h, w = laid_out.tiles.shape
        per = f"{c}×{h}×{w}" if c > 1 else f"{h}×{w}"
        count = f"{n}× {per}" if n > 1 else f"{per}"
        self._stats_text = f"±{theme.format_number(extent)}   {count}" + (f"   {note}" if note else "")
        self._stats.setText(self._stats_text)
        if self._stack.currentIndex() != 0:
            self._stack.setCurrentIndex(0)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        if self._mosaic is not None:  # lay the same tiles out for the new shape
            size = self._graphics.size()
            columns = best_columns(self._mosaic.tiles.shape, max(1, size.width()), max(1, size.height()))
            if columns != self._mosaic.grid[1]:
                self.set_tiles(self._mosaic.tiles, describe=self._describe, note=self._note)

    def set_placeholder(self, text: str) -> None:
        self._mosaic = None
        self._placeholder.setText(text)
        self._stack.setCurrentIndex(1)
        self._stats_text = ""
        self._stats.setText(" ")

    def is_placeholder(self) -> bool:
        return self._stack.currentIndex() == 1

    def placeholder_text(self) -> str:
        return self._placeholder.text() if self.is_placeholder() else ""

    def tiles(self) -> numpy.ndarray | None:
        """The tiles drawn now (None while a placeholder shows)."""
        return None if self._mosaic is None else self._mosaic.tiles

    def mosaic(self):
        return self._mosaic

    def stats_text(self) -> str:
        return self._stats_text

    def describe_pixel(self, row: int, col: int) -> str:
        """The hover text of pixel (row, col) of the drawn image ('' between tiles)."""
        if self._mosaic is None:
            return ""
        where = self._mosaic.locate(row, col)
        if where is None:
            return ""
        tile, channel, y, x = where
        value = float(self._mosaic.tiles[tile, channel, y, x])
        text = f"{value:.6g}"
        if self._describe is not None:
            text = f"{self._describe(tile, channel, y, x, value)} = {text}"
        return text

    def _on_mouse_moved(self, scene_pos) -> None:
        if self._mosaic is None:
            return
        point = self._image.mapFromScene(scene_pos)
        text = self.describe_pixel(int(numpy.floor(point.y())), int(numpy.floor(point.x())))
        self._stats.setText(text or self._stats_text)


class LayerInspector(QWidget):
    """The inspector page for any layer that is not an InnerProduct (see the module doc)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._frame: LayerFrame | None = None
        self._sample = 0
        self._param_views: list[tuple[TileMapView, TileMapView, TileMapView]] = []
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        header = QHBoxLayout()
        self._heading = QLabel("Select a layer in the graph")
        self._heading.setFont(theme.font(theme.TITLE_PT, bold=True))
        self._shapes = QLabel("")
        self._shapes.setFont(theme.font(theme.LABEL_PT))
        self._shapes.setStyleSheet(f"color: {theme.MUTED_COLOR};")
        sample_label = QLabel("sample n:")
        sample_label.setFont(theme.font(theme.LABEL_PT))
        self.sample_box = QSpinBox()
        self.sample_box.setFont(theme.font(theme.LABEL_PT))
        self.sample_box.setToolTip("Which sample of the batch the feature maps show (← / → change it)")
        self.sample_box.valueChanged.connect(self.set_sample)
        self._of = QLabel("")
        self._of.setFont(theme.font(theme.LABEL_PT))
        for label in (self._heading, self._shapes):
            header.addWidget(label)
        header.addStretch(1)
        for widget in (sample_label, self.sample_box, self._of):
            header.addWidget(widget)
        outer.addLayout(header)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setFont(theme.font(theme.LABEL_PT))
        self.notes.setStyleSheet("QLabel { background: #FFF6D5; border: 1px solid #E5D38A; border-radius: 3px;"
                                 " padding: 3px; }")
        self.notes.hide()
        outer.addWidget(self.notes)
        body = QHBoxLayout()
        maps_host = QWidget()
        self._maps_layout = QVBoxLayout(maps_host)
        self._maps_layout.setContentsMargins(0, 0, 0, 0)
        self._params_host = QWidget()
        self._params_grid = QGridLayout(self._params_host)
        self._params_grid.setContentsMargins(0, 0, 0, 0)
        self._params_grid.setSpacing(4)
        for c in range(3):
            self._params_grid.setColumnStretch(c, 1)
        self._maps_layout.addWidget(self._params_host, 3)
        features = QHBoxLayout()
        self.feature_views: dict[str, TileMapView] = {}
        for which in FEATURE_MAPS:
            view = TileMapView(_title(*FEATURE_TITLES[which]))
            self.feature_views[which] = view
            features.addWidget(view, 1)
        self._maps_layout.addLayout(features, 4)
        body.addWidget(maps_host, 1)
        self.formula = QLabel("")
        self.formula.setWordWrap(True)
        self.formula.setTextFormat(Qt.TextFormat.RichText)
        self.formula.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.formula.setFont(theme.font(theme.STATS_PT))
        self.formula.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        side = QScrollArea()
        side.setWidgetResizable(True)
        side.setWidget(self.formula)
        side.setMinimumWidth(200)
        side.setMaximumWidth(SIDE_WIDTH)
        body.addWidget(side)
        outer.addLayout(body, 1)

    # ---------------------------------------------------------------- public
    def set_frame(self, frame: LayerFrame) -> None:
        """Show ``frame`` (a new layer or a new iteration of the same one)."""
        self._frame = frame
        num = min([frame.num] + [a.shape[0] for a in (frame.input, frame.output) if a is not None and a.ndim])
        top = max(0, num - 1)
        if self.sample_box.maximum() != top:
            self.sample_box.blockSignals(True)
            self.sample_box.setMaximum(top)
            self.sample_box.blockSignals(False)
        self._sample = min(self._sample, top)
        shown = f"of {frame.num}" + (f" (first {num} kept)" if num < frame.num else "")
        self._of.setText(shown)
        self._heading.setText(f"{frame.layer}  ({frame.type})")
        self._shapes.setText(f"{frame.bottom_name or '—'} {_shape(frame.bottom_shape)} → "
                             f"{frame.top_name or '—'} {_shape(frame.top_shape)}")
        self.notes.setText("\n".join(frame.notes))
        self.notes.setVisible(bool(frame.notes))
        self._show_params(frame)
        self._show_features()
        self.formula.setText(formula_html(frame))

    def frame(self) -> LayerFrame | None:
        return self._frame

    def show_waiting(self, name: str) -> None:
        """``name`` was selected: say so until its arrays arrive with the next frame."""
        if self._frame is None or self._frame.layer != name:
            self._heading.setText(f"{name}: waiting for its arrays…")

    def set_sample(self, n: int) -> None:
        """Show sample ``n`` of the batch in the feature maps."""
        n = max(0, min(int(n), self.sample_box.maximum()))
        self._sample = n
        if self.sample_box.value() != n:
            self.sample_box.setValue(n)  # calls back here once
            return
        self._show_features()

    def sample(self) -> int:
        return self._sample

    def param_views(self) -> dict[str, tuple[TileMapView, TileMapView, TileMapView]]:
        """{param name: (value, gradient, update) views} on screen now."""
        if self._frame is None:
            return {}
        return {p.name: views for p, views in zip(self._frame.params, self._param_views)}

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.key() in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.set_sample(self._sample + 1)
        elif event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.set_sample(self._sample - 1)
        else:
            super().keyPressEvent(event)

    # ---------------------------------------------------------------- private
    def _ensure_param_rows(self, count: int) -> None:
        while len(self._param_views) < count:
            r = len(self._param_views)
            row = (TileMapView(), TileMapView(), TileMapView())
            for c, view in enumerate(row):
                self._params_grid.addWidget(view, r, c)
            self._param_views.append(row)
        for r, row in enumerate(self._param_views):
            for view in row:
                view.setVisible(r < count)

    def _show_params(self, frame: LayerFrame) -> None:
        self._ensure_param_rows(len(frame.params))
        self._params_host.setVisible(bool(frame.params))
        big = [p.data.ndim >= 3 for p in frame.params]
        for r, p in enumerate(frame.params):
            self._params_grid.setRowStretch(r, 3 if big[r] else 1)
            value, grad, update = self._param_views[r]
            for view in (value, grad, update):  # vectors (b, γ, slopes, statistics) stay short
                view.setMaximumHeight(16777215 if big[r] else VECTOR_HEIGHT)
            grad.setVisible(not p.statistics)  # statistics have neither gradient nor update
            update.setVisible(not p.statistics)
            span = 3 if p.statistics else 1
            position = self._params_grid.getItemPosition(self._params_grid.indexOf(value))
            if position[3] != span:  # type: ignore[index]  # (row, column, row span, column span)
                self._params_grid.removeWidget(value)
                self._params_grid.addWidget(value, r, 0, 1, span)
            filters = p.data.ndim >= 3
            describe = _filter_meaning(p) if filters else _vector_meaning(p)
            note = _channels_note(p) if filters else ""
            value.set_title(_title(p.name, _shape(p.shape) + ("  statistic, lr_mult 0" if p.statistics else "")))
            value.set_tiles(_param_tiles(p.data, filters), describe=describe, note=note)
            grad.set_title(_title(f"d{p.name.split()[0]}", "raw gradient"))
            update.set_title(_title(f"V {p.name.split()[0]}", "update applied"))
            for view, array, what in ((grad, p.grad, "gradient"), (update, p.update, "update")):
                if array is not None and not p.statistics:
                    view.set_tiles(_param_tiles(array, filters), describe=describe, note=note)
                else:
                    view.set_placeholder(_param_missing(frame, p, what))

    def _show_features(self) -> None:
        frame = self._frame
        if frame is None:
            return
        n = self._sample
        for which, view in self.feature_views.items():
            sample = frame.sample(which, n)
            if sample is None:
                view.set_placeholder(frame.missing.get(which, f"no {which} for this layer"))
                continue
            base = {"input": frame.bottom_name, "output": frame.top_name,
                    "delta": frame.top_name, "delta_down": frame.bottom_name}[which]
            symbol, description = FEATURE_TITLES[which]
            view.set_title(_title(symbol.replace("[n]", f"[{n}]"), f"{description} '{base}'"))
            view.set_tiles(_as_tiles(sample, False), describe=_map_meaning(which, n, sample.ndim))


def _shape(shape) -> str:
    return "[" + "×".join(str(d) for d in shape) + "]" if len(shape) else "scalar"


def _channels_note(p: ParamMap) -> str:
    channels = p.data.shape[1]
    shown = min(channels, filter_tiles(p.data).shape[1])  # type: ignore[union-attr]
    return f"(first {shown} of {channels} input channels)" if shown < channels else ""


def _param_missing(frame: LayerFrame, p: ParamMap, what: str) -> str:
    if p.statistics:
        return f"{p.name}: a statistic, not learned (lr_mult 0): no {what}"
    if frame.pending_backward:
        return f"the {what} of this iteration comes at {frame.layer}'s backward (step on)"
    if p.lr_mult == 0:
        return f"lr_mult 0: {p.name} is not learned"
    if what == "update":
        return "The update V appears after the update stage of the iteration"
    return f"d{p.name} appears after the layer's first backward pass"


def _filter_meaning(p: ParamMap) -> Describe:
    return lambda t, c, y, x, v: f"{p.name}[{t},{c},{y},{x}] (filter {t}, input channel {c})"


def _vector_meaning(p: ParamMap) -> Describe:
    if p.data.ndim >= 2:
        return lambda t, c, y, x, v: f"{p.name}[{y},{x}]"
    return lambda t, c, y, x, v: f"{p.name}[{x}]"


def _map_meaning(which: str, n: int, ndim: int) -> Describe:
    symbol = FEATURE_TITLES[which][0].replace("[n]", "")
    if ndim >= 2:
        return lambda t, c, y, x, v: f"{symbol}[{n},{t},{y},{x}] (channel {t})"
    return lambda t, c, y, x, v: f"{symbol}[{n},{x}]"


def formula_html(frame: LayerFrame) -> str:
    """The side panel: the layer's products with live shapes (im2col form for convolutions)."""
    mono = "font-family: monospace;"
    parts = [f"<p style='font-size:{theme.TITLE_PT}pt'><b>{html.escape(frame.layer)}</b> "
             f"({html.escape(frame.type)})</p>"]
    if frame.formula:
        parts.append(f"<p style='{mono}'>{html.escape(frame.formula)}</p>")
    if frame.products:
        parts.append("<p><b>The seed's products, im2col form</b></p>")
        for text, shapes in frame.products:
            parts.append(f"<p style='{mono}'>{html.escape(text)}<br>&nbsp;&nbsp;{html.escape(shapes)}</p>")
        if frame.col_shape is not None:
            parts.append(f"<p>col buffer per image: {_shape(frame.col_shape)}</p>")
    if not frame.has_params:
        parts.append(f"<p><i>{html.escape(frame.layer)} has no parameters.</i></p>")
    return "".join(parts)
