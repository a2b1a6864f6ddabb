"""Debugger and classroom features mounted on the main window.

Qt-free cores live in :mod:`gui.model` (timeline, breakpoints, decompose, boundary,
timing, overlays, gradcheck, tiles), their panels in :mod:`gui.views.debug`; this
package binds them to the window and its session (:mod:`gui.debug.controller`).
``install(main_window)`` mounts the panels as dock widgets (see docs/debugging.md).
"""


def install(main_window):
    """Mount the debugger panels, the Debug menu and the Step Back / Gradient check /
    Presenter mode actions on ``main_window`` (idempotent); returns the controller."""
    from gui.debug.controller import install as _install
    return _install(main_window)
