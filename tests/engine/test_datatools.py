"""Caffe's data tools: images as OpenCV decodes them, convert_imageset, compute_image_mean,
convert to LMDB, the databases they write (atomic) and the CLI verbs."""
from __future__ import annotations

import io
import os

import numpy
import pytest
from PIL import Image

from engine import cli, datatools, tools
from engine.errors import DataError
from engine.proto import caffe_pb2


def records(path, backend="lmdb"):
    reader = datatools.open_database(str(path), backend, "test")
    return [(key, caffe_pb2.Datum.FromString(value)) for key, value in reader.items()]


def save_rgb(path, rgb):
    Image.fromarray(rgb, "RGB").save(path)


@pytest.fixture
def image_folder(tmp_path):
    """Six 5 x 4 colour PNGs (two names with spaces) and their 'path label' list."""
    gen = numpy.random.default_rng(1)
    folder = tmp_path / "images"
    (folder / "sub dir").mkdir(parents=True)
    names, pixels = [], []
    for i in range(6):
        rgb = gen.integers(0, 256, (5, 4, 3), dtype=numpy.uint8)
        name = f"sub dir/pic {i}.png" if i < 2 else f"pic{i}.png"
        save_rgb(folder / name, rgb)
        names.append(name)
        pixels.append(rgb)
    lines = [f"{name} {i % 3}" for i, name in enumerate(names)]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    return folder, names, pixels, tmp_path / "list.txt"


# -- decoding -------------------------------------------------------------------
def test_colour_comes_out_in_bgr_order_and_modes_follow_opencv():
    rgb = numpy.zeros((2, 3, 3), numpy.uint8)
    rgb[0, 0] = (255, 0, 0)  # red
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, "PNG")
    image = datatools.decode_image(buffer.getvalue(), "native")
    assert image.shape == (2, 3, 3) and tuple(image[0, 0]) == (0, 0, 255)
    gray = datatools.decode_image(buffer.getvalue(), "gray")
    assert gray.shape == (2, 3, 1) and gray[0, 0, 0] == (9797 * 255) >> 15  # libpng: 0.299 red, truncated

    buffer = io.BytesIO()
    Image.fromarray(numpy.full((2, 2), 77, numpy.uint8), "L").save(buffer, "PNG")
    assert datatools.decode_image(buffer.getvalue(), "native").shape == (2, 2, 1)
    colour = datatools.decode_image(buffer.getvalue(), "color")
    assert colour.shape == (2, 2, 3) and (colour == 77).all()

    buffer = io.BytesIO()
    Image.fromarray(numpy.full((2, 2, 4), (1, 2, 3, 4), numpy.uint8), "RGBA").save(buffer, "PNG")
    assert tuple(datatools.decode_image(buffer.getvalue(), "native")[0, 0]) == (3, 2, 1, 4)
    assert tuple(datatools.decode_image(buffer.getvalue(), "color")[0, 0]) == (3, 2, 1)

    with pytest.raises(DataError, match="cannot decode"):
        datatools.decode_image(b"not an image", "native", "record 7")


def test_list_labels_follow_the_last_space_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("a b c.png 3\nplain.jpg 12\n\n")
    entries = datatools.read_image_list(str(path))
    assert [(e.name, e.label) for e in entries] == [("a b c.png", 3), ("plain.jpg", 12)]
    path.write_text("ok.png 1\nbad.png x\n")
    with pytest.raises(DataError, match=r"list.txt:2: the label 'x'"):
        datatools.read_image_list(str(path))


# -- convert_imageset -----------------------------------------------------------------
def test_convert_imageset_stores_caffe_datums_in_list_order(image_folder, tmp_path):
    folder, names, pixels, list_path = image_folder
    count = datatools.convert_imageset(str(folder) + "/", str(list_path), str(tmp_path / "db"))
    assert count == 6
    stored = records(tmp_path / "db")
    assert [key for key, _ in stored] == [f"{i:08d}_{name}".encode() for i, name in enumerate(names)]
    for i, (_key, datum) in enumerate(stored):
        assert (datum.channels, datum.height, datum.width, datum.label, datum.encoded) == (3, 5, 4, i % 3, False)
        chw_bgr = numpy.frombuffer(datum.data, numpy.uint8).reshape(3, 5, 4)
        numpy.testing.assert_array_equal(chw_bgr, pixels[i][:, :, ::-1].transpose(2, 0, 1))
    assert sorted(os.listdir(tmp_path)) == ["db", "images", "list.txt"]  # no temporary folder left


def test_convert_imageset_gray_resize_encoded_and_leveldb(image_folder, tmp_path):
    folder, names, pixels, list_path = image_folder
    root = str(folder) + "/"
    datatools.convert_imageset(root, str(list_path), str(tmp_path / "g"), gray=True, resize_height=10,
                               resize_width=8, backend="leveldb")
    datum = records(tmp_path / "g", "leveldb")[0][1]
    assert (datum.channels, datum.height, datum.width) == (1, 10, 8)
    datatools.convert_imageset(root, str(list_path), str(tmp_path / "e"), encoded=True)
    datum = records(tmp_path / "e")[3][1]
    assert datum.encoded and datum.data == (folder / names[3]).read_bytes()  # the file as it is
    datatools.convert_imageset(root, str(list_path), str(tmp_path / "j"), encode_type="jpg")
    datum = records(tmp_path / "j")[0][1]
    assert datum.encoded and datum.data[:2] == b"\xff\xd8"


