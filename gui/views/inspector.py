"""InspectorPanel: the InnerProduct inspector (one layer in detail, or every layer in a grid).

It only draws host copies made by ``gui.model.frames`` (in the worker thread); a
refresh hands new arrays to heatmaps that already exist, so ``set_views`` is
cheap enough to call 30 times a second.
"""
from __future__ import annotations

import functools
import html
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.atomic import atomic_path
from gui.model.frames import InnerProductView, SolverInfo, l2_norm
from gui.views import theme
from gui.views.heatmap import HeatmapView

#: Every map of the single-layer mode, and where it sits (row, column) in the grid of maps.
MAP_POSITIONS = {"W": (0, 0), "dW": (0, 1), "update": (0, 2), "db": (0, 3),
                 "a": (1, 0), "delta": (1, 1), "delta_down": (1, 2)}
READING_HELP = ("How to read: red > 0, blue < 0, white = 0. Colour levels are symmetric, ±max|x| of each map "
                "(every frame, or locked). Rows and columns are numbered from 0; hover a cell for its value "
                "and meaning.")
GRID_HELP = ("Rows × columns:  W, dW, V: output (N_) × input (K_)  ·  db: output (N_)  ·  δ: sample (M_) × "
             "output (N_).  Hover a cell for its meaning; click a layer name to inspect it in detail.")
NO_LAYERS = "This net has no InnerProduct layer to inspect."
SIDE_WIDTH = 360  # most width of the products / update-rule column (a quarter of the panel, at least 240 px)
#: The maps of one row of the compact grid mode.
GRID_MAPS = ("W", "dW", "update", "db", "delta")


# ------------------------------------------------------------------- what a map shows
def _axis_names(view: InnerProductView) -> dict[str, str]:
    d = view.dims
    return {"sample": f"sample (M_={d.get('M_', '?')})",
            "output": f"output (N_={d.get('N_', '?')})",
            "input": f"input (K_={d.get('K_', '?')})"}


def _weight_meaning(view: InnerProductView, what: str):
    """Meaning of cell (r, c) of a weight-shaped map (N×K, or K×N when transposed)."""
    if view.transpose:
        return lambda r, c, v: f"{what} from input {r} to output {c}"
    return lambda r, c, v: f"{what} from input {c} to output {r}"


def _with_formula(meaning, formula):
    """A hover meaning followed by the seed's formula for that cell, indices substituted."""
    return lambda r, c, v: f"{meaning(r, c, v)}  —  {formula(r, c)}"


def _dw_formula(view: InnerProductView):
    """dW[n,k] = Σₘ δ[m,n]·a[m,k] (the seed's first product) for one cell."""
    m = view.dims.get("M_", "?")
    if view.transpose:
        return lambda r, c: f"dW[{r},{c}] = Σₘ a[m,{r}]·δ[m,{c}], m < M_={m}"
    return lambda r, c: f"dW[{r},{c}] = Σₘ δ[m,{r}]·a[m,{c}], m < M_={m}"


def _waiting_text(view: InnerProductView, symbol: str) -> str:
    """Why a gradient map is empty: before the first backward, or mid-iteration before this layer's."""
    if view.pending_backward:
        return f"{symbol} of this iteration is computed at {view.layer}'s backward (step on)"
    return f"{symbol} appears after the layer's first backward pass (Step event or Step iteration)"


