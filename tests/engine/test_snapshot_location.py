"""Snapshots of read-only inputs (shipped examples, test data, read-only folders)
go to the per-user data folder; everything else keeps Caffe's rule."""
import os
import pathlib
import shutil
import stat

import pytest

import engine
from engine import cli, io, resources
from engine.snapshot_location import relocate, user_snapshot_folder


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def _read_only_tree(folder):
    for path in [folder, *folder.rglob("*")]:
        mode = os.stat(path).st_mode
        os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable_tree(folder):
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)


def _files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_writable_folder_keeps_caffes_rule(tmp_path, data_home):
    folder = tmp_path / "spiral"
    shutil.copytree(resources.path("examples", "spiral_mlp"), folder)
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    prefix = io.snapshot_prefix(solver)
    assert os.path.dirname(prefix).startswith(str(folder))
    assert not data_home.exists()


def test_shipped_example_snapshots_go_to_the_user_folder(data_home):
    solver = engine.get_solver(resources.examples()["spiral_mlp"])
    prefix = io.snapshot_prefix(solver)
    expected = user_snapshot_folder("spiral_mlp")
    assert prefix.startswith(expected + os.sep) and expected.startswith(str(data_home))
    before = _files_under(pathlib.Path(resources.path("examples")))
    solver.step(2)
    paths = solver.snapshot()
    assert all(p.startswith(expected) and os.path.isfile(p) for p in paths)
    assert _files_under(pathlib.Path(resources.path("examples"))) == before


def test_read_only_copy_in_tmp_path_is_not_written(tmp_path, data_home, capsys):
    lenet = tmp_path / "lenet"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "data", "lenet"), lenet)
    _read_only_tree(lenet)
    try:
        before = _files_under(lenet)
        code = cli.main(["train", "--solver", str(lenet / "lenet_solver.prototxt"), "--iterations", "3"])
        out = capsys.readouterr().out
        assert code == 0
        assert _files_under(lenet) == before  # nothing written beside the solver
        target = data_home / "backprop-studio" / "snapshots" / "lenet"
        assert sorted(os.listdir(target)) == ["lenet_iter_3.caffemodel", "lenet_iter_3.solverstate"]
        assert f"Snapshots go to {target}{os.sep}" in out  # the log says where
    finally:
        _writable_tree(lenet)


def test_readme_cli_example_does_not_write_into_the_repository(data_home, capsys):
    lenet = os.path.join(os.path.dirname(__file__), "..", "data", "lenet")
    before = sorted(os.listdir(lenet))
    code = cli.main(["train", "--solver", os.path.join(lenet, "lenet_solver.prototxt"), "--iterations", "2"])
    assert code == 0
    assert sorted(os.listdir(lenet)) == before
    assert (data_home / "backprop-studio" / "snapshots" / "lenet" / "lenet_iter_2.caffemodel").is_file()
    assert "Snapshots go to" in capsys.readouterr().out


def test_relocate_keeps_the_path_below_the_solver_folder(tmp_path, data_home):
    example = tmp_path / "my_example"
    (example / "snaps").mkdir(parents=True)
    _read_only_tree(example)
    try:
        moved = relocate(str(example / "snaps" / "net"), str(example))
        assert moved == os.path.join(user_snapshot_folder("my_example"), "snaps", "net")
        assert relocate(str(tmp_path / "elsewhere" / "net"), str(example)) == str(tmp_path / "elsewhere" / "net")
    finally:
        _writable_tree(example)


def test_a_prefix_pointing_elsewhere_keeps_caffes_rule(tmp_path, data_home):
    """Only the solver's own (read-only) folder and shipped folders move: an explicit prefix
    in an unwritable place stays, so that training stops with Caffe's error at once."""
    assert relocate("/proc/nonexistent/spiral", str(tmp_path)) == "/proc/nonexistent/spiral"
    assert not data_home.exists()

