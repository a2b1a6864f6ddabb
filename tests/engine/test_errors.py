"""Bad input: every error names the file, line, layer, blob or value at fault."""
import numpy
import pytest

import engine
from engine import events
from tests.engine.helpers import linear_net_text, solver_for

INPUT = 'layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 4 dim: 3 } } }\n'


def test_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.prototxt"
    path.write_text('name: "x"\n'
                    'layer {\n'
                    '  name: "a"\n'
                    '  type: "Input" top: "d" ]\n'
                    '}\n')
    with pytest.raises(engine.PrototxtError) as info:
        engine.Net(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}:4:")
    column = int(message.split(":")[2])
    assert column == len('  type: "Input" top: "d" ]')   # the ']' (1-based)


def test_syntax_error_in_text_says_which_text():
    with pytest.raises(engine.PrototxtError, match=r"<net text>:2:\d+"):
        engine.Net('name: "x"\nlayer { name: "a" type: }')


def test_unknown_field_is_named(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text('layer {\n  name: "a" type: "Input"\n  num_outptu: 3\n}\n')
    with pytest.raises(engine.PrototxtError) as info:
        engine.Net(str(path))
    assert "num_outptu" in str(info.value) and f"{path}:3:3" in str(info.value)


def test_unknown_solver_field_is_named():
    with pytest.raises(engine.PrototxtError, match="base_rate"):
        engine.get_solver('base_rate: 0.1\nnet: "x.prototxt"')


def test_missing_prototxt_file():
    with pytest.raises(engine.PrototxtError, match="cannot read prototxt 'no/such/net.prototxt'"):
        engine.Net("no/such/net.prototxt")


def test_unknown_layer_type_lists_the_supported_types():
    with pytest.raises(engine.NetDefinitionError) as info:
        engine.Net(INPUT + 'layer { name: "fc" type: "FullyConnected" bottom: "data" top: "fc" }')
    message = str(info.value)
    assert "'fc'" in message and "unknown layer type 'FullyConnected'" in message
    for name in ("InnerProduct", "ReLU", "SoftmaxWithLoss", "HDF5Data", "Input"):
        assert name in message
    assert set(engine.supported_types()) <= set(message.replace(",", " ").split())


def test_data_layer_without_a_source_names_the_layer_and_the_field():
    with pytest.raises(engine.NetDefinitionError) as info:
        engine.Net('layer { name: "mnist" type: "Data" top: "data" top: "label" }')
    message = str(info.value)
    assert "data_param.source" in message and "'mnist'" in message


def test_undefined_bottom_names_the_blob_and_layer():
    with pytest.raises(engine.NetDefinitionError) as info:
        engine.Net(INPUT + 'layer { name: "relu" type: "ReLU" bottom: "dta" top: "r" }')
    message = str(info.value)
    assert "'relu'" in message and "'dta'" in message and "data" in message


def test_bottom_from_a_layer_excluded_in_this_phase():
    text = ('layer { name: "in" type: "Input" top: "data" include { phase: TEST } '
            'input_param { shape { dim: 1 dim: 2 } } }\n'
            'layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }')
    with pytest.raises(engine.NetDefinitionError, match="'data'"):
        engine.Net(text, engine.TRAIN)


def test_euclidean_shape_mismatch_names_layer_blobs_and_shapes():
    text = ('layer { name: "in" type: "Input" top: "pred" top: "truth" '
            'input_param { shape { dim: 2 dim: 3 } shape { dim: 3 dim: 3 } } }\n'
            'layer { name: "l2" type: "EuclideanLoss" bottom: "pred" bottom: "truth" top: "loss" }')
    with pytest.raises(engine.ShapeError) as info:
        engine.Net(text)
    message = str(info.value)
    for part in ("'l2'", "'pred'", "'truth'", "(2, 3)", "(3, 3)"):
        assert part in message, message


def test_inner_product_input_size_mismatch_names_layer_blob_and_shape():
    net = engine.Net(linear_net_text())
    net.blobs["data"].reshape(4, 5)
    with pytest.raises(engine.ShapeError) as info:
        net.reshape()
    message = str(info.value)
    for part in ("'ip'", "'data'", "(4, 5)", "K_=5", "K_=3"):
        assert part in message, message


def test_label_count_mismatch_names_layer_blob_and_shapes():
    text = ('layer { name: "in" type: "Input" top: "scores" top: "label" '
            'input_param { shape { dim: 4 dim: 3 } shape { dim: 5 } } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "scores" bottom: "label" top: "loss" }')
    with pytest.raises(engine.ShapeError) as info:
        engine.Net(text)
    message = str(info.value)
    for part in ("'loss'", "'label'", "(5,)", "(4, 3)"):
        assert part in message, message


def _classifier(labels, ignore=""):
    net = engine.Net('layer { name: "in" type: "Input" top: "scores" top: "label" '
                     'input_param { shape { dim: 3 dim: 4 } shape { dim: 3 } } }\n'
                     f'layer {{ name: "xent" type: "SoftmaxWithLoss" bottom: "scores" bottom: "label" '
                     f'top: "loss" {ignore} }}')
    net.blobs["label"].data[...] = labels
    return net


@pytest.mark.parametrize("bad", [4, -1, 7, 1.5])
def test_label_out_of_range_names_the_value(bad):
    net = _classifier([0, bad, 2])
    with pytest.raises(engine.LabelError) as info:
        net.forward()
    message = str(info.value)
    assert f"label {bad:g}" in message and "'xent'" in message and "[0, 3]" in message


def test_ignore_label_is_not_out_of_range():
    net = _classifier([0, 9, 2], ignore="loss_param { ignore_label: 9 }")
    net.forward()
    assert numpy.isfinite(net.loss)


def test_accuracy_label_out_of_range():
    net = engine.Net('layer { name: "in" type: "Input" top: "scores" top: "label" '
                     'input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }\n'
                     'layer { name: "acc" type: "Accuracy" bottom: "scores" bottom: "label" top: "a" }')
    net.blobs["label"].data[...] = [0, 3]
    with pytest.raises(engine.LabelError, match="label 3"):
        net.forward()


# -- non-finite values ----------------------------------------------------------------
def _spiral(examples_dir):
    solver = engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    solver.param.test_initialization = False
    return solver


def test_nan_weight_raises_nonfinite_naming_iteration_layer_and_blob(examples_dir):
    solver = _spiral(examples_dir)
    solver.step(2)
    solver.net.params["ip2"][0].data[0, 0] = numpy.nan
    with pytest.raises(engine.NonFiniteError) as info:
        solver.step(1)
    error = info.value
    assert (error.iteration, error.layer, error.blob, error.phase) == (2, "ip2", "ip2", "forward")
    assert "iteration 2" in str(error) and "'ip2'" in str(error)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_raises_nonfinite(examples_dir):
    solver = _spiral(examples_dir)
    solver.param.base_lr = 1e30
    solver.learning_rate = 1e30
    with pytest.raises(engine.NonFiniteError) as info:
        solver.step(5)
    assert info.value.iteration == 1 and info.value.layer == "ip2"
    assert solver.iter == 1                       # the bad iteration did not update


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_stepthrough_yields_a_nonfinite_event_instead_of_raising(examples_dir):
    solver = _spiral(examples_dir)
    solver.net.params["ip3"][1].data[1] = numpy.inf
    weights = [b.data.copy() for b in solver.net.learnable_params]
    seen = list(solver.iteration_events())
    last = seen[-1]
    assert last.kind == events.NONFINITE
    assert last.layer == "ip3" and last.detail["blob"] == "ip3" and last.detail["phase"] == "forward"
    assert isinstance(last.detail["error"], engine.NonFiniteError)
    assert "iteration 0" in last.detail["message"]
    assert [e.kind for e in seen[:-1]] == [events.FORWARD] * 5   # data, ip1, relu1, ip2, relu2
    assert solver.iter == 0
    for before, blob in zip(weights, solver.net.learnable_params):
        numpy.testing.assert_array_equal(before, blob.data)


def _overflowing_gradient_solver():
    """A finite loss whose gradient overflows float32: loss weight 3e38, residual 1.2."""
    text = linear_net_text(num_inputs=1, num_outputs=1, batch=1).replace(
        'top: "loss" }', 'top: "loss" loss_weight: 3e38 }')
    solver = solver_for(text, base_lr=0.1)
    solver.net.params["ip"][0].data[...] = 1.0
    solver.net.params["ip"][1].data[...] = 0.0
    solver.net.blobs["data"].data[...] = 1.2
    solver.net.blobs["target"].data[...] = 0.0
    return solver


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_gradient_names_the_backward_layer_and_blob():
    solver = _overflowing_gradient_solver()
    with pytest.raises(engine.NonFiniteError) as info:
        solver.step(1)
    error = info.value
    assert (error.iteration, error.layer, error.blob, error.phase) == (0, "loss", "ip", "backward")
    assert "backward of layer 'loss'" in str(error)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_stepthrough_stops_at_a_nonfinite_gradient():
    solver = _overflowing_gradient_solver()
    last = list(solver.iteration_events())[-1]
    assert last.kind == events.NONFINITE
    assert (last.layer, last.detail["blob"], last.detail["phase"]) == ("loss", "ip", "backward")


def test_gpu_unavailable_is_a_device_error_with_a_reason():
    ok, _ = engine.gpu_status()
    if ok:
        pytest.skip("a GPU is present: asking for it does not fail here")
    with pytest.raises(engine.DeviceError, match="GPU requested but unavailable: (cupy|.*CUDA)"):
        engine.Net(linear_net_text(), device="gpu")


# -- more definitions that parse but cannot be built --------------------------------------
@pytest.mark.parametrize("text,message", [
    (INPUT + INPUT, "two layers are named 'in'"),
    (INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "x" }\n'
             'layer { name: "s" type: "ReLU" bottom: "data" top: "x" }', "top blob 'x' is produced by more than one"),
    (INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "x" include { phase: TRAIN } '
             'exclude { phase: TEST } }', "layer 'r' specifies both include and exclude"),
    (INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "x" loss_weight: 1 loss_weight: 2 }',
     "layer 'r': loss_weight must be given once per top"),
    (INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "x" propagate_down: true '
             'propagate_down: false }', "layer 'r': propagate_down must be given once per bottom"),
    (INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" bottom: "data" top: "x" }',
     r"layer 'r' \(ReLU\) takes 1 bottom blob\(s\), got 2"),
    (INPUT + 'layer { name: "d" type: "Dropout" bottom: "data" top: "data" dropout_param { dropout_ratio: 1 } }',
     "layer 'd': dropout_ratio must be in"),
])
def test_bad_net_definitions(text, message):
    with pytest.raises(engine.NetDefinitionError, match=message):
        engine.Net(text)


