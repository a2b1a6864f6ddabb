"""The binary .caffemodel / .solverstate writer encodes the packed float fields from the
arrays' bytes; its output must be the very bytes protobuf's own encoder gives for the
same message (built field by field with ``blob_to_proto``)."""
from __future__ import annotations

import numpy
import pytest

import engine
from engine import io as engine_io
from engine.caffemodel_write import blob_chunks, net_chunks, solver_state_chunks
from engine.proto import caffe_pb2

EXAMPLES = ["spiral_mlp", "digits_lenet", "digits_mlp"]

BATCHNORM_NET = """
name: "bn"
layer { name: "data" type: "DummyData" top: "data" top: "target"
        dummy_data_param { shape { dim: 4 dim: 3 dim: 5 dim: 5 } shape { dim: 4 dim: 2 }
                           data_filler { type: "gaussian" std: 1 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 6 kernel_size: 3 group: 3 weight_filler { type: "xavier" } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip" param { lr_mult: 1 } param { lr_mult: 2 }
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }
"""


def joined(chunks) -> bytes:
    return b"".join(bytes(chunk) for chunk in chunks)


def stepped_solver(source):
    solver = engine.get_solver(source)
    solver.step(2)
    return solver


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("write_diff", [False, True])
def test_net_bytes_are_protobufs_own(examples_dir, name, write_diff):
    solver = stepped_solver(str(examples_dir / name / "solver.prototxt"))
    expected = engine_io.net_to_proto(solver.net, write_diff).SerializeToString()
    assert joined(net_chunks(solver.net, write_diff)) == expected


def test_a_net_with_batchnorm_groups_and_multipliers(tmp_path):
    net = engine.Net(BATCHNORM_NET, engine.TRAIN)
    net.forward()
    net.backward()
    assert joined(net_chunks(net, True)) == engine_io.net_to_proto(net, True).SerializeToString()
    path = tmp_path / "bn.caffemodel"
    engine_io.save_weights(net, str(path))
    again = engine.Net(BATCHNORM_NET, engine.TEST)
    again.copy_from(str(path))
    for name, blobs in net.params.items():
        for mine, theirs in zip(blobs, again.params[name]):
            assert numpy.array_equal(mine.data, theirs.data)


@pytest.mark.parametrize("array", [
    numpy.arange(12, dtype=numpy.float32).reshape(3, 4) - 5.5,
    numpy.float32(3.25).reshape(()),
    numpy.zeros((0, 4), numpy.float32),
    numpy.linspace(-1, 1, 7).reshape(7, 1),  # float64: double_data
    numpy.array([numpy.nan, numpy.inf, -0.0, 1e-45], numpy.float32),
], ids=["matrix", "scalar", "empty", "double", "special"])
def test_blob_bytes(array):
    diff = (array * 2).astype(array.dtype)
    for d in (None, diff):
        expected = engine_io.blob_to_proto(caffe_pb2.BlobProto(), array, d).SerializeToString()
        assert joined(blob_chunks(array, d)) == expected


def test_a_layer_with_unknown_fields_keeps_them_once(examples_dir):
    solver = stepped_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    net = solver.net
    index = [layer.name for layer in net.layers].index("ip2")
    unknown = bytes([0xF8, 0x3E, 0x07])  # field 999 (not in caffe.proto), varint 7
    param = caffe_pb2.LayerParameter()
    param.ParseFromString(net.layer_params[index].SerializeToString() + unknown)
    net.layer_params[index] = param
    expected = engine_io.net_to_proto(net).SerializeToString()
    assert expected.count(unknown) == 1
    assert joined(net_chunks(net)) == expected


def test_solver_state_bytes(examples_dir):
    solver = stepped_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    state = caffe_pb2.SolverState(iter=solver.iter, learned_net="x_iter_2.caffemodel", current_step=0)
    for array in solver.history:
        engine_io.blob_to_proto(state.history.add(), array)
    chunks = solver_state_chunks(solver.iter, "x_iter_2.caffemodel", 0, solver.history)
    assert joined(chunks) == state.SerializeToString()


def test_snapshot_resumes_the_same(tmp_path, examples_dir):
    source = str(examples_dir / "spiral_mlp" / "solver.prototxt")
    solver = stepped_solver(source)
    solver.param.snapshot_prefix = str(tmp_path / "snap")
    paths = solver.snapshot()
    twin = engine.get_solver(source)
    twin.restore(next(p for p in paths if p.endswith(".solverstate")))
    solver.step(3)
    twin.step(3)
    for name, blobs in solver.net.params.items():
        for mine, theirs in zip(blobs, twin.net.params[name]):
            assert numpy.array_equal(mine.data, theirs.data)
