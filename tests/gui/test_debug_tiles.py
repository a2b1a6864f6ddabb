"""Weights as images: each tile is that output's weights over the input image."""
import numpy
import pytest

import engine
from engine import resources
from gui.model.tiles import image_layers, weight_tiles


def test_digits_mlp_rows_of_W_become_8x8_tiles():
    solver = engine.get_solver(resources.examples()["digits_mlp"])
    net = solver.net
    assert image_layers(net) == ["ip1"]  # ip2's input (32 hidden units) is not an image
    mosaic = weight_tiles(net, "ip1")
    W = net.params["ip1"][0].data
    assert mosaic.tiles.shape == (32, 1, 8, 8) and mosaic.grid == (6, 6)
    for n in (0, 7, 31):
        top, left = mosaic.tile_origin(n)
        numpy.testing.assert_array_equal(mosaic.image[top:top + 8, left:left + 8], W[n].reshape(8, 8))
    assert numpy.isnan(mosaic.image[0]).all()  # the separators
    assert numpy.count_nonzero(~numpy.isnan(mosaic.image)) == W.size
    with pytest.raises(ValueError, match="not an image"):
        weight_tiles(net, "ip2")


def test_conv_filters_show_every_input_channel():
    solver = engine.get_solver(resources.examples()["digits_lenet"])
    net = solver.net
    assert image_layers(net)[:2] == ["conv1", "conv2"]
    mosaic = weight_tiles(net, "conv2")
    W = net.params["conv2"][0].data
    assert mosaic.tiles.shape == W.shape == (16, 8, 3, 3)
    top, left = mosaic.tile_origin(5, 6)
    numpy.testing.assert_array_equal(mosaic.image[top:top + 3, left:left + 3], W[5, 6])


def test_the_tiles_view_draws_the_mosaic(qtbot):
    from gui.views.debug.tiles import WeightTilesView
    solver = engine.get_solver(resources.examples()["digits_mlp"])
    view = WeightTilesView(lambda name: weight_tiles(solver.net, name))
    qtbot.addWidget(view)
    view.set_layers(image_layers(solver.net))
    view.refresh()
    numpy.testing.assert_array_equal(view.image.image, view.mosaic.image)
    assert "32 tiles of 8×8" in view.title.text()
