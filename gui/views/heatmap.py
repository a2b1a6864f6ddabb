"""HeatmapView: one matrix drawn as written, on a diverging colour map centred on zero.

Rows go down, columns go right (``imageAxisOrder='row-major'``); pixel (i, j) is
centred on the integer coordinates (j, i) so the axis ticks name rows and
columns. Levels are symmetric, (-m, m) with m = max |x|, either recomputed for
every frame or locked. The image item, colour bar and labels are created once
and reused, so a refresh only hands a new array to the ImageItem.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QFontMetricsF, QTextDocument
from PySide6.QtWidgets import QGraphicsItem, QLabel, QSizePolicy, QStackedWidget, QToolTip, QVBoxLayout, QWidget

from gui.model.frames import stats as array_stats
from gui.views import theme

Meaning = Callable[[int, int, float], str]
HOVER_HINT = "Hover a cell: row, column, value and meaning"


#: Below this colour range pyqtgraph's scale factor (LUT size / range) overflows float32,
#: so such a map (e.g. updates once the learning rate has decayed to denormals) is drawn
#: from float64 values.
FLOAT32_SAFE_SPAN = 1e-30


def symmetric_bound(lo: float, hi: float) -> float:
    """m = max(|lo|, |hi|), with a positive fallback for an all-zero or empty matrix."""
    m = max(abs(lo), abs(hi))
    return m if math.isfinite(m) and m > 0 else 1.0


def _nice_at_least(x: float) -> float:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is >= x."""
    step = 1.0
    while True:
        for factor in (1.0, 2.0, 5.0):
            if step * factor >= x:
                return step * factor
        step *= 10.0


def bar_label(value: float) -> str:
    """A colour-bar label: 3 significant digits, short exponent form outside 1e-3..1e4."""
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.1e}"


#: Room above and below the colour bar, as a fraction of its half height.
BAR_MARGIN = 0.1



