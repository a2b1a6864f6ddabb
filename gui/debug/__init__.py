"""Debugger and classroom features (issue 6).

Qt-free cores: :mod:`rewind`, :mod:`breakpoints`, :mod:`decompose`,
:mod:`boundary`, :mod:`timing`, :mod:`overlays`, :mod:`gradcheck_task`, :mod:`tiles`.
Qt panels observing them: :mod:`widgets`; presenter mode: :mod:`presenter`;
the binding to the main window and its session: :mod:`controller`.
``install(main_window)`` mounts the panels as dock widgets (see docs/debugging.md).
"""


def install(main_window):
    """Mount the debugger panels, the Debug menu and the Step Back / Gradient check /
    Presenter mode actions on ``main_window`` (idempotent); returns the controller."""
    from .controller import install as _install
    return _install(main_window)
