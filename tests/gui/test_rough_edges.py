"""The rough edges a first-time user hits (issue 16): a missing xcb library, Run past
max_iter, the Debug menu's duplicates, the undo message, selecting any layer type."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from PySide6.QtWidgets import QApplication, QLabel

from engine import resources
from gui.main_window import MainWindow
from gui.qt_platform import debian_package, missing_libraries, problem_line, will_use_xcb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPIRAL = resources.examples()["spiral_mlp"]

#: What ``ldd`` prints for Qt's xcb plugin on a fresh Debian (three libraries missing).
LDD_FRESH_DEBIAN = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => not found
"""


# -- (a) Qt's xcb plugin cannot load: one line with the packages --------------------------
def test_missing_libraries_are_read_from_ldd_and_named_as_debian_packages():
    missing = missing_libraries(LDD_FRESH_DEBIAN)
    assert missing == ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon-x11.so.0"]
    line = problem_line(missing)
    assert line is not None and "\n" not in line
    assert line.endswith("sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0")
    assert problem_line(missing_libraries("\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n")) is None
    assert debian_package("libglib-2.0.so.0") == "libglib2.0-0"
    assert debian_package("libX11-xcb.so.1") == "libx11-xcb1"


def test_only_the_xcb_platform_is_checked():
    assert not will_use_xcb({"QT_QPA_PLATFORM": "offscreen"})
    assert will_use_xcb({"QT_QPA_PLATFORM": "xcb"}) == sys.platform.startswith("linux")
    assert not will_use_xcb({"WAYLAND_DISPLAY": "wayland-0"})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin is Linux's")
def test_the_app_prints_one_line_and_exits_1_when_a_library_is_missing(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    ldd = fake_bin / "ldd"  # an ldd that reports what a fresh Debian lacks
    ldd.write_text("#!/bin/sh\ncat <<'EOF'\n" + LDD_FRESH_DEBIAN + "EOF\n")
    ldd.chmod(0o755)
    env = dict(os.environ, PATH=f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}", QT_QPA_PLATFORM="xcb",
               DISPLAY=":9999")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "main.py")], env=env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0" in lines[0]


# -- the window -----------------------------------------------------------------------------
@pytest.fixture
def window(debugger_window):
    return debugger_window


def _status(window) -> str:
    return window.statusBar().currentMessage()


# -- (c) Run stops at max_iter, as Caffe does --------------------------------------------------
def test_run_stops_at_max_iter_says_so_and_continue_goes_past(window):
    window.session.solver.param.max_iter = 7
    window.run()
    assert window.wait_until_idle(timeout=60)
    QApplication.processEvents()
    assert window.session.iteration == 7
    assert "max_iter = 7" in _status(window) and "Continue past max_iter" in _status(window)
    window.run()  # at max_iter: Run does not start, and says why
    assert window.wait_until_idle(timeout=10)
    assert window.session.iteration == 7 and "max_iter = 7" in _status(window)
    assert not window.controls.run_pause.isChecked()
    window.step_iterations(3)  # Run N is still allowed
    assert window.wait_until_idle(timeout=60)
    assert window.session.iteration == 10
    window.continue_action.trigger()  # until paused
    deadline = time.perf_counter() + 30
    while window.worker.iteration < 15 and time.perf_counter() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    window.pause()
    assert window.wait_until_idle(timeout=60)
    assert window.session.iteration > 10


# -- (d) the Debug menu: one entry each; the undo says what it undid --------------------------
def test_debug_menu_has_one_gradient_check_and_one_layer_timing_entry(window):
    texts = [a.text() for a in window.debug.debug_menu.actions() if a.text()]
    assert texts.count("Gradient check") == 1
    assert texts.count("Layer timing") == 1
    assert "Time layers" not in texts
    assert len(texts) == len(set(texts))
    window.debug.timing.iterations.setValue(1)
    window.debug.timing_action.trigger()
    assert window.debug.docks["timing"].isVisible()  # the result is on screen
    assert window.debug.timing.table.rowCount() > 0


def test_undoing_a_weight_edit_names_the_edit(window):
    window.step_iterations(2)
    assert window.wait_until_idle(timeout=60)
    window.debug.edit_weight("ip1", 0, (1, 0), 5.0)
    assert window.debug.step_back()
    assert _status(window) == "Undid the edit of ip1 W[1, 0]"
    assert window.debug.step_back()  # an iteration: the rewind message
    assert _status(window).startswith("Rewound to iteration")


# -- (e) every layer type shows its selection ----------------------------------------------
def test_selecting_any_layer_type_marks_it_in_the_graph_and_titles_the_inspector(qtbot):
    w = MainWindow(settings=None, modal_errors=False)
    qtbot.addWidget(w)
    w.resize(1280, 860)
    w.show()
    try:
        assert w.open_path(resources.examples()["digits_lenet"])
        w.step_iterations(1)
        assert w.wait_until_idle(timeout=60)
        layers = {layer.type_name: layer.name for layer in w.session.solver.net.layers}
        for layer_type, name in layers.items():
            w.graph.select(name)
            w.graph.layerSelected.emit(name)
            w.refresh()
            QApplication.processEvents()
            assert w.graph.selected == name and w.graph.node_items[name].selected, layer_type
            others = [n for n, item in w.graph.node_items.items() if item.selected and n != name]
            assert not others
            page = w.inspector_pages.currentWidget()
            shown = [label.text() for label in page.findChildren(QLabel) if label.isVisible()]
            shown += [page.findChild(type(w.inspector._combo)).currentText()] if page is w.inspector else []
            assert any(name in text for text in shown), (layer_type, shown[:4])
    finally:
        w.shutdown()
