"""The red banner above the inspector that says why a run or step stopped on
NaN/inf; hidden while the frame shown has no such stop."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from gui.model.events import FrameReady

STYLE = ("QLabel { background: #FDECEA; color: #8B0000; border: 1px solid #E0A0A0;"
         " border-radius: 4px; padding: 6px; font-weight: bold; }")


class StopBanner(QLabel):
    """Shows "Stopped: <why>" while the session's frame carries a non-finite stop."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.PlainText)
        self.setStyleSheet(STYLE)
        self.hide()

    def follow(self, session) -> None:
        """Draw every frame ``session`` (a gui.model Session) shows."""
        session.emitter.connect(self._on_frame, FrameReady)

    def _on_frame(self, event: FrameReady) -> None:
        stop = event.frame.nonfinite
        if stop is None:
            self.hide()
            return
        self.setText(f"Stopped: {stop.message}")
        self.show()
