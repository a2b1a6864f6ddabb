"""Python layers (type: "Python") run only with the user's consent: refused, granted and
revoked through the API and the command line; looked for only in allowed folders;
trained end to end (the same numbers as the built-in EuclideanLoss); stepped,
trapped on NaN and gradient-checked like any layer (the broken example is caught)."""
from __future__ import annotations

import os
import pathlib
import shutil
import sys

import numpy
import pytest

import engine
from engine import cli
from engine.python_layers import PythonLayerAccess, private_name

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "resources" / "examples" / "python_layer"

#: A 2-in 1-out net: a Python "Scale" layer with one parameter, fed to the built-in EuclideanLoss.
SCALE_MODULE = '''
import numpy as np
import engine.pycaffe as caffe

LOADED = []
LOADED.append("{tag}")


class Scale(caffe.Layer):
    """top = w * bottom, w a parameter (one number)."""

    def setup(self, bottom, top):
        self.blobs.add_blob(1)
        self.blobs[0].data[...] = float(self.param_str or 2.0)

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = {factor} * self.blobs[0].data[0] * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[0] += {factor} * np.sum(top[0].diff * bottom[0].data)
        if propagate_down[0]:
            bottom[0].diff[...] = {factor} * self.blobs[0].data[0] * top[0].diff
'''

SCALE_NET = '''name: "scale_net"
layer { name: "data" type: "DummyData" top: "x" top: "target"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 3 }
                           data_filler { type: "gaussian" std: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "scale" type: "Python" bottom: "ip" top: "scaled"
        python_param { module: "userscale" layer: "Scale" param_str: "1.5" } }
layer { name: "loss" type: "EuclideanLoss" bottom: "scaled" bottom: "target" top: "loss" }
'''


def write_layer_folder(folder: pathlib.Path, tag: str = "allowed", factor: str = "1.0") -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "userscale.py").write_text(SCALE_MODULE.format(tag=tag, factor=factor))
    (folder / "net.prototxt").write_text(SCALE_NET)
    return folder / "net.prototxt"


@pytest.fixture(autouse=True)
def no_process_wide_consent():
    """Each test starts and ends with no folder allowed for the process."""
    for folder in engine.allowed_python_layer_folders():
        engine.revoke_python_layers(folder)
    yield
    for folder in engine.allowed_python_layer_folders():
        engine.revoke_python_layers(folder)


def loaded_tags(folder: pathlib.Path) -> list[str]:
    module = sys.modules.get(private_name(os.path.realpath(folder), "userscale"))
    return list(module.LOADED) if module is not None else []


# -- consent: refused, granted, revoked -------------------------------------------
def test_without_consent_the_layer_is_refused_and_its_module_never_runs(tmp_path):
    net_file = write_layer_folder(tmp_path / "layers", tag="must-not-run")
    with pytest.raises(engine.PythonLayerRefused) as info:
        engine.Net(str(net_file), engine.TRAIN)
    message = str(info.value)
    folder = os.path.realpath(tmp_path / "layers")
    for part in ("layer 'scale'", "module 'userscale'", "userscale.py is in", "--allow-python-layers",
                 "engine.allow_python_layers", str(net_file), folder):
        assert part in message, part
    refusal = info.value
    assert (refusal.layer, refusal.module, refusal.folder) == ("scale", "userscale", folder)
    assert refusal.module_file == os.path.join(folder, "userscale.py")
    assert loaded_tags(tmp_path / "layers") == []
    assert "userscale" not in sys.modules


def test_the_api_grants_and_revokes_a_folder(tmp_path):
    net_file = write_layer_folder(tmp_path / "layers")
    stored = engine.allow_python_layers(tmp_path / "layers")
    assert engine.allowed_python_layer_folders() == [stored]
    net = engine.Net(str(net_file), engine.TRAIN)
    assert net.layers[2].type_name == "Python" and net.params["scale"][0].data[0] == numpy.float32(1.5)
    assert engine.revoke_python_layers(tmp_path / "layers") and engine.allowed_python_layer_folders() == []
    assert not engine.revoke_python_layers(tmp_path / "layers")
    with pytest.raises(engine.PythonLayerRefused):
        engine.Net(str(net_file), engine.TRAIN)


