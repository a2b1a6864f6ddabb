"""Data (LMDB / LevelDB) and ImageData layers: Caffe's record order, wrap-around,
Datum forms, rand_skip, shuffle, prefetching, positions for snapshots, errors;
WindowData refused; LeNet trained from an LMDB by the CLI, bit for bit as from HDF5."""
from __future__ import annotations

import io

import numpy
import pytest
from PIL import Image

import engine
from engine import cli, datasets, rng, tools
from engine.datatools import DatabaseWriter, array_to_datum, write_mean_file
from engine.errors import DataError, NetDefinitionError
from engine.proto import caffe_pb2

F32 = numpy.float32


def data_net(source, batch, backend="LMDB", transform="", extra="", phase=engine.TRAIN, tops=2):
    label = ' top: "label"' if tops == 2 else ""
    return engine.Net(f"""
    layer {{ name: "db" type: "Data" top: "data"{label}
      transform_param {{ {transform} }}
      data_param {{ source: "{source}" batch_size: {batch} backend: {backend} {extra} }} }}""", phase)


def run(net, count, tops=("data", "label")):
    out = []
    for _ in range(count):
        net.forward()
        out.append(tuple(net.blobs[name].data.copy() for name in tops))
    return out


@pytest.fixture
def db(tmp_path):
    """An LMDB of 10 raw 1 x 3 x 2 Datums; record r holds values r*10 + (0..5), label r."""
    values = (numpy.arange(10)[:, None] * 10 + numpy.arange(6)).astype(numpy.uint8).reshape(10, 1, 3, 2)
    tools.to_lmdb(values, numpy.arange(10), tmp_path / "db")
    return tmp_path / "db", values


@pytest.mark.parametrize("backend", ["LMDB", "LEVELDB"])
def test_records_in_key_order_wrapping_around(tmp_path, backend):
    values = numpy.random.default_rng(0).integers(0, 256, (10, 2, 3, 2), dtype=numpy.uint8)
    tools.to_lmdb(values, numpy.arange(10) * 3, tmp_path / "db", backend=backend.lower())
    net = data_net(tmp_path / "db", 4, backend, "scale: 0.5")
    assert net.blobs["data"].shape == (4, 2, 3, 2) and net.blobs["label"].shape == (4,)
    for k, (data, label) in enumerate(run(net, 4)):
        rows = (numpy.arange(4) + 4 * k) % 10
        numpy.testing.assert_array_equal(data, values[rows].astype(F32) * F32(0.5))
        numpy.testing.assert_array_equal(label, rows * 3)
    test_net = data_net(tmp_path / "db", 3, backend, phase=engine.TEST)  # a second reader (LevelDB locks)
    numpy.testing.assert_array_equal(run(test_net, 1)[0][1], [0, 3, 6])


def test_a_batch_larger_than_the_database_wraps_inside_the_batch(db):
    path, values = db
    (data, label), = run(data_net(path, 23), 1)
    numpy.testing.assert_array_equal(label, numpy.arange(23) % 10)
    numpy.testing.assert_array_equal(data, values[numpy.arange(23) % 10].astype(F32))


def test_float_data_and_encoded_datums(tmp_path):
    floats = numpy.random.default_rng(1).normal(size=(3, 2, 2, 2)).astype(F32)
    tools.to_lmdb(floats, [4, 5, 6], tmp_path / "f")
    (data, label), = run(data_net(tmp_path / "f", 3, transform="scale: 2"), 1)
    numpy.testing.assert_array_equal(data, floats * F32(2))

    rgb = numpy.random.default_rng(2).integers(0, 256, (2, 4, 5, 3), dtype=numpy.uint8)
    with DatabaseWriter(str(tmp_path / "e"), "lmdb") as writer:
        for i, image in enumerate(rgb):
            buffer = io.BytesIO()
            Image.fromarray(image, "RGB").save(buffer, "PNG")
            writer.put(b"%d" % i, caffe_pb2.Datum(data=buffer.getvalue(), label=i, encoded=True).SerializeToString())
    (data, label), = run(data_net(tmp_path / "e", 2), 1)
    numpy.testing.assert_array_equal(data, rgb[..., ::-1].transpose(0, 3, 1, 2).astype(F32))  # BGR, as Caffe
    (gray, _), = run(data_net(tmp_path / "e", 2, transform="force_gray: true"), 1)
    assert gray.shape == (2, 1, 4, 5)


