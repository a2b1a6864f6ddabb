"""A data layer's current batch (issue 14): the Qt-free DataBatch holds exactly the
top blobs (the data after the transform, and the labels) for BuiltinData, Data (LMDB),
ImageData, HDF5Data and MemoryData; images become tiles, 2-D points a scatter, other
rows a table; selecting the data layer in the window shows the tiles with labels."""
from __future__ import annotations

import h5py
import numpy
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

import engine
from engine import resources, tools
from gui.model.data_batch import IMAGES, POINTS, TABLE, data_batch, data_layers, display_images

EXAMPLES = resources.examples()


def labels_text(values) -> list[str]:
    return [str(int(v)) for v in numpy.asarray(values).reshape(-1)]


def test_builtin_digits_are_tiles_with_their_labels():
    net = engine.Net(EXAMPLES["digits_lenet"].replace("solver.prototxt", "net.prototxt"), engine.TRAIN)
    net.forward()
    assert data_layers(net) == ["data"]
    batch = data_batch(net, "data")
    assert batch.kind == IMAGES and batch.images.shape == net.blobs["data"].shape
    numpy.testing.assert_array_equal(batch.images, net.blobs["data"].data)
    assert [batch.label_text(k) for k in range(batch.shown)] == labels_text(net.blobs["label"].data)
    pixels = display_images(batch)
    assert pixels.shape == batch.images.shape[:1] + batch.images.shape[2:] + (3,) and pixels.dtype == numpy.uint8
    # grey: the brightest value of the batch is white, the darkest black
    flat = batch.images.reshape(-1)
    assert pixels.reshape(-1, 3)[flat.argmax()].tolist() == [255] * 3
    assert pixels.reshape(-1, 3)[flat.argmin()].tolist() == [0] * 3


def test_spiral_points_are_a_scatter():
    net = engine.Net(EXAMPLES["spiral_mlp"].replace("solver.prototxt", "net.prototxt"), engine.TRAIN)
    net.forward()
    batch = data_batch(net, "data")
    assert batch.kind == POINTS and batch.images is None
    numpy.testing.assert_array_equal(batch.values, net.blobs["data"].data)
    numpy.testing.assert_array_equal(batch.labels.reshape(-1), net.blobs["label"].data)


def test_lmdb_data_after_the_transform_in_bgr(tmp_path):
    pixels = numpy.random.default_rng(1).integers(0, 256, (6, 3, 4, 5), dtype=numpy.uint8)
    tools.to_lmdb(pixels, numpy.arange(6) + 10, tmp_path / "db")
    net = engine.Net(f"""
    layer {{ name: "db" type: "Data" top: "data" top: "label"
      transform_param {{ scale: 0.5 mean_value: 100 mean_value: 50 mean_value: 10 }}
      data_param {{ source: "{tmp_path / 'db'}" batch_size: 4 backend: LMDB }} }}""", engine.TRAIN)
    net.forward()
    batch = data_batch(net, "db")
    expected = (pixels[:4].astype(numpy.float64) - numpy.array([100, 50, 10]).reshape(1, 3, 1, 1)) * 0.5
    numpy.testing.assert_allclose(batch.images, expected, rtol=1e-6)
    assert [batch.label_text(k) for k in range(4)] == ["10", "11", "12", "13"]
    assert batch.channel_order == "BGR" and "scale 0.5" in batch.transform
    assert any(line.startswith("mean 100") for line in batch.transform)
    drawn = display_images(batch)  # BGR drawn as RGB: the red of the picture is channel 2
    assert numpy.argmax(drawn[0].reshape(-1, 3)[:, 0]) == numpy.argmax(batch.images[0, 2].reshape(-1))


