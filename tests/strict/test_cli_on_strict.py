"""The command line's --gpu on the strict stand-in: train, test and time run with no
implicit crossing and print what the CPU run prints."""
import shutil

from engine import cli
from tests.gui.debug_nets import SPIRAL


def _run(capsys, argv):
    assert cli.main(argv) == 0
    return capsys.readouterr()


def _numbers(text: str) -> list[str]:
    return [line.split("]", 1)[-1] for line in text.splitlines() if "loss" in line or "accuracy" in line]


def test_train_and_test_on_the_device(strict, tmp_path, capsys):
    folder = tmp_path / "spiral"
    shutil.copytree(SPIRAL.parent, folder)
    solver = str(folder / SPIRAL.name)
    on_cpu = _run(capsys, ["train", "--solver", solver, "--iterations", "4"])
    on_device = _run(capsys, ["train", "--solver", solver, "--iterations", "4", "--gpu"])
    assert _numbers(on_device.out + on_device.err) == _numbers(on_cpu.out + on_cpu.err)
    assert _numbers(on_cpu.out + on_cpu.err)
    net = str(folder / "net.prototxt")
    weights = sorted(folder.glob("*.caffemodel*"))
    assert weights, sorted(p.name for p in folder.iterdir())
    tested = _run(capsys, ["test", "--model", net, "--weights", str(weights[-1]), "--iterations", "2", "--gpu"])
    assert "loss" in tested.out + tested.err
    _run(capsys, ["time", "--model", net, "--iterations", "2", "--gpu"])