def test_rand_skip_is_ignored_as_caffe_1_ignores_it(db):
    """Caffe 1.0's Data layer has no rand_skip: reading starts at the first record, and
    nothing is drawn from Caffe's stream (the next draw is the one it would have been)."""
    from engine.errors import EngineWarning
    path, _values = db
    rng.set_seed(5)
    plain = run(data_net(path, 2), 1)
    after_plain = rng.caffe_stream().rand()
    rng.set_seed(5)
    with pytest.warns(EngineWarning, match="rand_skip 7 is ignored"):
        skipped = run(data_net(path, 2, extra="rand_skip: 7"), 1)
    assert rng.caffe_stream().rand() == after_plain
    (_, label), = skipped
    numpy.testing.assert_array_equal(label, numpy.arange(2))
    numpy.testing.assert_array_equal(skipped[0][0], plain[0][0])


def test_prefetching_changes_no_number_and_positions_resume_exactly(tmp_path):
    values = numpy.random.default_rng(3).integers(0, 256, (13, 1, 6, 6), dtype=numpy.uint8)
    tools.to_lmdb(values, numpy.arange(13), tmp_path / "db")
    transform = "crop_size: 4 mirror: true mean_value: 9 scale: 0.25"
    batches = {}
    for prefetch in (0, 4):
        rng.set_seed(8)
        batches[prefetch] = run(data_net(tmp_path / "db", 5, transform=transform, extra=f"prefetch: {prefetch}"), 6)
    for a, b in zip(batches[0], batches[4]):
        numpy.testing.assert_array_equal(a[0], b[0])
        numpy.testing.assert_array_equal(a[1], b[1])

    rng.set_seed(8)
    net = data_net(tmp_path / "db", 5, transform=transform)
    run(net, 2)  # the thread has read further ahead than this
    saved = net.layers[0].state()
    expected = run(net, 3)
    rng.set_seed(99)
    other = data_net(tmp_path / "db", 5, transform=transform)
    run(other, 1)
    other.layers[0].set_state(saved)
    for a, b in zip(expected, run(other, 3)):
        numpy.testing.assert_array_equal(a[0], b[0])
        numpy.testing.assert_array_equal(a[1], b[1])


def test_mean_file_and_one_top(db, tmp_path):
    path, values = db
    mean = numpy.random.default_rng(4).uniform(0, 50, (1, 1, 3, 2)).astype(F32)
    write_mean_file(mean, tmp_path / "mean.binaryproto")
    net = data_net(path, 3, transform=f'mean_file: "{tmp_path / "mean.binaryproto"}" scale: 0.1', tops=1)
    (data,), = run(net, 1, tops=("data",))
    numpy.testing.assert_array_equal(data, (values[:3].astype(F32) - mean) * F32(0.1))


def test_clear_errors_name_the_layer_and_the_source(tmp_path, db):
    path, _values = db
    with pytest.raises(DataError, match=r"layer 'db'.*'.*nothing_here'.*does not exist"):
        data_net(tmp_path / "nothing_here", 2)
    with pytest.raises(DataError, match=r"LMDB database.*set backend: LMDB"):
        data_net(path, 2, backend="LEVELDB")
    with DatabaseWriter(str(tmp_path / "empty"), "lmdb"):
        pass
    with pytest.raises(DataError, match=r"layer 'db'.*empty"):
        data_net(tmp_path / "empty", 2)
    with DatabaseWriter(str(tmp_path / "junk"), "lmdb") as writer:
        writer.put(b"a", b"\xff\xff\xff not a datum")
    with pytest.raises(DataError, match=r"layer 'db'.*record b'a' is not a Caffe Datum"):
        data_net(tmp_path / "junk", 2)
    with DatabaseWriter(str(tmp_path / "mixed"), "lmdb") as writer:
        writer.put(b"a", array_to_datum(numpy.zeros((1, 2, 2), numpy.uint8)).SerializeToString())
        writer.put(b"b", array_to_datum(numpy.zeros((1, 3, 2), numpy.uint8)).SerializeToString())
    net = data_net(tmp_path / "mixed", 2)
    with pytest.raises(DataError, match=r"record b'b' has shape \(1, 3, 2\).*\(1, 2, 2\)"):
        net.forward()
    with pytest.raises(NetDefinitionError, match="layer 'mnist'.*source is not set"):
        engine.Net('layer { name: "mnist" type: "Data" top: "data" top: "label" }')


def test_window_data_is_refused_with_the_reason():
    with pytest.raises(NetDefinitionError, match="layer 'w'.*WindowData.*not supported.*ImageData"):
        engine.Net('layer { name: "w" type: "WindowData" top: "data" top: "label" }')


