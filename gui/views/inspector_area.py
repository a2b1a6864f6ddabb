"""The window's central area: the InnerProduct inspector, the inspector of any
other layer, or a data layer's batch, one page at a time, each drawn from the
frames the session shows (FrameReady)."""
from __future__ import annotations

from PySide6.QtWidgets import QStackedWidget, QWidget

from gui.model.data_batch import DataBatch, is_data_layer
from gui.model.events import FrameReady, NetLoaded
from gui.model.frames import InnerProductView
from gui.model.param_layer_frames import LayerFrame
from gui.views.data_batch import DataBatchView
from gui.views.inspector import InspectorPanel
from gui.views.param_layer import LayerInspector


class InspectorArea(QStackedWidget):
    """The three inspector pages. ``other_layer``: the layer (not InnerProduct) whose
    page is shown, None while the InnerProduct inspector is."""

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.inspector = InspectorPanel()
        self.layer_inspector = LayerInspector()
        self.data_view = DataBatchView()
        for page in (self.inspector, self.layer_inspector, self.data_view):
            self.addWidget(page)
        self.other_layer: str | None = None

    def follow(self) -> None:
        """Draw each frame the session shows; a loaded net starts on the InnerProduct page."""
        self.session.emitter.connect(self._on_frame, FrameReady)
        self.session.emitter.connect(lambda _event: self.show_inner_products(), NetLoaded)
        if self.session.frame is not None:
            self.draw(self.session.frame)

    def show_layer(self, name: str) -> bool:
        """Show layer ``name``'s page. True when frames must now copy that layer too
        (the caller draws a new frame once the solver is idle)."""
        if name in self.session.inner_product_layers():
            self.show_inner_products()
            self.inspector.select_layer(name)
            return False
        net = self.session.solver.net if self.session.solver is not None else None
        if net is None or name not in [layer.name for layer in net.layers]:
            return False
        self.other_layer = name
        self.session.frame_layers = self.session.inner_product_layers() + [name]
        page = self.data_view if is_data_layer(net, net.layer_index(name)) else self.layer_inspector
        page.show_waiting(name)
        self.setCurrentWidget(page)
        return True

    def show_inner_products(self) -> None:
        """Back to the InnerProduct inspector; frames copy only its layers."""
        self.other_layer = None
        self.session.frame_layers = None
        self.setCurrentWidget(self.inspector)

    def _on_frame(self, event: FrameReady) -> None:
        self.draw(event.frame)

    def draw(self, frame) -> None:
        """The InnerProduct views to the inspector, the selected other layer's copy to its
        page; a layer that went NaN/inf is selected."""
        views = frame.views
        self.inspector.set_views({k: v for k, v in views.items() if isinstance(v, InnerProductView)}, frame.info)
        other = views.get(self.other_layer) if self.other_layer else None
        if isinstance(other, LayerFrame):
            self.layer_inspector.set_frame(other)
        elif isinstance(other, DataBatch):
            self.data_view.set_batch(other)
        stop = frame.nonfinite
        if stop is not None and stop.layer in views:
            self.inspector.select_layer(stop.layer)
