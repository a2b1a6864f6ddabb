"""Weights and solver-state files in Caffe's layouts, atomic writes, bit-exact resume."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import h5py
import numpy
import pytest

import engine
from engine import atomic, datasets, io, tools
from engine.errors import DataError, NetDefinitionError, ShapeError
from engine.proto import caffe_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mlp_text(hidden=16, extra_layer="", source="list.txt", shuffle=False, dropout=False):
    drop = ('layer { name: "drop" type: "Dropout" bottom: "relu1" top: "relu1" '
            'dropout_param { dropout_ratio: 0.3 } }') if dropout else ""
    return f"""
name: "mlp"
layer {{ name: "data" type: "HDF5Data" top: "data" top: "label" include {{ phase: TRAIN }}
        hdf5_data_param {{ source: "{source}" batch_size: 8 shuffle: {str(shuffle).lower()} }} }}
layer {{ name: "data" type: "HDF5Data" top: "data" top: "label" include {{ phase: TEST }}
        hdf5_data_param {{ source: "{source}" batch_size: 5 }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param {{ num_output: {hidden} weight_filler {{ type: "xavier" }}
                              bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "relu1" }}
{drop}
layer {{ name: "ip2" type: "InnerProduct" bottom: "relu1" top: "ip2"
        inner_product_param {{ num_output: 3 weight_filler {{ type: "xavier" }} }} }}
{extra_layer}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
layer {{ name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
        include {{ phase: TEST }} }}
"""


@pytest.fixture
def workdir(tmp_path):
    """A folder with two small HDF5 files (36 and 20 rows of 2-D spiral points) and their list."""
    data, labels = datasets.load("spiral", num_points=56, seed=3)
    paths = [tools.to_hdf5(data[:36], labels[:36], tmp_path / "a.h5"),
             tools.to_hdf5(data[36:], labels[36:], tmp_path / "b.h5")]
    tools.write_source_list(paths, tmp_path / "list.txt")
    return tmp_path


def make_net(folder, seed=1, **kwargs):
    engine.rng.set_seed(seed)
    path = folder / "net.prototxt"
    path.write_text(mlp_text(**kwargs))
    return engine.Net(str(path), engine.TRAIN)


def params_of(net):
    return {name: [b.data.copy() for b in blobs] for name, blobs in net.params.items()}


# ---------------------------------------------------------------------------
# Caffe's own files
# ---------------------------------------------------------------------------
def test_reads_real_caffe_weights_and_solver_state(data_dir):
    folder = data_dir / "caffe_reference" / "mlp_sgd"
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    report = solver.net.copy_from(folder / "snapshots" / "mlp_sgd_iter_20.caffemodel.h5")
    assert report.ignored == [] and report.missing == []
    with h5py.File(folder / "snapshots" / "mlp_sgd_iter_20.caffemodel.h5", "r") as handle:
        for name in ("ip1", "ip2", "ip3"):
            for j in range(2):
                numpy.testing.assert_array_equal(solver.net.params[name][j].data, handle[f"data/{name}/{j}"][()])

    solver.net.copy_from(folder / "snapshots" / "mlp_sgd_iter_0.caffemodel.h5")  # restore must bring 20 back
    solver.restore(folder / "snapshots" / "mlp_sgd_iter_20.solverstate.h5")
    with h5py.File(folder / "snapshots" / "mlp_sgd_iter_20.solverstate.h5", "r") as handle:
        assert solver.iter == int(handle["iter"][0]) == 20
        assert solver.current_step == int(handle["current_step"][0])
        assert len(solver.history) == len(handle["history"])
        for i, history in enumerate(solver.history):
            numpy.testing.assert_array_equal(history, handle[f"history/{i}"][()])
    with h5py.File(folder / "snapshots" / "mlp_sgd_iter_20.caffemodel.h5", "r") as handle:
        numpy.testing.assert_array_equal(solver.net.params["ip3"][0].data, handle["data/ip3/0"][()])
    assert solver.learning_rate == pytest.approx(0.1 * 0.5 ** (20 // 5))


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["w.caffemodel", "w.caffemodel.h5"])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_weights_round_trip_bit_for_bit(workdir, name, dtype):
    source = make_net(workdir, seed=1)
    if dtype == numpy.float64:
        source = engine.Net(source.param, engine.TRAIN, dtype=numpy.float64)
        for blob in source.learnable_params:
            blob.data[...] = numpy.random.default_rng(5).normal(size=blob.shape)
    source.save(workdir / name)
    target = make_net(workdir, seed=2)
    if dtype == numpy.float64:
        target = engine.Net(target.param, engine.TRAIN, dtype=numpy.float64)
    assert not numpy.array_equal(target.params["ip1"][0].data, source.params["ip1"][0].data)
    report = target.copy_from(workdir / name)
    assert report.copied == ["data", "ip1", "relu1", "ip2", "loss"]
    for name_, blobs in source.params.items():
        for mine, theirs in zip(target.params[name_], blobs):
            assert mine.data.dtype == dtype
            numpy.testing.assert_array_equal(mine.data, theirs.data)


def test_binary_weights_are_a_caffe_net_parameter(workdir):
    net = make_net(workdir)
    net.save(workdir / "w.caffemodel")
    param = caffe_pb2.NetParameter.FromString((workdir / "w.caffemodel").read_bytes())
    assert param.name == "mlp"
    assert [layer.name for layer in param.layer] == ["data", "ip1", "relu1", "ip2", "loss"]
    ip1 = param.layer[1]
    assert ip1.type == "InnerProduct" and ip1.inner_product_param.num_output == 16
    assert list(ip1.blobs[0].shape.dim) == [16, 2] and list(ip1.blobs[1].shape.dim) == [16]
    numpy.testing.assert_array_equal(numpy.array(ip1.blobs[0].data, numpy.float32).reshape(16, 2),
                                     net.params["ip1"][0].data)
    assert len(ip1.blobs[0].diff) == 0


def test_hdf5_weights_use_caffes_layout(workdir):
    net = make_net(workdir)
    net.save(workdir / "w.caffemodel.h5")
    with h5py.File(workdir / "w.caffemodel.h5", "r") as handle:
        assert list(handle.keys()) == ["data"]
        assert sorted(handle["data"].keys()) == ["data", "ip1", "ip2", "loss", "relu1"]
        assert len(handle["data/relu1"]) == 0
        assert handle["data/ip1/0"].shape == (16, 2) and handle["data/ip1/0"].dtype == numpy.float32
        numpy.testing.assert_array_equal(handle["data/ip2/1"][()], net.params["ip2"][1].data)


def test_shared_parameter_is_stored_once_in_hdf5(workdir):
    """Caffe's ToHDF5 stores a shared parameter only under its owner."""
    text = """
name: "shared"
layer { name: "input" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "a" type: "InnerProduct" bottom: "x" top: "ya" param { name: "w" }
        inner_product_param { num_output: 3 bias_term: false weight_filler { type: "gaussian" } } }
layer { name: "b" type: "InnerProduct" bottom: "ya" top: "yb" param { name: "w" }
        inner_product_param { num_output: 3 bias_term: false weight_filler { type: "gaussian" } } }
"""
    net = engine.Net(text)
    net.save(workdir / "s.caffemodel.h5")
    with h5py.File(workdir / "s.caffemodel.h5", "r") as handle:
        assert list(handle["data/a"].keys()) == ["0"] and len(handle["data/b"]) == 0
    engine.rng.set_seed(9)
    other = engine.Net(text)
    other.copy_from(workdir / "s.caffemodel.h5")
    numpy.testing.assert_array_equal(other.params["b"][0].data, net.params["a"][0].data)
    assert other.params["a"][0] is other.params["b"][0]


@pytest.mark.parametrize("name", ["w.caffemodel", "w.caffemodel.h5"])
def test_shape_mismatch_names_layer_blob_and_both_shapes(workdir, name):
    make_net(workdir, hidden=16).save(workdir / name)
    target = make_net(workdir, hidden=17)
    with pytest.raises(ShapeError) as caught:
        target.copy_from(workdir / name)
    message = str(caught.value)
    assert "layer 'ip1'" in message and "blob 0" in message
    assert "(16, 2)" in message and "(17, 2)" in message and name in message


@pytest.mark.parametrize("name", ["w.caffemodel", "w.caffemodel.h5"])
def test_report_lists_layers_present_on_one_side_only(workdir, name):
    extra = ('layer { name: "ip_extra" type: "InnerProduct" bottom: "ip2" top: "extra" '
             'inner_product_param { num_output: 2 } }')
    make_net(workdir, extra_layer=extra).save(workdir / name)
    renamed = mlp_text().replace('name: "ip2"', 'name: "ip2_new"')
    (workdir / "renamed.prototxt").write_text(renamed)
    target = engine.Net(str(workdir / "renamed.prototxt"))
    before = target.params["ip2_new"][0].data.copy()
    report = target.copy_from(workdir / name)
    assert set(report.ignored) == {"ip2", "ip_extra"}
    assert report.missing == ["ip2_new"]
    assert "ip1" in report.copied
    numpy.testing.assert_array_equal(target.params["ip2_new"][0].data, before)
    assert any("Ignoring source layer ip_extra" in line for line in report.lines())


def test_legacy_4d_blob_shape_loads(workdir):
    net = make_net(workdir)
    weights = numpy.arange(32, dtype=numpy.float32).reshape(16, 2)
    param = caffe_pb2.NetParameter(name="old")
    layer = param.layer.add(name="ip1", type="InnerProduct")
    for values, legacy in ((weights, (1, 1, 16, 2)), (numpy.ones(16, numpy.float32), (1, 1, 1, 16))):
        blob = layer.blobs.add(num=legacy[0], channels=legacy[1], height=legacy[2], width=legacy[3])
        blob.data.extend(values.reshape(-1).tolist())
    (workdir / "old.caffemodel").write_bytes(param.SerializeToString())
    report = net.copy_from(workdir / "old.caffemodel")
    assert report.copied == ["ip1"] and "ip2" in report.missing
    numpy.testing.assert_array_equal(net.params["ip1"][0].data, weights)


def _varint(value):
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_v1_layers_field_is_read(workdir):
    """Old caffemodels keep layers in NetParameter.layers (2) as V1LayerParameter(name=4, blobs=6)."""
    net = make_net(workdir)
    weights = numpy.linspace(-1, 1, 32, dtype=numpy.float32).reshape(16, 2)
    bias = numpy.full(16, 0.25, numpy.float32)
    blobs = []
    for values in (weights, bias):
        blob = caffe_pb2.BlobProto()
        blob.shape.dim.extend(values.shape)
        blob.data.extend(values.reshape(-1).tolist())
        blobs.append(blob.SerializeToString())
    v1_layer = _field(4, b"ip1") + b"".join(_field(6, b) for b in blobs)
    (workdir / "v1.caffemodel").write_bytes(_field(1, b"v1net") + _field(2, v1_layer))
    report = net.copy_from(workdir / "v1.caffemodel")
    assert report.copied == ["ip1"]
    numpy.testing.assert_array_equal(net.params["ip1"][0].data, weights)
    numpy.testing.assert_array_equal(net.params["ip1"][1].data, bias)


@pytest.mark.parametrize("name", ["w.caffemodel", "w.caffemodel.h5"])
def test_truncated_or_corrupt_weights_are_data_errors_naming_the_file(workdir, name):
    make_net(workdir).save(workdir / name)
    raw = (workdir / name).read_bytes()
    cut = workdir / ("cut_" + name)
    cut.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DataError, match="cut_" + name.replace(".", r"\.")):
        make_net(workdir).copy_from(cut)
    garbage = workdir / ("junk_" + name)
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match="junk_"):
        make_net(workdir).copy_from(garbage)
    with pytest.raises(DataError, match="does not exist"):
        make_net(workdir).copy_from(workdir / ("none_" + name))


def test_packed_data_with_wrong_count_is_a_data_error(workdir):
    param = caffe_pb2.NetParameter()
    layer = param.layer.add(name="ip1")
    for shape in ((16, 2), (16,)):
        blob = layer.blobs.add()
        blob.shape.dim.extend(shape)
        blob.data.extend([0.5] * 7)
    (workdir / "short.caffemodel").write_bytes(param.SerializeToString())
    with pytest.raises(DataError, match=r"short\.caffemodel.*'ip1' blob 0 holds 7 values.*32"):
        make_net(workdir).copy_from(workdir / "short.caffemodel")


def test_empty_weights_file_is_refused(workdir):
    (workdir / "empty.caffemodel").write_bytes(b"")
    with pytest.raises(DataError, match="holds no layers"):
        make_net(workdir).copy_from(workdir / "empty.caffemodel")
    with h5py.File(workdir / "nodata.caffemodel.h5", "w") as handle:
        handle.create_group("weights")
    with pytest.raises(DataError, match="no 'data' group"):
        make_net(workdir).copy_from(workdir / "nodata.caffemodel.h5")


# ---------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------
def test_atomic_write_failure_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic.atomic_write(target) as handle:
            handle.write(b"new contents, first half")
            handle.flush()
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["file.bin"]
    atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["file.bin"]


def test_atomic_write_keeps_permissions_and_honours_umask(tmp_path):
    old = tmp_path / "old.txt"
    old.write_text("x")
    os.chmod(old, 0o640)
    atomic.write_text(old, "y")
    assert old.read_text() == "y" and (os.stat(old).st_mode & 0o777) == 0o640
    mask = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "new.txt", "z")
    finally:
        os.umask(mask)
    assert os.stat(tmp_path / "new.txt").st_mode & 0o777 == 0o644