# -- ImageData --------------------------------------------------------------------
@pytest.fixture
def image_list(tmp_path):
    gen = numpy.random.default_rng(5)
    (tmp_path / "im gs").mkdir()
    rgb = gen.integers(0, 256, (7, 4, 6, 3), dtype=numpy.uint8)
    lines = []
    for i, image in enumerate(rgb):
        name = f"im gs/photo {i}.png"
        Image.fromarray(image, "RGB").save(tmp_path / name)
        lines.append(f"{name} {10 + i}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    return tmp_path, rgb


def image_net(folder, batch, params="", transform=""):
    return engine.Net(f"""
    layer {{ name: "img" type: "ImageData" top: "data" top: "label"
      transform_param {{ {transform} }}
      image_data_param {{ source: "{folder / 'list.txt'}" root_folder: "{folder}/" batch_size: {batch}
                          {params} }} }}""", engine.TRAIN)


def test_image_data_reads_the_list_in_order_with_names_containing_spaces(image_list):
    folder, rgb = image_list
    batches = run(image_net(folder, 3, transform="scale: 0.5"), 3)
    for k, (data, label) in enumerate(batches):
        rows = (numpy.arange(3) + 3 * k) % 7
        numpy.testing.assert_array_equal(label, 10 + rows)
        numpy.testing.assert_array_equal(data, rgb[rows][..., ::-1].transpose(0, 3, 1, 2).astype(F32) * F32(0.5))


def test_relative_paths_resolve_beside_the_prototxt_and_the_list(image_list, tmp_path):
    folder, rgb = image_list
    mean = numpy.full((1, 3, 4, 6), 7.0, F32)
    write_mean_file(mean, folder / "mean.binaryproto")
    (folder / "net.prototxt").write_text("""
    layer { name: "img" type: "ImageData" top: "data" top: "label"
      transform_param { mean_file: "mean.binaryproto" }
      image_data_param { source: "list.txt" batch_size: 2 } }""")
    (data, label), = run(engine.Net(str(folder / "net.prototxt"), engine.TRAIN), 1)
    numpy.testing.assert_array_equal(label, [10, 11])
    numpy.testing.assert_array_equal(data, rgb[:2][..., ::-1].transpose(0, 3, 1, 2).astype(F32) - F32(7))


def test_image_data_gray_resize_shuffle_and_resume(image_list):
    folder, rgb = image_list
    net = image_net(folder, 2, "is_color: false new_height: 8 new_width: 5")
    assert net.blobs["data"].shape == (2, 1, 8, 5)
    rng.set_seed(3)
    labels = numpy.concatenate([b[1] for b in run(image_net(folder, 7, "shuffle: true"), 3)])
    for epoch in labels.reshape(3, 7):
        assert sorted(epoch) == list(range(10, 17))
    assert list(labels[:7]) != list(range(10, 17)) and list(labels[:7]) != list(labels[7:14])
    rng.set_seed(3)
    again = numpy.concatenate([b[1] for b in run(image_net(folder, 7, "shuffle: true"), 3)])
    numpy.testing.assert_array_equal(labels, again)

    rng.set_seed(3)
    first = image_net(folder, 3, "shuffle: true", "crop_size: 3 mirror: true")
    run(first, 2)
    saved = first.layers[0].state()
    expected = run(first, 4)
    second = image_net(folder, 3, "shuffle: true", "crop_size: 3 mirror: true")
    second.layers[0].set_state(saved)
    for a, b in zip(expected, run(second, 4)):
        numpy.testing.assert_array_equal(a[0], b[0])
        numpy.testing.assert_array_equal(a[1], b[1])


def test_image_data_errors(image_list):
    folder, _rgb = image_list
    Image.fromarray(numpy.zeros((9, 9, 3), numpy.uint8), "RGB").save(folder / "im gs" / "photo 3.png")
    net = image_net(folder, 2)
    with pytest.raises(DataError, match=r"layer 'img'.*photo 3.png' has shape \(3, 9, 9\).*new_height"):
        run(net, 2)
    (folder / "im gs" / "photo 0.png").unlink()
    with pytest.raises(DataError, match=r"layer 'img'.*photo 0.png.*could not open"):
        image_net(folder, 2)


# -- end to end: LeNet from an LMDB, through the CLI -------------------------------------
LENET_LAYERS = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 8 kernel_size: 5 stride: 1 weight_filler { type: "xavier" }
  bias_filler { type: "constant" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 12 kernel_size: 5 stride: 1 weight_filler { type: "xavier" }
  bias_filler { type: "constant" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1" param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 32 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""

SOLVER = """net: "{net}"
test_iter: 1 test_interval: 15 base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005
lr_policy: "inv" gamma: 0.0001 power: 0.75 display: 10 max_iter: 30 snapshot: 15
snapshot_prefix: "{prefix}" random_seed: 1701 solver_mode: CPU snapshot_format: {fmt}
"""


def lmdb_data_layers(folder):
    return "".join(f"""
layer {{ name: "mnist" type: "Data" top: "data" top: "label" include {{ phase: {phase} }}
  transform_param {{ scale: 0.00390625 }}
  data_param {{ source: "{folder / name}" batch_size: {batch} backend: LMDB }} }}"""
                   for phase, name, batch in (("TRAIN", "train_lmdb", 32), ("TEST", "test_lmdb", 50)))


def hdf5_data_layers(folder):
    return "".join(f"""
layer {{ name: "mnist" type: "HDF5Data" top: "data" top: "label" include {{ phase: {phase} }}
  hdf5_data_param {{ source: "{folder / name}" batch_size: {batch} }} }}"""
                   for phase, name, batch in (("TRAIN", "train.txt", 32), ("TEST", "test.txt", 50)))


@pytest.fixture(scope="module")
def digits_uint8():
    images, labels = datasets.digits()
    big = images.repeat(3, axis=2).repeat(3, axis=3)
    padded = numpy.pad(big, ((0, 0), (0, 0), (2, 2), (2, 2)))
    pixels = numpy.round(padded / padded.max() * 255).astype(numpy.uint8)
    return pixels, labels.astype(numpy.int64)


def train(folder, layers, tag, fmt="HDF5", extra=()):
    (folder / f"{tag}.prototxt").write_text(f'name: "LeNet"\n{layers}\n{LENET_LAYERS}')
    (folder / f"{tag}_solver.prototxt").write_text(
        SOLVER.format(net=folder / f"{tag}.prototxt", prefix=folder / tag, fmt=fmt))
    code = cli.main(["train", "--solver", str(folder / f"{tag}_solver.prototxt"), *extra])
    assert code == 0
    return engine.Net(str(folder / f"{tag}.prototxt"), engine.TEST,
                      weights=str(folder / f"{tag}_iter_30.caffemodel{'.h5' if fmt == 'HDF5' else ''}"))


@pytest.mark.skipif("Convolution" not in engine.supported_types(), reason="LeNet needs Convolution")
def test_lenet_trains_from_lmdb_by_the_cli_bit_for_bit_as_from_hdf5(tmp_path, digits_uint8, capsys):
    pixels, labels = digits_uint8
    train_rows, test_rows = slice(0, 200), slice(1597, 1647)
    for name, rows in (("train", train_rows), ("test", test_rows)):
        tools.to_lmdb(pixels[rows], labels[rows], tmp_path / f"{name}_lmdb")
        h5 = tools.to_hdf5(pixels[rows].astype(F32) / F32(256), labels[rows], tmp_path / f"{name}.h5")
        tools.write_source_list([h5], tmp_path / f"{name}.txt")
    # Both runs start from the same weights: a Data layer takes values from Caffe's random
    # stream at setup (as Caffe's prefetching layers do), so the fillers' draws differ
    (tmp_path / "init.prototxt").write_text(f'name: "LeNet"\n{hdf5_data_layers(tmp_path)}\n{LENET_LAYERS}')
    initial = tmp_path / "init.caffemodel.h5"
    engine.Net(str(tmp_path / "init.prototxt"), engine.TRAIN).save(str(initial))
    from_lmdb = train(tmp_path, lmdb_data_layers(tmp_path), "lmdb", extra=["--weights", str(initial)])
    log = capsys.readouterr().out
    losses = [float(line.rsplit("=", 1)[1]) for line in log.splitlines() if ", loss = " in line]
    assert losses[-1] < 0.8 * losses[0], log  # it learns
    from_hdf5 = train(tmp_path, hdf5_data_layers(tmp_path), "hdf5", extra=["--weights", str(initial)])
    for name, blobs in from_lmdb.params.items():
        for a, b in zip(blobs, from_hdf5.params[name]):
            numpy.testing.assert_array_equal(a.data, b.data)

    # resume from the iteration-15 snapshot: the same weights at 30 (the Data positions were saved)
    resumed = train(tmp_path, lmdb_data_layers(tmp_path), "lmdb", extra=["--snapshot",
                                                                         str(tmp_path / "lmdb_iter_15.solverstate.h5")])
    for name, blobs in from_lmdb.params.items():
        for a, b in zip(blobs, resumed.params[name]):
            numpy.testing.assert_array_equal(a.data, b.data)
