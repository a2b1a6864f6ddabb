"""Mounting a panel as a dock tabbed beside another (the Solver panel unless told), hidden
until asked for."""
from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QWidget


def add_tabbed_dock(window, title: str, object_name: str, panel: QWidget,
                    beside: QDockWidget | None = None) -> QDockWidget:
    """A hidden dock holding ``panel``, tabbed with ``beside`` (default: the Solver dock);
    its View-menu entry shows it and brings its tab to the front."""
    beside = beside or window.solver_dock
    dock = QDockWidget(title, window)
    dock.setObjectName(object_name)
    dock.setWidget(panel)
    window.addDockWidget(window.dockWidgetArea(beside), dock)
    window.tabifyDockWidget(beside, dock)
    beside.raise_()
    dock.hide()
    window.view_menu.addAction(dock.toggleViewAction())
    dock.toggleViewAction().triggered.connect(lambda on: dock.raise_() if on else None)
    return dock