def test_unknown_solver_type():
    with pytest.raises(engine.NetDefinitionError, match="unknown solver type 'Lion'.*SGD"):
        engine.get_solver('type: "Lion" net_param { }')


def test_missing_net_file_named_by_a_solver(tmp_path):
    solver = tmp_path / "solver.prototxt"
    solver.write_text('net: "nowhere.prototxt"\nbase_lr: 0.1\n')
    with pytest.raises(engine.NetDefinitionError) as info:
        engine.get_solver(str(solver))
    assert "nowhere.prototxt" in str(info.value) and str(solver) in str(info.value)


def test_missing_hdf5_source_is_a_data_error(tmp_path):
    with pytest.raises(engine.DataError, match="nolist.txt"):
        engine.Net(f'layer {{ name: "h" type: "HDF5Data" top: "data" '
                   f'hdf5_data_param {{ source: "{tmp_path / "nolist.txt"}" batch_size: 2 }} }}')


def test_hdf5_file_without_the_top_dataset(tmp_path):
    import h5py
    with h5py.File(tmp_path / "a.h5", "w") as handle:
        handle["images"] = numpy.zeros((3, 2), numpy.float32)
    (tmp_path / "list.txt").write_text("a.h5\n")
    with pytest.raises(engine.DataError, match="has no dataset 'data'.*images"):
        engine.Net(f'layer {{ name: "h" type: "HDF5Data" top: "data" '
                   f'hdf5_data_param {{ source: "{tmp_path / "list.txt"}" batch_size: 2 }} }}')


