"""Python layers in the window: the model asks before building a net whose Python layer
runs code (Once / Always / No through the view's callback), the window's dialog names
the module, its file and the net, "Always" is remembered in QSettings and revocable,
and the layer is gradient-checked, timed, rewound and handed to the solver process like any."""
from __future__ import annotations

import os
import pickle

import numpy
import pytest
from PySide6.QtCore import QSettings, QTimer

import engine
from engine import resources
from gui.main_window import MainWindow
from gui.model import solver_process
from gui.model.python_consent import Choice, FolderMemory, MemoryStore, PythonLayerConsent
from gui.model.session import Session
from gui.model.state import capture, restore
from gui.model.timing import time_solver
from gui.views.consent_dialog import SETTINGS_KEY, ConsentDialog

from ..engine.test_python_layers import write_layer_folder

EXAMPLE = resources.examples()["python_layer"]
FOLDER = os.path.realpath(os.path.dirname(EXAMPLE))


class Answers:
    """The view's side of the seam: answers the model's questions and keeps them."""

    def __init__(self, *choices: Choice):
        self.choices = list(choices)
        self.requests: list = []

    def __call__(self, request):
        self.requests.append(request)
        return self.choices.pop(0)


def session_with(*choices: Choice, memory: FolderMemory | None = None) -> tuple[Session, Answers]:
    session = Session()
    answers = Answers(*choices)
    session.python_consent = PythonLayerConsent(memory or FolderMemory(MemoryStore()), answers)
    return session, answers


# -- the model --------------------------------------------------------------------
def test_no_refuses_and_keeps_the_open_net():
    session, answers = session_with(Choice.NO)
    session.load(resources.examples()["xor"])
    kept = session.solver
    with pytest.raises(engine.PythonLayerRefused, match="layer 'loss'"):
        session.load(EXAMPLE)
    assert session.solver is kept
    request = answers.requests[0]
    assert (request.layer, request.module, request.folder) == ("loss", "pyloss", FOLDER)
    assert request.module_file == os.path.join(FOLDER, "pyloss.py") and request.net.endswith("net.prototxt")


def test_without_a_dialog_the_refusal_stands():
    session = Session()
    with pytest.raises(engine.PythonLayerRefused):
        session.load(EXAMPLE)


def test_once_opens_this_net_and_asks_again_next_time():
    session, answers = session_with(Choice.ONCE, Choice.ONCE)
    session.load(EXAMPLE)
    assert session.solver.net.layers[-1].type_name == "Python"
    assert session.python_consent.memory.folders() == [] and engine.allowed_python_layer_folders() == []
    session.step_iteration()
    session.reset()  # the consent given at opening covers Reset and new data: no second question
    session.regenerate_data(noise=0.2)
    assert len(answers.requests) == 1
    session.load(EXAMPLE)
    assert len(answers.requests) == 2


def test_always_is_remembered_and_revoking_asks_again():
    memory = FolderMemory(MemoryStore())
    session, answers = session_with(Choice.ALWAYS, Choice.NO, memory=memory)
    session.load(EXAMPLE)
    assert memory.folders() == [FOLDER]
    session.load(EXAMPLE)
    assert len(answers.requests) == 1  # remembered: not asked
    assert memory.revoke(FOLDER) and not memory.revoke(FOLDER)
    with pytest.raises(engine.PythonLayerRefused):
        session.load(EXAMPLE)
    assert len(answers.requests) == 2


def test_the_solver_process_and_the_rewind_take_the_python_layer(tmp_path):
    net_file = write_layer_folder(tmp_path / "layers")
    solver_file = tmp_path / "solver.prototxt"
    solver_file.write_text(f'net: "{net_file}" base_lr: 0.05 random_seed: 3')
    session, answers = session_with(Choice.ONCE)
    session.load(str(solver_file))
    scale = session.solver.net.params["scale"][0]
    before = capture(session.solver)
    value = scale.data.copy()
    for _ in range(3):
        session.step_iteration()
    assert scale.data[0] != value[0]  # the Python layer's parameter trains
    restore(session.solver, before)
    numpy.testing.assert_array_equal(scale.data, value)  # and is rewound
    timing = {t.layer: t for t in time_solver(session.solver, 2).layers}  # Layer timing, then undone
    assert timing["scale"].type == "Python" and timing["scale"].backward_ms > 0
    numpy.testing.assert_array_equal(scale.data, value)
    order = solver_process.make_order(session, 3, None)
    child = solver_process._build_session(pickle.loads(pickle.dumps(order)))  # as the solver process does
    assert child.solver.net.layers[2].type_name == "Python" and len(answers.requests) == 1