def test_a_net_or_solver_can_be_given_its_own_folders(tmp_path):
    net_file = write_layer_folder(tmp_path / "layers")
    net = engine.Net(str(net_file), engine.TRAIN, python_layers=[tmp_path / "layers"])
    assert net.python_layers.folders == (os.path.realpath(tmp_path / "layers"),)
    solver_text = f'net: "{net_file}" base_lr: 0.1 random_seed: 3'
    solver = engine.get_solver(solver_text, python_layers=[str(tmp_path / "layers")])
    assert solver.test_nets == [] and solver.net.layers[2].type_name == "Python"
    with pytest.raises(engine.PythonLayerRefused):
        engine.get_solver(solver_text)
    assert engine.allowed_python_layer_folders() == []  # nothing granted beyond those nets


def test_the_cli_refuses_without_the_flag_and_runs_with_it(tmp_path, capsys):
    net_file = write_layer_folder(tmp_path / "layers")
    assert cli.main(["time", "--model", str(net_file), "--iterations", "1"]) == cli.EXIT_ERROR
    error = capsys.readouterr().err
    assert "--allow-python-layers" in error and "layer 'scale'" in error and "Traceback" not in error
    assert cli.main(["time", "--model", str(net_file), "--iterations", "1",
                     "--allow-python-layers", str(tmp_path / "elsewhere"), ]) == cli.EXIT_ERROR
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["time", "--model", str(net_file), "--iterations", "1", "--allow-python-layers",
                     str(tmp_path / "empty"), "--allow-python-layers", str(tmp_path / "layers")]) == 0
    out = capsys.readouterr().out.replace(" ", "")
    assert "scale\tforward:" in out and "scale\tbackward:" in out  # timed as any layer
    assert engine.allowed_python_layer_folders() == []  # the flag allows for that run only


def test_cli_train_and_test_take_the_flag(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net_file = write_layer_folder(tmp_path / "layers")
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{net_file}" base_lr: 0.05 max_iter: 3 random_seed: 3 '
                      f'snapshot_after_train: true snapshot_prefix: "{tmp_path}/snap"')
    assert cli.main(["train", "--solver", str(solver)]) == cli.EXIT_ERROR
    assert "--allow-python-layers" in capsys.readouterr().err
    assert cli.main(["train", "--solver", str(solver), "--allow-python-layers", str(tmp_path / "layers")]) == 0
    weights = tmp_path / "snap_iter_3.caffemodel"
    assert weights.exists()
    args = ["test", "--model", str(net_file), "--weights", str(weights), "--iterations", "2", "--phase", "TRAIN"]
    assert cli.main(args) == cli.EXIT_ERROR
    assert cli.main(args + ["--allow-python-layers", str(tmp_path / "layers")]) == 0


# -- where a module is looked for ------------------------------------------------
def test_a_module_of_that_name_on_sys_path_or_in_the_working_directory_is_not_used(tmp_path, monkeypatch):
    net_file = write_layer_folder(tmp_path / "allowed", tag="allowed")
    for decoy in ("on_sys_path", "cwd"):
        (tmp_path / decoy).mkdir()
        (tmp_path / decoy / "userscale.py").write_text(
            "raise RuntimeError('the decoy module was imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "on_sys_path"))
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(engine.PythonLayerRefused):  # no consent: neither decoy is taken instead
        engine.Net(str(net_file), engine.TRAIN)
    net = engine.Net(str(net_file), engine.TRAIN, python_layers=[tmp_path / "allowed"])
    assert loaded_tags(tmp_path / "allowed") == ["allowed"]
    assert "userscale" not in sys.modules  # loaded under a private name: shadows nothing
    assert type(net.layers[2].instance).__module__ == private_name(os.path.realpath(tmp_path / "allowed"),
                                                                   "userscale")


def test_a_refusal_names_the_folder_on_pythonpath_without_importing_from_it(tmp_path, monkeypatch):
    net_file = write_layer_folder(tmp_path / "nets")
    (tmp_path / "nets" / "userscale.py").unlink()
    write_layer_folder(tmp_path / "on_pythonpath", tag="on-pythonpath")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "on_pythonpath"))
    monkeypatch.syspath_prepend(str(tmp_path / "on_pythonpath"))
    with pytest.raises(engine.PythonLayerRefused) as info:
        engine.Net(str(net_file), engine.TRAIN)
    assert info.value.folder == os.path.realpath(tmp_path / "on_pythonpath")  # the folder to allow
    assert loaded_tags(tmp_path / "on_pythonpath") == [] and "userscale" not in sys.modules
    net = engine.Net(str(net_file), engine.TRAIN, python_layers=[info.value.folder])
    assert loaded_tags(tmp_path / "on_pythonpath") == ["on-pythonpath"] and net.layers[2].type_name == "Python"


