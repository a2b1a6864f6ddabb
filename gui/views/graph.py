"""The layer graph: one node per layer, blobs as labelled edges, top to bottom.

Layers that compute in place (ReLU on ``ip1`` writing ``ip1``) are drawn as a
tab attached under the layer whose output they modify. Ranks come from the
longest path from the data; within a rank nodes are ordered by the mean
position of their parents; an edge that skips ranks runs down a lane beside the
nodes it passes. While stepping, the layer being computed gets a coloured frame
and an arrow badge (forward ▼ blue, backward ▲ red), and its edges light up in
the direction the signal flows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
)

from gui.model.events import FrameReady, NetLoaded

NODE_WIDTH = 210.0
NODE_HEIGHT = 58.0
TAB_HEIGHT = 26.0
RANK_GAP = 58.0
NODE_GAP = 44.0
LANE_GAP = 26.0

KIND_COLOURS = {
    "data": "#4E79A7", "inner product": "#F28E2B", "activation": "#59A14F", "loss": "#E15759",
    "conv/pool": "#B07AA1", "other": "#8C8C8C",
}
FORWARD_COLOUR = QColor("#1F6FD1")
BACKWARD_COLOUR = QColor("#D62728")
UPDATE_COLOUR = QColor("#7B3FB5")
NONFINITE_COLOUR = QColor("#C00000")
SELECTED_COLOUR = QColor("#1E6FD9")

_ACTIVATIONS = {"ReLU", "Sigmoid", "TanH", "Dropout", "Softmax", "PReLU", "ELU", "AbsVal", "BNLL",
                "Power", "Exp", "Log", "Threshold", "Swish", "Clip", "Scale", "Bias", "BatchNorm"}
_CONV_POOL = {"Convolution", "Deconvolution", "Pooling", "LRN", "Im2col", "SPP"}


def layer_kind(type_name: str) -> str:
    """The colour family of a layer type."""
    if type_name.endswith("Data") or type_name == "Input":
        return "data"
    if type_name in ("InnerProduct", "Embed", "LSTM", "RNN", "Parameter"):  # learned matrices
        return "inner product"
    if type_name in _ACTIVATIONS:
        return "activation"
    if "Loss" in type_name or type_name == "Accuracy":
        return "loss"
    if type_name in _CONV_POOL:
        return "conv/pool"
    return "other"


def shape_text(shape) -> str:
    return "×".join(str(d) for d in shape) if len(shape) else "scalar"


@dataclass
class LayerNode:
    """One layer as the graph draws it."""

    index: int
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    top_shapes: list[tuple]
    in_place: bool = False
    host: int | None = None  # for an in-place layer: the node it is attached to
    attached: list[int] = field(default_factory=list)
    rank: int = 0
    x: float = 0.0  # centre
    y: float = 0.0  # top

    @property
    def kind(self) -> str:
        return layer_kind(self.type)


@dataclass
class EdgeSpec:
    """A blob from the node that produces it to a layer that reads it."""

    blob: str
    shape: tuple
    source: int
    target: int


@dataclass
class GraphLayout:
    nodes: list[LayerNode]
    edges: list[EdgeSpec]
    lanes: dict[int, float]  # edge index -> x of its side lane (edges that skip ranks)
    width: float
    height: float

    def node(self, name: str) -> LayerNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def group_height(self, node: LayerNode) -> float:
        return NODE_HEIGHT + TAB_HEIGHT * len(node.attached)

    def box(self, node: LayerNode) -> QRectF:
        """Where a node (an attached tab included) is drawn."""
        if node.in_place and node.host is not None:
            host = self.nodes[node.host]
            k = host.attached.index(node.index)
            return QRectF(host.x - NODE_WIDTH / 2 + 12, host.y + NODE_HEIGHT + k * TAB_HEIGHT,
                          NODE_WIDTH - 24, TAB_HEIGHT)
        return QRectF(node.x - NODE_WIDTH / 2, node.y, NODE_WIDTH, NODE_HEIGHT)


def describe_net(net) -> list[LayerNode]:
    """The graph's nodes for an engine Net, with in-place layers attached to their host.

    The Split layers Caffe inserts where a blob feeds several layers are not drawn:
    their consumers read the original blob.
    """
    nodes: list[LayerNode] = []
    writer: dict[str, int] = {}  # blob -> node that produced it
    alias: dict[str, str] = {}  # a Split's top -> the blob it copies
    for i, layer in enumerate(net.layers):
        bottoms = [alias.get(b, b) for b in net.bottom_names[i]]
        if layer.type_name == "Split" and len(bottoms) == 1:
            for top in net.top_names[i]:
                alias[top] = bottoms[0]
            continue
        tops = list(net.top_names[i])
        shapes = [tuple(b.shape) for b in net.tops_of(i)]
        node = LayerNode(len(nodes), layer.name, layer.type_name, bottoms, tops, shapes)
        if bool(tops) and all(t in bottoms for t in tops) and all(t in writer for t in tops):
            host = writer[tops[0]]
            while nodes[host].in_place:
                host = nodes[host].host
            node.in_place, node.host = True, host
            nodes[host].attached.append(node.index)
        for top in tops:
            writer[top] = node.index if not node.in_place else writer[top]
        nodes.append(node)
    return nodes


def layout_graph(nodes: list[LayerNode]) -> GraphLayout:
    """Ranks, order and coordinates of the nodes; the edges between them."""
    main = [n for n in nodes if not n.in_place]
    producer: dict[str, int] = {}
    edges: list[EdgeSpec] = []
    for node in main:
        for blob in node.bottoms:
            if blob in producer:
                source = nodes[producer[blob]]
                shape = source.top_shapes[source.tops.index(blob)]
                edges.append(EdgeSpec(blob, shape, source.index, node.index))
        node.rank = 1 + max((nodes[producer[b]].rank for b in node.bottoms if b in producer), default=-1)
        for top in node.tops:
            producer[top] = node.index
    ranks: dict[int, list[LayerNode]] = {}
    for node in main:
        ranks.setdefault(node.rank, []).append(node)
    parents: dict[int, list[int]] = {}
    for edge in edges:
        parents.setdefault(edge.target, []).append(edge.source)
    y = 0.0
    order_pos: dict[int, float] = {}
    width = NODE_WIDTH
    for rank in sorted(ranks):
        row = ranks[rank]
        row.sort(key=lambda n: (_mean([order_pos[p] for p in parents.get(n.index, []) if p in order_pos],
                                      n.index), n.index))
        count = len(row)
        for k, node in enumerate(row):
            node.x = (k - (count - 1) / 2) * (NODE_WIDTH + NODE_GAP)
            node.y = y
            order_pos[node.index] = node.x
        width = max(width, count * NODE_WIDTH + (count - 1) * NODE_GAP)
        y += max(NODE_HEIGHT + TAB_HEIGHT * len(n.attached) for n in row) + RANK_GAP
    lanes = _side_lanes(nodes, edges, ranks)
    return GraphLayout(nodes, edges, lanes, width, max(y - RANK_GAP, NODE_HEIGHT))


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default * 1e-6


def _side_lanes(nodes, edges, ranks) -> dict[int, float]:
    """An x for every edge that skips ranks: right of the nodes it passes."""
    lanes: dict[int, float] = {}
    used: list[tuple[float, int, int]] = []  # (x, first rank, last rank)
    for k, edge in enumerate(edges):
        low, high = nodes[edge.source].rank, nodes[edge.target].rank
        if high - low <= 1:
            continue
        passed = [n for r in range(low + 1, high) for n in ranks.get(r, [])]
        x = max(n.x + NODE_WIDTH / 2 for n in passed) + LANE_GAP
        while any(abs(x - ux) < 1 and not (high <= a or low >= b) for ux, a, b in used):
            x += LANE_GAP
        used.append((x, low, high))
        lanes[k] = x
    return lanes


class NodeItem(QGraphicsItem):
    """A layer's box: kind stripe, name, type and output shape."""

    def __init__(self, node: LayerNode, rect: QRectF):
        super().__init__()
        self.node = node
        self.rect = rect
        self.colour = QColor(KIND_COLOURS[node.kind])
        self.selected = False
        self.direction: str | None = None  # forward / backward / update
        self.nonfinite = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip(self._tooltip())
        self.setZValue(2)

    def _tooltip(self) -> str:
        node = self.node
        outs = ", ".join(f"{t} [{shape_text(s)}]" for t, s in zip(node.tops, node.top_shapes))
        ins = ", ".join(node.bottoms) or "—"
        return f"<b>{node.name}</b> ({node.type})<br>in: {ins}<br>out: {outs}"

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-6, -6, 6, 6)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        rect = self.rect
        fill = _blend(self.colour, 0.16) if not self.nonfinite else QColor("#FFD6D6")
        border, width = QColor(self.colour).darker(115), 1.2
        if self.direction:
            border, width = self._direction_colour(), 3.2
        if self.nonfinite:
            border, width = NONFINITE_COLOUR, 3.6
        radius = 7.0 if not self.node.in_place else 5.0
        painter.setPen(QPen(border, width))
        painter.setBrush(QBrush(fill))
        painter.drawRoundedRect(rect, radius, radius)
        stripe = QRectF(rect.left() + 1, rect.top() + 1, 7, rect.height() - 2)
        painter.setPen(Qt.NoPen)
        painter.setBrush(QBrush(self.colour))
        painter.drawRoundedRect(stripe, 3, 3)
        if self.selected:
            pen = QPen(SELECTED_COLOUR, 3.0, Qt.SolidLine)  # the selection must show on every layer type
            painter.setPen(pen)
            painter.setBrush(Qt.NoBrush)
            painter.drawRoundedRect(rect.adjusted(-4, -4, 4, 4), radius + 3, radius + 3)
        self._paint_text(painter, rect)
        if self.direction or self.nonfinite:
            self._paint_badge(painter, rect)

    def _paint_text(self, painter: QPainter, rect: QRectF) -> None:
        node = self.node
        painter.setPen(QColor("#1A1A1A"))
        left = rect.left() + 14
        if node.in_place:
            painter.setFont(_font(9, bold=True))
            room = rect.width() - 18 - (42 if (self.direction or self.nonfinite) else 0)
            text = f"{node.name}  ·  {node.type} (in place)"
            if painter.fontMetrics().horizontalAdvance(text) > room:
                text = f"{node.name}  ·  {node.type}"
            text = painter.fontMetrics().elidedText(text, Qt.ElideRight, int(room))
            painter.drawText(QRectF(left, rect.top(), room, rect.height()), Qt.AlignVCenter | Qt.AlignLeft, text)
            return
        painter.setFont(_font(10.5, bold=True))
        room = rect.width() - 18 - (90 if (self.direction or self.nonfinite) else 0)
        name = painter.fontMetrics().elidedText(node.name, Qt.ElideRight, int(room))
        painter.drawText(QRectF(left, rect.top() + 4, room, 20), Qt.AlignLeft | Qt.AlignVCenter, name)
        painter.setFont(_font(9))
        painter.setPen(QColor("#444444"))
        painter.drawText(QRectF(left, rect.top() + 22, rect.width() - 18, 16), Qt.AlignLeft | Qt.AlignVCenter,
                         node.type)
        shapes = " · ".join(shape_text(s) for s in node.top_shapes) or "no output"
        painter.setPen(QColor("#1A1A1A"))
        painter.setFont(_font(9, mono=True))
        painter.drawText(QRectF(left, rect.top() + 38, rect.width() - 18, 16), Qt.AlignLeft | Qt.AlignVCenter,
                         "→ " + shapes)

    def _direction_colour(self) -> QColor:
        return {"forward": FORWARD_COLOUR, "backward": BACKWARD_COLOUR}.get(self.direction, UPDATE_COLOUR)

    def _paint_badge(self, painter: QPainter, rect: QRectF) -> None:
        if self.nonfinite:
            text, colour = "NaN/inf", NONFINITE_COLOUR
        else:
            text = {"forward": "▼ forward", "backward": "▲ backward"}.get(self.direction, "● update")
            colour = self._direction_colour()
        badge = QRectF(rect.right() - 88, rect.top() + 5, 82, 18)
        if self.node.in_place:  # a tab has little room: the arrow alone
            text = text.split(" ")[0] if not self.nonfinite else "NaN"
            badge = QRectF(rect.right() - 40, rect.top() + (rect.height() - 18) / 2, 34, 18)
        painter.setPen(Qt.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(badge, 10, 10)
        painter.setPen(QColor("white"))
        painter.setFont(_font(8.5, bold=True))
        painter.drawText(badge, Qt.AlignCenter, text)


class EdgeItem(QGraphicsPathItem):
    """A blob from its producer to a consumer, with its name and shape."""

    def __init__(self, spec: EdgeSpec, path: QPainterPath, label_pos: QPointF):
        super().__init__(path)
        self.spec = spec
        self.mode: str | None = None
        self.label_pos = label_pos
        self.setZValue(1)
        self._apply_pen()

    def set_mode(self, mode: str | None) -> None:
        if mode != self.mode:
            self.mode = mode
            self._apply_pen()
            self.update()

    def _apply_pen(self) -> None:
        colour = {"forward": FORWARD_COLOUR, "backward": BACKWARD_COLOUR}.get(self.mode, QColor("#8A8A8A"))
        self.setPen(QPen(colour, 2.6 if self.mode else 1.4))

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(-8, -8, 8, 8)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        super().paint(painter, option, widget)
        path = self.path()
        # arrowhead where the signal arrives: the consumer (forward), the producer (backward)
        at_end = self.mode != "backward"
        percent = 1.0 if at_end else 0.0
        tip = path.pointAtPercent(percent)
        before = path.pointAtPercent(0.97 if at_end else 0.03)
        _arrow(painter, before, tip, self.pen().color(), 9 if self.mode else 7)


class LabelItem(QGraphicsItem):
    """An edge label with a white backing so it stays readable over lines."""

    def __init__(self, text: str, pos: QPointF, align_left: bool = True):
        super().__init__()
        self.text = text
        self.font = _font(8.5, mono=True)
        from PySide6.QtGui import QFontMetricsF
        metrics = QFontMetricsF(self.font)
        w, h = metrics.horizontalAdvance(text) + 8, metrics.height() + 2
        x = pos.x() + 6 if align_left else pos.x() - w / 2
        self.rect = QRectF(x, pos.y() - h / 2, w, h)
        self.setZValue(3)

    def boundingRect(self) -> QRectF:
        return self.rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setPen(Qt.NoPen)
        painter.setBrush(QColor(255, 255, 255, 225))
        painter.drawRoundedRect(self.rect, 3, 3)
        painter.setPen(QColor("#505050"))
        painter.setFont(self.font)
        painter.drawText(self.rect, Qt.AlignCenter, self.text)


def _blend(colour: QColor, amount: float) -> QColor:
    """``amount`` of ``colour`` over white."""
    return QColor(int(255 + (colour.red() - 255) * amount), int(255 + (colour.green() - 255) * amount),
                  int(255 + (colour.blue() - 255) * amount))


def _arrow(painter: QPainter, before: QPointF, tip: QPointF, colour: QColor, size: float) -> None:
    import math
    dx, dy = tip.x() - before.x(), tip.y() - before.y()
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    left = QPointF(tip.x() - size * ux + size * 0.5 * uy, tip.y() - size * uy - size * 0.5 * ux)
    right = QPointF(tip.x() - size * ux - size * 0.5 * uy, tip.y() - size * uy + size * 0.5 * ux)
    painter.setPen(Qt.NoPen)
    painter.setBrush(colour)
    painter.drawPolygon(QPolygonF([tip, left, right]))


_FONTS: dict = {}


def _font(size: float, bold: bool = False, mono: bool = False) -> QFont:
    key = (size, bold, mono)
    if key not in _FONTS:
        font = QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
        if mono:
            font.setStyleHint(QFont.Monospace)
        font.setPointSizeF(size)
        font.setBold(bold)
        _FONTS[key] = font
    return _FONTS[key]


class GraphView(QGraphicsView):
    """The layer graph widget. Emits ``layerSelected(name)`` when a node is clicked and
    ``layerMenuRequested(name, global_pos)`` when a node's context menu is asked for."""

    layerSelected = Signal(str)
    layerMenuRequested = Signal(str, QPoint)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setBackgroundBrush(QColor("#FAFAFA"))
        self.setMinimumWidth(180)
        self.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
        # fixed scroll bars: fitting the graph never shows or hides one, which would
        # resize the viewport and fit again (a resize loop)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOn)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.graph_layout: GraphLayout | None = None
        self.node_items: dict[str, NodeItem] = {}
        self.chips: dict[str, QGraphicsEllipseItem] = {}  # set_chips: discs on the nodes
        self.edge_items: list[EdgeItem] = []
        self.selected: str | None = None
        self.active: tuple[str, str] | None = None
        self.nonfinite_layer: str | None = None
        self._user_zoomed = False
        self._status = QLabel(self)
        self._status.setStyleSheet("QLabel { background: rgba(255,255,255,220); color: #202020;"
                                   " border: 1px solid #CCCCCC; border-radius: 4px; padding: 3px 6px; }")
        self._status.move(8, 8)
        self._status.hide()
        self._legend = QLabel(self)
        self._legend.setText(_legend_html())
        self._legend.setStyleSheet("QLabel { background: rgba(255,255,255,230); border: 1px solid #DDDDDD;"
                                   " border-radius: 4px; padding: 2px 4px; }")

    # -- the model ------------------------------------------------------
    def follow(self, session) -> None:
        """Draw each net ``session`` (a gui.model Session) loads (NetLoaded), and on each
        frame it shows (FrameReady) the layer being computed or the one that went NaN."""
        self._session = session
        session.emitter.connect(self._on_net_loaded, NetLoaded)
        session.emitter.connect(self._on_frame, FrameReady)

    def _on_net_loaded(self, _event: NetLoaded) -> None:
        if self._session.solver is not None:
            self.set_net(self._session.solver.net)

    def _on_frame(self, event: FrameReady) -> None:
        frame = event.frame
        stop = frame.nonfinite
        if stop is not None:
            self.set_active(None, None)
            self.set_nonfinite(stop.layer, f"NaN/inf: {stop.phase} of {stop.layer}")
            return
        if self.nonfinite_layer is not None:
            self.set_nonfinite(None)
        self.set_active(*activity(frame))

    # -- content -------------------------------------------------------
    def set_net(self, net) -> None:
        """Draw ``net`` (an engine Net), replacing what was shown."""
        scene = self.scene()
        scene.clear()
        self.node_items, self.edge_items = {}, []
        self.chips = {}
        self.active, self.nonfinite_layer = None, None
        self.graph_layout = layout_graph(describe_net(net))
        for node in self.graph_layout.nodes:
            item = NodeItem(node, self.graph_layout.box(node))
            scene.addItem(item)
            self.node_items[node.name] = item
        for k, spec in enumerate(self.graph_layout.edges):
            self._add_edge(k, spec)
        bounds = scene.itemsBoundingRect().adjusted(-24, -48, 24, 40)
        scene.setSceneRect(bounds)
        if self.selected in self.node_items:
            self.node_items[self.selected].selected = True
        else:
            self.selected = None
        self._user_zoomed = False
        self.fit()
        self._status.hide()

    def layer_at(self, view_pos) -> str | None:
        """The layer whose node is under ``view_pos`` (viewport coordinates), or None."""
        scene_pos = self.mapToScene(view_pos)
        hits = [name for name, item in self.node_items.items() if item.sceneBoundingRect().contains(scene_pos)]
        return hits[-1] if hits else None

    def set_chips(self, colours: dict, tips: dict[str, str] | None = None) -> None:
        """A coloured disc at the corner of each named node (RGB; None or missing: no disc),
        with its tooltip: e.g. the debugger's debug_info metric."""
        tips = tips or {}
        for name in [n for n, chip in self.chips.items() if not colours.get(n)]:
            self.scene().removeItem(self.chips.pop(name))
        for name, colour in colours.items():
            node = self.node_items.get(name)
            if node is None or not colour:
                continue
            chip = self.chips.get(name)
            if chip is None:
                box = node.sceneBoundingRect()
                chip = QGraphicsEllipseItem(QRectF(box.right() - 20, box.top() - 2, 16, 16))
                chip.setZValue(5)
                chip.setPen(QPen(QColor("#333333"), 1))
                self.scene().addItem(chip)
                self.chips[name] = chip
            chip.setBrush(QBrush(QColor(*colour)))
            chip.setToolTip(tips.get(name, name))

    def set_notes(self, notes: dict[str, str]) -> None:
        """A line of text at the right of each named node (e.g. one sample's δ there; issue 17);
        an empty dict clears them."""
        for item in getattr(self, "notes", {}).values():
            try:
                if item.scene() is self.scene():
                    self.scene().removeItem(item)
            except RuntimeError:  # set_net cleared the scene
                pass
        self.notes: dict[str, LabelItem] = {}
        for name, text in notes.items():
            node = self.node_items.get(name)
            if node is None:
                continue
            box = node.sceneBoundingRect()
            item = LabelItem(text, QPointF(box.right() - 4, box.bottom() - 8))
            item.setZValue(6)
            self.scene().addItem(item)
            self.notes[name] = item

    def _add_edge(self, k: int, spec: EdgeSpec) -> None:
        layout = self.graph_layout
        source, target = layout.nodes[spec.source], layout.nodes[spec.target]
        outs = [e for e in layout.edges if e.source == spec.source]
        ins = [e for e in layout.edges if e.target == spec.target]
        start = QPointF(source.x + _port_offset(outs.index(spec), len(outs)),
                        source.y + layout.group_height(source))
        end = QPointF(target.x + _port_offset(ins.index(spec), len(ins)), target.y)
        path = QPainterPath(start)
        lane = layout.lanes.get(k)
        if lane is None:
            mid = (start.y() + end.y()) / 2
            path.cubicTo(QPointF(start.x(), mid), QPointF(end.x(), mid), end)
            label = QPointF((start.x() + end.x()) / 2, mid)
        else:
            top, bottom = start.y() + RANK_GAP * 0.45, end.y() - RANK_GAP * 0.45
            path.cubicTo(QPointF(start.x(), top), QPointF(lane, start.y()), QPointF(lane, top))
            path.lineTo(QPointF(lane, bottom))
            path.cubicTo(QPointF(lane, end.y()), QPointF(end.x(), bottom), end)
            label = QPointF(lane, (top + bottom) / 2)
        item = EdgeItem(spec, path, label)
        self.scene().addItem(item)
        self.edge_items.append(item)
        labelled = any(e.spec.source == spec.source and e.spec.blob == spec.blob and
                       layout.lanes.get(j) is None for j, e in enumerate(self.edge_items[:-1]))
        if not labelled or lane is not None:
            text = f"{spec.blob} [{shape_text(spec.shape)}]"
            self.scene().addItem(LabelItem(text, label, align_left=True))

    # -- state ---------------------------------------------------------
    def select(self, name: str | None) -> None:
        """Mark ``name`` as the selected layer (no signal)."""
        for item_name, item in self.node_items.items():
            flag = item_name == name
            if item.selected != flag:
                item.selected = flag
                item.update()
        self.selected = name if name in self.node_items else None

    def set_active(self, layer: str | None, direction: str | None, caption: str = "") -> None:
        """Highlight the layer being computed; ``direction`` forward / backward / update."""
        previous = self.active
        self.active = (layer, direction) if layer and direction else None
        if previous and previous[0] in self.node_items:
            item = self.node_items[previous[0]]
            item.direction = None
            item.update()
        for edge in self.edge_items:
            edge.set_mode(None)
        if self.active and layer in self.node_items:
            item = self.node_items[layer]
            item.direction = direction
            item.update()
            self._light_edges(item.node, direction)
            self.ensureVisible(item.boundingRect(), 20, 20)
        self._set_caption(caption)

    def _light_edges(self, node: LayerNode, direction: str) -> None:
        index = node.host if node.in_place and node.host is not None else node.index
        for edge in self.edge_items:
            if direction == "forward" and edge.spec.target == index:
                edge.set_mode("forward")
            elif direction == "backward" and edge.spec.target == index:
                edge.set_mode("backward")

    def set_nonfinite(self, layer: str | None, caption: str = "") -> None:
        """Mark the layer where a NaN/inf appeared (None clears it)."""
        if self.nonfinite_layer in self.node_items:
            item = self.node_items[self.nonfinite_layer]
            item.nonfinite = False
            item.update()
        self.nonfinite_layer = layer if layer in self.node_items else None
        if self.nonfinite_layer:
            item = self.node_items[layer]
            item.nonfinite = True
            item.update()
            self.ensureVisible(item.boundingRect(), 20, 20)
        self._set_caption(caption)

    def _set_caption(self, caption: str) -> None:
        if caption:
            self._status.setText(caption)
            self._status.adjustSize()
            self._status.show()
        else:
            self._status.hide()

    # -- view ----------------------------------------------------------
    def fit(self) -> None:
        """Fit the graph's width (never above 100 %), showing its top."""
        rect = self.sceneRect()
        if rect.isEmpty():
            return
        view = self.viewport().rect()
        scale = min(1.0, (view.width() - 4) / rect.width(), max((view.height() - 4) / rect.height(), 0.8))
        scale = max(scale, 0.35)
        self.resetTransform()
        self.scale(scale, scale)
        self.centerOn(rect.center().x(), rect.top() + (view.height() / scale) / 2)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._user_zoomed:
            self.fit()
        self._place_legend()

    def _place_legend(self) -> None:
        view = self.viewport().geometry()
        self._legend.setWordWrap(True)
        self._legend.setFixedWidth(max(120, min(view.width() - 12, 420)))
        self._legend.setFixedHeight(self._legend.heightForWidth(self._legend.width()))
        self._legend.move(view.left() + 6, view.bottom() - self._legend.height() - 6)

    def wheelEvent(self, event) -> None:
        factor = 1.15 ** (event.angleDelta().y() / 120.0)
        current = self.transform().m11()
        factor = min(max(factor, 0.2 / current), 4.0 / current)
        self.scale(factor, factor)
        self._user_zoomed = True

    def mousePressEvent(self, event) -> None:
        item = self.itemAt(event.position().toPoint())
        while item is not None and not isinstance(item, NodeItem):
            item = item.parentItem()
        if isinstance(item, NodeItem) and event.button() == Qt.LeftButton:
            self.select(item.node.name)
            self.layerSelected.emit(item.node.name)
        super().mousePressEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        name = self.layer_at(event.pos())
        if name is None:
            super().contextMenuEvent(event)
            return
        self.layerMenuRequested.emit(name, event.globalPos())
        event.accept()

    def node_center(self, name: str):
        """The node's centre in viewport coordinates (for tests and tooltips)."""
        item = self.node_items[name]
        return self.mapFromScene(item.rect.center())


def _port_offset(k: int, count: int) -> float:
    if count <= 1:
        return 0.0
    span = min(NODE_WIDTH - 60, 40.0 * (count - 1))
    return -span / 2 + span * k / (count - 1)


def _legend_html() -> str:
    cells = " ".join(f"<span style='color:{c}'>■</span>&nbsp;{k.replace(' ', '&nbsp;')}&nbsp;" for k, c in KIND_COLOURS.items()
                    if k != "other")
    return f"<span style='font-size:8pt; color:#404040'>{cells}</span>"


def activity(frame) -> tuple[str | None, str | None, str]:
    """(layer, direction, caption) for a frame (a gui.model.frames.Frame): the layer whose
    forward or backward was the last event stepped, or the update; else the iteration."""
    event = frame.event
    if event is None or not frame.mid_iteration and event.kind != "update":
        return None, None, f"iteration {frame.iteration}" if frame.iteration else ""
    if event.kind in ("forward", "backward"):
        return event.layer, event.kind, (f"iteration {event.iteration} · {event.kind} {event.layer} "
                                         f"({event.layer_type})")
    return None, None, (f"iteration {event.iteration} · update applied "
                        f"(lr {frame.learning_rate:g}) → iteration {frame.iteration}")
