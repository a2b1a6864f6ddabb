"""The window's consent for Python layers: the question "Run code from this folder?"
(Once / Always for this folder / No), the folders remembered in QSettings, and
the File menu's "Python layer folders" list with Revoke.

The model (gui.model.python_consent) asks; this module gives it the dialog
(:class:`DialogAsker`) and the settings store (:class:`SettingsFolderStore`).
:func:`install` wires both into a main window.
"""
from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QMenu, QPushButton, QVBoxLayout, QWidget

from gui.model.python_consent import Choice, ConsentRequest, FolderMemory, MemoryStore

SETTINGS_KEY = "pythonLayerFolders"


class SettingsFolderStore:
    """The remembered folders as a list in QSettings."""

    def __init__(self, settings: QSettings, key: str = SETTINGS_KEY) -> None:
        self.settings, self.key = settings, key

    def load(self) -> list[str]:
        value: Any = self.settings.value(self.key, [])
        return [value] if isinstance(value, str) else [str(v) for v in (value or [])]

    def save(self, folders: list[str]) -> None:
        self.settings.setValue(self.key, list(folders))
        self.settings.sync()


class ConsentDialog(QDialog):
    """Names the module, its file and the net that asks for it; ``choice`` holds the answer."""

    def __init__(self, request: ConsentRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pythonLayerConsent")
        self.setWindowTitle("Run Python layer code?")
        self.request = request
        self.choice = Choice.NO
        layout = QVBoxLayout(self)
        self.text = QLabel(self._text(request))
        self.text.setWordWrap(True)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox()
        self.buttons: dict[Choice, QPushButton] = {}
        for choice, label, role in ((Choice.ONCE, "Once", QDialogButtonBox.ButtonRole.AcceptRole),
                                    (Choice.ALWAYS, "Always for this folder", QDialogButtonBox.ButtonRole.AcceptRole),
                                    (Choice.NO, "No", QDialogButtonBox.ButtonRole.RejectRole)):
            button = buttons.addButton(label, role)
            button.clicked.connect(lambda checked=False, c=choice: self._answer(c))
            self.buttons[choice] = button
        self.buttons[Choice.NO].setDefault(True)  # Enter does not run code
        layout.addWidget(buttons)

    @staticmethod
    def _text(request: ConsentRequest) -> str:
        def e(text: str) -> str:
            return html.escape(text)
        return (f"<p>The net <b>{e(request.net)}</b> has a Python layer, <b>{e(request.layer)}</b>, that runs "
                f"the module <b>{e(request.module)}</b> from the file<br><tt>{e(request.module_file)}</tt></p>"
                f"<p>Its code runs with your permissions. <b>Run code from this folder?</b><br>"
                f"<tt>{e(request.folder)}</tt></p>"
                f"<p>Once: for this net now. Always: whenever a net asks for a module in this folder "
                f"(File ▸ Python layer folders revokes it).</p>")

    def _answer(self, choice: Choice) -> None:
        self.choice = choice
        if choice is Choice.NO:
            self.reject()
        else:
            self.accept()


class DialogAsker:
    """The model's ``ask``: shows a modal ConsentDialog and returns the answer
    (``dialog`` is the one on screen, for tests that press its buttons)."""

    def __init__(self, parent: QWidget | None) -> None:
        self.parent = parent
        self.dialog: ConsentDialog | None = None

    def __call__(self, request: ConsentRequest) -> Choice:
        self.dialog = ConsentDialog(request, self.parent)
        try:
            self.dialog.exec()
            return self.dialog.choice
        finally:
            self.dialog.deleteLater()
            self.dialog = None


class FoldersMenu(QMenu):
    """File ▸ Python layer folders: the remembered folders, each with Revoke."""

    def __init__(self, memory: FolderMemory, parent: QWidget | None = None) -> None:
        super().__init__("Python layer folders", parent)
        self.setObjectName("pythonLayerFoldersMenu")
        self.memory = memory
        self.aboutToShow.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.clear()
        folders = self.memory.folders()
        if not folders:
            none = self.addAction("No folder is allowed always")
            none.setEnabled(False)
            return
        self.addSection("Python layers run from these folders without asking")
        for folder in folders:
            action = self.addAction(f"Revoke {folder}")
            action.setToolTip(f"Ask again before running code from {folder}")
            action.triggered.connect(lambda checked=False, f=folder: self.revoke(f))

    def revoke(self, folder: str) -> bool:
        revoked = self.memory.revoke(folder)
        self.refresh()
        return revoked


def install(window: Any) -> FoldersMenu:
    """Give ``window.session`` the dialog and the remembered folders (QSettings when the
    window has settings), and add File ▸ Python layer folders."""
    consent = window.session.python_consent
    settings = getattr(window, "settings", None)
    consent.memory = FolderMemory(SettingsFolderStore(settings) if settings is not None else MemoryStore())
    consent.ask = DialogAsker(window)
    menu = FoldersMenu(consent.memory, window)
    recent = window.recent_menu.menuAction()
    actions = window.file_menu.actions()
    after = actions.index(recent) + 1 if recent in actions else len(actions)
    if after < len(actions):
        window.file_menu.insertMenu(actions[after], menu)
    else:
        window.file_menu.addMenu(menu)
    window.python_layer_folders_menu = menu
    return menu
