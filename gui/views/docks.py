"""Mounting a panel as a dock tabbed beside the Solver panel (hidden until asked for)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QWidget


def add_tabbed_dock(window, title: str, object_name: str, panel: QWidget) -> QDockWidget:
    """A hidden dock holding ``panel``, tabbed with the Solver dock; its View-menu entry
    shows it and brings its tab to the front."""
    dock = QDockWidget(title, window)
    dock.setObjectName(object_name)
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.tabifyDockWidget(window.solver_dock, dock)
    window.solver_dock.raise_()
    dock.hide()
    window.view_menu.addAction(dock.toggleViewAction())
    dock.toggleViewAction().triggered.connect(lambda on: dock.raise_() if on else None)
    return dock
