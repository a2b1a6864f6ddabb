"""Backprop Studio desktop app (PySide6 + pyqtgraph): drives the engine, shows its arrays."""