def test_hdf5_save_crashing_mid_write_leaves_old_snapshot_intact(workdir, monkeypatch):
    net = make_net(workdir)
    path = workdir / "w.caffemodel.h5"
    net.save(path)
    before = path.read_bytes()
    calls = {"n": 0}
    original = h5py.Group.create_dataset

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # after two of the four blobs
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    for blob in net.learnable_params:
        blob.data[...] += 1
    with pytest.raises(OSError, match="No space left"):
        net.save(path)
    assert calls["n"] == 3
    assert path.read_bytes() == before
    assert not [name for name in os.listdir(workdir) if name.endswith(".tmp")]


def test_binary_save_failing_before_rename_leaves_old_file(workdir, monkeypatch):
    net = make_net(workdir)
    path = workdir / "w.caffemodel"
    net.save(path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    for blob in net.learnable_params:
        blob.data[...] *= 2
    with pytest.raises(OSError, match="Input/output"):
        net.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(workdir)) == sorted(["a.h5", "b.h5", "list.txt", "net.prototxt", "w.caffemodel"])


# ---------------------------------------------------------------------------
# snapshots
# ---------------------------------------------------------------------------
SOLVER = """
net: "net.prototxt"
type: "{type}"
base_lr: 0.05
momentum: 0.9
momentum2: 0.999
weight_decay: 0.001
lr_policy: "step"
gamma: 0.5
stepsize: 4
max_iter: 20
display: 0
random_seed: 1701
test_iter: 2
test_interval: 5
snapshot_format: {format}
{extra}
"""


