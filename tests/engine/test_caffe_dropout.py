"""TRAIN Dropout draws Caffe's CPU mask from Caffe's stream, and that stream's position
travels with every saved random state (snapshots, rewind), so resumes stay bit-exact."""
from __future__ import annotations

import json
import struct

import h5py
import numpy
import pytest
from google.protobuf import text_format

import engine
from engine import rng
from engine.errors import DataError
from engine.proto import caffe_pb2
from engine.transformer import DataTransformer

from .helpers import mt19937_outputs, run_forward


# -- boost::bernoulli_distribution<double> over the independent mt19937 of helpers.py ------
def float32_of(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def caffe_dropout_mask(seed: int, count: int, ratio: float) -> list[int]:
    """caffe_rng_bernoulli(count, 1. - threshold_, mask): boost's bernoulli_distribution<double>
    keeps a unit when double(u) <= p * double(2^32 - 1), with the Dtype threshold widened."""
    p = 1.0 - float32_of(ratio)
    return [1 if float(u) <= p * 4294967295.0 else 0 for u in mt19937_outputs(seed, count)]


@pytest.mark.parametrize("seed,ratio", [(1701, 0.5), (4294967295 + 12, 0.3)])
def test_mask_is_caffes_cpu_mask(seed, ratio):
    shape = (2, 3, 11, 13)  # 858 draws: past the twister's first 624
    count = int(numpy.prod(shape))
    rng.set_seed(seed)
    bottom = numpy.random.default_rng(0).uniform(0.5, 2.0, shape).astype(numpy.float32)
    layer, _, top = run_forward(f"type: 'Dropout' dropout_param {{ dropout_ratio: {ratio} }}", [bottom],
                                dtype=numpy.float32)
    expected_mask = numpy.array(caffe_dropout_mask(seed, count, ratio), dtype=bool).reshape(shape)
    assert numpy.array_equal(top[0].data != 0, expected_mask)
    scale = numpy.float32(1.0 / (1.0 - float32_of(ratio)))  # Caffe: Dtype scale_ = 1. / (1. - threshold_)
    kept = bottom[expected_mask]
    assert top[0].data[expected_mask].tobytes() == (kept * scale).tobytes()
    # The same stream goes on: the next caffe_rng_rand() is the twister's next output.
    assert rng.caffe_stream().rand() == mt19937_outputs(seed, count + 1)[-1]


def test_fillers_and_dropout_share_one_stream():
    """A uniform filler after a mask continues the stream where the mask left it."""
    rng.set_seed(5)
    run_forward("type: 'Dropout' dropout_param { dropout_ratio: 0.5 }", [numpy.ones((4, 5))])
    filler = caffe_pb2.FillerParameter(type="uniform", min=0.0, max=1.0)
    values = engine.fillers.filled_array(filler, (3,), numpy.float32, caffe_random=True)
    raw = mt19937_outputs(5, 23)[20:]
    expected = [numpy.float32(u) / numpy.float32(4294967296.0) *
                numpy.nextafter(numpy.float32(1), numpy.float32(2)) for u in raw]
    assert values.tobytes() == numpy.array(expected, dtype=numpy.float32).tobytes()


def _transform_param(text: str) -> caffe_pb2.TransformationParameter:
    return text_format.Parse(text, caffe_pb2.TransformationParameter())


@pytest.mark.parametrize("text,phase,draws", [
    ("mirror: true", engine.TRAIN, 1),          # InitRand: one caffe_rng_rand() for its seed
    ("mirror: true", engine.TEST, 1),           # Caffe's mirror draws in TEST as well
    ("crop_size: 2", engine.TRAIN, 1),
    ("crop_size: 2", engine.TEST, 0),           # a centred crop needs nothing
    ("scale: 0.5", engine.TRAIN, 0),
])
def test_a_transformer_takes_its_seed_from_caffes_stream(text, phase, draws):
    rng.set_seed(99)
    DataTransformer(_transform_param(text), phase, "layer 'test'")
    assert rng.caffe_stream().rand() == mt19937_outputs(99, draws + 1)[-1]


@pytest.mark.parametrize("transform,skip_draw", [("", 0), ("mirror: true", 1)])
def test_image_data_rand_skip_skips_what_caffe_skips(tmp_path, transform, skip_draw):
    """ImageData: the transformer's InitRand value first, then caffe_rng_rand() % rand_skip."""
    from PIL import Image

    lines = []
    for i in range(7):
        Image.fromarray(numpy.full((2, 3), 20 * i, numpy.uint8), "L").save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png {i}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    rng.set_seed(2024)
    net = engine.Net(f"""
    layer {{ name: "img" type: "ImageData" top: "data" top: "label" transform_param {{ {transform} }}
      image_data_param {{ source: "{tmp_path / 'list.txt'}" root_folder: "{tmp_path}/" batch_size: 1
                          is_color: false rand_skip: 7 }} }}""", engine.TRAIN)
    net.forward()
    assert int(engine.backend.to_numpy(net.blobs["label"].data)[0]) == mt19937_outputs(2024, 2)[skip_draw] % 7


def test_stream_state_round_trips_and_a_bad_one_is_refused():
    rng.set_seed(3)
    rng.caffe_stream().bernoulli(5000, 0.5)  # past the draw-ahead block
    saved = rng.get_state()
    ahead = [rng.caffe_stream().rand() for _ in range(700)]
    rng.set_state(saved)
    assert [rng.caffe_stream().rand() for _ in range(700)] == ahead
    assert ahead[:3] == mt19937_outputs(3, 5003)[-3:]
    middle = rng.get_state()  # part of a drawn-ahead block used
    after_middle = [rng.caffe_stream().rand() for _ in range(5)]
    rng.set_state(json.loads(json.dumps(middle)))  # as a snapshot carries it
    assert [rng.caffe_stream().rand() for _ in range(5)] == after_middle == mt19937_outputs(3, 5705)[-5:]
    numpy_before = rng.generator().bit_generator.state
    broken = dict(saved, caffe_stream={"key": [0] * 624, "pos": 3})
    with pytest.raises(ValueError, match="Caffe stream"):
        rng.set_state(broken)
    assert rng.generator().bit_generator.state == numpy_before  # nothing applied


# -- a Dropout net: resume and rewind -------------------------------------------------------
def _net_text(source: str) -> str:
    return f"""
name: "drop"
layer {{ name: "data" type: "HDF5Data" top: "data" top: "label"
        hdf5_data_param {{ source: "{source}" batch_size: 6 }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param {{ num_output: 12 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "drop1" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param {{ dropout_ratio: 0.5 }} }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param {{ num_output: 3 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""


@pytest.fixture
def make_solver(tmp_path):
    gen = numpy.random.default_rng(11)
    with h5py.File(tmp_path / "train.h5", "w") as handle:
        handle["data"] = gen.normal(size=(18, 5)).astype(numpy.float32)
        handle["label"] = gen.integers(0, 3, 18).astype(numpy.float32)
    (tmp_path / "list.txt").write_text(str(tmp_path / "train.h5") + "\n")
    net_text = _net_text(str(tmp_path / "list.txt"))

    def build(snapshot_format=caffe_pb2.SolverParameter.HDF5):
        param = caffe_pb2.SolverParameter(base_lr=0.2, momentum=0.9, lr_policy="fixed", random_seed=1234,
                                          max_iter=100, snapshot_prefix=str(tmp_path / "snaps" / "drop"),
                                          snapshot_format=snapshot_format)
        text_format.Parse(net_text, param.net_param)
        return engine.get_solver(param)
    return build


def _weights(solver) -> list[bytes]:
    return [engine.backend.to_numpy(blob.data).tobytes() for blob in solver.net.learnable_params]


@pytest.mark.parametrize("snapshot_format", [caffe_pb2.SolverParameter.HDF5, caffe_pb2.SolverParameter.BINARYPROTO])
def test_resume_from_a_snapshot_is_bit_exact_with_dropout(make_solver, snapshot_format):
    straight = make_solver(snapshot_format)
    straight.step(6)
    first = make_solver(snapshot_format)
    first.step(3)
    _, state = first.snapshot()
    first.step(3)  # the stream moves on after the snapshot
    assert _weights(first) == _weights(straight)
    rng.set_seed(777)  # a resumed run starts from a stream elsewhere
    resumed = make_solver(snapshot_format)
    resumed.restore(state)
    resumed.step(3)
    assert _weights(resumed) == _weights(straight)


def test_resume_without_the_caffe_stream_would_differ(make_solver):
    """The control: drop the Caffe stream's position from the snapshot and the masks differ."""
    straight = make_solver()
    straight.step(6)
    first = make_solver()
    first.step(3)
    _, state = first.snapshot()
    with h5py.File(state, "a") as handle:
        group = handle["backprop_studio"]
        saved = json.loads(group.attrs["rng_state"])
        del saved[rng.CAFFE_STATE_KEY]
        group.attrs["rng_state"] = json.dumps(saved)
    resumed = make_solver()
    resumed.restore(state)
    resumed.step(3)
    assert _weights(resumed) != _weights(straight)


def test_a_corrupt_caffe_stream_in_a_snapshot_is_refused(make_solver):
    first = make_solver()
    first.step(2)
    _, state = first.snapshot()
    with h5py.File(state, "a") as handle:
        text = handle["backprop_studio"].attrs["rng_state"]
        handle["backprop_studio"].attrs["rng_state"] = text.replace('"pos": ', '"pos": 9999')
    with pytest.raises(DataError, match="rng_state"):
        make_solver().restore(state)


def test_rewind_and_replay_is_bit_exact_with_dropout(make_solver):
    from gui.model.timeline import Timeline  # Qt-free model code

    twin = make_solver()
    twin.step(7)
    solver = make_solver()
    history = Timeline()
    history.step(solver, 7)
    history.goto(solver, 2)
    assert solver.iter == 2
    history.step(solver, 5)
    assert _weights(solver) == _weights(twin)


def _uniform01(raw) -> numpy.ndarray:
    """Caffe's caffe_rng_uniform(0, 1) of 32-bit draws (as in the test above)."""
    return numpy.array([numpy.float32(u) / numpy.float32(4294967296.0) * numpy.nextafter(numpy.float32(1),
                        numpy.float32(2)) for u in raw], dtype=numpy.float32)


def test_dummy_data_refills_from_caffes_stream_after_the_weight_fillers():
    """DummyData as dummy_data_layer.cpp: constant tops filled once at setup; a random top
    drawn at every forward from Caffe's stream, so the weight fillers of the layers after it
    take the stream's first draws, and each forward the next ones."""
    net_text = """
    layer { name: "d" type: "DummyData" top: "x" top: "c"
            dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 }
                               data_filler { type: "uniform" min: 0 max: 1 }
                               data_filler { type: "constant" value: 4 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y"
            inner_product_param { num_output: 2 weight_filler { type: "uniform" min: 0 max: 1 } } }
    """
    rng.set_seed(11)
    net = engine.Net(net_text, engine.TRAIN)
    raw = mt19937_outputs(11, 6 + 6 + 6)
    assert net.params["ip"][0].data.ravel().tobytes() == _uniform01(raw[:6]).tobytes()  # the weights first
    assert numpy.array_equal(net.blobs["c"].data, [4, 4])
    net.forward()
    assert net.blobs["x"].data.ravel().tobytes() == _uniform01(raw[6:12]).tobytes()
    net.blobs["c"].data[...] = 7  # a constant top is not filled again
    net.forward()
    assert net.blobs["x"].data.ravel().tobytes() == _uniform01(raw[12:18]).tobytes()
    assert numpy.array_equal(net.blobs["c"].data, [7, 7])


def test_dummy_data_refuses_a_bad_filler_at_setup():
    bad = 'layer { name: "d" type: "DummyData" top: "x" dummy_data_param { shape { dim: 3 } ' \
          'data_filler { type: "gaussian" std: -1 } } }'
    with pytest.raises(engine.NetDefinitionError, match="std is -1"):
        engine.Net(bad, engine.TRAIN)