# -- the window -------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_window(qapp, tmp_path_factory):
    """One window for the module, its settings in a temporary file (building it is the slow part)."""
    settings = QSettings(str(tmp_path_factory.mktemp("settings") / "studio.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, modal_errors=False)
    w.show()
    yield w
    w.shutdown()
    w.close()
    w.deleteLater()


@pytest.fixture
def window(shared_window):
    shared_window.errors.clear()
    assert shared_window.open_path(resources.examples()["xor"])
    return shared_window


def press_when_asked(window, qtbot, choice: Choice, seen: list) -> None:
    """Press ``choice`` in the consent dialog once it is on screen (it is modal)."""
    asker = window.session.python_consent.ask

    def press() -> None:
        dialog = asker.dialog
        if dialog is None or not dialog.isVisible():
            QTimer.singleShot(10, press)
            return
        seen.append(dialog.text.text())
        dialog.buttons[choice].click()

    QTimer.singleShot(0, press)


def open_example_from_the_menu(window) -> None:
    action = next(a for a in window.examples_menu.actions() if a.text() == "python_layer")
    action.trigger()


def test_the_examples_menu_asks_and_always_is_remembered_and_revoked(window, qtbot):
    seen: list[str] = []
    press_when_asked(window, qtbot, Choice.ALWAYS, seen)
    open_example_from_the_menu(window)
    assert window.session.solver.net.name == "python_layer" and window.errors.last_error is None
    assert "pyloss" in seen[0] and os.path.join(FOLDER, "pyloss.py") in seen[0]
    assert "net.prototxt" in seen[0] and "Run code from this folder?" in seen[0]
    assert window.settings.value(SETTINGS_KEY) in ([FOLDER], FOLDER)
    menu = window.python_layer_folders_menu
    menu.refresh()
    revoke = [a for a in menu.actions() if a.text() == f"Revoke {FOLDER}"]
    assert len(revoke) == 1 and menu.menuAction() in window.file_menu.actions()
    revoke[0].trigger()
    assert window.settings.value(SETTINGS_KEY, []) in ([], None, "")
    press_when_asked(window, qtbot, Choice.NO, seen)
    open_example_from_the_menu(window)
    assert len(seen) == 2  # asked again after the revocation
    assert "layer 'loss'" in window.errors.last_error and "--allow-python-layers" in window.errors.last_error
    assert window.session.solver.net.name == "python_layer"  # the open net is kept


def test_the_dialog_names_the_module_file_and_net_and_defaults_to_no(qtbot):
    from gui.model.python_consent import ConsentRequest
    request = ConsentRequest("loss", "pyloss", "/x/<y>/pyloss.py", "/x/<y>", "/x/<y>/net.prototxt")
    dialog = ConsentDialog(request)
    qtbot.addWidget(dialog)
    text = dialog.text.text()
    assert "/x/&lt;y&gt;/pyloss.py" in text and "<b>pyloss</b>" in text and "/x/&lt;y&gt;/net.prototxt" in text
    assert [b.text() for b in dialog.buttons.values()] == ["Once", "Always for this folder", "No"]
    assert dialog.buttons[Choice.NO].isDefault() and dialog.choice is Choice.NO
    dialog.buttons[Choice.ONCE].click()
    assert dialog.choice is Choice.ONCE and dialog.result() == ConsentDialog.DialogCode.Accepted


def test_the_graph_menu_gradient_checks_the_broken_layer(window, qtbot):
    broken = os.path.join(FOLDER, "solver_broken.prototxt")
    press_when_asked(window, qtbot, Choice.ONCE, [])
    assert window.open_path(broken)
    window.step_iterations(1)
    assert window.wait_until_idle(timeout=30)
    menu = window.debug.layer_menu("loss")
    check = next(a for a in menu.actions() if a.text() == "Gradient check loss")
    check.trigger()
    task = window.debug.gradcheck.task
    assert task is not None and task.wait(60)
    qtbot.waitUntil(lambda: window.debug.gradcheck.report is not None, timeout=60000)
    report = window.debug.gradcheck.report
    assert report.failed_layers == ["loss"] and [b.blob for b in report.blobs] == ["ip2"]
    assert "loss" in window.debug.gradcheck.verdict.text()