def test_a_module_named_like_a_loaded_one_neither_shadows_it_nor_is_shadowed(tmp_path):
    folder = tmp_path / "layers"
    write_layer_folder(folder)
    (folder / "json.py").write_text((folder / "userscale.py").read_text())
    (folder / "net.prototxt").write_text(SCALE_NET.replace('module: "userscale"', 'module: "json"'))
    import json
    net = engine.Net(str(folder / "net.prototxt"), engine.TRAIN, python_layers=[folder])
    assert sys.modules["json"] is json and not hasattr(json, "Scale")
    assert type(net.layers[2].instance).__module__.startswith("_backprop_python_layer_")


def test_a_package_folder_and_a_changed_module_are_loaded(tmp_path):
    folder = tmp_path / "layers"
    write_layer_folder(folder)
    package = folder / "mylayers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scale.py").write_text(SCALE_MODULE.format(tag="package", factor="1.0").replace(
        "import engine.pycaffe as caffe", "import engine.pycaffe as caffe\nfrom . import helper  # noqa"))
    (package / "helper.py").write_text("VALUE = 1\n")
    (folder / "pkg.prototxt").write_text(SCALE_NET.replace('module: "userscale"', 'module: "mylayers.scale"'))
    net = engine.Net(str(folder / "pkg.prototxt"), engine.TRAIN, python_layers=[folder])
    assert type(net.layers[2].instance).__name__ == "Scale"
    first = engine.Net(str(folder / "net.prototxt"), engine.TRAIN, python_layers=[folder])
    first.forward()
    before = first.blobs["scaled"].data.copy()
    source = folder / "userscale.py"
    source.write_text(SCALE_MODULE.format(tag="edited", factor="3.0") + "\n# edited\n")
    second = engine.Net(str(folder / "net.prototxt"), engine.TRAIN, python_layers=[folder])
    second.params["ip"][0].data[...] = first.params["ip"][0].data
    second.blobs["x"].data[...] = first.blobs["x"].data
    second.forward_layer(1), second.forward_layer(2)
    numpy.testing.assert_allclose(second.blobs["scaled"].data, 3.0 * before, rtol=1e-6)  # the edited code


def test_pycaffe_imports_python_layers_from_sys_path_as_bvlc_does(tmp_path, monkeypatch):
    import engine.pycaffe as caffe
    net_file = write_layer_folder(tmp_path / "layers", tag="pycaffe")
    monkeypatch.syspath_prepend(str(tmp_path / "layers"))
    monkeypatch.delitem(sys.modules, "userscale", raising=False)
    net = caffe.Net(str(net_file), caffe.TRAIN)  # the script's own choice: no folder to allow
    assert net.layers[2].type == "Python" and "userscale" in sys.modules
    assert engine.allowed_python_layer_folders() == []
    with pytest.raises(engine.PythonLayerRefused):  # the engine's own Net still asks for consent
        engine.Net(str(net_file), engine.TRAIN)


def test_errors_in_the_users_code_name_the_layer_method_and_line(tmp_path):
    folder = tmp_path / "layers"
    net_file = write_layer_folder(folder)
    (folder / "userscale.py").write_text(SCALE_MODULE.format(tag="x", factor="undefined_name"))
    net = None
    with pytest.raises(engine.PythonLayerError) as info:
        net = engine.Net(str(net_file), engine.TRAIN, python_layers=[folder])
        net.forward()
    message = str(info.value)
    assert "layer 'scale'" in message and "forward()" in message and "NameError" in message
    assert f"{os.path.realpath(folder / 'userscale.py')}:" in message or "userscale.py:" in message


# -- the example: trained like the built-in layer, and the broken one caught -----------
def train(solver_param_text: str, net_text: str, folder: pathlib.Path, iterations: int, **solver_options):
    net_file = folder / "trained_net.prototxt"
    net_file.write_text(net_text)
    solver = engine.get_solver(solver_param_text.replace('net: "net.prototxt"', f'net: "{net_file}"'),
                               **solver_options)
    losses = [solver.step(1) for _ in range(iterations)]
    return solver, losses


