"""Caffe's whole schema, the refusal of unsupported layers, and Caffe's upgrade step
(V0 / V1 nets, old solvers, V0 / V1 caffemodels, ``python -m engine upgrade``)."""
from __future__ import annotations

import numpy
import pytest
from google.protobuf import text_format

import engine
from engine import cli
from engine.errors import EngineWarning
from engine.proto import caffe_pb2
from engine.prototxt import parse_net, parse_solver
from engine.upgrade import upgrade_file

INPUT = 'layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }\n'
# the upgrade notices are the subject of some tests (pytest.warns sees them anyway), noise in the others
pytestmark = pytest.mark.filterwarnings("ignore:Upgraded input file:engine.errors.EngineWarning")


def _message(text: str, kind=caffe_pb2.NetParameter):
    message = kind()
    text_format.Parse(text, message)
    return message


# ---------------------------------------------------------------------------
# the schema
# ---------------------------------------------------------------------------
def test_every_layer_param_parses_in_a_layer_left_out_of_the_phase():
    """One layer per *_param field of Caffe's LayerParameter, each excluded from
    TRAIN: the file parses and the TRAIN net builds (types unknown or not)."""
    names = [f.name for f in caffe_pb2.LayerParameter.DESCRIPTOR.fields
             if f.message_type is not None and f.name.endswith("_param")]
    assert {"lrn_param", "batch_norm_param", "prelu_param", "crop_param", "swish_param", "clip_param",
            "recurrent_param", "spp_param", "window_data_param", "python_param"} <= set(names)
    layers = "".join(f'layer {{ name: "{n}" type: "Type_{n}" bottom: "data" top: "{n}" {n} {{ }} '
                     f'include {{ phase: TEST }} }}\n' for n in names)
    real = ('layer { name: "norm" type: "LRN" bottom: "data" top: "norm" exclude { phase: TRAIN }\n'
            '  lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 norm_region: WITHIN_CHANNEL } }\n'
            'layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" include { phase: TEST }\n'
            '  batch_norm_param { use_global_stats: true moving_average_fraction: 0.9 eps: 0.001 } }\n'
            'layer { name: "py" type: "Python" bottom: "data" top: "py" include { phase: TEST }\n'
            '  python_param { module: "m" layer: "L" param_str: "x" } }\n')
    net = engine.Net(INPUT + layers + real, engine.TRAIN)
    assert [layer.name for layer in net.layers] == ["input"]
    param, _ = parse_net(INPUT + real)
    assert param.layer[1].lrn_param.norm_region == caffe_pb2.LRNParameter.WITHIN_CHANNEL
    assert param.layer[2].batch_norm_param.eps == pytest.approx(0.001)


def test_schema_numbers_and_defaults_are_caffes():
    """Spot checks against BVLC's caffe.proto (numbers and defaults written out here)."""
    fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    expected = {"lrn_param": 118, "batch_norm_param": 139, "prelu_param": 131, "crop_param": 144,
                "swish_param": 147, "clip_param": 148, "builtin_data_param": 10001, "include": 8}
    assert {name: fields[name].number for name in expected} == expected
    assert caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name["layers"].number == 2
    assert caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_name["solver_type"].number == 30
    assert caffe_pb2.V1LayerParameter.DESCRIPTOR.fields_by_name["blobs_lr"].number == 7
    assert caffe_pb2.V1LayerParameter.INNER_PRODUCT == 14
    assert caffe_pb2.V0LayerParameter.DESCRIPTOR.fields_by_name["blobs"].number == 50
    lrn = caffe_pb2.LRNParameter()
    assert (lrn.local_size, lrn.alpha, lrn.beta, lrn.k) == (5, 1.0, 0.75, 1.0)
    assert caffe_pb2.BatchNormParameter().moving_average_fraction == pytest.approx(0.999)
    assert caffe_pb2.PoolingParameter().round_mode == caffe_pb2.PoolingParameter.CEIL
    datum = caffe_pb2.Datum(channels=1, height=1, width=2, data=b"\x01\x02", label=3)
    assert caffe_pb2.Datum.FromString(datum.SerializeToString()) == datum
    vector = caffe_pb2.BlobProtoVector()
    vector.blobs.add().data.extend([1.0, 2.0])
    assert list(caffe_pb2.BlobProtoVector.FromString(vector.SerializeToString()).blobs[0].data) == [1.0, 2.0]


