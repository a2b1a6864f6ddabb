"""Building the main window for tests."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def module_window(**options):
    """A shown 1280x860 main window (errors recorded, not modal), shut down afterwards;
    for module-scoped fixtures (building the heatmaps is the slow part)."""
    from gui.main_window import MainWindow
    window = MainWindow(settings=None, modal_errors=False, **options)
    window.resize(1280, 860)
    window.show()
    try:
        yield window
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()