def map_content(view: InnerProductView, which: str):
    """(array or None, row label, column label, meaning, placeholder text) for one map."""
    names = _axis_names(view)
    w_rows, w_cols = (names["input"], names["output"]) if view.transpose else (names["output"], names["input"])
    if which == "W":
        return view.W, w_rows, w_cols, _weight_meaning(view, "weight"), ""
    if which == "dW":
        return (view.dW, w_rows, w_cols, _with_formula(_weight_meaning(view, "∂loss/∂w of the weight"),
                _dw_formula(view)), _waiting_text(view, "dW"))
    if which == "update":
        return (view.update_W, w_rows, w_cols, _weight_meaning(view, "update V of the weight"),
                "The update V appears after the update stage of the iteration")
    if which == "db":
        text = "No bias (bias_term: false)" if view.b is None else _waiting_text(view, "db")
        return view.db, names["output"], "bias", _with_formula(lambda r, c, v: f"∂loss/∂b of output {r}",
                                                         lambda r, c: f"db[{r}] = Σₘ δ[m,{r}], m < M_={view.dims.get('M_', '?')}"), text
    if which == "a":
        return (view.a, names["sample"], names["input"],
                (lambda r, c, v: f"input {c} of sample {r}"), "a appears after the first forward pass")
    if which == "delta":
        return (view.delta, names["sample"], names["output"],
                (lambda r, c, v: f"δ of sample {r} at output {c}"), _waiting_text(view, "δ"))
    if which == "delta_down":
        if not view.propagate_down:
            text = (f"No gradient flows into the data layer:\nδ_down is not computed for {view.layer} "
                    f"(its input '{view.bottom_name}' needs no gradient)")
        else:
            text = _waiting_text(view, "δ_down")
        return (view.delta_down, names["sample"], names["input"],
                _with_formula(lambda r, c, v: f"δ sent down to input {c} of sample {r}",
                              lambda r, c: f"δ_down[{r},{c}] = Σₙ δ[{r},n]·W[n,{c}], "
                                           f"n < N_={view.dims.get('N_', '?')}"), text)
    raise KeyError(f"unknown map '{which}' (expected one of {', '.join(MAP_POSITIONS)})")


def update_ratio_text(view: InnerProductView) -> str:
    """'‖V‖/‖W‖ = …' once an update was applied, else ''."""
    if view.update_W is None:
        return ""
    w = l2_norm(view.W)
    ratio = l2_norm(view.update_W) / w if w > 0 else float("inf")
    return f"‖V‖/‖W‖ = {theme.format_number(ratio)}"


def dims_text(view: InnerProductView) -> str:
    d = view.dims
    return (f"M_ = {d.get('M_', '?')} samples  ·  N_ = {d.get('N_', '?')} outputs  ·  "
            f"K_ = {d.get('K_', '?')} inputs" + ("  ·  transposed W" if view.transpose else ""))


def products_html(view: InnerProductView | None) -> str:
    """Rich text of the layer's products with their live shapes (changes with the layer)."""
    if view is None:
        return ""
    mono = "font-family: monospace;"
    d = view.dims
    parts = [f"<p style='font-size:{theme.TITLE_PT}pt'><b>{html.escape(view.layer)}</b></p>",
             f"<p>M_ = {d.get('M_')} · N_ = {d.get('N_')} · K_ = {d.get('K_')}</p>",
             "<p><b>Forward</b></p>"]
    parts += [f"<p style='{mono}'>{html.escape(p)}</p>" for p in view.forward_products]
    parts.append("<p><b>Backward (three products)</b></p>")
    parts += [f"<p style='{mono}'>{html.escape(p)}</p>" for p in view.backward_products]
    return "".join(parts)


def rule_html(info: SolverInfo | None) -> str:
    """Rich text of the update rule with its current numbers (changes every iteration)."""
    if info is None:
        return ""
    mono = "font-family: monospace;"
    rule = html.escape(info.rule_text()).replace(";   ", "<br>")
    parts = [f"<p><b>Update rule</b> ({html.escape(info.type)}, iteration {info.iteration})</p>",
             f"<p style='{mono}'>{rule}</p>",
             f"<p>lr = {info.learning_rate:g}   momentum = {info.momentum:g}<br>"
             f"weight decay = {info.weight_decay:g} ({html.escape(info.regularization)})"
             + (f"<br>clip gradients at ‖g‖ = {info.clip_gradients:g}" if info.clip_gradients > 0 else "")
             + "</p>"]
    if info.loss == info.loss:  # not NaN
        parts.append(f"<p>loss = {theme.format_number(info.loss)}   "
                     f"(smoothed {theme.format_number(info.smoothed_loss)})</p>")
    return "".join(parts)