def test_image_data_hdf5_and_memory_data(tmp_path):
    for k in range(3):
        Image.fromarray(numpy.full((6, 6), 40 * k, numpy.uint8)).save(tmp_path / f"im {k}.png")
    (tmp_path / "list.txt").write_text("".join(f"im {k}.png {k + 1}\n" for k in range(3)))
    rows = numpy.arange(2 * 10, dtype=numpy.float32).reshape(2, 10)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"], f["label"] = rows, numpy.array([7, 8], numpy.float32)
    (tmp_path / "h5.txt").write_text(str(tmp_path / "d.h5") + "\n")
    net = engine.Net(f"""
    layer {{ name: "images" type: "ImageData" top: "pictures" top: "classes"
      transform_param {{ scale: 0.01 }}
      image_data_param {{ source: "{tmp_path / 'list.txt'}" root_folder: "{tmp_path}/" batch_size: 3 is_color: false }} }}
    layer {{ name: "h5" type: "HDF5Data" top: "data" top: "label"
      hdf5_data_param {{ source: "{tmp_path / 'h5.txt'}" batch_size: 2 }} }}
    layer {{ name: "mem" type: "MemoryData" top: "m" top: "mlabel"
      memory_data_param {{ batch_size: 2 channels: 1 height: 4 width: 4 }} }}""", engine.TRAIN)
    mem = net.layers[net.layer_index("mem")]
    mem.set_arrays(numpy.arange(2 * 16, dtype=numpy.float32).reshape(2, 1, 4, 4), numpy.array([3, 4], numpy.float32))
    net.forward()
    assert data_layers(net) == ["images", "h5", "mem"]
    images = data_batch(net, "images")
    assert images.kind == IMAGES and images.label_name == "classes"
    numpy.testing.assert_allclose(images.images[:, 0, 0, 0], [0.0, 0.4, 0.8], rtol=1e-6)
    assert [images.label_text(k) for k in range(3)] == ["1", "2", "3"]
    table = data_batch(net, "h5")  # 10 values per row: not points, not a square image
    assert table.kind == TABLE
    numpy.testing.assert_array_equal(table.values, rows)
    assert [table.label_text(k) for k in range(2)] == ["7", "8"]
    memory = data_batch(net, "mem")
    numpy.testing.assert_array_equal(memory.images, net.blobs["m"].data)
    assert [memory.label_text(k) for k in range(2)] == ["3", "4"]


# ----------------------------------------------------------------------- the window
@pytest.fixture(scope="module")
def window():
    from tests.gui.windows import module_window
    with module_window() as w:
        yield w


def test_selecting_the_data_layer_shows_the_batch_as_tiles_with_labels(window, qtbot):
    assert window.open_path(EXAMPLES["digits_lenet"])
    window.step_iterations(2)
    assert window.wait_until_idle(timeout=60)
    window.graph.centerOn(window.graph.node_items["data"])
    qtbot.mouseClick(window.graph.viewport(), Qt.MouseButton.LeftButton, pos=window.graph.node_center("data"))
    assert window.wait_until_idle(timeout=30)
    QApplication.processEvents()
    view = window.data_view
    assert window.inspector_pages.currentWidget() is view and view.page() == "images"
    net = window.session.solver.net
    numpy.testing.assert_array_equal(view.batch().images, net.blobs["data"].data)
    cells = view.canvas.cells()
    assert [label for _, label in cells] == labels_text(net.blobs["label"].data)
    rects = [rect for rect, _ in cells]
    assert all(rect.width() >= 16 and rect.height() >= 16 for rect in rects)  # readable, not specks
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    assert all(view.canvas.rect().contains(rect) for rect in rects)
    window.step_iterations(1)  # the next batch replaces it
    assert window.wait_until_idle(timeout=30)
    numpy.testing.assert_array_equal(view.batch().images, net.blobs["data"].data)


def test_spiral_data_layer_shows_a_scatter(window):
    assert window.open_path(EXAMPLES["spiral_mlp"])
    assert window.inspector_pages.currentWidget() is window.inspector  # a new net starts on the inspector
    window.select_layer("data")
    assert window.data_view.page() == "points"
    x, _ = window.data_view.scatter.getData()
    assert len(x) == window.session.solver.net.blobs["data"].shape[0]