# ---------------------------------------------------------------------------
# refusal, only when built
# ---------------------------------------------------------------------------
def test_an_unsupported_type_in_the_built_net_is_refused_with_the_exact_message():
    # every layer type of BVLC Caffe is supported now: a type of a Caffe fork (py-faster-rcnn's)
    text = INPUT + 'layer { name: "roi" type: "ROIPooling" bottom: "data" top: "roi" }'
    with pytest.raises(engine.NetDefinitionError) as info:
        engine.Net(text, engine.TEST)
    assert str(info.value) == ("layer 'roi': unknown layer type 'ROIPooling' (not a Caffe layer type; not "
                               "supported by Backprop Studio). "
                               f"Supported types: {', '.join(engine.supported_types())}")
    excluded = INPUT + 'layer { name: "roi" type: "ROIPooling" bottom: "data" top: "roi" exclude { phase: TEST } }'
    assert [layer.name for layer in engine.Net(excluded, engine.TEST).layers] == ["input"]
    assert set(engine.layer.CAFFE_LAYER_TYPES) <= set(engine.supported_types())


def test_a_python_layer_is_refused_because_the_studio_runs_no_code_named_by_a_file():
    # without consent (engine.python_layers; tests/engine/test_python_layers.py has the rest)
    text = INPUT + ('layer { name: "py" type: "Python" bottom: "data" top: "py" '
                    'python_param { module: "evil" layer: "Layer" } }')
    with pytest.raises(engine.NetDefinitionError) as info:
        engine.Net(text, engine.TEST)
    message = str(info.value)
    assert "layer 'py'" in message and "'Python'" in message and "--allow-python-layers" in message
    assert "never runs code named by a file" in message and "'evil'" in message


# ---------------------------------------------------------------------------
# V1 and V0 nets
# ---------------------------------------------------------------------------
V1_LENET = """name: "LeNet"
input: "data"
input_dim: 4 input_dim: 1 input_dim: 12 input_dim: 12
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  convolution_param { num_output: 4 kernel_size: 5 stride: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool1" top: "ip1" blobs_lr: 1 blobs_lr: 2
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layers { name: "relu1" type: RELU bottom: "ip1" top: "ip1" }
layers { name: "prob" type: SOFTMAX bottom: "ip1" top: "prob" include { phase: TEST } }
"""

V2_LENET = """name: "LeNet"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 4 dim: 1 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 5 stride: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "prob" type: "Softmax" bottom: "ip1" top: "prob" include { phase: TEST } }
"""


def test_a_v1_net_loads_as_its_upgraded_v2_form_with_a_notice():
    with pytest.warns(EngineWarning, match="deprecated V1LayerParameter: <net text>"):
        upgraded, _ = parse_net(V1_LENET)
    assert upgraded == _message(V2_LENET)
    old, new = engine.Net(V1_LENET, engine.TEST), engine.Net(V2_LENET, engine.TEST)
    assert [(l.name, l.type_name) for l in old.layers] == [(l.name, l.type_name) for l in new.layers]
    assert old.lr_mults == new.lr_mults == [1, 2, 1, 2] and old.decay_mults == [1, 0, 1, 1]


def test_a_v1_data_layer_moves_its_transformation_fields_to_transform_param():
    text = ('layers { name: "mnist" type: DATA top: "data" top: "label"\n'
            '  data_param { source: "db" batch_size: 64 scale: 0.00390625 mirror: true } }')
    with pytest.warns(EngineWarning, match="transformation parameters"):
        upgraded, _ = parse_net(text)
    assert upgraded == _message('layer { name: "mnist" type: "Data" top: "data" top: "label" '
                                'transform_param { scale: 0.00390625 mirror: true } '
                                'data_param { source: "db" batch_size: 64 } }')


V0_NET = """name: "V0Net"
input: "data"
input_dim: 2 input_dim: 4 input_dim: 6 input_dim: 6
layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 1
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" value: 0 }
    blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 } bottom: "data" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pad2" type: "padding" pad: 1 } bottom: "conv1" top: "pad2" }
layers { layer { name: "conv2" type: "conv" num_output: 4 kernelsize: 3 group: 2 } bottom: "pad2" top: "conv2" }
layers { layer { name: "pool2" type: "pool" pool: AVE kernelsize: 2 stride: 2 } bottom: "conv2" top: "pool2" }
layers { layer { name: "norm2" type: "lrn" local_size: 3 alpha: 0.0001 beta: 0.75 } bottom: "pool2" top: "norm2" }
layers { layer { name: "drop" type: "dropout" dropout_ratio: 0.4 } bottom: "norm2" top: "norm2" }
layers { layer { name: "fc" type: "innerproduct" num_output: 5 biasterm: false } bottom: "norm2" top: "fc" }
layers { layer { name: "prob" type: "softmax" } bottom: "fc" top: "prob" }
"""