def write_solver(folder, type="SGD", format="HDF5", extra='snapshot_prefix: "snaps/run"', **net_kwargs):
    (folder / "net.prototxt").write_text(mlp_text(**net_kwargs))
    path = folder / "solver.prototxt"
    path.write_text(SOLVER.format(type=type, format=format, extra=extra))
    return str(path)


def test_snapshot_names_and_prefix_relative_to_the_solver_file(workdir, monkeypatch):
    path = write_solver(workdir, format="BINARYPROTO")
    (workdir / "snaps").mkdir()
    monkeypatch.chdir("/")
    solver = engine.get_solver(path)
    solver.step(3)
    paths = solver.snapshot()
    assert paths == [str(workdir / "snaps" / "run_iter_3.caffemodel"), str(workdir / "snaps" / "run_iter_3.solverstate")]
    assert all(os.path.exists(p) for p in paths)
    state = caffe_pb2.SolverState.FromString(open(paths[1], "rb").read())  # Caffe's schema reads it
    assert state.iter == 3 and state.current_step == 0 and len(state.history) == 4
    assert state.learned_net == os.path.join("snaps", "run_iter_3.caffemodel")
    numpy.testing.assert_array_equal(numpy.array(state.history[0].data, numpy.float32).reshape(16, 2),
                                     solver.history[0])


