"""Error dialogs that show the engine's own message (never a traceback).

:class:`ErrorReporter` is what the window calls; it remembers the last error
(``last_error``, ``last_title``) and shows a non-modal message box, so tests can
read the exact text without a dialog blocking them.
"""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def error_text(exc: BaseException) -> str:
    """The user-facing message of an exception: the engine's message as is,
    anything else prefixed by its type (a missing module, an OS error)."""
    from engine.errors import EngineError
    if isinstance(exc, EngineError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f" '{exc.filename}'" if exc.filename else ""
        return f"{exc.strerror}{where}"
    if isinstance(exc, ImportError):
        return f"this feature needs a module that is not available: {exc}"
    return f"{type(exc).__name__}: {exc}"


class ErrorReporter:
    """Shows errors in a message box owned by ``parent``; keeps the last one."""

    def __init__(self, parent: QWidget | None, modal: bool = True):
        self.parent = parent
        self.modal = modal
        self.last_error: str | None = None
        self.last_title: str | None = None
        self.count = 0
        self.box: QMessageBox | None = None

    def report(self, title: str, message: str, detail: str = "") -> None:
        """Show ``message`` under ``title`` (``detail`` says what was kept)."""
        self.last_title, self.last_error = title, message
        self.count += 1
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self.parent)
        if detail:
            box.setInformativeText(detail)
        box.setObjectName("errorDialog")
        if self.modal:
            box.exec()
        else:
            box.setModal(False)
            box.show()
        self.box = box

    def report_exception(self, title: str, exc: BaseException, detail: str = "") -> None:
        self.report(title, error_text(exc), detail)

    def clear(self) -> None:
        self.last_error = self.last_title = None
        if self.box is not None:
            self.box.close()
            self.box = None