class _NoteLabel(QLabel):
    """A word-wrapped note that does not ask its layouts for height-for-width sizing:
    under it Qt's box layouts stop honouring the maps' minimum heights (rows overlap)."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt naming)
        return False

class IndexAxis(pg.AxisItem):
    """An axis of row / column indices: labels only at integers, no closer than fits the text."""

    LABEL_PIXELS = {"bottom": 30, "top": 30, "left": 20, "right": 20}

    def tickSpacing(self, minVal: float, maxVal: float, size: float):
        span = abs(maxVal - minVal)
        if span == 0 or size <= 0:
            return []
        major = _nice_at_least(max(1.0, span * self.LABEL_PIXELS[self.orientation] / size))
        minor = major / 5 if major >= 5 else 1.0
        return [(major, 0.0), (minor, 0.0)] if minor < major else [(major, 0.0)]


class BarLabelAxis(pg.AxisItem):
    """The colour bar's axis: a few fixed marks whose texts follow the levels (``setTicks``).

    The bar's range never changes, so the marks never move; only their texts change, on
    nearly every frame. pyqtgraph's general tick layout (``generateDrawSpecs``) costs
    about 0.4 ms per map each time, so this axis paints its marks and texts itself."""

    TICK_PIXELS = 4

    def paint(self, p, opt, widget) -> None:
        view = self.linkedView()
        if view is None or not self._tickLevels:
            return
        y0, y1 = view.viewRange()[1]
        width, height = self.width(), self.height()
        if y1 <= y0 or height <= 0:
            return
        font = self.style["tickFont"]
        line = QFontMetricsF(font).height()
        p.setFont(font)
        for position, text in self._tickLevels[0]:
            y = height * (y1 - position) / (y1 - y0)
            p.setPen(self.pen())
            p.drawLine(QPointF(0.0, y), QPointF(self.TICK_PIXELS, y))
            top = min(max(0.0, y - line / 2), height - line)
            p.setPen(self.textPen())
            p.drawText(QRectF(self.TICK_PIXELS + 2, top, width - self.TICK_PIXELS - 2, line),
                       int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)


class LayoutShield(QWidget):
    """Holds one widget placed by hand (the shield's whole area). A QLabel asks its parent's
    layout to lay out again on every ``setText``; under a shield that request stops here,
    so a text changed on every frame does not re-lay out the widgets above it. The shield
    takes the child's size policy; give it a fixed height where the child needs one."""

    def __init__(self, child: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.child = child
        child.setParent(self)
        self.setSizePolicy(child.sizePolicy())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        self.child.setGeometry(self.rect())


def _as_display(array: numpy.ndarray) -> numpy.ndarray:
    """The 2-D float array the ImageItem draws (1-D becomes one column, N×1)."""
    if array.dtype not in (numpy.float32, numpy.float64):
        array = array.astype(numpy.float32)
    if array.ndim == 1:
        return array.reshape(-1, 1)
    if array.ndim == 2:
        return array
    return array.reshape(array.shape[0], -1)


class HeatmapView(QWidget):
    """A titled heatmap with colour bar, axis labels, hover read-out and statistics.
    Emits ``cellClicked(row, col)``, ``cellDoubleClicked(row, col)`` and, when the
    mouse moves onto another cell, ``cellHovered(row, col)``: other views use these,
    never the plot's scene."""

    cellClicked = Signal(int, int)
    cellDoubleClicked = Signal(int, int)
    cellHovered = Signal(int, int)

    def __init__(self, title: str = "", *, compact: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self._compact = compact
        self._locked = False
        self._levels: tuple[float, float] | None = None
        self._shape: tuple[int, ...] | None = None
        self._display_shape: tuple[int, int] | None = None
        self._labels = ("", "")
        self._meaning: Meaning | None = None
        self._stats_text = ""
        self._alarm = False
        self._hover_text = ""
        self._hover_cell: tuple[int, int] | None = None
        self._build(title)

    # ----------------------------------------------------------------- building
    def _build(self, title: str) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        self._title = QLabel(title)
        self._title.setTextFormat(Qt.TextFormat.RichText)
        self._title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._title.setFont(theme.font(theme.COMPACT_TITLE_PT if self._compact else theme.TITLE_PT, bold=True))
        layout.addWidget(self._title)

        self._build_plot()
        self._graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._graphics.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self._graphics.scene().installEventFilter(self)  # double-clicks on a cell

        self._placeholder = _NoteLabel()
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setWordWrap(True)
        self._placeholder.setFont(theme.font(theme.LABEL_PT))
        self._placeholder.setStyleSheet(
            f"background: {theme.PLACEHOLDER_BG}; color: {theme.MUTED_COLOR}; border: 1px dashed #bbb;")
        self._stack = QStackedWidget()
        self._stack.addWidget(self._graphics)
        self._stack.addWidget(self._placeholder)
        self._stack.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout.addWidget(self._stack, 1)

        self._stats = QLabel(" ")
        self._stats.setFont(theme.mono_font(theme.COMPACT_TICK_PT if self._compact else theme.STATS_PT))
        self._stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._stats.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._graphics.setToolTip(HOVER_HINT)
        self._stats_box = LayoutShield(self._stats)  # a new text each frame re-lays out nothing
        layout.addWidget(self._stats_box)
        # While the mouse is over a cell, its read-out is laid over the statistics (and as
        # far up the map's foot as its wrapped lines need), so even a narrow map shows it
        # whole without the layout moving the cell under the mouse; it is also the tooltip.
        self._hover = QLabel("", self)
        self._hover.setFont(theme.font(theme.COMPACT_TICK_PT if self._compact else theme.STATS_PT))
        self._hover.setStyleSheet(f"QLabel {{ color: {theme.TEXT_COLOR}; background-color: #fffff4;"
                                  " border: 1px solid #bbbbbb; padding: 1px 3px; }")
        self._hover.setAutoFillBackground(True)
        self._hover.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)  # the map keeps the mouse
        self._hover.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._hover.setWordWrap(True)
        self._hover.hide()
        # A fixed height that only grows: maps in one row line up, and a frame whose
        # statistics take a line more or less never re-lays out (and so repaints) the plot.
        self._stats_lines = 0
        self._fit_stats_height(2 if self._compact else 3)
        self.setMinimumSize(120 if self._compact else 140, 120 if self._compact else 170)

    def _build_plot(self) -> None:
        """Image, index axes and colour bar laid out by hand in one GraphicsLayout: a
        ViewBox without menus and plain axes build ~10x faster than a PlotItem plus a
        ColorBarItem (each a full PlotItem with its context menus), and nine of these
        are built at start-up."""
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setAntialiasing(False)  # pixels and straight ticks: smoothing only costs time
        layout = self._graphics.ci
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self._view = pg.ViewBox(enableMenu=False, invertY=True)
        self._view.setMouseEnabled(x=False, y=False)
        self._view.setBackgroundColor(theme.NAN_COLOR)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._image.setColorMap(theme.DIVERGING)
        self._view.addItem(self._image)
        tick_font = theme.font(theme.COMPACT_TICK_PT if self._compact else theme.TICK_PT)
        self._axes = {"left": IndexAxis("left"), "bottom": IndexAxis("bottom")}
        for axis in self._axes.values():
            axis.linkToView(self._view)
            axis.setStyle(tickFont=tick_font, hideOverlappingLabels=12)  # keep the "0" at the corner
            axis.enableAutoSIPrefix(False)
        self._bar_view = pg.ViewBox(enableMenu=False)
        self._bar_view.setMouseEnabled(x=False, y=False)
        self._bar_view.setFixedWidth(10 if self._compact else 12)
        self._bar_image = pg.ImageItem(numpy.linspace(-1.0, 1.0, theme.LUT_SIZE).reshape(-1, 1),
                                       axisOrder="row-major", levels=(-1.0, 1.0))
        self._bar_image.setRect(QRectF(0.0, -1.0, 1.0, 2.0))
        self._bar_image.setColorMap(theme.DIVERGING)
        self._bar_image.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # never changes: one blit
        self._bar_view.addItem(self._bar_image)
        # A little room above and below the bar, so the end labels (at ±1) are not cut.
        self._bar_view.setRange(xRange=(0.0, 1.0), yRange=(-1.0 - BAR_MARGIN, 1.0 + BAR_MARGIN), padding=0)
        self._bar_axis = BarLabelAxis("right")
        self._bar_axis.linkToView(self._bar_view)
        self._bar_axis.setStyle(tickFont=tick_font, hideOverlappingLabels=False)
        # Wide enough for the longest label bar_label writes ("-0.00424", "-4.2e-05").
        self._bar_axis.setWidth(theme.text_width("-0.00000", tick_font) + 12)
        self._bar_ticks: list | None = None
        layout.addItem(self._axes["left"], row=0, col=0)
        layout.addItem(self._view, row=0, col=1)
        layout.addItem(self._bar_view, row=0, col=2)
        layout.addItem(self._bar_axis, row=0, col=3)
        layout.addItem(self._axes["bottom"], row=1, col=1)
        self._show_bar_levels((-1.0, 1.0))
        theme.cache_axes(self._axes["left"], self._axes["bottom"], self._bar_axis)

    def _show_bar_levels(self, levels: tuple[float, float]) -> None:
        """Label the colour bar with the levels themselves: the ends read -m and +m exactly
        (3 significant digits), with ±m/2 and 0 between. The bar never changes its range,
        so its axis is redrawn only when a label's text changes, not on every frame."""
        low, high = levels
        marks = (low, low / 2, 0.0, high / 2, high)
        ticks = [[(-1.0 + k * 0.5, bar_label(value)) for k, value in enumerate(marks)]]
        if ticks != self._bar_ticks:
            self._bar_ticks = ticks
            self._bar_axis.setTicks(ticks)

    # ------------------------------------------------------------------ public
    def set_title(self, title: str) -> None:
        self._title.setText(title)

    def title(self) -> str:
        """The title as plain text."""
        doc = QTextDocument()
        doc.setHtml(self._title.text())
        return doc.toPlainText()

    def set_matrix(self, array: numpy.ndarray, *, row_label: str, col_label: str,
                   meaning: Meaning | None = None, extra_stats: str = "") -> None:
        """Show ``array`` (1-D is drawn as one column); ``meaning(row, col, value)`` names a cell."""
        array = numpy.asarray(array)
        display = _as_display(array)
        summary = array_stats(display)
        levels = self._levels if (self._locked and self._levels is not None) else None
        if levels is None:
            m = symmetric_bound(summary["finite_min"], summary["finite_max"])
            levels = (-m, m)
        if display.dtype == numpy.float32 and levels[1] - levels[0] < FLOAT32_SAFE_SPAN:
            display = display.astype(numpy.float64)  # pyqtgraph's colour scale would overflow float32
        self._image.setImage(display, autoLevels=False, levels=levels)
        if levels != self._levels:
            self._levels = levels
            self._show_bar_levels(levels)
        if display.shape != self._display_shape:
            self._reshape(display.shape)
        self._shape = array.shape
        if (row_label, col_label) != self._labels:
            self._set_axis_labels(row_label, col_label)
        self._meaning = meaning
        self._stats_text = self._format_stats(summary, extra_stats)
        self._fit_stats()
        alarm = bool(summary.get("nonfinite"))
        if alarm != self._alarm:
            self._alarm = alarm
            self._stats.setStyleSheet("color: #c00000; font-weight: bold;" if alarm else "")
        if self._stack.currentIndex() != 0:
            self._stack.setCurrentIndex(0)
        if self._hover_cell is not None:  # keep the read-out of the cell under the mouse current
            self._hover_text = self.hover_text(*self._hover_cell)
            self._hover.setText(self._hover_text)

    def set_placeholder(self, text: str) -> None:
        """Show ``text`` instead of a matrix (e.g. before the first backward)."""
        self._placeholder.setText(text)
        self._stack.setCurrentIndex(1)
        self._shape = None
        self._stats_text = ""
        self._stats.setText(" ")
        self._show_hover("")
        self._hover_text = ""
        self._hover_cell = None

    def is_placeholder(self) -> bool:
        return self._stack.currentIndex() == 1

    def placeholder_text(self) -> str:
        return self._placeholder.text() if self.is_placeholder() else ""

    def image_array(self) -> numpy.ndarray:
        """The array the ImageItem draws, in the shape it was given (empty while a placeholder shows)."""
        if self._shape is None or self._image.image is None:
            return numpy.empty((0,), dtype=numpy.float32)
        return self._image.image.reshape(self._shape)

    def levels(self) -> tuple[float, float]:
        """The colour levels (-m, m) in use."""
        return self._levels if self._levels is not None else (-1.0, 1.0)

    def set_locked(self, on: bool) -> None:
        """Locked: keep the current levels for later frames; unlocked: recompute per frame."""
        self._locked = bool(on)

    def reset_levels(self) -> None:
        """Forget the levels, so the next matrix sets them even when locked (e.g. another layer)."""
        self._levels = None

    def is_locked(self) -> bool:
        return self._locked

    def stats_text(self) -> str:
        return self._stats_text

    def axis_labels(self) -> tuple[str, str]:
        """(row label, column label) as shown on the left and bottom axes."""
        return self._labels

    def hover_text(self, row: int, col: int) -> str:
        """Row, column, value and meaning of one displayed cell ('' outside the matrix)."""
        if self._shape is None or self._display_shape is None:
            return ""
        rows, cols = self._display_shape
        if not (0 <= row < rows and 0 <= col < cols):
            return ""
        value = float(self._image.image[row, col])
        text = f"row {row}, col {col}:  {value:.6g}"
        if self._meaning is not None:
            text += f"  —  {self._meaning(row, col, value)}"
        return text

    def hover_label_text(self) -> str:
        """What the hover line under the map shows now."""
        return self._hover_text

    def cell_scene_pos(self, row: int, col: int):
        """Scene position of the centre of a cell (for tests and for pointing at a cell)."""
        from PySide6.QtCore import QPointF
        return self._image.mapToScene(QPointF(col + 0.5, row + 0.5))

    def colour_bar_labels(self) -> list[tuple[float, str]]:
        """(position on the bar from -1 to 1, label) of the colour bar's ticks."""
        return list(self._bar_ticks[0]) if self._bar_ticks else []

    def image_item(self) -> pg.ImageItem:
        return self._image

    # ---------------------------------------------------------------- private
    def _reshape(self, shape: tuple[int, int]) -> None:
        rows, cols = shape
        self._display_shape = shape
        self._image.setRect(QRectF(-0.5, -0.5, cols, rows))
        # New limits first: the old ones would clamp the new range.
        self._view.setLimits(xMin=-0.5, xMax=cols - 0.5, yMin=-0.5, yMax=rows - 0.5)
        self._view.setRange(xRange=(-0.5, cols - 0.5), yRange=(-0.5, rows - 0.5), padding=0)

    def _set_axis_labels(self, row_label: str, col_label: str) -> None:
        self._labels = (row_label, col_label)
        left, bottom = self._axes["left"], self._axes["bottom"]
        if self._compact:  # no room for the labels: they are the axes' tooltips
            left.setToolTip(row_label)
            bottom.setToolTip(col_label)
            return
        style = {"font-size": f"{theme.LABEL_PT}pt", "color": theme.TEXT_COLOR}
        left.setLabel(row_label, **style)
        bottom.setLabel(col_label, **style)

    def _format_stats(self, summary: dict, extra: str) -> str:
        """Statistics as short fixed lines (compact: one line)."""
        def f(x: float) -> str:
            return theme.format_number(x, 3)
        if summary.get("nonfinite"):  # min / max of the finite entries; the rest says where the bad ones are
            summary = dict(summary, min=summary["finite_min"], max=summary["finite_max"])
        if self._compact:
            lines = [f"min {f(summary['min'])}  max {f(summary['max'])}", f"‖x‖₂ {f(summary['l2'])}  {extra}"]
        else:
            lines = [f"min {f(summary['min'])}  max {f(summary['max'])}",
                     f"mean|x| {f(summary['mean_abs'])}  ‖x‖₂ {f(summary['l2'])}"]
            if extra:
                lines.append(extra)
        if summary.get("nonfinite"):
            lines.append(f"⚠ {summary['nonfinite']} non-finite, first at {list(summary['first_nonfinite'])}")
        return "\n".join(line.rstrip() for line in lines)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        self._fit_stats()
        if self._hover.isVisible():
            self._place_hover()

    def _fit_stats(self) -> None:
        """Show the statistics, breaking a line at its double spaces where it is wider than the map."""
        metrics = self._stats.fontMetrics()
        width = self._stats.width() - 4
        lines = []
        for line in self._stats_text.split("\n"):
            lines += line.split("  ") if metrics.horizontalAdvance(line) > width else [line]
        text = "\n".join(lines) if lines else " "
        if text != self._stats.text():
            self._stats.setText(text)
            self._fit_stats_height(len(lines))

    def _fit_stats_height(self, lines: int) -> None:
        """Make room for ``lines`` lines of statistics; never shrink."""
        if lines <= self._stats_lines:
            return
        self._stats_lines = lines
        height = self._stats.fontMetrics().lineSpacing() * lines + 2
        self._stats.setFixedHeight(height)
        self._stats_box.setFixedHeight(height)

    def _show_hover(self, text: str) -> None:
        """The cell read-out over the statistics ('' takes it away)."""
        self._hover.setText(text)
        self._hover.setVisible(bool(text))
        if text:
            self._place_hover()

    def _place_hover(self) -> None:
        """Bottom-aligned over the statistics, the full width, as tall as the text needs."""
        width = max(40, self.width() - 4)
        height = max(self._stats.height(), self._hover.heightForWidth(width))
        self._hover.setGeometry(2, max(0, self.height() - height - 2), width, height)
        self._hover.raise_()

    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        """(row, col) of the cell at ``scene_pos`` (None: no cell there)."""
        image = self._image.image
        if self._shape is None or image is None:
            return None
        point = self._image.mapFromScene(scene_pos)
        row, col = int(math.floor(point.y())), int(math.floor(point.x()))
        rows, cols = image.shape[:2]
        return (row, col) if 0 <= row < rows and 0 <= col < cols else None

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.GraphicsSceneMouseDoubleClick and watched is self._graphics.scene():
            cell = self.cell_at(event.scenePos())
            if cell is not None:
                self.cellDoubleClicked.emit(*cell)
                return True
        return False

    def _on_mouse_clicked(self, event) -> None:
        cell = self.cell_at(event.scenePos())
        if cell is not None and not event.double():
            self.cellClicked.emit(*cell)

    def _on_mouse_moved(self, scene_pos) -> None:
        text = ""
        previous, self._hover_cell = self._hover_cell, None
        if self._shape is not None and self._image.sceneBoundingRect().contains(scene_pos):
            point = self._image.mapFromScene(scene_pos)
            self._hover_cell = (int(math.floor(point.y())), int(math.floor(point.x())))
            text = self.hover_text(*self._hover_cell)
            if self._hover_cell != previous and self.cell_at(scene_pos) is not None:
                self.cellHovered.emit(*self._hover_cell)
        if text == self._hover_text:
            return
        self._hover_text = text
        self._show_hover(text)
        self._graphics.setToolTip(text or HOVER_HINT)
        if text and self.isVisible():
            view_pos = self._graphics.mapFromScene(scene_pos)
            QToolTip.showText(self._graphics.viewport().mapToGlobal(view_pos), text, self._graphics)
        elif not text:
            QToolTip.hideText()