def test_convert_imageset_shuffle_repeats_with_the_seed(image_folder, tmp_path):
    folder, names, _pixels, list_path = image_folder
    root = str(folder) + "/"
    datatools.convert_imageset(root, str(list_path), str(tmp_path / "a"), shuffle=True, seed=4)
    datatools.convert_imageset(root, str(list_path), str(tmp_path / "b"), shuffle=True, seed=4)
    keys_a = [key for key, _ in records(tmp_path / "a")]
    assert keys_a == [key for key, _ in records(tmp_path / "b")]
    assert sorted(k.split(b"_", 1)[1] for k in keys_a) == sorted(n.encode() for n in names)
    assert [k.split(b"_", 1)[1] for k in keys_a] != [n.encode() for n in names]


def test_convert_imageset_refuses_an_existing_db_and_leaves_nothing_on_failure(image_folder, tmp_path):
    folder, _names, _pixels, list_path = image_folder
    (tmp_path / "exists").mkdir()
    with pytest.raises(DataError, match="already exists"):
        datatools.convert_imageset(str(folder) + "/", str(list_path), str(tmp_path / "exists"))
    with pytest.raises(DataError, match="none of the 6 images"):
        datatools.convert_imageset(str(tmp_path / "nowhere") + "/", str(list_path), str(tmp_path / "db"))
    assert sorted(os.listdir(tmp_path)) == ["exists", "images", "list.txt"]


# -- compute_image_mean, convert --------------------------------------------------------
def test_compute_image_mean_matches_a_float64_mean_and_is_a_caffe_blobproto(tmp_path):
    data = numpy.random.default_rng(2).integers(0, 256, (37, 2, 3, 4), dtype=numpy.uint8)
    tools.to_lmdb(data, numpy.arange(37) % 5, tmp_path / "db")
    mean = datatools.compute_image_mean(str(tmp_path / "db"), str(tmp_path / "mean.binaryproto"))
    numpy.testing.assert_allclose(mean[0], data.astype(numpy.float64).mean(axis=0), rtol=1e-6)
    proto = caffe_pb2.BlobProto.FromString((tmp_path / "mean.binaryproto").read_bytes())
    assert (proto.num, proto.channels, proto.height, proto.width) == (1, 2, 3, 4)
    numpy.testing.assert_array_equal(datatools.read_mean_file(str(tmp_path / "mean.binaryproto"), "t"), mean[0])


def test_to_lmdb_writes_bytes_for_uint8_and_float_data_otherwise(tmp_path):
    floats = numpy.random.default_rng(0).normal(size=(3, 1, 2, 2)).astype(numpy.float32)
    tools.to_lmdb(floats, [0, 1, 2], tmp_path / "f.lmdb")
    datum = records(tmp_path / "f.lmdb")[1][1]
    assert not datum.data and datum.label == 1
    numpy.testing.assert_array_equal(numpy.asarray(datum.float_data, numpy.float32), floats[1].reshape(-1))
    with pytest.raises(DataError, match="3 rows of data but 2 labels"):
        tools.to_lmdb(floats, [0, 1], tmp_path / "g.lmdb")
    with pytest.raises(DataError, match="already exists"):
        tools.to_lmdb(floats, [0, 1, 2], tmp_path / "f.lmdb")


# -- the command line ---------------------------------------------------------------------
def test_cli_verbs_write_the_databases_and_the_mean(image_folder, tmp_path, capsys):
    folder, _names, pixels, list_path = image_folder
    code = cli.main(["convert_imageset", str(folder) + "/", str(list_path), str(tmp_path / "db"),
                     "--gray", "-backend=lmdb", "--resize_height=6", "--resize_width", "5"])
    assert code == 0, capsys.readouterr().err
    assert records(tmp_path / "db")[0][1].height == 6
    code = cli.main(["compute_image_mean", str(tmp_path / "db"), str(tmp_path / "mean.binaryproto")])
    assert code == 0 and (tmp_path / "mean.binaryproto").exists()
    assert "mean_value channel [0]" in capsys.readouterr().out
    numpy.save(tmp_path / "x.npy", numpy.stack(pixels).transpose(0, 3, 1, 2))
    numpy.save(tmp_path / "y.npy", numpy.arange(6))
    code = cli.main(["convert", "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                     "--output", str(tmp_path / "train.lmdb")])
    assert code == 0 and len(records(tmp_path / "train.lmdb")) == 6
    code = cli.main(["compute_image_mean", str(tmp_path / "missing_db")])
    err = capsys.readouterr().err
    assert code == 1 and "missing_db" in err and "does not exist" in err and len(err.strip().splitlines()) == 1