def test_default_and_folder_prefix_follow_caffe(workdir):
    path = write_solver(workdir, extra="")
    solver = engine.get_solver(path)
    assert io.snapshot_prefix(solver) == str(workdir / "solver")
    solver.param.snapshot_prefix = "out/"
    assert io.snapshot_prefix(solver) == str(workdir / "out" / "solver")
    text_solver = engine.get_solver(open(path).read().replace('net: "net.prototxt"',
                                                             f'net: "{workdir / "net.prototxt"}"'))
    with pytest.raises(NetDefinitionError, match="snapshot_prefix"):
        text_solver.snapshot()


def test_hdf5_solver_state_layout(workdir):
    solver = engine.get_solver(write_solver(workdir, type="Adam"))
    solver.step(6)
    model, state = solver.snapshot()
    assert model.endswith("snaps/run_iter_6.caffemodel.h5") and state.endswith("run_iter_6.solverstate.h5")
    with h5py.File(state, "r") as handle:
        assert handle["iter"].dtype == numpy.int32 and handle["iter"].shape == (1,) and handle["iter"][0] == 6
        assert handle["current_step"][0] == 6 // 4
        learned = handle["learned_net"]
        string_type = learned.id.get_type()
        assert learned.shape == () and string_type.get_strpad() == h5py.h5t.STR_NULLTERM
        assert learned[()] == os.path.join("snaps", "run_iter_6.caffemodel.h5").encode()
        assert len(handle["history"]) == 8  # Adam: 4 first moments, then 4 second moments
        numpy.testing.assert_array_equal(handle["history/0"][()], solver.history[0])
        numpy.testing.assert_array_equal(handle["history/4"][()], solver.history[4])
        assert handle["history/4"].shape == solver.net.learnable_params[0].shape
        assert "backprop_studio" in handle and handle["backprop_studio"].attrs["version"] == 1