def _formula_label() -> QLabel:
    """A selectable, word-wrapped rich-text label in the formula font."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    label.setFont(theme.font(theme.FORMULA_PT))
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def grab_to_png(widget: QWidget, path: str) -> None:
    """Render ``widget`` to a PNG at ``path`` via a temp file in the same folder."""
    with atomic_path(path) as tmp:
        if not widget.grab().save(tmp, "PNG"):
            raise OSError(f"could not write PNG {path}")


# ----------------------------------------------------------------------------- panel
class InspectorPanel(QWidget):
    """Heatmaps of W, dW, V, db, a, δ, δ_down for the selected InnerProduct layer (or all, in grid mode)."""

    layerSelected = Signal(str)
    #: a W cell was double-clicked: (layer, row, col); the owner asks for the value and edits the model
    weightEditRequested = Signal(str, int, int)
    #: a cell of a map on screen was clicked: (layer, map, row, col); map is "W", "a", "delta", ...
    mapCellClicked = Signal(str, str, int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._views: dict[str, InnerProductView] = {}
        self._info: SolverInfo | None = None
        self._selected: str | None = None
        self._grid_mode = False
        self._locked = False
        self._grid_layers: tuple[str, ...] = ()
        self._grid_maps: dict[tuple[str, str], HeatmapView] = {}
        self._grid_titles: dict[str, QLabel] = {}
        self._build()

    # -------------------------------------------------------------- building
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addLayout(self._build_header())
        self._pages = QStackedWidget()
        self._pages.addWidget(self._build_single_page())
        self._pages.addWidget(self._build_grid_page())
        outer.addWidget(self._pages, 1)

    def _build_header(self) -> QHBoxLayout:
        header = QHBoxLayout()
        label = QLabel("InnerProduct layer:")
        label.setFont(theme.font(theme.LABEL_PT, bold=True))
        self._combo = QComboBox()
        self._combo.setFont(theme.font(theme.LABEL_PT))
        self._combo.setMinimumContentsLength(8)
        self._combo.currentTextChanged.connect(self._on_combo)
        self._grid_box = QCheckBox("All layers (grid)")
        self._grid_box.toggled.connect(self.set_grid_mode)
        self._lock_box = QCheckBox("Lock colour range")
        self._lock_box.setToolTip("Keep the current colour levels instead of rescaling every frame")
        self._lock_box.toggled.connect(self.set_locked_range)
        for box in (self._grid_box, self._lock_box):
            box.setFont(theme.font(theme.LABEL_PT))
        self._dims = QLabel("")
        self._dims.setFont(theme.font(theme.LABEL_PT))
        self._dims.setStyleSheet(f"color: {theme.MUTED_COLOR};")
        self._dims.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # clipped, not wider
        for w in (label, self._combo, self._dims):
            header.addWidget(w)
        header.addStretch(1)
        header.addWidget(self._grid_box)
        header.addWidget(self._lock_box)
        return header

    def _build_single_page(self) -> QWidget:
        page = QWidget()
        row = QHBoxLayout(page)
        row.setContentsMargins(0, 0, 0, 0)
        maps = QGridLayout()
        maps.setSpacing(6)
        self._maps: dict[str, HeatmapView] = {}
        for which, (r, c) in MAP_POSITIONS.items():
            view = HeatmapView(theme.map_title(which))
            self._maps[which] = view
            if which == "W":
                view.cellDoubleClicked.connect(self._on_weight_double_clicked)
            view.cellClicked.connect(functools.partial(self._on_single_cell_clicked, which))
            maps.addWidget(view, r, c)
        for c, stretch in enumerate((3, 3, 3, 2)):
            maps.setColumnStretch(c, stretch)
        for r in (0, 1):  # the two rows share the height whatever their placeholders' wrapped text asks
            maps.setRowStretch(r, 1)
        self._empty = QLabel(READING_HELP)
        self._empty.setWordWrap(True)
        self._empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self._empty.setFont(theme.font(theme.STATS_PT))
        self._empty.setStyleSheet(f"color: {theme.MUTED_COLOR}; padding-top: 24px;")
        maps.addWidget(self._empty, 1, 3)
        maps_host = QWidget()
        maps_host.setLayout(maps)
        maps.setContentsMargins(0, 0, 0, 0)
        # The rule changes every iteration, the products only with the layer: two labels,
        # so a frame re-lays out the few lines of the rule, not the whole panel.
        self._side = _formula_label()
        self._side_rule = _formula_label()
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.NoFrame)
        side_layout = QVBoxLayout(frame)
        side_layout.setSpacing(self._side.fontMetrics().lineSpacing() // 2)  # a paragraph gap
        side_layout.addWidget(self._side)
        side_layout.addWidget(self._side_rule)
        side_layout.addStretch(1)
        side_scroll = QScrollArea()
        side_scroll.setWidgetResizable(True)
        side_scroll.setWidget(frame)
        side_scroll.setMinimumWidth(200)
        self._splitter = QSplitter(Qt.Orientation.Horizontal)
        self._splitter.addWidget(maps_host)
        self._splitter.addWidget(side_scroll)
        self._splitter.setStretchFactor(0, 1)
        self._splitter.setStretchFactor(1, 0)
        self._splitter.setChildrenCollapsible(False)
        self._splitter.setSizes([1000, SIDE_WIDTH])
        self._side_dragged = False
        self._splitter.splitterMoved.connect(self._on_splitter_moved)
        row.addWidget(self._splitter)
        return page

    def _build_grid_page(self) -> QWidget:
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        help_label = QLabel(GRID_HELP)
        help_label.setWordWrap(True)
        help_label.setFont(theme.font(theme.STATS_PT))
        help_label.setStyleSheet(f"color: {theme.MUTED_COLOR};")
        column.addWidget(help_label)
        self._grid_scroll = QScrollArea()
        self._grid_scroll.setWidgetResizable(True)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setSpacing(4)
        self._grid_scroll.setWidget(self._grid_host)
        column.addWidget(self._grid_scroll, 1)
        return page

    def _rebuild_grid(self, layers: tuple[str, ...]) -> None:
        """(Re)create the compact heatmaps when the set of layers changes."""
        for view in self._grid_maps.values():
            view.setParent(None)
            view.deleteLater()
        for label in self._grid_titles.values():
            label.setParent(None)
            label.deleteLater()
        self._grid_maps.clear()
        self._grid_titles.clear()
        for r, name in enumerate(layers):
            title = QLabel(f"<a href='{html.escape(name)}'>{html.escape(name)}</a>")
            title.setFont(theme.font(theme.TITLE_PT, bold=True))
            title.setToolTip(f"Inspect {name} in detail")
            title.linkActivated.connect(self._open_from_grid)
            title.setMinimumWidth(80)
            self._grid.addWidget(title, r, 0)
            self._grid_titles[name] = title
            for c, which in enumerate(GRID_MAPS, start=1):
                view = HeatmapView(theme.map_title(which, compact=True), compact=True)
                view.set_locked(self._locked)
                view.setMinimumHeight(170)
                self._grid.addWidget(view, r, c)
                self._grid_maps[(name, which)] = view
                if which == "W":
                    view.cellDoubleClicked.connect(
                        lambda row, col, layer=name: self.weightEditRequested.emit(layer, row, col))
                view.cellClicked.connect(functools.partial(self.mapCellClicked.emit, name, which))
        for c, stretch in enumerate((0, 3, 3, 3, 2, 3)):
            self._grid.setColumnStretch(c, stretch)
        for r in range(self._grid.rowCount()):
            self._grid.setRowStretch(r, 1 if r < len(layers) else 0)
        self._grid_layers = layers

    # ---------------------------------------------------------------- public
    def set_views(self, views: dict[str, InnerProductView], info: SolverInfo | None) -> None:
        """Show new snapshots; only the visible maps are redrawn."""
        self._views = views
        self._info = info
        names = tuple(views)
        listed = tuple(self._combo.itemText(i) for i in range(self._combo.count()))
        if names != listed and not (len(names) == 1 and names[0] in listed):
            self._set_layer_names(names)
        if self._grid_mode:
            self._refresh_grid()
        else:
            self._refresh_single()

    def select_layer(self, name: str) -> None:
        """Inspect layer ``name`` (names that are not InnerProduct layers are ignored)."""
        known = self.layer_names()
        if known and name not in known:
            return
        changed = name != self._selected
        self._selected = name
        if self._combo.currentText() != name and self._combo.findText(name) >= 0:
            self._combo.blockSignals(True)
            self._combo.setCurrentText(name)
            self._combo.blockSignals(False)
        if changed:
            for view in self._maps.values():
                view.reset_levels()
            self._refresh_single()
            self.layerSelected.emit(name)

    def layer_names(self) -> list[str]:
        """The InnerProduct layers the panel knows (from the last full ``set_views``)."""
        return [self._combo.itemText(i) for i in range(self._combo.count())]

    def selected_layer(self) -> str | None:
        return self._selected

    def needed_layers(self) -> list[str] | None:
        """Layers whose arrays the panel draws now: None (all) in grid mode, else the selected one.

        ``set_views`` accepts a dict with only these (the layer list is kept from
        the last full dict), so the worker may copy only what is on screen.
        """
        if self._grid_mode or self._selected is None:
            return None
        return [self._selected]

    def set_grid_mode(self, on: bool) -> None:
        """Grid mode: every InnerProduct layer at once, compact."""
        on = bool(on)
        if self._grid_box.isChecked() != on:
            self._grid_box.blockSignals(True)
            self._grid_box.setChecked(on)
            self._grid_box.blockSignals(False)
        if on == self._grid_mode:
            return
        self._grid_mode = on
        self._pages.setCurrentIndex(1 if on else 0)
        self._combo.setEnabled(not on)
        self._dims.setVisible(not on)
        if on:
            self._refresh_grid()
        else:
            self._refresh_single()

    def grid_mode(self) -> bool:
        return self._grid_mode

    def set_locked_range(self, on: bool) -> None:
        """Locked: every map keeps its current colour levels; unlocked: levels follow each frame."""
        on = bool(on)
        if self._lock_box.isChecked() != on:
            self._lock_box.blockSignals(True)
            self._lock_box.setChecked(on)
            self._lock_box.blockSignals(False)
        self._locked = on
        for view in list(self._maps.values()) + list(self._grid_maps.values()):
            view.set_locked(on)

    def locked_range(self) -> bool:
        return self._locked

    def heatmap(self, name: str, which: str) -> HeatmapView:
        """The map ``which`` of layer ``name`` that is on screen (grid cell in grid mode)."""
        if which not in MAP_POSITIONS:
            raise KeyError(f"unknown map '{which}' (expected one of {', '.join(MAP_POSITIONS)})")
        if self._grid_mode and (name, which) in self._grid_maps:
            return self._grid_maps[(name, which)]
        if not self._grid_mode and name == self._selected:
            return self._maps[which]
        raise KeyError(f"map '{which}' of layer '{name}' is not on screen "
                       f"({'grid mode' if self._grid_mode else f'selected: {self._selected}'})")

    def visible_heatmaps(self) -> dict[tuple[str, str], HeatmapView]:
        """(layer, map) -> heatmap for everything on screen now."""
        if self._grid_mode:
            return dict(self._grid_maps)
        if self._selected is None:
            return {}
        return {(self._selected, which): view for which, view in self._maps.items()}

    def export_png(self, folder: str) -> list[str]:
        """Write one PNG per map on screen (``<layer>_<map>.png``), atomically; return the paths."""
        os.makedirs(folder, exist_ok=True)
        paths = []
        for (layer, which), view in self.visible_heatmaps().items():
            if view.is_placeholder():
                continue
            path = os.path.join(folder, f"{layer}_{which}.png")
            grab_to_png(view, path)
            paths.append(path)
        return paths

    # ---------------------------------------------------------------- private
    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        if not self._side_dragged:
            total = max(1, event.size().width() - 8)
            side = int(min(SIDE_WIDTH, max(240, 0.25 * total)))
            self._splitter.setSizes([total - side, side])

    def _on_splitter_moved(self, *_args) -> None:
        self._side_dragged = True

    def _set_layer_names(self, names: tuple[str, ...]) -> None:
        self._combo.blockSignals(True)
        self._combo.clear()
        self._combo.addItems(list(names))
        self._combo.blockSignals(False)
        if self._selected in names:
            self._combo.blockSignals(True)
            self._combo.setCurrentText(self._selected)
            self._combo.blockSignals(False)
        elif names:
            self._selected = None
            self.select_layer(names[0])
        else:
            self._selected = None
            for heatmap in self._maps.values():
                heatmap.set_placeholder(NO_LAYERS)
            self._set_side("", "")
        self._empty.setText(READING_HELP if names else NO_LAYERS)

    def _on_combo(self, name: str) -> None:
        if name:
            self.select_layer(name)

    def _open_from_grid(self, name: str) -> None:
        self.set_grid_mode(False)
        self.select_layer(name)

    def _refresh_single(self) -> None:
        view = self._views.get(self._selected) if self._selected else None
        if view is None:
            self._dims.setText("")
            if self._selected is not None:
                for heatmap in self._maps.values():
                    heatmap.set_placeholder(f"waiting for the arrays of {self._selected}…")
            return
        text = dims_text(view)
        if self._dims.text() != text:
            self._dims.setText(text)
        for which, heatmap in self._maps.items():
            self._show(heatmap, view, which)
        self._set_side(products_html(view), rule_html(self._info))

    def _refresh_grid(self) -> None:
        layers = tuple(self._views)
        if layers != self._grid_layers:
            self._rebuild_grid(layers)
        for (name, which), heatmap in self._grid_maps.items():
            self._show(heatmap, self._views[name], which)
        for name, label in self._grid_titles.items():
            d = self._views[name].dims
            label.setToolTip(f"Inspect {name} in detail — {dims_text(self._views[name])}")
            label.setText(f"<a href='{html.escape(name)}'>{html.escape(name)}</a><br>"
                          f"<span style='font-size:{theme.STATS_PT}pt; font-weight:normal'>"
                          f"{d.get('N_')}×{d.get('K_')}<br>M_={d.get('M_')}</span>")

    @staticmethod
    def _show(heatmap: HeatmapView, view: InnerProductView, which: str) -> None:
        array, rows, cols, meaning, placeholder = map_content(view, which)
        if array is None:
            if heatmap.placeholder_text() != placeholder:
                heatmap.set_placeholder(placeholder)
            return
        extra = update_ratio_text(view) if which == "W" else ""
        heatmap.set_matrix(array, row_label=rows, col_label=cols, meaning=meaning, extra_stats=extra)

    def _on_single_cell_clicked(self, which: str, row: int, col: int) -> None:
        if self._selected is not None:
            self.mapCellClicked.emit(self._selected, which, row, col)

    def _on_weight_double_clicked(self, row: int, col: int) -> None:
        if self._selected is not None:
            self.weightEditRequested.emit(self._selected, row, col)

    def _set_side(self, products: str, rule: str) -> None:
        if products != self._side.text():
            self._side.setText(products)
        if rule != self._side_rule.text():
            self._side_rule.setText(rule)

    def side_text(self) -> str:
        """The side panel's rich text: the products, then the update rule."""
        return self._side.text() + self._side_rule.text()