def test_every_engine_error_is_an_engine_error():
    for cls in (engine.PrototxtError, engine.NetDefinitionError, engine.ShapeError, engine.LabelError,
                engine.DataError, engine.DeviceError, engine.NonFiniteError):
        assert issubclass(cls, engine.EngineError)


def test_forward_with_a_wrongly_shaped_input_names_blob_and_shapes():
    net = engine.Net(linear_net_text())
    with pytest.raises(engine.ShapeError) as info:
        net.forward(data=numpy.zeros((5, 3)))
    assert "'data'" in str(info.value) and "(4, 3)" in str(info.value) and "(5, 3)" in str(info.value)
    with pytest.raises(engine.NetDefinitionError, match="no blob named 'dat'.*inputs: data, target"):
        net.forward(dat=numpy.zeros((4, 3)))


def test_the_new_errors_are_engine_errors_and_the_warning_a_user_warning():
    from engine.errors import EngineWarning, ResourceError, SnapshotError, SolverParameterError
    for cls in (ResourceError, SnapshotError, SolverParameterError):
        assert issubclass(cls, engine.EngineError)
    assert issubclass(SolverParameterError, engine.NetDefinitionError)  # a solver file that cannot be used
    assert issubclass(EngineWarning, UserWarning)


def test_a_state_written_by_caffe_restores_and_says_what_it_could_not(tmp_path):
    """A binary .solverstate without the engine's extras (Caffe's own layout): the
    weights and histories come back; the report says the random stream and data
    positions did not."""
    from engine import io as engine_io
    from engine.proto import caffe_pb2
    solver = solver_for(linear_net_text(), momentum=0.9)
    solver.step(2)
    model = str(tmp_path / "w.caffemodel")
    solver.net.save(model)
    state = caffe_pb2.SolverState(iter=2, learned_net=model, current_step=0)
    for array in solver.history:
        engine_io.blob_to_proto(state.history.add(), array)
    (tmp_path / "caffe.solverstate").write_bytes(state.SerializeToString())
    fresh = solver_for(linear_net_text(), momentum=0.9)
    report = fresh.restore(tmp_path / "caffe.solverstate")
    assert fresh.iter == 2
    for mine, theirs in zip(fresh.net.learnable_params, solver.net.learnable_params):
        numpy.testing.assert_array_equal(mine.data, theirs.data)
    for mine, theirs in zip(fresh.history, solver.history):
        numpy.testing.assert_array_equal(mine, theirs)
    text = "\n".join(report.lines())
    assert "Restored iteration 2" in text and "Not restored: the random stream and the data positions" in text


def test_test_scores_survive_pickling_with_their_count():
    import pickle

    from engine.solver import ScoreLog
    log = ScoreLog()
    log.keep = 3
    for k in range(10):
        log.append((k, {"loss": 1.0}))
    copy = pickle.loads(pickle.dumps(log))
    assert len(copy) == len(log) == 10 and list(copy) == list(log) and copy[9:] == [(9, {"loss": 1.0})]