def test_snapshot_after_train_is_not_repeated(workdir):
    solver = engine.get_solver(write_solver(workdir, extra='snapshot_prefix: "run"\nsnapshot: 10'))
    solver.auto_snapshot = True
    solver.param.max_iter = 20
    written = []
    solver.on_snapshot = written.append
    solver.solve()
    assert [os.path.basename(p[0]) for p in written] == ["run_iter_10.caffemodel.h5", "run_iter_20.caffemodel.h5"]
    solver.param.max_iter = 23
    solver.solve()
    assert os.path.basename(written[-1][0]) == "run_iter_23.caffemodel.h5"
    solver.param.snapshot_after_train = False
    solver.param.max_iter = 25
    solver.solve()
    assert len(written) == 3


def test_restore_errors(workdir):
    path = write_solver(workdir)
    solver = engine.get_solver(path)
    solver.step(2)
    _, state = solver.snapshot()
    adam = engine.get_solver(write_solver(workdir, type="Adam"))
    with pytest.raises(DataError, match="4 history blob.*needs 8"):
        adam.restore(state)
    os.remove(state.replace("solverstate", "caffemodel"))
    with pytest.raises(DataError, match="names the weights.*not found"):
        engine.get_solver(path).restore(state)
    raw = open(state, "rb").read()
    open(state, "wb").write(raw[: len(raw) // 3])
    with pytest.raises(DataError, match="run_iter_2.solverstate.h5"):
        engine.get_solver(path).restore(state)
    (workdir / "bad.solverstate").write_bytes(b"\xff\xff\xff\xff garbage")
    with pytest.raises(DataError, match="bad.solverstate"):
        engine.get_solver(path).restore(workdir / "bad.solverstate")


def test_restoring_a_caffe_state_without_extras_restarts_the_data(workdir):
    """Caffe's files carry no data positions: the data layer starts over, as in Caffe."""
    path = write_solver(workdir, shuffle=True)
    solver = engine.get_solver(path)
    solver.step(3)
    _, state = solver.snapshot()
    with h5py.File(state, "a") as handle:
        del handle["backprop_studio"]
    fresh = engine.get_solver(path)
    fresh.restore(state)
    assert fresh.iter == 3
    assert fresh.net.layers[0].state()["current_row"] == 0
    for mine, theirs in zip(fresh.net.learnable_params, solver.net.learnable_params):
        numpy.testing.assert_array_equal(mine.data, theirs.data)


RESUME_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import engine
    solver = engine.get_solver({solver!r})
    solver.restore({state!r})
    solver.step(10)
    solver.net.save({out!r})
    print(json.dumps({{"iter": solver.iter, "tests": solver.test_scores, "smoothed": solver.smoothed_loss}}))
""")


@pytest.mark.parametrize("kind,format", [("Adam", "HDF5"), ("Nesterov", "BINARYPROTO")])
def test_resume_in_a_fresh_process_is_bit_exact(workdir, kind, format):
    path = write_solver(workdir, type=kind, format=format, shuffle=True, dropout=True,
                        extra='snapshot_prefix: "snaps/run"\naverage_loss: 3')
    straight = engine.get_solver(path)
    straight.step(20)

    first = engine.get_solver(path)
    first.step(10)
    _, state = first.snapshot()
    out = str(workdir / "resumed.caffemodel.h5")
    script = RESUME_SCRIPT.format(root=ROOT, solver=path, state=state, out=out)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    child = json.loads(result.stdout.strip().splitlines()[-1])
    assert child["iter"] == 20
    resumed = engine.get_solver(path)
    resumed.net.copy_from(out)
    for mine, theirs in zip(resumed.net.learnable_params, straight.net.learnable_params):
        assert mine.data.tobytes() == theirs.data.tobytes()
    straight_tests = {it: scores for it, scores in straight.test_scores}
    for it, scores in child["tests"]:
        assert scores == straight_tests[it]
    assert child["smoothed"] == straight.smoothed_loss


def test_resume_without_the_extras_would_differ(workdir):
    """The control for the test above: shuffled data and Dropout need the saved RNG and positions."""
    path = write_solver(workdir, shuffle=True, dropout=True)
    straight = engine.get_solver(path)
    straight.step(8)
    first = engine.get_solver(path)
    first.step(4)
    _, state = first.snapshot()
    with h5py.File(state, "a") as handle:
        del handle["backprop_studio"]
    resumed = engine.get_solver(path)
    resumed.restore(state)
    resumed.step(4)
    assert any(mine.data.tobytes() != theirs.data.tobytes()
               for mine, theirs in zip(resumed.net.learnable_params, straight.net.learnable_params))


def test_a_loss_window_begun_after_a_resume_survives_the_next_snapshot(workdir):
    """A run resumed from Caffe's state (no losses) starts its smoothed-loss window at the
    resume iteration; a snapshot of that run must keep where the window began."""
    path = write_solver(workdir, extra='snapshot_prefix: "snaps/run"\naverage_loss: 4')
    straight = engine.get_solver(path)
    straight.step(3)
    straight.losses = []  # what resuming at iteration 3 from a Caffe state leaves
    straight.step(4)
    _, state = straight.snapshot()
    straight.step(6)
    resumed = engine.get_solver(path)
    resumed.restore(state)
    resumed.step(6)
    assert resumed.loss_window_start == 3
    assert resumed.smoothed_loss == straight.smoothed_loss


def test_lenet_solver_state_round_trips_via_binary_files(data_dir, tmp_path):
    """Binary state of a real-shaped net: history and weights come back bit for bit."""
    shutil.copytree(data_dir / "lenet", tmp_path / "lenet")
    solver = engine.get_solver(str(tmp_path / "lenet" / "mlp_solver.prototxt"))
    solver.param.snapshot_format = caffe_pb2.SolverParameter.BINARYPROTO
    solver.step(2)
    _, state = solver.snapshot()
    fresh = engine.get_solver(str(tmp_path / "lenet" / "mlp_solver.prototxt"))
    fresh.restore(state)
    assert fresh.iter == 2
    for mine, theirs in zip(fresh.history, solver.history):
        assert mine.tobytes() == theirs.tobytes()
    for mine, theirs in zip(fresh.net.learnable_params, solver.net.learnable_params):
        assert mine.data.tobytes() == theirs.data.tobytes()


def test_builtin_data_shuffle_position_survives_a_binary_snapshot(examples_dir, tmp_path):
    """BuiltinData's cursor and epoch order travel in the binary state's extra field."""
    text = (examples_dir / "spiral_mlp" / "net.prototxt").read_text().replace(
        "batch_size: 32 }", "batch_size: 32  shuffle: true }")
    (tmp_path / "net.prototxt").write_text(text)
    solver_text = (examples_dir / "spiral_mlp" / "solver.prototxt").read_text()
    (tmp_path / "solver.prototxt").write_text(solver_text + "\nsnapshot_format: BINARYPROTO\n")
    path = str(tmp_path / "solver.prototxt")
    straight = engine.get_solver(path)
    straight.step(14)  # 14 * 32 rows: past the first epoch of 240, into a reshuffled one
    first = engine.get_solver(path)
    first.step(7)
    _, state = first.snapshot()
    assert state.endswith("spiral_mlp_iter_7.solverstate")
    cursor = first.net.layers[0].batcher.cursor
    resumed = engine.get_solver(path)
    resumed.restore(state)
    assert resumed.net.layers[0].batcher.cursor == cursor != 0
    resumed.step(7)
    for mine, theirs in zip(resumed.net.learnable_params, straight.net.learnable_params):
        assert mine.data.tobytes() == theirs.data.tobytes()