V0_AS_V2 = """name: "V0Net"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 6 dim: 6 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3 stride: 1
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" value: 0 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 4 pad: 1 kernel_size: 3 group: 2 } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "norm2" type: "LRN" bottom: "pool2" top: "norm2" lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "drop" type: "Dropout" bottom: "norm2" top: "norm2" dropout_param { dropout_ratio: 0.4 } }
layer { name: "fc" type: "InnerProduct" bottom: "norm2" top: "fc" inner_product_param { num_output: 5 bias_term: false } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_a_v0_net_with_a_padding_layer_loads_as_its_upgraded_v2_form():
    with pytest.warns(EngineWarning, match="deprecated V0LayerParameter"):
        upgraded, _ = parse_net(V0_NET)
    assert upgraded == _message(V0_AS_V2)


def test_input_shapes_and_old_batch_norm_params_upgrade_as_in_caffe():
    text = ('input: "a" input_shape { dim: 1 dim: 2 } input: "b" input_shape { dim: 3 }\n'
            'layer { name: "bn" type: "BatchNorm" bottom: "a" top: "bn" '
            'param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 } }')
    upgraded, _ = parse_net(text)
    assert upgraded == _message('layer { name: "input" type: "Input" top: "a" top: "b" '
                                'input_param { shape { dim: 1 dim: 2 } shape { dim: 3 } } }\n'
                                'layer { name: "bn" type: "BatchNorm" bottom: "a" top: "bn" }')


def test_a_net_with_both_layer_and_layers_is_refused():
    with pytest.raises(engine.NetDefinitionError, match="both 'layer' and 'layers'"):
        parse_net(INPUT + 'layers { name: "r" type: RELU bottom: "data" top: "data" }')


def test_an_old_solver_type_enum_becomes_the_type_string(tmp_path):
    (tmp_path / "net.prototxt").write_text(V2_LENET)
    path = tmp_path / "solver.prototxt"
    path.write_text('net: "net.prototxt"\nbase_lr: 0.01\nmomentum: 0.9\nsolver_type: NESTEROV\n')
    with pytest.warns(EngineWarning, match="'solver_type' field"):
        param, _ = parse_solver(str(path))
    assert param.type == "Nesterov" and not param.HasField("solver_type")
    with pytest.warns(EngineWarning):
        assert engine.get_solver(str(path)).type_name == "Nesterov"
    path.write_text('net: "net.prototxt"\nsolver_type: ADAM\ntype: "Adam"\n')
    with pytest.raises(engine.NetDefinitionError, match="cannot both be given"):
        parse_solver(str(path))


# ---------------------------------------------------------------------------
# the upgrade command
# ---------------------------------------------------------------------------
def test_the_upgrade_command_writes_text_that_reparses(tmp_path, capsys):
    old, new = tmp_path / "v1.prototxt", tmp_path / "v2.prototxt"
    old.write_text(V1_LENET)
    assert cli.main(["upgrade", str(old), str(new)]) == 0
    assert "Wrote upgraded net" in capsys.readouterr().out
    text = new.read_text()
    assert "layers {" not in text and 'type: "InnerProduct"' in text
    assert _message(text) == _message(V2_LENET)
    assert cli.main(["upgrade", str(new), str(tmp_path / "again.prototxt")]) == 0
    assert "already in latest proto format" in capsys.readouterr().out

    solver_old, solver_new = tmp_path / "old_solver.prototxt", tmp_path / "new_solver.prototxt"
    solver_old.write_text('net: "v2.prototxt"\nbase_lr: 0.1\nsolver_type: ADAGRAD\n')
    assert cli.main(["upgrade", str(solver_old), str(solver_new)]) == 0
    assert "Wrote upgraded solver" in capsys.readouterr().out
    solver = _message(solver_new.read_text(), caffe_pb2.SolverParameter)
    assert solver.type == "AdaGrad" and not solver.HasField("solver_type") and solver.net == "v2.prototxt"


def test_the_upgrade_command_reports_a_file_that_is_neither_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.prototxt"
    bad.write_text("layer { nonsense: 1 }")
    assert cli.main(["upgrade", str(bad), str(tmp_path / "out.prototxt")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "neither a net nor a solver" in err
    assert not (tmp_path / "out.prototxt").exists()


# ---------------------------------------------------------------------------
# V1 and V0 caffemodels
# ---------------------------------------------------------------------------
NET = INPUT + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 4 } }'


def _legacy_blob(blob, values):
    blob.num, blob.channels, blob.height, blob.width = (1, 1) + values.shape if values.ndim == 2 else \
        (1, 1, 1, values.shape[0])
    blob.data.extend(values.reshape(-1).tolist())


@pytest.mark.parametrize("version", ["V1", "V0"])
def test_old_binary_caffemodels_load_by_layer_name(tmp_path, version):
    rng = numpy.random.default_rng(3)
    weight = rng.normal(size=(4, 3)).astype(numpy.float32)
    bias = rng.normal(size=4).astype(numpy.float32)
    model = caffe_pb2.NetParameter(name="old")
    for name, values in (("other", weight), ("ip", None)):
        connection = model.layers.add()
        holder = connection.layer if version == "V0" else connection
        holder.name = name
        if values is None:
            _legacy_blob(holder.blobs.add(), weight)
            _legacy_blob(holder.blobs.add(), bias)
    path = tmp_path / "old.caffemodel"
    path.write_bytes(model.SerializeToString())
    net = engine.Net(NET, engine.TEST)
    report = net.copy_from(str(path))
    assert report.copied == ["ip"]
    numpy.testing.assert_array_equal(net.params["ip"][0].data, weight)
    numpy.testing.assert_array_equal(net.params["ip"][1].data, bias)
    upgraded = tmp_path / "new.caffemodel"
    with pytest.warns(EngineWarning):
        assert upgrade_file(str(path), str(upgraded)) == ("binary net", True)
    assert [layer.name for layer in caffe_pb2.NetParameter.FromString(upgraded.read_bytes()).layer] == \
        ["other", "ip"]


def _key(number: int, wire: int) -> bytes:
    return bytes([number << 3 | wire]) if number < 16 else bytes([(number << 3 | wire) & 0x7F | 0x80,
                                                                  (number << 3 | wire) >> 7])


def _delimited(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return _key(number, 2) + bytes([len(payload)]) + payload


def test_a_caffemodel_with_unpacked_values_loads_through_protobuf(tmp_path):
    """Protobuf also accepts a packed field written unpacked (one key per value):
    the zero-copy scan leaves such a file to protobuf, and the load still works."""
    from engine.caffemodel_scan import scan_layers
    weight = numpy.arange(12, dtype=numpy.float32).reshape(4, 3) / 7
    bias = numpy.array([1.5, -2, 0.25, 8], dtype=numpy.float32)

    def blob(values):
        shape = _delimited(7, _delimited(1, bytes(values.shape)))    # BlobShape dims < 128: one byte each
        return shape + b"".join(_key(5, 5) + v.tobytes() for v in values.reshape(-1))

    layer = _delimited(1, b"ip") + _key(7, 2) + bytes([len(blob(weight))]) + blob(weight) + \
        _delimited(7, blob(bias))
    raw = _key(100, 2) + bytes([len(layer)]) + layer
    assert scan_layers(raw) is None
    path = tmp_path / "unpacked.caffemodel"
    path.write_bytes(raw)
    net = engine.Net(NET, engine.TEST)
    assert net.copy_from(str(path)).copied == ["ip"]
    numpy.testing.assert_array_equal(net.params["ip"][0].data, weight)
    numpy.testing.assert_array_equal(net.params["ip"][1].data, bias)


def test_a_parse_error_inside_a_layer_names_the_layer_and_its_type(tmp_path):
    path = tmp_path / "typo.prototxt"
    path.write_text(INPUT + 'layer {\n  name: "norm1"  # { not a brace\n  type: "LRN"\n  bottom: "data" top: "norm1"\n'
                    '  lrn_param { local_size: 5 alpah: 0.0001 }\n}\n')
    with pytest.raises(engine.PrototxtError) as info:
        engine.Net(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}:6:")
    assert '"alpah"' in message and message.endswith("(in layer 'norm1' of type 'LRN')")
