"""Consent for Python layers in the window (Qt-free): a net whose ``type: "Python"``
layer names a module is built only after the user allowed the module's folder.

:class:`PythonLayerConsent` builds a solver with the folders allowed so far (the
remembered ones, kept in a :class:`FolderMemory` the view backs with QSettings);
when the engine refuses a Python layer (engine.PythonLayerRefused, which names the
module, its file beside the net, and the net), it asks ``ask(request)`` — the view's
dialog: Once / Always for this folder / No — and builds again with the answer.
Without an ``ask`` (tests, scripts) the refusal stands. "Once" allows the folder
for the net being opened (and its Reset, regenerated data, gradient check and
solver process, which reuse the solver's access); "Always" remembers the folder
until it is revoked. A revoked folder is asked about again at the next opening.
"""
from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar

from engine.python_layers import PythonLayerAccess, PythonLayerRefused

T = TypeVar("T")


class Choice(enum.Enum):
    """The user's answer to "Run code from this folder?"."""

    ONCE = "once"
    ALWAYS = "always"
    NO = "no"


@dataclass(frozen=True)
class ConsentRequest:
    """What the dialog names: the layer and its module, the module's file and folder,
    and the net that asks for it."""

    layer: str
    module: str
    module_file: str
    folder: str
    net: str

    @classmethod
    def from_refusal(cls, refusal: PythonLayerRefused) -> "ConsentRequest | None":
        """The question to ask for ``refusal``, or None when no file was found to ask about."""
        if not refusal.module_file or not refusal.folder:
            return None
        return cls(refusal.layer, refusal.module, refusal.module_file, refusal.folder, refusal.net or "")


class FolderStore(Protocol):
    """Where remembered folders live (the view: QSettings)."""

    def load(self) -> list[str]: ...

    def save(self, folders: list[str]) -> None: ...


class MemoryStore:
    """A FolderStore in memory (no settings: tests, a window without QSettings)."""

    def __init__(self, folders: list[str] | None = None) -> None:
        self.folders = list(folders or [])

    def load(self) -> list[str]:
        return list(self.folders)

    def save(self, folders: list[str]) -> None:
        self.folders = list(folders)


class FolderMemory:
    """The folders the user allowed "Always", kept in a store."""

    def __init__(self, store: FolderStore | None = None) -> None:
        self.store: FolderStore = store or MemoryStore()

    def folders(self) -> list[str]:
        return [f for f in self.store.load() if f]

    def remember(self, folder: str) -> None:
        folder = os.path.realpath(folder)
        folders = self.folders()
        if folder not in folders:
            self.store.save(folders + [folder])

    def revoke(self, folder: str) -> bool:
        """Forget ``folder``; False when it was not remembered."""
        folders = self.folders()
        if folder not in folders:
            return False
        self.store.save([f for f in folders if f != folder])
        return True


#: The view's question: the request -> the user's choice.
AskConsent = Callable[[ConsentRequest], Choice]


class PythonLayerConsent:
    """Builds what needs Python-layer consent, asking the user for each new folder."""

    def __init__(self, memory: FolderMemory | None = None, ask: AskConsent | None = None) -> None:
        self.memory = memory or FolderMemory()
        self.ask = ask
        self.asked: list[tuple[ConsentRequest, Choice]] = []  # this window's questions and answers

    def build(self, make: Callable[[PythonLayerAccess], T]) -> T:
        """``make(access)`` with the remembered folders; on a refusal ask, and build
        again with the folder allowed (Once or Always), or raise the refusal (No)."""
        granted = self.memory.folders()
        while True:
            try:
                return make(PythonLayerAccess(folders=tuple(granted)))
            except PythonLayerRefused as refusal:
                request = ConsentRequest.from_refusal(refusal)
                if request is None or self.ask is None or request.folder in granted:
                    raise
                choice = self.ask(request)
                self.asked.append((request, choice))
                if choice is Choice.NO:
                    raise
                if choice is Choice.ALWAYS:
                    self.memory.remember(request.folder)
                granted.append(request.folder)