def test_the_example_trains_to_the_same_weights_as_the_builtin_euclidean_loss(tmp_path):
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    solver_text = (folder / "solver.prototxt").read_text()
    python_net = (folder / "net.prototxt").read_text()
    builtin_net = python_net.replace('type: "Python"', 'type: "EuclideanLoss"')
    assert builtin_net != python_net
    ours, our_losses = train(solver_text, python_net, folder, 60, python_layers=[folder])
    theirs, their_losses = train(solver_text, builtin_net, folder, 60)
    assert ours.net.layers[-1].type_name == "Python" and theirs.net.layers[-1].type_name == "EuclideanLoss"
    for mine, reference in zip(ours.net.learnable_params, theirs.net.learnable_params):
        numpy.testing.assert_array_equal(mine.data, reference.data)  # the same gradients, bit for bit
    numpy.testing.assert_allclose(our_losses, their_losses, rtol=1e-5)  # a sum vs a dot product
    assert our_losses[-1] < our_losses[0] / 4
    assert ours.test_all()["accuracy"] >= 0.9


def test_the_gradient_check_catches_the_broken_example_and_passes_the_good_one(tmp_path, capsys):
    results = {}
    for name in ("net", "net_broken"):
        net = engine.Net(str(EXAMPLE / f"{name}.prototxt"), engine.TRAIN, python_layers=[EXAMPLE])
        net.forward()
        results[name] = engine.check_net(net, ["loss"])["loss"]
    good, broken = results["net"], results["net_broken"]
    assert good.passed and good.blobs[0].checked == 32
    assert not broken.passed and broken.blobs[0].name == "loss/ip2"
    checked = ~numpy.isnan(broken.blobs[0].numeric)
    # the analytic gradient is minus the numeric one, element by element
    numpy.testing.assert_allclose(broken.blobs[0].analytic[checked], -broken.blobs[0].numeric[checked], rtol=1e-6)
    for model, code in (("net", 0), ("net_broken", cli.EXIT_ERROR)):
        args = ["gradcheck", "--model", str(EXAMPLE / f"{model}.prototxt"), "--layer", "loss"]
        assert cli.main(args + ["--allow-python-layers", str(EXAMPLE)]) == code
        captured = capsys.readouterr()
        assert "loss/ip2" in captured.out
        assert ("FAIL" in captured.out) == (code != 0)


def test_check_layer_checks_a_python_layer_and_its_parameter(tmp_path):
    folder = tmp_path / "layers"
    write_layer_folder(folder)
    engine.allow_python_layers(folder)
    spec = 'name: "s" type: "Python" python_param { module: "userscale" layer: "Scale" param_str: "0.7" }'
    x = numpy.random.default_rng(2).normal(size=(2, 3))
    result = engine.check_layer(spec, [x])
    assert result.passed and [b.name for b in result.blobs] == ["s/bottom0", "s/param0"]
    (folder / "userscale.py").write_text(SCALE_MODULE.format(tag="bad", factor="1.0").replace(
        "self.blobs[0].diff[0] += ", "self.blobs[0].diff[0] -= "))
    bad = engine.check_layer(spec, [x])
    assert [b.passed for b in bad.blobs] == [True, False]


# -- a layer like any other: step-through, NaN trap ---------------------------------
def test_the_step_through_and_the_nan_trap_see_the_python_layer(tmp_path):
    folder = tmp_path / "layers"
    net_file = write_layer_folder(folder)
    solver = engine.get_solver(f'net: "{net_file}" base_lr: 0.1 random_seed: 3', python_layers=[folder])
    events = [(e.kind, e.layer) for e in solver.iteration_events()]
    assert ("forward", "scale") in events and ("backward", "scale") in events
    assert events.index(("backward", "loss")) < events.index(("backward", "scale")) < events.index(("backward", "ip"))
    assert solver.iter == 1
    solver.net.params["scale"][0].data[...] = numpy.inf
    kinds = [(e.kind, e.layer, e.layer_type) for e in solver.iteration_events()]
    assert kinds[-1] == ("nonfinite", "scale", "Python") and solver.iter == 1  # trapped before the update


def test_a_python_layer_refuses_the_gpu(tmp_path):
    folder = tmp_path / "layers"
    net_file = write_layer_folder(folder)
    net = engine.Net(str(net_file), engine.TRAIN, python_layers=PythonLayerAccess(folders=(str(folder),)))
    net.layers[2].device = "gpu"  # as Net.to('gpu') leaves it
    with pytest.raises(engine.DeviceError, match="CPU only"):
        net.layers[2].forward(net.bottoms_of(2), net.tops_of(2))
